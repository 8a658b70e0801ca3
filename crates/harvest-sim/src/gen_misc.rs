//! Generators for dictionaries and the remaining small resources (tags, sources, reasons,
//! offices, departments, custom fields and options, demographics, templates, …).
//!
//! Contract: see `rows`.  Dictionary names are structural (stable across updates) where other
//! rows embed them (tag names on candidates, interviewer tag names on users, option names in
//! custom field maps); updates change another visible field instead.

use super::cf_defs;
use super::data::Ctx;
use super::json::JsonOut;
use super::model::{JOB_BOARDS, R};
use super::text;

const TAGS: &[&str] = &[
    "Python",
    "Rust",
    "Referral",
    "Boomerang",
    "Silver medalist",
    "Do not contact",
    "Relocation ✈️",
    "Über-talent",
    "Diversity sourcing",
    "外国籍",
    "Hot lead 🔥",
    "Passive",
];

pub fn tag_name(i: u32) -> String {
    let base = TAGS[i as usize % TAGS.len()];
    if (i as usize) < TAGS.len() {
        base.to_string()
    } else {
        format!("{base} #{i}")
    }
}

const ITAGS: &[&str] = &[
    "Technical",
    "Bar raiser",
    "Culture",
    "Leadership",
    "Frontend",
    "Backend",
    "Entrevistador",
    "面接官",
];

pub fn interviewer_tag_name(i: u32) -> String {
    let base = ITAGS[i as usize % ITAGS.len()];
    if (i as usize) < ITAGS.len() {
        base.to_string()
    } else {
        format!("{base} {i}")
    }
}

pub fn blocked_spam_sources(x: &mut Ctx, w: &mut JsonOut) {
    let ty = x.s.pick(&["email", "domain", "ip_address"]);
    w.str("source_type", ty);
    let v = match ty {
        "email" => format!("spam{}@junk.example", x.idx),
        "domain" => format!("junk{}.example", x.idx),
        _ => format!("203.0.113.{}", x.idx % 250),
    };
    w.str("value", &v);
}

pub fn bulk_requests(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "bulk_action_uuid",
        &format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            x.s.next_u64() as u32,
            x.s.below(65536),
            x.s.below(4096),
            x.s.below(4096),
            x.s.next_u64() & 0xFFFF_FFFF_FFFF
        ),
    );
    w.int("requested_by_user_id", x.ref_id(R::Users));
    let status = x.c.pick(&["pending", "in_progress", "completed", "failed"]);
    w.str("status", status);
    let n = 1 + x.s.below(500) as i64;
    let ok = if status == "completed" { n } else { n / 2 };
    w.int("record_count", n);
    w.int("success_count", ok);
    w.int("failure_count", n - ok);
    w.ostr(
        "callback_url",
        x.s.chance(0.5)
            .then_some("https://hooks.example.com/bulk?x=1&y=2"),
    );
    w.ostr(
        "callback_response",
        (status == "completed" && x.s.chance(0.5)).then_some("{\"ok\":true}"),
    );
    w.ots("completed_at", (status == "completed").then(|| x.updated()));
    w.ots(
        "expires_at",
        (status != "pending").then(|| x.created() + 30 * 86_400_000),
    );
    w.str(
        "api_endpoint",
        x.s.pick(&[
            "/v3/candidates/bulk_update",
            "/v3/applications/bulk_reject",
            "/v3/users/bulk_disable",
        ]),
    );
    w.ots("requested_at", Some(x.created()));
}

pub fn candidate_tags(x: &mut Ctx, w: &mut JsonOut) {
    w.str("name", &tag_name(x.idx));
}

pub fn close_reasons(x: &mut Ctx, w: &mut JsonOut) {
    const N: &[&str] = &[
        "Hire - New Headcount",
        "Hire - Backfill",
        "Hire - Internal transfer",
        "Position cancelled",
        "Budget freeze",
        "Filled by contractor",
        "Réorganisation",
        "Other",
    ];
    let n = N[x.idx as usize % N.len()];
    let name = if x.db.rev(x.r, x.idx) > 0 {
        format!("{n} (rev {})", x.db.rev(x.r, x.idx))
    } else {
        n.to_string()
    };
    w.str("name", &name);
}

pub fn custom_field_departments(x: &mut Ctx, w: &mut JsonOut) {
    w.int("custom_field_id", x.parent_id());
    w.oint("department_id", x.ref_opt(R::Departments));
}

pub fn custom_field_offices(x: &mut Ctx, w: &mut JsonOut) {
    w.int("custom_field_id", x.parent_id());
    w.oint("office_id", x.ref_opt(R::Offices));
}

pub fn custom_field_options(x: &mut Ctx, w: &mut JsonOut) {
    let def = x.parent();
    let t = x.db.t(x.r);
    let pos = if x.idx < t.initial {
        x.idx - t.first[def as usize]
    } else {
        x.idx
    };
    w.int("custom_field_id", x.parent_id());
    w.str("name", &cf_defs::option_name(def as usize, pos as usize));
    w.ostr(
        "external_id",
        x.c.chance(0.5)
            .then(|| format!("ext-{}-{:x}", pos, x.c.below(4096)))
            .as_deref(),
    );
    w.int("sort_order", pos as i64);
    w.bool("active", !x.soft() && (x.s.below(15) != 0));
}

pub fn custom_fields(x: &mut Ctx, w: &mut JsonOut) {
    let i = x.idx as usize;
    let (name, key, ft, vt, it, active) = match cf_defs::DEFS.get(i) {
        Some(d) => (
            d.name.to_string(),
            d.key.to_string(),
            d.field_type,
            d.value_type,
            d.internal_type,
            d.active,
        ),
        None => (
            format!("Added Field {i}"),
            format!("added_field_{i}"),
            "candidate",
            "short_text",
            None,
            true,
        ),
    };
    w.str("field_type", ft);
    w.int("sort_order", i as i64);
    w.str("name", &name);
    w.str("value_type", vt);
    w.bool("private", x.s.chance(0.2));
    w.bool("required", x.s.chance(0.2));
    w.bool("require_approval", x.s.chance(0.1));
    w.bool("trigger_new_version", ft == "offer" && x.s.chance(0.5));
    w.obool("active", Some(active && !x.soft()));
    w.oint("updated_by_id", x.s.chance(0.7).then(|| x.ref_id(R::Users)));
    w.ostr("internal_type", it);
    w.bool("expose_in_job_board_api", x.s.chance(0.2));
    w.ostr("placeholder", x.c.chance(0.3).then_some("e.g. «valeur»"));
    w.str("name_key", &key);
    w.ostr(
        "description",
        x.c.chance(0.5)
            .then(|| text::sentence(&mut x.c, 6))
            .as_deref(),
    );
    w.ostr(
        "application_type",
        (ft == "application").then_some("all_applications"),
    );
    w.obool("api_only", (!i.is_multiple_of(4)).then_some(false));
    w.obool("use_for_job_approvals", (ft == "job").then_some(true));
    w.obool("use_for_offer_approvals", (ft == "offer").then_some(true));
    w.ostr(
        "template_token_string",
        (!i.is_multiple_of(5))
            .then(|| format!("{{{{{}}}}}", key.to_uppercase()))
            .as_deref(),
    );
    if vt == "yes_no" {
        w.obj("default_value", |w| w.bool("value", false));
    } else {
        w.null("default_value");
    }
}

pub fn demographic_answer_options(x: &mut Ctx, w: &mut JsonOut) {
    w.int("demographic_question_id", x.parent_id());
    let t = x.db.t(x.r);
    let p = x.parent() as usize;
    let pos = if x.idx < t.initial {
        x.idx - t.first[p]
    } else {
        0
    };
    w.int("sort_order", pos as i64);
    w.bool("active", !x.soft() && x.s.below(12) != 0);
    let last = x.idx < t.initial && x.idx + 1 == t.first[p + 1];
    w.bool("free_form", last);
    const N: &[&str] = &[
        "Woman",
        "Man",
        "Non-binary",
        "Hispanic or Latino/a/x",
        "Asian",
        "Prefer to self-describe",
    ];
    w.ostr(
        "name",
        Some(if last {
            "I prefer not to answer"
        } else {
            N[pos as usize % N.len()]
        }),
    );
    w.obool("decline_to_answer", (x.s.below(8) != 0).then_some(last));
}

pub fn demographic_question_sets(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "title",
        &format!("Voluntary self-identification #{}", x.idx + 1),
    );
    w.ostr(
        "description",
        x.c.chance(0.7)
            .then(|| text::html(&mut x.c, false))
            .as_deref(),
    );
    w.bool("active", !x.soft() && x.idx != 2);
    w.obool("enabled", (x.idx != 2).then_some(x.idx == 0));
}

pub fn demographic_questions(x: &mut Ctx, w: &mut JsonOut) {
    w.int("sort_order", x.idx as i64);
    w.bool("active", !x.soft() && x.s.below(8) != 0);
    w.ostr(
        "name",
        (x.s.below(7) != 0).then(|| {
            x.c.pick(&[
                "How do you identify?",
                "What is your race/ethnicity?",
                "Are you a veteran?",
                "¿Cuál es tu género?",
            ])
        }),
    );
    w.oint("demographic_question_set_id", Some(x.parent_id()));
    w.obool("required", (x.s.below(5) != 0).then(|| x.s.chance(0.3)));
    w.ostr(
        "answer_type",
        (x.s.below(7) != 0).then(|| {
            x.s.pick(&["multi_value_single_select", "multi_value_multi_select"])
        }),
    );
}

pub fn departments(x: &mut Ctx, w: &mut JsonOut) {
    let n = text::DEPARTMENTS[x.idx as usize % text::DEPARTMENTS.len()];
    w.str(
        "name",
        &if x.idx as usize >= text::DEPARTMENTS.len() {
            format!("{n} {}", x.idx)
        } else {
            n.to_string()
        },
    );
    w.oint(
        "parent_id",
        (x.idx >= 4)
            .then(|| x.db.live_id(R::Departments, x.idx % 4))
            .flatten(),
    );
    w.ostr(
        "external_id",
        x.c.chance(0.6).then(|| format!("DEP-{}", x.idx)).as_deref(),
    );
}

pub fn email_templates(x: &mut Ctx, w: &mut JsonOut) {
    let html = x.s.chance(0.5);
    w.ostr(
        "name",
        Some(&format!(
            "Template {} — {}",
            x.idx,
            x.c.pick(&["Rejection", "Interview invite", "Offer", "Référence"])
        )),
    );
    w.ostr(
        "description",
        x.c.chance(0.5)
            .then(|| text::sentence(&mut x.c, 5))
            .as_deref(),
    );
    w.ostr(
        "subject",
        Some(&format!(
            "{{{{JOB_NAME}}}} at {}",
            x.c.pick(text::COMPANIES)
        )),
    );
    w.ostr(
        "body",
        (!html).then(|| text::sentence(&mut x.c, 30)).as_deref(),
    );
    let long = x.c.below(3) == 0;
    w.ostr(
        "html_body",
        html.then(|| text::html(&mut x.c, long)).as_deref(),
    );
    w.ostr(
        "email_type",
        Some(x.s.pick(&[
            "candidate_rejection",
            "interview_confirmation",
            "offer",
            "scorecard_reminder",
            "other",
        ])),
    );
    w.ostr(
        "from_type",
        Some(x.s.pick(&[
            "user_email",
            "organization_email",
            "my_email_address",
            "inviter",
            "organizer",
            "not_applicable",
        ])),
    );
    w.ostr(
        "recipients",
        x.s.chance(0.3).then_some("candidate,recruiter"),
    );
    w.obool("cc_recruiter", Some(x.s.chance(0.3)));
    w.obool("cc_coordinator", Some(x.s.chance(0.3)));
    w.obool("default", Some(x.idx < 3));
    w.obool(
        "office_anywhere",
        (x.s.below(4) != 0).then(|| x.s.chance(0.5)),
    );
    w.oint("user_id", x.s.chance(0.4).then(|| x.ref_id(R::Users)));
}

pub fn interviewer_tags(x: &mut Ctx, w: &mut JsonOut) {
    w.str("name", &interviewer_tag_name(x.idx));
}

pub fn job_board_custom_locations(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "value",
        &format!("{} (custom {})", x.c.pick(text::CITIES), x.idx),
    );
    w.bool("active", !x.soft() && x.s.below(6) != 0);
    w.int("greenhouse_job_board_id", x.s.pick(JOB_BOARDS));
}

pub fn offices(x: &mut Ctx, w: &mut JsonOut) {
    let city = text::CITIES[x.idx as usize % text::CITIES.len()];
    w.str(
        "name",
        &if x.idx as usize >= text::CITIES.len() {
            format!("{city} {}", x.idx)
        } else {
            city.to_string()
        },
    );
    w.oint(
        "parent_id",
        (x.idx >= 3)
            .then(|| x.db.live_id(R::Offices, x.idx % 3))
            .flatten(),
    );
    w.ostr(
        "external_id",
        x.c.chance(0.6).then(|| format!("OFF-{}", x.idx)).as_deref(),
    );
    w.ostr("location", x.c.chance(0.8).then_some(city));
    w.oint(
        "primary_in_house_contact_user_id",
        x.s.chance(0.5).then(|| x.ref_id(R::Users)),
    );
}

pub fn prospect_pool_stages(x: &mut Ctx, w: &mut JsonOut) {
    let t = x.db.t(x.r);
    let p = x.parent() as usize;
    let pos = if x.idx < t.initial {
        x.idx - t.first[p]
    } else {
        0
    };
    w.int("prospect_pool_id", x.parent_id());
    w.str(
        "name",
        ["New", "Contacted", "Engaged", "Interested", "Nurture"][pos as usize % 5],
    );
    w.int("sort_order", pos as i64);
}

pub fn prospect_pools(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "name",
        &format!("{} talent pool", x.c.pick(text::DEPARTMENTS)),
    );
    w.bool("active", !x.soft() && x.idx != 5);
    w.ostr(
        "description",
        x.c.chance(0.5)
            .then(|| text::sentence(&mut x.c, 6))
            .as_deref(),
    );
    let deps: Vec<i64> = (0..x.s.below(2))
        .filter_map(|_| x.ref_opt(R::Departments))
        .collect();
    w.ints("department_ids", &deps);
    let offs: Vec<i64> = (0..x.s.below(2))
        .filter_map(|_| x.ref_opt(R::Offices))
        .collect();
    w.ints("office_ids", &offs);
    let jobs: Vec<i64> = (0..x.s.below(3))
        .filter_map(|_| x.ref_opt(R::Jobs))
        .collect();
    w.ints("job_ids", &jobs);
}

pub fn referrers(x: &mut Ctx, w: &mut JsonOut) {
    let user = x.s.chance(0.6).then(|| x.ref_id(R::Users));
    w.oint("user_id", user);
    let (f, l) = text::person(&mut x.c);
    w.str("name", &format!("{f} {l}"));
}

pub fn rejection_reasons(x: &mut Ctx, w: &mut JsonOut) {
    const N: &[(&str, usize)] = &[
        ("Lacking skill(s)/qualification(s)", 0),
        ("Hired another candidate", 0),
        ("Culture fit", 0),
        ("Location", 1),
        ("Compensation", 1),
        ("Took another offer", 1),
        ("Other (see notes)", 2),
        ("Failed background check", 3),
        ("Ne répond plus", 1),
        ("Duplicate 重复", 2),
    ];
    const TYPES: &[(&str, &str)] = &[
        ("WE_REJECTED_THEM", "We rejected them"),
        ("THEY_REJECTED_US", "They rejected us"),
        ("NONE_SPECIFIED", "None specified"),
        ("SECURITY_CONCERN", "Security concern"),
    ];
    let (n, ti) = N[x.idx as usize % N.len()];
    let custom = !x.db.rejection_reason_is_default(x.idx);
    let name = if custom {
        format!("{n} (custom {})", x.idx)
    } else {
        n.to_string()
    };
    w.str("name", &name);
    let (key, tname) = TYPES[ti];
    w.obj("type", |w| {
        w.int("id", ti as i64 + 1);
        w.str("key", key);
        w.str("name", tname);
    });
}

pub fn sources(x: &mut Ctx, w: &mut JsonOut) {
    const S: &[(&str, &str)] = &[
        ("LinkedIn", "Social media"),
        ("Indeed", "Third-party boards"),
        ("Referral", "Referral"),
        ("Company website", "Company marketing"),
        ("Career fair", "In person event"),
        ("Agency – Müller", "Agencies"),
        ("Sourced", "Prospecting"),
        ("MyGreenhouse", "MyGreenhouse"),
        ("Other", "Other"),
    ];
    let (n, t) = S[x.idx as usize % S.len()];
    let ti = S.iter().position(|s| s.1 == t).unwrap_or(0) as i64 + 1;
    w.str(
        "name",
        &if x.idx as usize >= S.len() {
            format!("{n} {}", x.idx)
        } else {
            n.to_string()
        },
    );
    w.obj("type", |w| {
        w.int("id", ti);
        w.str("name", t);
    });
}

pub fn tracking_links(x: &mut Ctx, w: &mut JsonOut) {
    w.oint(
        "job_id",
        x.s.chance(0.8).then(|| x.ref_opt(R::Jobs)).flatten(),
    );
    w.str("token", &format!("{:x}", x.s.next_u64() & 0x00FF_FFFF_FFFF));
    w.oint("source_id", x.s.chance(0.8).then(|| x.ref_id(R::Sources)));
    let post = x.ref_live(R::JobPosts, 0.3);
    w.oint("related_post_id", post);
    w.ostr("related_post_type", post.map(|_| "JobPost"));
    w.oint(
        "referrer_id",
        x.s.chance(0.3).then(|| x.ref_id(R::Referrers)),
    );
    w.oint(
        "job_board_id",
        x.s.chance(0.8).then(|| x.s.pick(JOB_BOARDS)),
    );
    w.oint("job_post_id", post);
}

pub fn user_roles(x: &mut Ctx, w: &mut JsonOut) {
    const ROLES: &[(&str, &str)] = &[
        ("job_admin", "Standard"),
        ("job_admin", "Private"),
        ("site_admin", "Site Admin"),
        ("deprecated_interviewer", "Interviewer"),
        ("job_admin", "Hiring Manager"),
        ("job_admin", "Recruiter (Équipe)"),
        ("job_admin", "Coordinator"),
        ("job_admin", "Sourcer"),
    ];
    let (t, n) = ROLES[x.idx as usize % ROLES.len()];
    w.str("role_type", t);
    let rev = x.db.rev(x.r, x.idx);
    w.str(
        "name",
        &if rev > 0 || x.idx as usize >= ROLES.len() {
            format!("{n} {}", x.idx + rev)
        } else {
            n.to_string()
        },
    );
}
