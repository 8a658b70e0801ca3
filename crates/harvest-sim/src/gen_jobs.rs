//! Generators for jobs and their children (posts, stages, job interviews, offers, openings,
//! approvals, hiring team).  Interviews, kits and scorecards live in `gen_interviews`.
//!
//! Contract: see `rows`.  Offers are versioned per application: the newest live offer of an
//! application is current; older ones (and offers a mutation deprecated) are `Deprecated`.

use super::cf;
use super::data::{Ctx, Db};
use super::gen_people::app_job;
use super::json::JsonOut;
use super::model::{JOB_BOARDS, R, id_of};
use super::text;

/// Position of a row among its parent's initial children (stable across deletes).
pub(super) fn pos(x: &Ctx) -> u32 {
    let t = x.db.t(x.r);
    match x.db.parent_of(x.r, x.idx) {
        Some(p)
            if x.idx < t.initial
                && (p as usize) + 1 < t.first.len()
                && (t.first[p as usize]..t.first[p as usize + 1]).contains(&x.idx) =>
        {
            x.idx - t.first[p as usize]
        }
        Some(p) => {
            x.db.children_initial(x.r, p)
                .iter()
                .position(|c| *c == x.idx)
                .unwrap_or(0) as u32
        }
        None => 0,
    }
}

pub(super) fn parent_of(db: &Db, r: R, idx: u32) -> u32 {
    db.parent_of(r, idx).unwrap_or(0)
}

/// Job index of an interview kit (kit → job interview → stage → job).
pub(super) fn kit_job(db: &Db, kit: u32) -> u32 {
    let ji = parent_of(db, R::InterviewKits, kit);
    parent_of(
        db,
        R::JobInterviewStages,
        parent_of(db, R::JobInterviews, ji),
    )
}

/// Job of an application, or a stable fallback for jobless prospects (offers need one).
pub(super) fn app_job_or_any(x: &mut Ctx, app: u32) -> u32 {
    app_job(x.db, app).unwrap_or_else(|| x.pick(R::Jobs))
}

/// Whether offer `idx` is the current version for its application: the newest seeded version,
/// or a version added later by a mutation, unless a re-versioning has since deprecated it (which
/// bumps that row's own revision). Decided from the row's own state only, so deleting another
/// version never changes this row without moving its `updated_at`.
pub fn offer_is_current(db: &Db, idx: u32) -> bool {
    let t = db.t(R::Offers);
    if t.soft.contains(&idx) {
        return false;
    }
    if idx >= t.initial {
        return true;
    }
    let app = parent_of(db, R::Offers, idx);
    db.children_initial(R::Offers, app).last() == Some(&idx)
}

pub fn approval_flows(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    let ty = x.s.pick(&["open_job", "offer_job", "offer_candidate"]);
    w.oint(
        "offer_id",
        if ty == "open_job" {
            None
        } else {
            x.ref_live(R::Offers, 0.2)
        },
    );
    w.str("approval_type", ty);
    w.bool("sequential", x.s.chance(0.5));
    w.int("version", 1 + x.s.below(3) as i64);
    w.oint(
        "requested_by_id",
        x.s.chance(0.9).then(|| x.ref_id(R::Users)),
    );
    w.ostr(
        "approval_status",
        (x.s.below(6) != 0).then(|| x.c.pick(&["pending", "rejected", "approved"])),
    );
}

pub fn approver_groups(x: &mut Ctx, w: &mut JsonOut) {
    w.int("approval_flow_id", x.parent_id());
    w.int("approvals_required", 1 + x.s.below(2) as i64);
    w.int("sort_order", pos(x) as i64);
    w.bool("required_for_exception", x.s.chance(0.2));
    w.ots("resolved_at", x.s.chance(0.5).then(|| x.between()));
}

pub fn approvers(x: &mut Ctx, w: &mut JsonOut) {
    w.oint("sort_order", (x.s.below(10) != 0).then(|| pos(x) as i64));
    w.int("user_id", x.ref_id(R::Users));
    let status = x.c.pick(&["waiting", "due", "approved", "rejected"]);
    w.str("status", status);
    let resolved = matches!(status, "approved" | "rejected");
    w.oint("resolved_by_id", resolved.then(|| x.ref_id(R::Users)));
    w.ots("resolved_at", resolved.then(|| x.updated()));
    w.ots("request_sent_at", Some(x.created()));
    w.oint("version_sent", (x.s.below(10) != 0).then_some(1));
    let reminded = x.s.chance(0.3);
    w.ots("reminder_sent_at", reminded.then(|| x.between()));
    w.oint("reminder_sent_by_id", reminded.then(|| x.ref_id(R::Users)));
    w.oint(
        "reminders_sent",
        (x.s.below(10) != 0).then_some(reminded as i64),
    );
    w.oint("approver_group_id", Some(x.parent_id()));
    w.oint(
        "added_by_custom_field_id",
        (x.s.below(10) == 0).then(|| x.ref_id(R::CustomFields)),
    );
    w.odate(
        "send_auto_reminder_at",
        x.s.chance(0.3).then(|| x.day_near(2, 9)),
    );
    w.oint(
        "auto_reminders_sent",
        (x.s.below(10) != 0).then(|| x.s.below(3) as i64),
    );
}

pub fn candidate_attribute_types(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "name",
        x.c.pick(&[
            "Skills",
            "Qualifications",
            "Personality",
            "Details",
            "Qualités 🌟",
        ]),
    );
    w.int("job_id", x.parent_id());
    w.int("sort_order", pos(x) as i64);
    w.bool("active", x.s.below(10) != 0);
    w.obool("is_draft", (x.s.below(3) != 0).then(|| x.s.chance(0.1)));
}

pub fn job_candidate_attributes(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    w.oint(
        "candidate_attribute_type_id",
        x.ref_opt(R::CandidateAttributeTypes),
    );
    w.bool("active", x.s.below(10) != 0);
    w.oint("sort_order", (x.s.below(10) != 0).then(|| pos(x) as i64));
    w.str(
        "name",
        x.c.pick(&[
            "Communication",
            "Rust expertise",
            "Problem solving",
            "Leadership",
            "Esprit d'équipe",
            "チームワーク",
        ]),
    );
}

pub fn job_hiring_managers(x: &mut Ctx, w: &mut JsonOut) {
    w.int("user_id", x.ref_id(R::Users));
    w.int("job_id", x.parent_id());
}

pub fn job_interview_stages(x: &mut Ctx, w: &mut JsonOut) {
    let p = pos(x) as usize;
    w.int("job_id", x.parent_id());
    w.int("sort_order", p as i64);
    w.str("name", text::STAGES[p.min(text::STAGES.len() - 1)]);
    let active = x.s.below(15) != 0;
    w.bool("active", active && !x.soft());
}

pub fn job_interviews(x: &mut Ctx, w: &mut JsonOut) {
    let stage = x.parent();
    w.int("job_interview_stage_id", x.parent_id());
    w.int(
        "job_id",
        id_of(R::Jobs, parent_of(x.db, R::JobInterviewStages, stage)),
    );
    w.int("sort_order", pos(x) as i64);
    w.ostr(
        "scheduling_type",
        (x.s.below(5) != 0).then(|| {
            x.s.pick(&["none", "needs_scheduling", "take_home_test", "offer"])
        }),
    );
    w.oint(
        "duration",
        x.s.chance(0.8).then(|| 15 * (1 + x.s.below(8) as i64)),
    );
    w.ostr(
        "summary",
        x.c.chance(0.5)
            .then(|| text::sentence(&mut x.c, 8))
            .as_deref(),
    );
    w.ostr(
        "instructions",
        x.c.chance(0.3)
            .then(|| text::html(&mut x.c, false))
            .as_deref(),
    );
    w.str(
        "name",
        x.c.pick(&[
            "Technical Screen",
            "System Design",
            "Culture Add",
            "Portfolio Review",
            "Entretien RH",
        ]),
    );
    w.bool("active", x.s.below(12) != 0);
    w.obool(
        "require_scorecard",
        (x.s.below(10) != 0).then(|| x.s.chance(0.8)),
    );
}

pub fn job_notes(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    w.int("user_id", x.ref_id(R::Users));
    let long = x.c.below(10) == 0;
    w.ostr(
        "body",
        (x.c.below(20) != 0)
            .then(|| text::html(&mut x.c, long))
            .as_deref(),
    );
    w.ostr(
        "visibility",
        (x.s.below(8) != 0).then(|| x.s.pick(&["admin_only_visible", "privately_visible"])),
    );
}

pub fn job_owners(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    w.int("user_id", x.ref_id(R::Users));
    w.str(
        "type",
        ["recruiter", "coordinator", "sourcer"][pos(x) as usize % 3],
    );
    w.bool("responsible", pos(x) == 0);
}

pub fn job_post_locations(x: &mut Ctx, w: &mut JsonOut) {
    let ty = if x.s.below(8) == 0 {
        None
    } else {
        Some(x.s.pick(&["free_text", "office", "custom_list"]))
    };
    w.ostr(
        "plain_text_location",
        (ty != Some("custom_list")).then(|| x.c.pick(text::CITIES)),
    );
    w.oint(
        "office_id",
        (ty == Some("office"))
            .then(|| x.ref_opt(R::Offices))
            .flatten(),
    );
    w.ostr("type", ty);
    w.oint("job_post_id", Some(x.parent_id()));
    w.oint(
        "custom_location_id",
        (ty == Some("custom_list")).then(|| x.ref_id(R::JobBoardCustomLocations)),
    );
}

pub fn job_posts(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "title",
        &format!("{} — {}", x.c.pick(text::TITLES), x.c.pick(text::CITIES)),
    );
    w.bool("internal", x.s.chance(0.2));
    let active = !x.soft() && x.s.below(7) != 0;
    w.bool("active", active);
    w.bool("live", active && x.s.chance(0.7));
    w.bool("featured", x.s.chance(0.1));
    w.ots("first_published_at", x.s.chance(0.8).then(|| x.created()));
    let long = x.c.below(3) == 0;
    w.ostr(
        "content",
        (x.c.below(20) != 0)
            .then(|| text::html(&mut x.c, long))
            .as_deref(),
    );
    w.ostr(
        "internal_content",
        x.c.chance(0.3)
            .then(|| text::html(&mut x.c, false))
            .as_deref(),
    );
    w.ostr(
        "language",
        (x.s.below(10) != 0).then(|| {
            x.s.pick(&["en", "en", "en", "fr", "de", "ja", "es", "zh", "pt"])
        }),
    );
    w.ostr(
        "public_url",
        x.s.chance(0.8)
            .then(|| format!("https://job-boards.example.com/acme/jobs/{}", x.id()))
            .as_deref(),
    );
    w.oint(
        "demographic_question_set_id",
        x.s.chance(0.3)
            .then(|| x.ref_id(R::DemographicQuestionSets)),
    );
    w.int("job_id", x.parent_id());
    w.int("job_board_id", x.s.pick(JOB_BOARDS));
    let qbase = x.id() * 10;
    w.arr("questions", |w| {
        w.item_obj(|w| {
            w.oint("id", None);
            w.ostr("description", None);
            w.str("answer_type", "attachment");
            w.obool("required", Some(true));
            w.bool("private", false);
            w.str("label", "Resume/CV");
            w.str("name", "resume");
            w.arr("options", |_| {});
        });
        w.item_obj(|w| {
            w.oint("id", Some(qbase + 1));
            w.ostr("description", Some("<p>Pick one — «choisissez»</p>"));
            w.str("answer_type", "single_select");
            w.obool("required", None);
            w.bool("private", false);
            w.str("label", "Are you legally authorized to work?");
            w.str("name", &format!("question_{}", qbase + 1));
            w.arr("options", |w| {
                for (k, l) in ["Yes", "No"].iter().enumerate() {
                    w.item_obj(|w| {
                        w.int("id", qbase + 2 + k as i64);
                        w.str("label", l);
                    });
                }
            });
        });
    });
}

pub fn jobs(x: &mut Ctx, w: &mut JsonOut) {
    w.str(
        "name",
        &format!(
            "{} ({})",
            x.c.pick(text::TITLES),
            x.c.pick(text::DEPARTMENTS)
        ),
    );
    w.ostr(
        "requisition_id",
        x.s.chance(0.8)
            .then(|| format!("REQ-{:05}", x.idx))
            .as_deref(),
    );
    let long = x.c.below(6) == 0;
    w.ostr(
        "notes",
        x.c.chance(0.6)
            .then(|| text::html(&mut x.c, long))
            .as_deref(),
    );
    w.bool("confidential", x.s.below(15) == 0);
    let status = match x.s.below(10) {
        0 => "draft",
        1..=3 => "closed",
        _ => "open",
    };
    w.str("status", status);
    w.ots("opened_at", (status != "draft").then(|| x.created()));
    w.ots("closed_at", (status == "closed").then(|| x.updated()));
    w.obool(
        "is_template",
        (x.s.below(4) != 0).then(|| x.s.below(20) == 0),
    );
    w.oint(
        "copied_from_id",
        (x.idx > 0 && x.s.below(8) == 0)
            .then(|| x.db.live_id(R::Jobs, x.idx / 2))
            .flatten(),
    );
    w.oint(
        "department_id",
        x.s.chance(0.9).then(|| x.ref_opt(R::Departments)).flatten(),
    );
    if x.s.below(15) == 0 {
        w.null("office_ids");
    } else {
        let mut o: Vec<i64> = (0..1 + x.s.below(2))
            .filter_map(|_| x.ref_opt(R::Offices))
            .collect();
        o.sort();
        o.dedup();
        w.ints("office_ids", &o);
    }
    let sponsor = [x.ref_id(R::Users)];
    cf::write_map(w, "custom_fields", "job", &mut x.c, &sponsor, &[]);
}

pub fn offers(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    let version =
        x.db.t(R::Offers)
            .version
            .get(&x.idx)
            .copied()
            .unwrap_or(pos(x) + 1);
    w.int("version", version as i64);
    w.int("application_id", x.parent_id());
    let job = app_job_or_any(x, app);
    w.oint("job_id", x.db.live_id(R::Jobs, job));
    w.int("candidate_id", id_of(R::Candidates, x.app_candidate(app)));
    w.oint("opening_id", x.ref_live(R::Openings, 0.4));
    let status = if x.soft() || !offer_is_current(x.db, x.idx) {
        "Deprecated"
    } else {
        x.s.pick(&["Created", "Created", "Accepted", "Rejected"])
    };
    w.str("status", status);
    w.odate("starts_on", x.s.chance(0.8).then(|| x.day_near(20, 60)));
    w.odate("sent_on", x.s.chance(0.7).then(|| x.day_near(0, 3)));
    // Resolution dates set through the API are normalised to noon UTC.
    w.ots(
        "resolved_at",
        matches!(status, "Accepted" | "Rejected")
            .then(|| x.updated().div_euclid(86_400_000) * 86_400_000 + 43_200_000),
    );
    cf::write_map(w, "custom_fields", "offer", &mut x.c, &[], &[]);
}

pub fn openings(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", x.parent_id());
    let open = x.s.chance(0.6);
    w.ots("opened_at", (x.s.below(10) != 0).then(|| x.created()));
    w.ots("closed_at", (!open).then(|| x.updated()));
    w.int("sort_order", pos(x) as i64);
    w.ostr(
        "opening_id",
        x.s.chance(0.7)
            .then(|| format!("OPN-{}-{}", x.parent(), pos(x)))
            .as_deref(),
    );
    w.oint(
        "application_id",
        if open {
            None
        } else {
            x.ref_live(R::Applications, 0.3)
        },
    );
    w.oint(
        "close_reason_id",
        (!open).then(|| x.ref_id(R::CloseReasons)),
    );
    w.odate(
        "target_start_on",
        x.s.chance(0.5).then(|| x.day_near(30, 120)),
    );
    w.bool("open", open);
    cf::write_map(w, "custom_fields", "opening", &mut x.c, &[], &[]);
}

pub fn pay_input_ranges(x: &mut Ctx, w: &mut JsonOut) {
    w.int("pay_input_id", 4_300_000_000 + x.s.below(20) as i64);
    w.str("currency_type", x.s.pick(&["USD", "EUR", "GBP", "CAD"]));
    let min = (50 + x.c.below(150) as i64) * 100_000;
    w.int("min_cents", min);
    w.int("max_cents", min + (10 + x.c.below(60) as i64) * 100_000);
    w.int("job_post_id", x.parent_id());
}
