//! Generators for scheduled interviews and their panels, interview kits, scorecard questions
//! and options, and scorecards with their answers and attribute ratings.
//!
//! Contract: see `rows`.  An interviewer's `scorecard_id` names a live scorecard of the same
//! application (or null), so deleting a scorecard never leaves a dangling reference.

use super::data::Ctx;
use super::gen_jobs::{app_job_or_any, kit_job, parent_of, pos};
use super::json::JsonOut;
use super::model::{R, id_of};
use super::text;

pub fn default_interviewers(x: &mut Ctx, w: &mut JsonOut) {
    w.int("user_id", x.ref_id(R::Users));
    w.int("interview_kit_id", x.parent_id());
}

pub fn focus_candidate_attributes(x: &mut Ctx, w: &mut JsonOut) {
    w.int("interview_kit_id", x.parent_id());
    let jcas =
        x.db.children_initial(R::JobCandidateAttributes, kit_job(x.db, x.parent()));
    let a = if jcas.is_empty() {
        x.pick(R::JobCandidateAttributes)
    } else {
        jcas[x.s.below(jcas.len() as u64) as usize]
    };
    w.oint(
        "job_candidate_attribute_id",
        x.db.live_id(R::JobCandidateAttributes, a),
    );
}

pub fn interview_kits(x: &mut Ctx, w: &mut JsonOut) {
    w.int("job_id", id_of(R::Jobs, kit_job(x.db, x.idx)));
    w.int("job_interview_id", x.parent_id());
    let long = x.c.below(8) == 0;
    w.ostr(
        "exercises",
        (x.c.below(5) != 0)
            .then(|| text::html(&mut x.c, long))
            .as_deref(),
    );
    w.obool(
        "anonymize_candidate",
        (x.s.below(10) != 0).then(|| x.s.chance(0.1)),
    );
    w.obool(
        "anonymize_resumes",
        (x.s.below(4) != 0).then(|| x.s.chance(0.1)),
    );
}

pub fn interviewers(x: &mut Ctx, w: &mut JsonOut) {
    let interview = x.parent();
    w.int("interview_id", x.parent_id());
    let user = x.s.chance(0.9).then(|| x.ref_id(R::Users));
    w.oint("user_id", user);
    let app = parent_of(x.db, R::Interviews, interview);
    let cards = x.db.children_initial(R::Scorecards, app);
    let card = (!cards.is_empty() && x.s.chance(0.6))
        .then(|| cards[x.s.below(cards.len() as u64) as usize]);
    w.oint("scorecard_id", card.map(|c| id_of(R::Scorecards, c)));
    w.ostr(
        "email",
        user.map(|u| format!("interviewer{}@example.com", u % 100_000))
            .as_deref(),
    );
    w.ostr(
        "response_status",
        (x.s.below(5) != 0).then(|| {
            x.c.pick(&["needs_action", "accepted", "declined", "tentative"])
        }),
    );
}

pub fn interviews(x: &mut Ctx, w: &mut JsonOut) {
    let app = x.parent();
    let job = app_job_or_any(x, app);
    w.oint("job_id", x.db.live_id(R::Jobs, job));
    w.int("application_id", x.parent_id());
    let jis = x.db.children_initial(R::JobInterviewStages, job);
    let ji = jis
        .first()
        .and_then(|s| x.db.children_initial(R::JobInterviews, *s).first().copied())
        .unwrap_or_else(|| x.pick(R::JobInterviews));
    w.oint("job_interview_id", x.db.live_id(R::JobInterviews, ji));
    let all_day = x.s.below(15) == 0;
    let start = x.between();
    w.ots("starts_at", (!all_day).then_some(start));
    w.ots(
        "ends_at",
        (!all_day).then_some(start + 1_800_000 * (1 + x.s.below(4) as i64)),
    );
    w.ostr(
        "location",
        x.c.chance(0.5).then_some(x.c.pick(text::CITIES)),
    );
    w.str(
        "status",
        x.c.pick(&[
            "to_be_scheduled",
            "scheduled",
            "awaiting_feedback",
            "complete",
            "skipped",
            "collect_feedback",
            "to_be_sent",
            "sent",
            "received",
        ]),
    );
    w.oint("organizer_id", x.s.chance(0.9).then(|| x.ref_id(R::Users)));
    w.ots("scheduled_at", (x.s.below(10) != 0).then(|| x.created()));
    let d = start.div_euclid(86_400_000);
    w.odate("all_day_start_on", all_day.then_some(d));
    w.odate("all_day_end_on", all_day.then_some(d + 1));
    w.ostr(
        "external_event_id",
        x.s.chance(0.7)
            .then(|| format!("evt_{:x}", x.s.next_u64()))
            .as_deref(),
    );
    w.ostr(
        "video_conferencing_url",
        x.c.chance(0.5)
            .then(|| format!("https://meet.example.com/{}", x.idx))
            .as_deref(),
    );
    w.ots(
        "availability_received_at",
        x.s.chance(0.3).then(|| x.created()),
    );
}

pub fn scorecard_candidate_attributes(x: &mut Ctx, w: &mut JsonOut) {
    w.int("scorecard_id", x.parent_id());
    w.str(
        "candidate_attribute_rating",
        x.c.pick(&[
            "definitely_not",
            "no",
            "yes",
            "strong_yes",
            "mixed",
            "no_decision",
        ]),
    );
    w.oint(
        "job_candidate_attribute_id",
        x.ref_opt(R::JobCandidateAttributes),
    );
    w.ostr(
        "note",
        x.c.chance(0.4)
            .then(|| text::sentence(&mut x.c, 7))
            .as_deref(),
    );
}

pub fn scorecard_question_answer_options(x: &mut Ctx, w: &mut JsonOut) {
    w.oint(
        "scorecard_question_option_id",
        x.ref_opt(R::ScorecardQuestionOptions),
    );
    w.int("scorecard_question_answer_id", x.parent_id());
}

pub fn scorecard_question_answers(x: &mut Ctx, w: &mut JsonOut) {
    w.int("scorecard_id", x.parent_id());
    w.oint("scorecard_question_id", x.ref_opt(R::ScorecardQuestions));
    let ans = x.c.chance(0.85).then(|| text::sentence(&mut x.c, 10));
    w.ostr("answer", ans.as_deref());
    w.ostr(
        "answer_with_tags",
        ans.map(|a| format!("{a} #strong")).as_deref(),
    );
    w.obool("boolean_value", x.s.chance(0.3).then(|| x.c.chance(0.5)));
}

pub fn scorecard_question_candidate_attributes(x: &mut Ctx, w: &mut JsonOut) {
    w.int("scorecard_question_id", x.parent_id());
    w.oint(
        "focus_candidate_attribute_id",
        x.ref_opt(R::FocusCandidateAttributes),
    );
}

pub fn scorecard_question_options(x: &mut Ctx, w: &mut JsonOut) {
    w.int("scorecard_question_id", x.parent_id());
    w.str(
        "name",
        x.c.pick(&["Strong yes", "Yes", "No", "Definitely not", "Peut-être 🤔"]),
    );
    w.int("sort_order", pos(x) as i64);
    w.bool("active", x.s.below(10) != 0);
}

pub fn scorecard_questions(x: &mut Ctx, w: &mut JsonOut) {
    w.int("interview_kit_id", x.parent_id());
    let long = x.c.below(10) == 0;
    w.str("question", &text::html(&mut x.c, long));
    w.int("sort_order", pos(x) as i64);
    w.bool("active", x.s.below(10) != 0);
    w.str(
        "answer_type",
        x.s.pick(&[
            "text",
            "yes_no",
            "single_select",
            "multi_select",
            "instruction",
        ]),
    );
    w.bool("required", x.s.chance(0.4));
}

pub fn scorecards(x: &mut Ctx, w: &mut JsonOut) {
    w.oint("interview_kit_id", x.ref_opt(R::InterviewKits));
    let interviewer = x.ref_id(R::Users);
    w.int("interviewer_id", interviewer);
    w.ots("interviewed_at", x.s.chance(0.9).then(|| x.created()));
    let draft = x.s.below(6) == 0;
    let notes = x.c.chance(0.7).then(|| text::sentence(&mut x.c, 15));
    w.ostr("notes", notes.as_deref());
    w.ostr(
        "notes_with_tags",
        notes
            .as_ref()
            .map(|n| format!("{n} @[Hiring Manager]"))
            .as_deref(),
    );
    w.int(
        "submitter_id",
        if x.s.chance(0.9) {
            interviewer
        } else {
            x.ref_id(R::Users)
        },
    );
    w.ostr(
        "candidate_rating",
        (!draft).then(|| {
            x.c.pick(&["strong_no", "no", "yes", "strong_yes", "no_decision"])
        }),
    );
    let private = x.c.chance(0.3).then(|| text::sentence(&mut x.c, 8));
    w.ostr("private_notes", private.as_deref());
    w.ostr("private_notes_with_tags", private.as_deref());
    w.str("status", if draft { "draft" } else { "complete" });
    let public = x.c.chance(0.3).then(|| text::sentence(&mut x.c, 8));
    w.ostr("public_notes", public.as_deref());
    w.ostr("public_notes_with_tags", public.as_deref());
    w.int("application_id", x.parent_id());
    w.ots("submitted_at", (!draft).then(|| x.between()));
}
