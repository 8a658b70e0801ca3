//! The resource catalogue: every Harvest v3 list resource the simulator serves, how many rows
//! it has at a given scale, which resource owns it, which query filters it accepts and how
//! a `/_sim/mutate` delete treats it.
//!
//! Contract: this table is the single source of truth for routing (unknown resource → 404),
//! parameter validation (a parameter not in the table → 422) and data sizing.  It is built
//! from `shared/ref/harvest-v3.md` §9 and `harvest-v3-fields.txt`, never from `streams/`.

macro_rules! resources {
    ($($v:ident => $n:literal),* $(,)?) => {
        /// A v3 list resource.  The discriminant doubles as the id suffix (ids are unique per
        /// resource and, because of the suffix, across resources too).
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum R { $($v),* }
        impl R {
            pub const ALL: &'static [R] = &[$(R::$v),*];
            pub fn name(self) -> &'static str {
                match self { $(R::$v => $n),* }
            }
            pub fn from_name(s: &str) -> Option<R> {
                match s { $($n => Some(R::$v),)* _ => None }
            }
        }
    };
}

resources! {
    ApplicationStages => "application_stages",
    Applications => "applications",
    AppliedCandidateTags => "applied_candidate_tags",
    ApprovalFlows => "approval_flows",
    ApproverGroups => "approver_groups",
    Approvers => "approvers",
    Attachments => "attachments",
    BlockedSpamSources => "blocked_spam_sources",
    BulkRequests => "bulk_requests",
    CandidateAttributeTypes => "candidate_attribute_types",
    CandidateEducations => "candidate_educations",
    CandidateEmployments => "candidate_employments",
    CandidateTags => "candidate_tags",
    Candidates => "candidates",
    CloseReasons => "close_reasons",
    CustomFieldDepartments => "custom_field_departments",
    CustomFieldOffices => "custom_field_offices",
    CustomFieldOptions => "custom_field_options",
    CustomFields => "custom_fields",
    DefaultInterviewers => "default_interviewers",
    DemographicAnswerOptions => "demographic_answer_options",
    DemographicAnswers => "demographic_answers",
    DemographicQuestionSets => "demographic_question_sets",
    DemographicQuestions => "demographic_questions",
    Departments => "departments",
    Eeoc => "eeoc",
    EmailTemplates => "email_templates",
    FocusCandidateAttributes => "focus_candidate_attributes",
    FutureJobPermissions => "future_job_permissions",
    InterviewKits => "interview_kits",
    InterviewerTags => "interviewer_tags",
    Interviewers => "interviewers",
    Interviews => "interviews",
    JobBoardCustomLocations => "job_board_custom_locations",
    JobCandidateAttributes => "job_candidate_attributes",
    JobHiringManagers => "job_hiring_managers",
    JobInterviewStages => "job_interview_stages",
    JobInterviews => "job_interviews",
    JobNotes => "job_notes",
    JobOwners => "job_owners",
    JobPostLocations => "job_post_locations",
    JobPosts => "job_posts",
    Jobs => "jobs",
    Notes => "notes",
    Offers => "offers",
    Offices => "offices",
    Openings => "openings",
    PayInputRanges => "pay_input_ranges",
    ProspectDetails => "prospect_details",
    ProspectPoolStages => "prospect_pool_stages",
    ProspectPools => "prospect_pools",
    Referrers => "referrers",
    RejectionDetails => "rejection_details",
    RejectionReasons => "rejection_reasons",
    ScorecardCandidateAttributes => "scorecard_candidate_attributes",
    ScorecardQuestionAnswerOptions => "scorecard_question_answer_options",
    ScorecardQuestionAnswers => "scorecard_question_answers",
    ScorecardQuestionCandidateAttributes => "scorecard_question_candidate_attributes",
    ScorecardQuestionOptions => "scorecard_question_options",
    ScorecardQuestions => "scorecard_questions",
    Scorecards => "scorecards",
    Sources => "sources",
    TrackingLinks => "tracking_links",
    UserEmails => "user_emails",
    UserJobPermissions => "user_job_permissions",
    UserRoles => "user_roles",
    Users => "users",
}

/// How many rows a resource has initially.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    /// Independent of scale (small dictionaries).
    Fixed(u32),
    /// `max(min, round(n × scale))`.
    Scaled(u32, u32),
    /// Children of `parent`: each parent row gets `k` children with probability
    /// `weights[k] / sum(weights)` (so the total follows the parent's scale).
    Per(R, &'static [u8]),
    /// Children of `parent` with a per-parent count chosen by a function of the parent index.
    PerFn(R, fn(u32) -> u32),
}

/// What `/_sim/mutate?deletes=` does to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Del {
    /// Hard delete (cascading to owned children); the id shows up in `/_sim/deleted`.
    Hard,
    /// Soft delete: the row stays, its `active` (or `deactivated`) flag flips.
    Soft,
    /// `deletes=` never picks these rows (other rows hold non-nullable references to them);
    /// they still die with a hard-deleted owner (a job's stages, interviews and kits, as in
    /// Greenhouse), and references to them then render null.
    Never,
}

pub struct ResDef {
    pub size: Size,
    /// Name of the field holding the owning parent's id (empty for roots).
    pub parent_field: &'static str,
    /// Resource-specific filters (besides `ids`, `created_at`, `updated_at`, `per_page`,
    /// `cursor`, `fields`), see `query::FilterSpec::parse` for the grammar.
    pub filters: &'static str,
    /// Whether `created_at`/`updated_at` filters exist (false only for two demographic
    /// resources, whose timestamps may also be null).
    pub dates: bool,
    pub delete: Del,
}

const fn d(size: Size, parent_field: &'static str, filters: &'static str, delete: Del) -> ResDef {
    ResDef {
        size,
        parent_field,
        filters,
        dates: true,
        delete,
    }
}

use Del::*;
use Size::*;

pub fn def(r: R) -> ResDef {
    match r {
        R::ApplicationStages => d(
            Per(R::Applications, &[0, 1, 1, 1, 1]),
            "application_id",
            "application_ids job_interview_stage_ids current:b entered_at:d exited_at:d",
            Never,
        ),
        R::Applications => d(
            Per(R::Candidates, &[0, 1, 1]),
            "candidate_id",
            "candidate_ids job_ids prospective_job_ids job_post_ids source_ids referrer_ids stage_ids recruiter_ids coordinator_ids status=active|rejected|hired|converted stage_name:s custom_field_option_id last_activity_at:d rejected_at:d prospect:b",
            Hard,
        ),
        R::AppliedCandidateTags => d(
            Per(R::Candidates, &[2, 2, 1]),
            "candidate_id",
            "candidate_ids candidate_tag_ids",
            Hard,
        ),
        R::ApprovalFlows => d(
            Per(R::Jobs, &[1, 1, 1]),
            "job_id",
            "job_ids offer_ids requested_by_ids approval_type=open_job|offer_job|offer_candidate approval_status=pending|rejected|approved",
            Hard,
        ),
        R::ApproverGroups => d(
            Per(R::ApprovalFlows, &[0, 2, 1]),
            "approval_flow_id",
            "approval_flow_ids resolved_at:d",
            Hard,
        ),
        R::Approvers => d(
            Per(R::ApproverGroups, &[0, 1, 1, 1]),
            "approver_group_id",
            "approver_group_ids user_ids resolved_by_ids status=waiting|due|approved|rejected resolved_at:d request_sent_at:d",
            Hard,
        ),
        R::Attachments => d(
            Per(R::Applications, &[0, 2, 1]),
            "application_id",
            "application_ids candidate_ids type=resume|cover_letter|take_home_test|offer_packet|offer_letter|signed_offer_letter|other|form_attachment|midfunnel_agreement|automated_agreement",
            Hard,
        ),
        R::BlockedSpamSources => d(Fixed(10), "", "source_type:s value:s", Hard),
        R::BulkRequests => d(
            Scaled(20, 3),
            "",
            "requested_by_user_ids status:s completed_at:d",
            Hard,
        ),
        R::CandidateAttributeTypes => d(
            Per(R::Jobs, &[1, 2, 1]),
            "job_id",
            "job_ids active:b",
            Never,
        ),
        R::CandidateEducations => d(
            Per(R::Candidates, &[1, 2, 1]),
            "candidate_id",
            "candidate_ids school_name_custom_field_option_ids degree_custom_field_option_ids discipline_custom_field_option_ids latest:b",
            Hard,
        ),
        R::CandidateEmployments => d(
            Per(R::Candidates, &[1, 2, 1]),
            "candidate_id",
            "candidate_ids latest:b",
            Hard,
        ),
        R::CandidateTags => d(Fixed(30), "", "name:s", Never),
        R::Candidates => d(
            Scaled(2000, 10),
            "",
            "last_activity_at:d custom_field_option_id private:b email tag",
            Hard,
        ),
        R::CloseReasons => d(Fixed(8), "", "", Never),
        R::CustomFieldDepartments => d(
            Per(R::CustomFields, &[2, 1, 1]),
            "custom_field_id",
            "custom_field_ids department_ids",
            Hard,
        ),
        R::CustomFieldOffices => d(
            Per(R::CustomFields, &[2, 1, 1]),
            "custom_field_id",
            "custom_field_ids office_ids",
            Hard,
        ),
        R::CustomFieldOptions => d(
            PerFn(R::CustomFields, super::cf_defs::option_count),
            "custom_field_id",
            "custom_field_ids custom_field_key active:b",
            Soft,
        ),
        R::CustomFields => d(
            Fixed(super::cf_defs::DEFS.len() as u32),
            "",
            "field_type=job|opening|standard|offer|compensation_frequency|candidate|referral_question|application|rejection_question|form|agency_question|user_attribute active:b name:s name_key:s",
            Soft,
        ),
        R::DefaultInterviewers => d(
            Per(R::InterviewKits, &[1, 1, 1]),
            "interview_kit_id",
            "interview_kit_ids user_ids",
            Hard,
        ),
        R::DemographicAnswerOptions => ResDef {
            dates: false,
            ..d(
                Per(R::DemographicQuestions, &[0, 0, 0, 1, 1, 1, 1]),
                "demographic_question_id",
                "demographic_question_ids active:b free_form:b",
                Soft,
            )
        },
        R::DemographicAnswers => d(
            Per(R::Applications, &[2, 1, 1]),
            "application_id",
            "application_ids demographic_question_ids demographic_answer_option_ids",
            Hard,
        ),
        R::DemographicQuestionSets => d(Fixed(3), "", "active:b", Soft),
        R::DemographicQuestions => ResDef {
            dates: false,
            ..d(
                Per(R::DemographicQuestionSets, &[0, 0, 0, 1, 1, 1]),
                "demographic_question_set_id",
                "demographic_question_set_ids active:b required:b",
                Soft,
            )
        },
        R::Departments => d(Fixed(12), "", "parent_id:id external_id:s", Hard),
        R::Eeoc => d(
            Per(R::Applications, &[1, 1]),
            "application_id",
            "application_ids candidate_ids submitted_at:d",
            Hard,
        ),
        R::EmailTemplates => d(Fixed(25), "", "user_ids email_type:s", Hard),
        R::FocusCandidateAttributes => d(
            Per(R::InterviewKits, &[1, 1, 1]),
            "interview_kit_id",
            "interview_kit_ids job_candidate_attribute_ids",
            Never,
        ),
        R::FutureJobPermissions => d(
            Per(R::Users, &[2, 1]),
            "user_id",
            "user_ids role_ids department_ids office_ids",
            Hard,
        ),
        R::InterviewKits => d(
            Per(R::JobInterviews, &[0, 1]),
            "job_interview_id",
            "job_interview_ids job_ids",
            Never,
        ),
        R::InterviewerTags => d(Fixed(10), "", "name:s", Never),
        R::Interviewers => d(
            Per(R::Interviews, &[0, 2, 1]),
            "interview_id",
            "interview_ids user_ids scorecard_ids response_status=needs_action|accepted|declined|tentative",
            Hard,
        ),
        R::Interviews => d(
            Per(R::Applications, &[2, 2, 1]),
            "application_id",
            "application_ids job_ids job_interview_ids organizer_ids starts_at:d ends_at:d all_day_start_on:d all_day_end_on:d external_event_id:s status=to_be_scheduled|scheduled|awaiting_feedback|complete|skipped|collect_feedback|to_be_sent|sent|received",
            Hard,
        ),
        R::JobBoardCustomLocations => d(Fixed(15), "", "greenhouse_job_board_ids active:b", Soft),
        R::JobCandidateAttributes => d(
            Per(R::Jobs, &[0, 0, 1, 1, 1]),
            "job_id",
            "job_ids candidate_attribute_type_ids active:b",
            Never,
        ),
        R::JobHiringManagers => d(Per(R::Jobs, &[0, 2, 1]), "job_id", "job_ids user_ids", Hard),
        R::JobInterviewStages => d(
            Per(R::Jobs, &[0, 0, 0, 0, 1, 1, 1]),
            "job_id",
            "job_ids active:b",
            Soft,
        ),
        R::JobInterviews => d(
            Per(R::JobInterviewStages, &[0, 2, 1]),
            "job_interview_stage_id",
            "job_interview_stage_ids job_ids active:b",
            Never,
        ),
        R::JobNotes => d(
            Per(R::Jobs, &[1, 1, 1, 1]),
            "job_id",
            "job_ids user_ids visibility=admin_only_visible|privately_visible",
            Hard,
        ),
        R::JobOwners => d(
            Per(R::Jobs, &[0, 1, 1, 1]),
            "job_id",
            "job_ids user_ids type=sourcer|recruiter|coordinator responsible:b",
            Hard,
        ),
        R::JobPostLocations => d(
            Per(R::JobPosts, &[0, 2, 1]),
            "job_post_id",
            "job_post_ids office_ids custom_location_ids type=free_text|office|custom_list plain_text_location:s",
            Hard,
        ),
        R::JobPosts => d(
            Per(R::Jobs, &[0, 2, 1]),
            "job_id",
            "job_ids job_board_ids demographic_question_set_ids active:b featured:b live:b internal:b first_published_at:d",
            Soft,
        ),
        R::Jobs => d(
            Scaled(120, 6),
            "",
            "opened_at:d closed_at:d requisition_id:s department_id:id office_id:id confidential:b is_template:b status=open|draft|closed custom_field_option_id",
            Hard,
        ),
        R::Notes => d(
            Per(R::Candidates, &[0, 1, 1, 1, 1, 1]),
            "candidate_id",
            "candidate_ids application_ids user_ids type=NOTE|ACTIVITY|INTERVIEW|EMAIL|FOLLOW_UP|TAKE_HOME_TEST|LINKEDIN_NOTE|LINKEDIN_INMAIL|AVAILABILITY_REQUEST|MIGRATION_ERROR|TOUCHPOINT|FORM|FEEDBACK visibility=admin_only_visible|privately_visible|publicly_visible",
            Hard,
        ),
        R::Offers => d(
            Per(R::Applications, &[8, 2, 1]),
            "application_id",
            "application_ids job_ids candidate_ids opening_ids current_only status=Created|Accepted|Rejected|Deprecated resolved_at:d sent_on:d starts_on:d custom_field_option_id",
            Hard,
        ),
        R::Offices => d(Fixed(10), "", "parent_id:id external_id:s", Hard),
        R::Openings => d(
            Per(R::Jobs, &[0, 2, 1]),
            "job_id",
            "job_ids application_ids close_reason_ids opened_at:d closed_at:d open:b opening_id:s custom_field_option_id",
            Hard,
        ),
        R::PayInputRanges => d(
            Per(R::JobPosts, &[1, 1]),
            "job_post_id",
            "job_post_ids pay_input_ids currency_type:s",
            Hard,
        ),
        R::ProspectDetails => d(
            Per(R::Applications, &[4, 1]),
            "application_id",
            "application_ids pool_ids pool_stage_ids prospect_owner_ids department_ids office_ids",
            Never,
        ),
        R::ProspectPoolStages => d(
            Per(R::ProspectPools, &[0, 0, 0, 1, 1, 1]),
            "prospect_pool_id",
            "prospect_pool_ids",
            Never,
        ),
        R::ProspectPools => d(Fixed(6), "", "active:b", Soft),
        R::Referrers => d(Scaled(80, 5), "", "user_ids name:s", Never),
        R::RejectionDetails => d(
            Per(R::Applications, &[3, 1]),
            "application_id",
            "application_ids rejection_reason_ids rejected_by_ids rejected_at:d custom_field_option_id",
            Never,
        ),
        R::RejectionReasons => d(Fixed(16), "", "include_defaults", Never),
        R::ScorecardCandidateAttributes => d(
            Per(R::Scorecards, &[0, 1, 1, 1]),
            "scorecard_id",
            "scorecard_ids job_candidate_attribute_ids candidate_attribute_rating=definitely_not|no|yes|strong_yes|mixed|no_decision",
            Hard,
        ),
        R::ScorecardQuestionAnswerOptions => d(
            Per(R::ScorecardQuestionAnswers, &[2, 1]),
            "scorecard_question_answer_id",
            "scorecard_question_answer_ids scorecard_question_option_ids",
            Hard,
        ),
        R::ScorecardQuestionAnswers => d(
            Per(R::Scorecards, &[0, 1, 1, 1]),
            "scorecard_id",
            "scorecard_ids scorecard_question_ids",
            Hard,
        ),
        R::ScorecardQuestionCandidateAttributes => d(
            Per(R::ScorecardQuestions, &[2, 1]),
            "scorecard_question_id",
            "scorecard_question_ids focus_candidate_attribute_ids",
            Hard,
        ),
        R::ScorecardQuestionOptions => d(
            Per(R::ScorecardQuestions, &[2, 0, 1, 1]),
            "scorecard_question_id",
            "scorecard_question_ids active:b",
            Never,
        ),
        R::ScorecardQuestions => d(
            Per(R::InterviewKits, &[0, 0, 1, 1, 1, 1]),
            "interview_kit_id",
            "interview_kit_ids active:b required:b answer_type=text|yes_no|single_select|multi_select|instruction",
            Never,
        ),
        R::Scorecards => d(
            Per(R::Applications, &[3, 2, 1, 1]),
            "application_id",
            "application_ids interviewer_ids submitter_ids interview_kit_ids interviewed_at:d submitted_at:d status=draft|complete candidate_rating=strong_no|no|yes|strong_yes|no_decision",
            Hard,
        ),
        R::Sources => d(Fixed(25), "", "name:s", Never),
        R::TrackingLinks => d(
            Scaled(60, 5),
            "",
            "job_ids source_ids referrer_ids job_board_ids job_post_ids related_post_ids token:s",
            Hard,
        ),
        R::UserEmails => d(
            Per(R::Users, &[0, 2, 1]),
            "user_id",
            "user_ids email:s verified:b",
            Hard,
        ),
        R::UserJobPermissions => d(
            Per(R::Jobs, &[1, 1, 1, 1]),
            "job_id",
            "user_ids job_ids role_ids automated:b",
            Hard,
        ),
        R::UserRoles => d(
            Fixed(8),
            "",
            "role_type=deprecated_interviewer|job_admin|site_admin name:s",
            Never,
        ),
        R::Users => d(
            Scaled(150, 12),
            "",
            "agency_ids office_ids department_ids linked_candidate_ids interviewer_tag_ids employee_ids custom_field_option_id deactivated:b primary_email:si external_office_id external_department_id show_service_accounts site_admin:b",
            Soft,
        ),
    }
}

/// Parent resource of `r`, if it has an owning parent.
pub fn parent(r: R) -> Option<R> {
    match def(r).size {
        Size::Per(p, _) | Size::PerFn(p, _) => Some(p),
        _ => None,
    }
}

/// Direct children (owned resources) of `r`.
pub fn children(r: R) -> Vec<R> {
    R::ALL
        .iter()
        .copied()
        .filter(|c| parent(*c) == Some(r))
        .collect()
}

/// Ids are `BASE + index × STRIDE + resource discriminant`: above 2^31, unique, increasing
/// with the row index (so "id descending" is "index descending"), and invertible.
pub const ID_BASE: i64 = 4_000_000_000;
pub const ID_STRIDE: i64 = 128;

/// Ids of the account's job boards (boards are not a list resource in v3).
pub const JOB_BOARDS: &[i64] = &[4_100_000_011, 4_100_000_012, 4_100_000_013];

pub fn id_of(r: R, idx: u32) -> i64 {
    ID_BASE + idx as i64 * ID_STRIDE + r as i64
}

/// Row index of an id of resource `r`, if the id could belong to `r`.
pub fn idx_of(r: R, id: i64) -> Option<u32> {
    let off = id.checked_sub(ID_BASE)?;
    if off < 0 || off % ID_STRIDE != r as i64 {
        return None;
    }
    u32::try_from(off / ID_STRIDE).ok()
}
