//! The custom field definitions of the simulated account (`DEFS`, one row of
//! `/v3/custom_fields` each, in index order) and the option vocabularies of the select types:
//! data only, below the model (which sizes `/v3/custom_fields` and `/v3/custom_field_options`
//! from them) and `cf`, which renders the rows' `custom_fields` maps.

use super::text;

pub struct CfDef {
    pub name: &'static str,
    pub key: &'static str,
    pub field_type: &'static str,
    pub value_type: &'static str,
    pub internal_type: Option<&'static str>,
    pub active: bool,
}

const fn cf(
    name: &'static str,
    key: &'static str,
    field_type: &'static str,
    value_type: &'static str,
) -> CfDef {
    CfDef {
        name,
        key,
        field_type,
        value_type,
        internal_type: None,
        active: true,
    }
}
const fn cfi(
    name: &'static str,
    key: &'static str,
    field_type: &'static str,
    value_type: &'static str,
    internal: &'static str,
) -> CfDef {
    CfDef {
        name,
        key,
        field_type,
        value_type,
        internal_type: Some(internal),
        active: true,
    }
}

pub const DEFS: &[CfDef] = &[
    cfi(
        "School Name",
        "school_name",
        "standard",
        "single_select",
        "school_name",
    ),
    cfi("Degree", "degree", "standard", "single_select", "degree"),
    cfi(
        "Discipline",
        "discipline",
        "standard",
        "single_select",
        "discipline",
    ),
    cf("Desired Salary", "desired_salary", "candidate", "currency"),
    cf("Languages", "languages", "candidate", "multi_select"),
    cf(
        "Years of Experience",
        "years_of_experience",
        "candidate",
        "number",
    ),
    cf(
        "Willing to Relocate",
        "willing_to_relocate",
        "candidate",
        "yes_no",
    ),
    cf("Bio", "bio", "candidate", "long_text"),
    cf("GPA", "gpa", "candidate", "number"),
    CfDef {
        active: false,
        ..cf(
            "Legacy Source Code",
            "legacy_source_code",
            "candidate",
            "short_text",
        )
    },
    cf(
        "Referral Notes",
        "referral_notes",
        "application",
        "long_text",
    ),
    cf(
        "Application Score",
        "application_score",
        "application",
        "number",
    ),
    cf("Visa Required", "visa_required", "application", "yes_no"),
    cf(
        "Start Availability",
        "start_availability",
        "application",
        "date",
    ),
    cf(
        "Salary Expectation",
        "salary_expectation",
        "application",
        "currency_range",
    ),
    cf("Cost Center", "cost_center", "job", "single_select"),
    cf("Headcount", "headcount", "job", "number"),
    cf("Budget", "budget", "job", "currency"),
    cf("Remote Eligible", "remote_eligible", "job", "yes_no"),
    cf("Hiring Plan URL", "hiring_plan_url", "job", "url"),
    cf("Executive Sponsor", "executive_sponsor", "job", "user"),
    cf("Base Salary", "base_salary", "offer", "currency"),
    cfi(
        "Employment Type",
        "employment_type",
        "offer",
        "single_select",
        "employment_type",
    ),
    cfi("Start Date", "start_date", "offer", "date", "start_date"),
    cf("Bonus Percent", "bonus_percent", "offer", "number"),
    cf("Equity Notes", "equity_notes", "offer", "short_text"),
    cf("Budgeted", "budgeted", "opening", "yes_no"),
    cf("Opening Level", "opening_level", "opening", "single_select"),
    cf("Location Tags", "location_tags", "opening", "multi_select"),
    cf("Team Name", "team_name", "user_attribute", "short_text"),
    cf(
        "Interviewer Level",
        "interviewer_level",
        "user_attribute",
        "number",
    ),
    cf("Skills", "skills", "user_attribute", "multi_select"),
    cf(
        "Rejection Comment",
        "rejection_comment",
        "rejection_question",
        "long_text",
    ),
    cf(
        "Would Rehire",
        "would_rehire",
        "rejection_question",
        "yes_no",
    ),
    cf(
        "Rehire Score",
        "rehire_score",
        "rejection_question",
        "number",
    ),
    cf(
        "How did you hear about us?",
        "referral_how_heard",
        "referral_question",
        "short_text",
    ),
    cf("Agency Fee", "agency_fee", "agency_question", "number"),
];

/// Number keys whose values are integers rather than floats.
pub(super) const INTEGER_KEYS: &[&str] = &["years_of_experience", "headcount", "interviewer_level"];

const LANGS: &[&str] = &[
    "English",
    "Español",
    "Français",
    "Deutsch",
    "日本語",
    "中文",
    "Português",
];
const COST_CENTERS: &[&str] = &[
    "CC-100 R&D",
    "CC-200 Sales",
    "CC-300 G&A",
    "CC-400 Marketing",
];
const EMPLOYMENT: &[&str] = &[
    "Full-time",
    "Part-time",
    "Contractor",
    "Intern",
    "Temporary",
];
const LEVELS: &[&str] = &["L1", "L2", "L3", "L4 Senior", "L5 Staff"];
const LOCATION_TAGS: &[&str] = &["EMEA", "AMER", "APAC", "Remote-friendly"];
const SKILLS: &[&str] = &[
    "Rust",
    "SQL",
    "Interviewing",
    "Sourcing",
    "Négociation",
    "データ分析",
];

/// The option vocabulary of a select-type definition (empty for other types).
pub fn options(def: usize) -> &'static [&'static str] {
    match DEFS.get(def).map(|d| d.key) {
        Some("school_name") => text::SCHOOLS,
        Some("degree") => text::DEGREES,
        Some("discipline") => text::DISCIPLINES,
        Some("languages") => LANGS,
        Some("cost_center") => COST_CENTERS,
        Some("employment_type") => EMPLOYMENT,
        Some("opening_level") => LEVELS,
        Some("location_tags") => LOCATION_TAGS,
        Some("skills") => SKILLS,
        _ => &[],
    }
}

/// `Size::PerFn` hook: options per custom field index.
pub fn option_count(def: u32) -> u32 {
    options(def as usize).len() as u32
}

/// Name of the `pos`-th option of definition `def` (options added later get generic names).
pub fn option_name(def: usize, pos: usize) -> String {
    match options(def).get(pos) {
        Some(n) => (*n).to_string(),
        None => format!("Option {pos}"),
    }
}
