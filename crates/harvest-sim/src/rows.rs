//! Row generators: one function per resource writing that resource's fields (every field of
//! `harvest-v3-fields.txt`, nulls written explicitly) after `id/created_at/updated_at`.
//!
//! Contract: a generator reads only its `Ctx` (structural rng `s` for keys, flags and enum
//! states; cosmetic rng `c` for text that updates change) and the compact state in `Db`, so
//! the same inputs always produce the same bytes.  Split by domain into `gen_people`
//! (candidates, applications and their children, users), `gen_jobs` (jobs, posts, stages,
//! offers, approvals), `gen_interviews` (interviews, kits, scorecards) and `gen_misc` (dictionaries and the rest).

use super::data::{Ctx, Db};
use super::gen_interviews as i;
use super::gen_jobs as j;
use super::gen_misc as m;
use super::gen_people as p;
use super::json::JsonOut;
use super::model::{self, R};

/// Writes the fields of `x`'s row after `id/created_at/updated_at`, by its resource's generator.
fn fields(x: &mut Ctx, w: &mut JsonOut) {
    let f: fn(&mut Ctx, &mut JsonOut) = match x.r {
        R::ApplicationStages => p::application_stages,
        R::Applications => p::applications,
        R::AppliedCandidateTags => p::applied_candidate_tags,
        R::ApprovalFlows => j::approval_flows,
        R::ApproverGroups => j::approver_groups,
        R::Approvers => j::approvers,
        R::Attachments => p::attachments,
        R::BlockedSpamSources => m::blocked_spam_sources,
        R::BulkRequests => m::bulk_requests,
        R::CandidateAttributeTypes => j::candidate_attribute_types,
        R::CandidateEducations => p::candidate_educations,
        R::CandidateEmployments => p::candidate_employments,
        R::CandidateTags => m::candidate_tags,
        R::Candidates => p::candidates,
        R::CloseReasons => m::close_reasons,
        R::CustomFieldDepartments => m::custom_field_departments,
        R::CustomFieldOffices => m::custom_field_offices,
        R::CustomFieldOptions => m::custom_field_options,
        R::CustomFields => m::custom_fields,
        R::DefaultInterviewers => i::default_interviewers,
        R::DemographicAnswerOptions => m::demographic_answer_options,
        R::DemographicAnswers => p::demographic_answers,
        R::DemographicQuestionSets => m::demographic_question_sets,
        R::DemographicQuestions => m::demographic_questions,
        R::Departments => m::departments,
        R::Eeoc => p::eeoc,
        R::EmailTemplates => m::email_templates,
        R::FocusCandidateAttributes => i::focus_candidate_attributes,
        R::FutureJobPermissions => p::future_job_permissions,
        R::InterviewKits => i::interview_kits,
        R::InterviewerTags => m::interviewer_tags,
        R::Interviewers => i::interviewers,
        R::Interviews => i::interviews,
        R::JobBoardCustomLocations => m::job_board_custom_locations,
        R::JobCandidateAttributes => j::job_candidate_attributes,
        R::JobHiringManagers => j::job_hiring_managers,
        R::JobInterviewStages => j::job_interview_stages,
        R::JobInterviews => j::job_interviews,
        R::JobNotes => j::job_notes,
        R::JobOwners => j::job_owners,
        R::JobPostLocations => j::job_post_locations,
        R::JobPosts => j::job_posts,
        R::Jobs => j::jobs,
        R::Notes => p::notes,
        R::Offers => j::offers,
        R::Offices => m::offices,
        R::Openings => j::openings,
        R::PayInputRanges => j::pay_input_ranges,
        R::ProspectDetails => p::prospect_details,
        R::ProspectPoolStages => m::prospect_pool_stages,
        R::ProspectPools => m::prospect_pools,
        R::Referrers => m::referrers,
        R::RejectionDetails => p::rejection_details,
        R::RejectionReasons => m::rejection_reasons,
        R::ScorecardCandidateAttributes => i::scorecard_candidate_attributes,
        R::ScorecardQuestionAnswerOptions => i::scorecard_question_answer_options,
        R::ScorecardQuestionAnswers => i::scorecard_question_answers,
        R::ScorecardQuestionCandidateAttributes => i::scorecard_question_candidate_attributes,
        R::ScorecardQuestionOptions => i::scorecard_question_options,
        R::ScorecardQuestions => i::scorecard_questions,
        R::Scorecards => i::scorecards,
        R::Sources => m::sources,
        R::TrackingLinks => m::tracking_links,
        R::UserEmails => p::user_emails,
        R::UserJobPermissions => p::user_job_permissions,
        R::UserRoles => m::user_roles,
        R::Users => p::users,
    };
    f(x, w);
}

// The rendering entry points live here, not in `data`, so that the state does not import the
// generators that read it.
impl Db {
    /// Renders one row as a JSON object into `w`.
    pub fn render(&self, r: R, idx: u32, w: &mut JsonOut) {
        let mut x = Ctx::new(self, r, idx);
        w.begin_obj();
        w.int("id", model::id_of(r, idx));
        if x.null_timestamps() {
            w.null("created_at");
            w.null("updated_at");
        } else {
            w.ts("created_at", x.created());
            w.ts("updated_at", x.updated());
        }
        fields(&mut x, w);
        w.end_obj();
    }

    /// Renders one row to a standalone string (tests, filters, truth).
    pub fn row_json(&self, r: R, idx: u32) -> String {
        let mut s = String::with_capacity(512);
        let mut w = JsonOut::new(&mut s, None);
        self.render(r, idx, &mut w);
        s
    }
}
