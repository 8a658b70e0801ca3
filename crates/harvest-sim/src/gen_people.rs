//! Generators for candidates, applications and their children, and users.
//!
//! Contract: see `rows`.  Cross-row facts that several generators (and filters) must agree on
//! — an application's job, whether it is a prospect or rejected — are computed by the
//! `app_*` helpers from hashes and the `Db`, never from a generator's rng sequence.

use super::cf;
use super::data::{Ctx, Db};
use super::json::{JsonOut, Millis};
use super::model::{R, id_of};
use super::rng::hash;
use super::text;

/// Index of the job an application is for (None for jobless prospects).
pub fn app_job(db: &Db, app: u32) -> Option<u32> {
    let h = hash(&[db.seed, 0xA9, app as u64]);
    if app_is_prospect(db, app) && h.is_multiple_of(2) {
        return None;
    }
    Some((h >> 8) as u32 % db.t(R::Jobs).initial.max(1))
}
pub fn app_is_prospect(db: &Db, app: u32) -> bool {
    !db.children_initial(R::ProspectDetails, app).is_empty()
}
pub fn app_is_rejected(db: &Db, app: u32) -> bool {
    !db.children_initial(R::RejectionDetails, app).is_empty()
}
/// When the application was rejected (shared by applications and rejection_details).
pub fn app_rejected_at(db: &Db, app: u32) -> Millis {
    let t = db.t(R::Applications);
    let (c, u) = (t.created[app as usize], t.updated[app as usize]);
    (c + (hash(&[db.seed, 0x4E, app as u64]) % 5_000_000_000) as i64).min(u)
}

fn typed_list(w: &mut JsonOut, key: &str, items: &[(String, &str)]) {
    w.arr(key, |w| {
        for (v, t) in items {
            w.item_obj(|w| {
                w.str("value", v);
                w.str("type", t);
            });
        }
    });
}

/// What an anonymized candidate lost, in Greenhouse's `anonymized_fields` vocabulary (the
/// `candidate_anonymized` webhook reports this list).
pub const ANONYMIZED_FIELDS: &[&str] = &[
    "full_name",
    "current_company",
    "current_title",
    "phone_numbers",
    "addresses",
    "email_addresses",
    "websites",
    "social_media_links",
    "custom_candidate_fields",
];

pub fn candidates(x: &mut Ctx, w: &mut JsonOut) {
    // Anonymized rows draw the same random values as before (so nothing else moves) and write
    // blanks instead: Greenhouse sets first_name "Anonymized" and last_name to the id.
    let anon = x.db.t(R::Candidates).anon.contains(&x.idx);
    let (f, l) = text::person(&mut x.c);
    let own_id = x.id().to_string();
    if anon {
        w.str("first_name", "Anonymized");
        w.str("last_name", &own_id);
        let _ = (x.c.below(50), x.c.below(50));
    } else {
        w.ostr("first_name", (x.c.below(50) != 0).then_some(f));
        w.ostr("last_name", (x.c.below(50) != 0).then_some(l));
    }
    w.ostr(
        "preferred_name",
        x.c.chance(0.2)
            .then_some(x.c.pick(text::FIRST))
            .filter(|_| !anon),
    );
    let company = x.c.chance(0.8).then_some(x.c.pick(text::COMPANIES));
    w.ostr("company", company.filter(|_| !anon));
    let title = x.c.chance(0.8).then_some(x.c.pick(text::TITLES));
    w.ostr("title", title.filter(|_| !anon));
    w.ots(
        "last_activity_at",
        (x.s.below(30) != 0).then(|| x.updated()),
    );
    w.obool("private", (x.s.below(20) != 0).then(|| x.s.chance(0.1)));
    w.bool("can_email", x.s.chance(0.9));
    w.ostr(
        "time_zone",
        x.c.chance(0.7).then_some(x.c.pick(text::TIME_ZONES)),
    );
    let tags: Vec<String> =
        x.db.children_initial(R::AppliedCandidateTags, x.idx)
            .into_iter()
            .map(|t| super::gen_misc::tag_name(applied_tag(x.db, t)))
            .collect();
    w.strs("tags", &tags);
    let linked: Vec<i64> = if x.s.below(40) == 0 {
        vec![x.ref_id(R::Users)]
    } else {
        vec![]
    };
    w.ints("linked_user_ids", &linked);
    let (fs, ls) = (text::slug(f), text::slug(l));
    let n = x.idx;
    let phones: Vec<(String, &str)> = (0..x.c.below(3))
        .map(|k| {
            (
                format!("+1 (555) {:03}-{:04}", k * 7 % 1000, n % 10_000),
                x.c.pick(&["mobile", "home", "work", "other"]),
            )
        })
        .collect();
    typed_list(w, "phone_numbers", if anon { &[] } else { &phones });
    let addrs: Vec<(String, &str)> = (0..x.c.below(2))
        .map(|_| {
            (
                format!(
                    "{} Rue de l'Église\n{}",
                    x.c.below(200),
                    x.c.pick(text::CITIES)
                ),
                "home",
            )
        })
        .collect();
    typed_list(w, "addresses", if anon { &[] } else { &addrs });
    let emails: Vec<(String, &str)> = (0..1 + x.c.below(2))
        .map(|k| {
            (
                format!(
                    "{fs}.{ls}{}{}@example.com",
                    n,
                    if k > 0 { "+work" } else { "" }
                ),
                if k == 0 { "personal" } else { "work" },
            )
        })
        .collect();
    typed_list(w, "email_addresses", if anon { &[] } else { &emails });
    let sites: Vec<(String, &str)> = (0..x.c.below(2))
        .map(|_| (format!("https://{fs}.example.dev/?a=1&b=2"), "personal"))
        .collect();
    typed_list(w, "website_addresses", if anon { &[] } else { &sites });
    w.arr("social_media_addresses", |w| {
        if x.c.chance(0.4) && !anon {
            w.item_obj(|w| w.str("value", &format!("https://social.example/@{fs}{n}")));
        }
    });
    if anon {
        cf::write_map_blank(w, "custom_fields", "candidate");
    } else {
        let added = cf::added(x.db, "candidate", x.updated());
        cf::write_map(w, "custom_fields", "candidate", &mut x.c, &[], &added);
    }
}

pub fn applications(x: &mut Ctx, w: &mut JsonOut) {
    let db = x.db;
    let app = x.idx;
    let prospect = app_is_prospect(db, app);
    let rejected = app_is_rejected(db, app);
    let job = app_job(db, app);
    let cand = x.parent();
    let agency_note = (x.s.below(30) == 0)
        .then(|| db.children_initial(R::Notes, cand).first().copied())
        .flatten();
    w.oint("agency_note_id", agency_note.map(|n| id_of(R::Notes, n)));
    w.int("candidate_id", x.parent_id());
    w.oint(
        "coordinator_id",
        x.s.chance(0.7).then(|| x.ref_id(R::Users)),
    );
    w.oint("job_id", job.and_then(|j| db.live_id(R::Jobs, j)));
    let post = job.and_then(|j| db.children_initial(R::JobPosts, j).first().copied());
    w.oint(
        "job_post_id",
        post.filter(|_| x.s.chance(0.8))
            .and_then(|p| db.live_id(R::JobPosts, p)),
    );
    w.oint("recruiter_id", x.s.chance(0.8).then(|| x.ref_id(R::Users)));
    w.oint(
        "referrer_id",
        x.s.chance(0.15).then(|| x.ref_id(R::Referrers)),
    );
    w.oint("source_id", x.s.chance(0.9).then(|| x.ref_id(R::Sources)));
    // Jobless prospects sit in no stage.
    let stages = if job.is_some() {
        db.children_initial(R::ApplicationStages, app)
    } else {
        Vec::new()
    };
    w.oint(
        "stage_id",
        stages.last().map(|s| id_of(R::ApplicationStages, *s)),
    );
    w.ostr(
        "stage_name",
        (!stages.is_empty()).then(|| text::STAGES[(stages.len() - 1).min(text::STAGES.len() - 1)]),
    );
    let status = if rejected {
        "rejected"
    } else {
        match x.s.below(20) {
            0..=2 => "hired",
            3 if prospect => "converted",
            _ => "in_process",
        }
    };
    w.str("status", status);
    w.obool(
        "needs_decision",
        (x.s.below(10) != 0).then(|| x.c.chance(0.2)),
    );
    w.bool("prospect", prospect);
    w.ots("rejected_at", rejected.then(|| app_rejected_at(db, app)));
    w.ots(
        "last_activity_at",
        (x.s.below(25) != 0).then(|| x.updated()),
    );
    w.ostr(
        "location_address",
        x.c.chance(0.4).then_some(x.c.pick(text::CITIES)),
    );
    if x.c.chance(0.3) {
        w.null("answers");
    } else {
        w.arr("answers", |w| {
            for q in [
                "Are you authorized to work in the country?",
                "Why do you want to join? (¿Por qué?)",
            ] {
                w.item_obj(|w| {
                    w.str("question", q);
                    w.ostr(
                        "answer",
                        x.c.chance(0.8)
                            .then(|| text::sentence(&mut x.c, 6))
                            .as_deref(),
                    );
                });
            }
        });
    }
    let pj: Vec<i64> = if prospect {
        (0..1 + x.s.below(2))
            .filter_map(|_| x.ref_opt(R::Jobs))
            .collect()
    } else {
        vec![]
    };
    w.ints("prospective_job_ids", &pj);
    cf::write_map(w, "custom_fields", "application", &mut x.c, &[], &[]);
}

pub fn application_stages(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    let sibs = x.db.children_initial(R::ApplicationStages, app);
    let pos = sibs.iter().position(|s| *s == x.idx).unwrap_or(0);
    let current = pos + 1 == sibs.len();
    let stage = app_job(x.db, app)
        .map(|j| x.db.children_initial(R::JobInterviewStages, j))
        .and_then(|st| st.get(pos.min(st.len().saturating_sub(1))).copied())
        .unwrap_or_else(|| x.pick(R::JobInterviewStages));
    w.int("application_id", x.parent_id());
    w.oint(
        "job_interview_stage_id",
        x.db.live_id(R::JobInterviewStages, stage),
    );
    let entered = x.created();
    let exited = (!current).then(|| x.between().max(entered + 3_600_000));
    w.ots("entered_at", (x.s.below(30) != 0).then_some(entered));
    w.ots("exited_at", exited);
    w.int(
        "days_in_stage",
        ((exited.unwrap_or(x.updated()) - entered) / 86_400_000).max(0),
    );
    w.bool("current", current);
}

/// Candidate tag index applied by applied_candidate_tags row `i`.
pub fn applied_tag(db: &Db, i: u32) -> u32 {
    (hash(&[db.seed, 0x7A, i as u64]) % db.t(R::CandidateTags).initial.max(1) as u64) as u32
}

pub fn applied_candidate_tags(x: &mut Ctx, w: &mut JsonOut) {
    w.int(
        "candidate_tag_id",
        id_of(R::CandidateTags, applied_tag(x.db, x.idx)),
    );
    w.int("candidate_id", x.parent_id());
}

pub fn attachments(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    w.int("application_id", x.parent_id());
    w.oint(
        "candidate_id",
        Some(id_of(R::Candidates, x.app_candidate(app))),
    );
    let ty = x.s.pick(&[
        "resume",
        "cover_letter",
        "take_home_test",
        "offer_packet",
        "offer_letter",
        "signed_offer_letter",
        "other",
        "form_attachment",
        "midfunnel_agreement",
        "automated_agreement",
    ]);
    w.str("type", ty);
    let name = format!("{}_{}_{}.pdf", ty, text::slug(x.c.pick(text::LAST)), x.idx);
    w.str("filename", &name);
    w.str(
        "url",
        &format!(
            "https://sim-attachments.example.com/{}/{}?X-Amz-Expires=604800&sig={:x}",
            x.id(),
            name,
            x.c.next_u64()
        ),
    );
}

fn cfo_id(x: &mut Ctx, def: usize) -> Option<i64> {
    let t = x.db.t(R::CustomFieldOptions);
    let (a, b) = (*t.first.get(def)?, *t.first.get(def + 1)?);
    (b > a).then(|| id_of(R::CustomFieldOptions, a + x.s.below((b - a) as u64) as u32))
}

pub fn candidate_educations(x: &mut Ctx, w: &mut JsonOut) {
    w.int("candidate_id", x.parent_id());
    let s = cfo_id(x, 0);
    let d = cfo_id(x, 1);
    let di = cfo_id(x, 2);
    w.oint(
        "school_name_custom_field_option_id",
        s.filter(|_| x.s.below(10) != 0),
    );
    w.oint(
        "degree_custom_field_option_id",
        d.filter(|_| x.s.below(6) != 0),
    );
    w.oint(
        "discipline_custom_field_option_id",
        di.filter(|_| x.s.below(6) != 0),
    );
    let y0 = 1995 + x.s.range(0, 25);
    let start = super::data::day(y0, 9, 1) * 86_400_000;
    let end = super::data::day(y0 + x.s.range(2, 6), 6, 15) * 86_400_000;
    let dated = x.s.below(8) != 0;
    w.ots("start_at", dated.then_some(start));
    w.ots("end_at", (dated && x.s.below(5) != 0).then_some(end));
    w.bool("latest", x.s.chance(0.5));
    w.oint("start_date_month", dated.then_some(9));
    w.oint("start_date_year", dated.then_some(y0));
    w.oint("end_date_month", dated.then_some(6));
    w.oint("end_date_year", dated.then(|| y0 + 4));
}

pub fn candidate_employments(x: &mut Ctx, w: &mut JsonOut) {
    w.int("candidate_id", x.parent_id());
    w.str("company_name", x.c.pick(text::COMPANIES));
    w.str("title", x.c.pick(text::TITLES));
    let start = x.day_near(-3000, -200);
    w.date("start_date", start);
    w.odate(
        "end_date",
        x.s.chance(0.6).then(|| start + x.s.range(100, 1500)),
    );
    w.obool("latest", (x.s.below(5) != 0).then(|| x.s.chance(0.5)));
}

pub fn demographic_answers(x: &mut Ctx, w: &mut JsonOut) {
    w.int("application_id", x.parent_id());
    let q = x.pick(R::DemographicQuestions);
    let opts = x.db.children_initial(R::DemographicAnswerOptions, q);
    w.int("demographic_question_id", id_of(R::DemographicQuestions, q));
    let opt = (!opts.is_empty() && x.s.below(6) != 0)
        .then(|| opts[x.s.below(opts.len() as u64) as usize]);
    w.oint(
        "demographic_answer_option_id",
        opt.map(|o| id_of(R::DemographicAnswerOptions, o)),
    );
    w.ostr(
        "free_form_text",
        opt.is_none()
            .then(|| text::sentence(&mut x.c, 4))
            .as_deref(),
    );
}

pub fn eeoc(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    w.int("application_id", x.parent_id());
    w.int("candidate_id", id_of(R::Candidates, x.app_candidate(app)));
    let groups: [(&str, &[&str]); 4] = [
        ("gender", &["Male", "Female", "Decline To Self Identify"]),
        (
            "race",
            &[
                "Hispanic or Latino",
                "White",
                "Black or African American",
                "Asian",
                "Two or More Races",
                "Decline To Self Identify",
            ],
        ),
        (
            "veteran_status",
            &[
                "I am not a protected veteran",
                "I identify as one or more of the classifications of protected veteran",
                "I don't wish to answer",
            ],
        ),
        (
            "disability_status",
            &[
                "Yes, I have a disability, or have had one in the past",
                "No, I do not have a disability and have not had one in the past",
                "I do not want to answer",
            ],
        ),
    ];
    for (k, vals) in groups {
        if x.s.below(8) == 0 {
            w.null(k);
        } else {
            let i = x.c.below(vals.len() as u64) as usize;
            w.obj(k, |w| {
                w.oint("id", Some(i as i64 + 1));
                w.ostr("description", Some(vals[i]));
            });
        }
    }
    w.ots("submitted_at", (x.s.below(10) != 0).then(|| x.created()));
}

pub fn future_job_permissions(x: &mut Ctx, w: &mut JsonOut) {
    w.oint(
        "department_id",
        x.s.chance(0.6).then(|| x.ref_opt(R::Departments)).flatten(),
    );
    w.int("user_id", x.parent_id());
    w.oint(
        "office_id",
        x.s.chance(0.5).then(|| x.ref_opt(R::Offices)).flatten(),
    );
    w.int("role_id", x.ref_id(R::UserRoles));
}

const NOTE_TYPES: &[&str] = &[
    "NOTE",
    "ACTIVITY",
    "INTERVIEW",
    "EMAIL",
    "FOLLOW_UP",
    "TAKE_HOME_TEST",
    "LINKEDIN_NOTE",
    "LINKEDIN_INMAIL",
    "AVAILABILITY_REQUEST",
    "MIGRATION_ERROR",
    "TOUCHPOINT",
    "FORM",
    "FEEDBACK",
];

pub fn notes(x: &mut Ctx, w: &mut JsonOut) {
    let cand = x.parent();
    w.oint("candidate_id", Some(x.parent_id()));
    let apps = x.db.children_initial(R::Applications, cand);
    let app =
        (!apps.is_empty() && x.s.chance(0.7)).then(|| apps[x.s.below(apps.len() as u64) as usize]);
    w.oint("application_id", app.map(|a| id_of(R::Applications, a)));
    let ty = if x.s.chance(0.5) {
        "NOTE"
    } else {
        x.s.pick(NOTE_TYPES)
    };
    let body = if x.c.below(15) == 0 {
        text::html(&mut x.c, true)
    } else {
        text::sentence(&mut x.c, 12)
    };
    w.ostr("body", (x.c.below(30) != 0).then_some(body.as_str()));
    w.ostr(
        "subject",
        (ty == "EMAIL")
            .then(|| format!("Re: {} — next steps", x.c.pick(text::TITLES)))
            .as_deref(),
    );
    w.str("type", ty);
    w.oint("user_id", x.s.chance(0.9).then(|| x.ref_id(R::Users)));
    let email = ty == "EMAIL";
    w.ostr("email_from", email.then_some("recruiting@example.com"));
    w.ostr("email_to", email.then_some("candidate@example.org"));
    if email {
        w.strs("email_cc", &["hiring.manager@example.com"]);
    } else {
        w.null("email_cc");
    }
    w.ostr(
        "import_hash",
        x.s.chance(0.05)
            .then(|| format!("{:016x}", x.s.next_u64()))
            .as_deref(),
    );
    w.ostr(
        "body_with_tags",
        (x.c.below(30) != 0)
            .then(|| format!("{body} @[Recruiter](user:{})", x.idx % 97))
            .as_deref(),
    );
    w.ostr(
        "visibility",
        (x.s.below(10) != 0).then(|| {
            x.s.pick(&[
                "admin_only_visible",
                "privately_visible",
                "publicly_visible",
            ])
        }),
    );
    if email && x.c.chance(0.5) {
        w.arr("email_attachment_file_names", |w| {
            w.item_str("offer letter (final).pdf");
            w.item_str("手册.docx");
        });
    } else {
        w.null("email_attachment_file_names");
    }
}

pub fn prospect_details(x: &mut Ctx, w: &mut JsonOut) {
    w.int("application_id", x.parent_id());
    let pool = x.s.chance(0.8).then(|| x.pick(R::ProspectPools));
    w.oint("pool_id", pool.map(|p| id_of(R::ProspectPools, p)));
    let stage = pool.and_then(|p| {
        x.db.children_initial(R::ProspectPoolStages, p)
            .first()
            .copied()
    });
    w.oint(
        "pool_stage_id",
        stage.map(|s| id_of(R::ProspectPoolStages, s)),
    );
    w.oint(
        "prospect_owner_id",
        x.s.chance(0.8).then(|| x.ref_id(R::Users)),
    );
    w.oint(
        "department_id",
        x.s.chance(0.5).then(|| x.ref_opt(R::Departments)).flatten(),
    );
    w.oint(
        "office_id",
        x.s.chance(0.5).then(|| x.ref_opt(R::Offices)).flatten(),
    );
}

pub fn rejection_details(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    w.int("application_id", x.parent_id());
    w.oint(
        "rejected_by_id",
        x.s.chance(0.9).then(|| x.ref_id(R::Users)),
    );
    let cand = x.app_candidate(app);
    let note =
        x.s.chance(0.4)
            .then(|| x.db.children_initial(R::Notes, cand).last().copied())
            .flatten();
    w.oint("rejection_note_id", note.map(|n| id_of(R::Notes, n)));
    w.oint(
        "rejection_reason_id",
        x.s.chance(0.95).then(|| x.ref_id(R::RejectionReasons)),
    );
    w.ots("rejected_at", Some(app_rejected_at(x.db, app)));
    cf::write_map(
        w,
        "question_custom_fields",
        "rejection_question",
        &mut x.c,
        &[],
        &[],
    );
}

pub fn user_emails(x: &mut Ctx, w: &mut JsonOut) {
    w.int("user_id", x.parent_id());
    w.str(
        "email",
        &format!("user{}.alt{}@example.com", x.parent(), x.idx),
    );
    w.bool("verified", x.s.chance(0.8));
    w.ots(
        "verification_token_sent_at",
        x.s.chance(0.6).then(|| x.created()),
    );
}

pub fn user_job_permissions(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    // Site admins never appear in job permissions.
    let mut u = x.pick(R::Users);
    for _ in 0..8 {
        if !x.db.user_is_site_admin(u) {
            break;
        }
        u = x.pick(R::Users);
    }
    w.int("user_id", id_of(R::Users, u));
    w.int("role_id", x.ref_id(R::UserRoles));
    w.obool("automated", (x.s.below(5) != 0).then(|| x.s.chance(0.3)));
}

pub fn users(x: &mut Ctx, w: &mut JsonOut) {
    let svc = x.db.user_is_service(x.idx);
    let (f, l) = text::person(&mut x.c);
    if svc {
        w.ostr("first_name", None);
        w.ostr("last_name", None);
        w.str("primary_email", "");
    } else {
        w.ostr("first_name", Some(f));
        w.ostr("last_name", Some(l));
        w.str(
            "primary_email",
            &format!("{}.{}.{}@example.com", text::slug(f), text::slug(l), x.idx),
        );
    }
    w.ostr(
        "job_title",
        (!svc && x.c.chance(0.8)).then_some(x.c.pick(text::TITLES)),
    );
    w.oint("agency_id", None);
    let name = if svc {
        format!("Integration Service User {}", x.idx)
    } else {
        format!("{f} {l}")
    };
    w.ostr("name", Some(&name));
    w.bool("deactivated", x.soft() || (x.idx > 2 && x.s.below(12) == 0));
    w.bool("site_admin", x.db.user_is_site_admin(x.idx));
    w.ostr(
        "employee_id",
        (!svc && x.s.chance(0.7))
            .then(|| (100_000 + x.idx).to_string())
            .as_deref(),
    );
    let cand = x.pick(R::Candidates);
    let linked: Vec<i64> = (x.s.below(15) == 0 && x.db.is_alive(R::Candidates, cand))
        .then(|| id_of(R::Candidates, cand))
        .into_iter()
        .collect();
    w.ints("linked_candidate_ids", &linked);
    let offices: Vec<i64> = (0..x.s.below(3))
        .filter_map(|_| x.ref_opt(R::Offices))
        .collect();
    w.ints("office_ids", &dedup(offices));
    let deps: Vec<i64> = (0..x.s.below(3))
        .filter_map(|_| x.ref_opt(R::Departments))
        .collect();
    w.ints("department_ids", &dedup(deps));
    let tags: Vec<u32> = (0..x.s.below(3))
        .map(|_| x.pick(R::InterviewerTags))
        .collect();
    w.arr("interviewer_tags", |w| {
        for t in dedup(tags) {
            w.item_obj(|w| {
                w.int("id", id_of(R::InterviewerTags, t));
                w.str("name", &super::gen_misc::interviewer_tag_name(t));
            });
        }
    });
    if svc {
        w.null("emails");
    } else {
        w.strs(
            "emails",
            &[format!(
                "{}.{}.{}@example.com",
                text::slug(f),
                text::slug(l),
                x.idx
            )],
        );
    }
    cf::write_map(w, "custom_fields", "user_attribute", &mut x.c, &[], &[]);
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}
