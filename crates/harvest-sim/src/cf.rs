//! Custom field definitions and option vocabularies.
//!
//! Contract: the custom fields of the simulated account are a fixed table (`DEFS`, one row of
//! `/v3/custom_fields` each, in index order).  Rows of candidates, applications, jobs, offers,
//! openings, users and rejection details carry a `custom_fields` map keyed by `name_key`
//! with `{name, type, value}` for every definition of their `field_type`, covering every JSON
//! value kind (string, float, integer, boolean, array, object, null).  Select-type
//! definitions own `/v3/custom_field_options` rows whose names come from `option_name`, so a
//! row's select value always names an existing option.

use super::data::Db;
use super::json::{JsonOut, Millis, days_from_civil};
use super::model::R;
use super::rng::Rng;
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
const INTEGER_KEYS: &[&str] = &["years_of_experience", "headcount", "interviewer_level"];

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

/// Custom fields a mutation added (rows of `/v3/custom_fields` past `DEFS`: candidate
/// short-text fields named `added_field_<idx>`) that a row last updated at `updated` carries:
/// the live ones created before that update (a row not touched since keeps its JSON).
pub fn added(db: &Db, field_type: &str, updated: Millis) -> Vec<u32> {
    if field_type != "candidate" {
        return Vec::new();
    }
    let t = db.t(R::CustomFields);
    (DEFS.len() as u32..t.len())
        .filter(|&i| t.alive[i as usize] && t.created[i as usize] <= updated)
        .collect()
}

/// Writes the `custom_fields` map (or null, occasionally) for a row owned by `field_type`,
/// with the mutation-added fields `added` (see [`added`]) after the fixed ones.
pub fn write_map(
    w: &mut JsonOut,
    key: &str,
    field_type: &str,
    r: &mut Rng,
    user_ids: &[i64],
    added: &[u32],
) {
    if r.below(30) == 0 {
        w.null(key);
        return;
    }
    w.obj(key, |w| {
        for (i, d) in DEFS.iter().enumerate() {
            if d.field_type != field_type {
                continue;
            }
            w.obj(d.key, |w| {
                w.str("name", d.name);
                w.str("type", d.value_type);
                if r.below(10) == 0 {
                    w.null("value");
                    return;
                }
                write_value(w, i, d, r, user_ids);
            });
        }
        for &i in added {
            w.obj(&format!("added_field_{i}"), |w| {
                w.str("name", &format!("Added Field {i}"));
                w.str("type", "short_text");
                w.str("value", &text::sentence(r, 3));
            });
        }
    });
}

/// Every custom field of `field_type` with a null value (an anonymized candidate's map).
pub fn write_map_blank(w: &mut JsonOut, key: &str, field_type: &str) {
    w.obj(key, |w| {
        for d in DEFS.iter().filter(|d| d.field_type == field_type) {
            w.obj(d.key, |w| {
                w.str("name", d.name);
                w.str("type", d.value_type);
                w.null("value");
            });
        }
    });
}

fn write_value(w: &mut JsonOut, i: usize, d: &CfDef, r: &mut Rng, user_ids: &[i64]) {
    let opts = options(i);
    match d.value_type {
        "yes_no" => w.bool("value", r.chance(0.5)),
        "number" if INTEGER_KEYS.contains(&d.key) => w.int("value", r.range(0, 40)),
        "number" => w.float("value", r.range(0, 10_000) as f64 / 100.0),
        "single_select" => w.str("value", opts[r.below(opts.len() as u64) as usize]),
        "multi_select" => {
            let a = r.below(opts.len() as u64) as usize;
            let b = r.below(opts.len() as u64) as usize;
            let mut picked = vec![opts[a]];
            if b != a {
                picked.push(opts[b]);
            }
            w.strs("value", &picked);
        }
        "currency" => w.obj("value", |w| {
            w.str("unit", r.pick(&["USD", "EUR", "GBP", "JPY"]));
            w.str("amount", &format!("{}.00", r.range(30, 400) * 1000));
        }),
        "currency_range" => w.obj("value", |w| {
            let lo = r.range(30, 200) * 1000;
            w.str("unit", "EUR");
            w.str("min_value", &lo.to_string());
            w.str("max_value", &(lo + r.range(5, 80) * 1000).to_string());
        }),
        "user" => w.obj("value", |w| {
            let (f, l) = text::person(r);
            w.str("name", &format!("{f} {l}"));
            w.str(
                "email",
                &format!("{}.{}@example.com", text::slug(f), text::slug(l)),
            );
            w.int("user_id", user_ids.first().copied().unwrap_or(0));
        }),
        "date" => {
            let day = days_from_civil(2024, 1, 1) + r.range(0, 900);
            w.date("value", day);
        }
        "url" => w.str(
            "value",
            &format!(
                "https://wiki.example.com/plans/{}?q=a&b=\"c\"",
                r.below(10_000)
            ),
        ),
        "long_text" => w.str("value", &text::sentence(r, 25)),
        _ => w.str("value", &text::sentence(r, 3)),
    }
}
