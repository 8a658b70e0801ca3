//! Pins the stream declarations in `streams/`: the exact set of streams (shared/ref/streams-scope.md,
//! tables A and B), the replication/sensitivity/parameter invariants, and — when the reference file
//! is present next to the crate — field-by-field agreement with `harvest-v3-fields.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use greenhouse_extract::registry::{Field, FieldType, Registry, Replication, Stream};

/// Every stream of streams-scope.md, grouped as in its tables.
const EXPECTED_STREAMS: &[&str] = &[
    // A. Candidates
    "candidates",
    "candidate_educations",
    "candidate_employments",
    "attachments",
    // Applications
    "applications",
    "application_stages",
    "rejection_details",
    "prospect_details",
    // Tags
    "candidate_tags",
    "applied_candidate_tags",
    // Users
    "users",
    "user_emails",
    // User roles
    "user_roles",
    "user_job_permissions",
    "future_job_permissions",
    // EEOC
    "eeoc",
    // Scorecards
    "scorecards",
    "scorecard_candidate_attributes",
    "scorecard_questions",
    "scorecard_question_answers",
    "scorecard_question_options",
    "scorecard_question_answer_options",
    "scorecard_question_candidate_attributes",
    // Offers
    "offers",
    // Scheduled interviews
    "interviews",
    "interviewers",
    // Activity feed
    "notes",
    // Departments, email templates
    "departments",
    "email_templates",
    // Custom fields
    "custom_fields",
    "custom_field_options",
    "custom_field_offices",
    "custom_field_departments",
    // Jobs
    "jobs",
    "job_hiring_managers",
    "job_owners",
    "job_notes",
    // Job posts
    "job_posts",
    "job_post_locations",
    "job_board_custom_locations",
    "pay_input_ranges",
    // Job stages
    "job_interview_stages",
    "job_interviews",
    "interview_kits",
    "default_interviewers",
    // Openings, offices, reasons, sources
    "openings",
    "offices",
    "rejection_reasons",
    "sources",
    "referrers",
    "close_reasons",
    // Education
    "degrees",
    "disciplines",
    "schools",
    // Prospect pools
    "prospect_pools",
    "prospect_pool_stages",
    // Tracking links
    "tracking_links",
    // Approvals
    "approval_flows",
    "approver_groups",
    "approvers",
    // Demographic data
    "demographic_question_sets",
    "demographic_questions",
    "demographic_answer_options",
    "demographic_answers",
    // B. The rest of v3
    "candidate_attribute_types",
    "focus_candidate_attributes",
    "job_candidate_attributes",
    "interviewer_tags",
    "blocked_spam_sources",
    "bulk_requests",
];

const FULL_REFRESH: &[&str] = &["demographic_answer_options", "demographic_questions"];

const SENSITIVE: &[&str] = &[
    "demographic_answer_options",
    "demographic_answers",
    "demographic_question_sets",
    "demographic_questions",
    "eeoc",
];

const GROUPS: &[&str] = &[
    "Activity Feed",
    "Applications",
    "Approvals",
    "Candidates",
    "Close Reasons",
    "Custom Fields",
    "Demographic Data",
    "Departments",
    "EEOC",
    "Education",
    "Email Templates",
    "Job Openings",
    "Job Posts",
    "Job Stages",
    "Jobs",
    "Offers",
    "Offices",
    "Other (not in the Drivetrain list)",
    "Prospect Pool",
    "Rejection Reasons",
    "Scheduled Interviews",
    "Scorecards",
    "Sources",
    "Tags",
    "Tracking Links",
    "User Roles",
    "Users",
];

fn registry() -> Registry {
    Registry::embedded().unwrap_or_else(|e| panic!("the embedded registry must load: {e}"))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn names_where(r: &Registry, pred: impl Fn(&Stream) -> bool) -> BTreeSet<String> {
    r.streams()
        .iter()
        .filter(|s| pred(s))
        .map(|s| s.name.clone())
        .collect()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Calls `visit(path, field)` for every field, nested struct fields and list-of-struct items
/// included (paths in the fields file's notation, e.g. `questions[].options[].id`).
fn walk_fields(fields: &[Field], prefix: &str, visit: &mut impl FnMut(&str, &Field)) {
    for f in fields {
        let path = format!("{prefix}{}", f.name);
        visit(&path, f);
        match &f.ty {
            FieldType::Struct(inner) => walk_fields(inner, &format!("{path}."), visit),
            FieldType::List(item) => {
                if let FieldType::Struct(inner) = &item.ty {
                    walk_fields(inner, &format!("{path}[]."), visit);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn embedded_registry_loads() {
    let r = registry();
    assert!(!r.streams().is_empty());
}

#[test]
fn stream_names_are_exactly_the_scope() {
    let r = registry();
    let expected = set(EXPECTED_STREAMS);
    assert_eq!(
        expected.len(),
        EXPECTED_STREAMS.len(),
        "EXPECTED_STREAMS repeats a name"
    );
    let actual = names_where(&r, |_| true);
    let missing: Vec<_> = expected.difference(&actual).collect();
    let unexpected: Vec<_> = actual.difference(&expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "stream set differs from streams-scope.md\n  missing:    {missing:?}\n  unexpected: {unexpected:?}"
    );
    assert_eq!(r.streams().len(), 70);
}

#[test]
fn primary_key_is_a_non_null_integer_id() {
    for s in registry().streams() {
        assert_eq!(s.primary_key, vec!["id".to_string()], "{}", s.name);
        let id = s.field("id").unwrap_or_else(|| panic!("{}: no id", s.name));
        assert_eq!(id.ty, FieldType::Integer, "{}.id", s.name);
        assert!(!id.nullable, "{}.id must not be nullable", s.name);
    }
}

#[test]
fn incremental_streams_use_updated_at_as_cursor_and_filter() {
    for s in registry().streams() {
        if let Replication::Incremental {
            cursor_field,
            filter,
        } = &s.replication
        {
            assert_eq!(cursor_field, "updated_at", "{}: cursor", s.name);
            assert_eq!(filter, "updated_at", "{}: filter", s.name);
            let f = s.field("updated_at").unwrap();
            assert!(
                f.ty == FieldType::Timestamp && !f.nullable,
                "{}: updated_at must be a non-null timestamp",
                s.name
            );
        }
    }
}

#[test]
fn full_refresh_streams_are_exactly_the_demographic_dictionaries() {
    let r = registry();
    let full = names_where(&r, |s| !s.is_incremental());
    assert_eq!(full, set(FULL_REFRESH));
    for name in FULL_REFRESH {
        let s = r.get(name).unwrap();
        assert!(
            matches!(&s.replication, Replication::FullRefresh { reason } if !reason.trim().is_empty())
        );
        // Their timestamps may be null, which is why they cannot be incremental.
        assert!(s.field("updated_at").unwrap().nullable, "{name}.updated_at");
        assert!(s.field("created_at").unwrap().nullable, "{name}.created_at");
    }
}

#[test]
fn sensitive_streams_are_exactly_eeoc_and_demographics() {
    let r = registry();
    assert_eq!(names_where(&r, |s| s.sensitive), set(SENSITIVE));
}

#[test]
fn every_stream_has_the_base_attributes() {
    for s in registry().streams() {
        for base in ["id", "created_at", "updated_at"] {
            assert!(s.field(base).is_some(), "{} lacks {base}", s.name);
        }
        for ts in ["created_at", "updated_at"] {
            assert_eq!(
                s.field(ts).unwrap().ty,
                FieldType::Timestamp,
                "{}.{ts}",
                s.name
            );
        }
    }
}

#[test]
fn at_fields_are_timestamps_and_on_fields_are_dates() {
    let mut wrong = Vec::new();
    for s in registry().streams() {
        walk_fields(&s.fields, "", &mut |path, f| {
            let name = &f.name;
            let want = if name == "send_auto_reminder_at" || name.ends_with("_on") {
                Some(FieldType::Date)
            } else if name.ends_with("_at") {
                Some(FieldType::Timestamp)
            } else {
                None
            };
            if let Some(want) = want
                && f.ty != want
            {
                wrong.push(format!("{}.{path}: {} (want {want})", s.name, f.ty));
            }
        });
    }
    assert!(
        wrong.is_empty(),
        "mistyped date fields:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn static_parameters_and_partitions() {
    let r = registry();
    let expected_params: BTreeMap<&str, BTreeMap<String, String>> = [
        ("users", params(&[("show_service_accounts", "true")])),
        ("rejection_reasons", params(&[("include_defaults", "true")])),
        ("degrees", params(&[("custom_field_key", "degree")])),
        ("disciplines", params(&[("custom_field_key", "discipline")])),
        ("schools", params(&[("custom_field_key", "school_name")])),
    ]
    .into_iter()
    .collect();
    for s in r.streams() {
        let want = expected_params
            .get(s.name.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(s.params, want, "{}: params", s.name);
        let want_partitions = if s.name == "job_posts" {
            vec![
                params(&[("active", "true")]),
                params(&[("active", "false")]),
            ]
        } else {
            vec![]
        };
        assert_eq!(s.partitions, want_partitions, "{}: partitions", s.name);
    }
}

#[test]
fn resources_scopes_and_groups() {
    let groups = set(GROUPS);
    for s in registry().streams() {
        let want = match s.name.as_str() {
            "degrees" | "disciplines" | "schools" => "custom_field_options",
            other => other,
        };
        assert_eq!(s.resource, want, "{}: resource", s.name);
        assert_eq!(
            s.scope,
            format!("harvest:{}:list", s.resource),
            "{}",
            s.name
        );
        assert!(
            groups.contains(&s.group),
            "{}: unknown group {:?}",
            s.name,
            s.group
        );
        assert!(!s.description.trim().is_empty(), "{}: description", s.name);
    }
    let r = registry();
    for (name, group) in [
        ("eeoc", "EEOC"),
        ("interviews", "Scheduled Interviews"),
        ("notes", "Activity Feed"),
        ("openings", "Job Openings"),
        ("job_interview_stages", "Job Stages"),
        ("degrees", "Education"),
        ("approvers", "Approvals"),
        ("demographic_answers", "Demographic Data"),
    ] {
        assert_eq!(r.get(name).unwrap().group, group, "{name}: group");
    }
}

// ---------------------------------------------------------------------------------------------
// Agreement with shared/ref/harvest-v3-fields.txt
// ---------------------------------------------------------------------------------------------

/// One `path: type` line of the fields file.
#[derive(Debug)]
struct RefField {
    path: String,
    kind: String,
    nullable: bool,
    format: Option<String>,
    /// `array ... of T[|null]`: the element kind and nullability.
    of: Option<(String, bool)>,
}

fn parse_ref_type(path: &str, text: &str) -> RefField {
    let text = text.trim();
    if text.starts_with("oneOf(") {
        return RefField {
            path: path.to_string(),
            kind: "oneOf".into(),
            nullable: text.contains("'null'"),
            format: None,
            of: None,
        };
    }
    // Drop a trailing enum[...] (documentary only).
    let text = text.split(" enum[").next().unwrap();
    let (head, of) = match text.split_once(" of ") {
        Some((h, o)) => {
            let (k, n) = match o.strip_suffix("|null") {
                Some(k) => (k, true),
                None => (o, false),
            };
            (h, Some((k.to_string(), n)))
        }
        None => (text, None),
    };
    let (head, format) = match head.split_once('(') {
        Some((h, f)) => (h, Some(f.trim_end_matches(')').to_string())),
        None => (head, None),
    };
    let (kind, nullable) = match head.strip_suffix("|null") {
        Some(k) => (k, true),
        None => (head, false),
    };
    RefField {
        path: path.to_string(),
        kind: kind.to_string(),
        nullable,
        format,
        of,
    }
}

/// `resource -> fields in file order`.
fn parse_fields_file(text: &str) -> BTreeMap<String, Vec<RefField>> {
    let mut out: BTreeMap<String, Vec<RefField>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(res) = line.strip_prefix("### ") {
            current = Some(res.trim().to_string());
            out.entry(res.trim().to_string()).or_default();
        } else if let (Some(res), Some(body)) = (&current, line.strip_prefix("  "))
            && let Some((path, ty)) = body.split_once(": ")
        {
            out.get_mut(res).unwrap().push(parse_ref_type(path, ty));
        }
    }
    out
}

/// Whether a declared type is compatible with the fields file's type for a field named `name`.
fn compatible(name: &str, kind: &str, format: Option<&str>, ty: &FieldType) -> bool {
    match kind {
        "integer" => *ty == FieldType::Integer,
        "number" => *ty == FieldType::Number,
        "boolean" => *ty == FieldType::Boolean,
        "string" => {
            let want = if name == "send_auto_reminder_at" || name.ends_with("_on") {
                "date"
            } else if format == Some("date-time") || name.ends_with("_at") {
                "timestamp"
            } else if format == Some("date") {
                "date"
            } else {
                "string"
            };
            match want {
                "date" => *ty == FieldType::Date,
                "timestamp" => *ty == FieldType::Timestamp,
                _ => matches!(ty, FieldType::String { .. }),
            }
        }
        "array" => matches!(ty, FieldType::List(_)),
        "object" => matches!(ty, FieldType::Struct(_) | FieldType::Json),
        "oneOf" => true,
        _ => false,
    }
}

/// What the declaration says at `path` (`a.b`, `a[].b`).
enum Resolved<'a> {
    Field(&'a Field),
    /// Inside a free-form JSON field: the declaration keeps it whole.
    InsideJson,
    Missing(String),
}

fn resolve<'a>(fields: &'a [Field], path: &str) -> Resolved<'a> {
    let mut level = fields;
    let segments: Vec<&str> = path.split('.').collect();
    for (i, seg) in segments.iter().enumerate() {
        let (name, into_items) = match seg.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (*seg, false),
        };
        let Some(f) = level.iter().find(|f| f.name == name) else {
            return Resolved::Missing(format!("`{name}` is not declared"));
        };
        if i + 1 == segments.len() {
            return Resolved::Field(f);
        }
        level = match (&f.ty, into_items) {
            (FieldType::Json, _) => return Resolved::InsideJson,
            (FieldType::Struct(inner), false) => inner,
            (FieldType::List(item), true) => match &item.ty {
                FieldType::Struct(inner) => inner,
                FieldType::Json => return Resolved::InsideJson,
                other => {
                    return Resolved::Missing(format!(
                        "`{name}` items are {other}, the file describes their fields"
                    ));
                }
            },
            (other, _) => {
                return Resolved::Missing(format!(
                    "`{name}` is {other}, the file describes nested fields"
                ));
            }
        };
    }
    unreachable!("a path has at least one segment")
}

fn check_stream_against_file(s: &Stream, listed: &[RefField], problems: &mut Vec<String>) {
    let mut order = Vec::new();
    for rf in listed {
        let name = rf.path.rsplit('.').next().unwrap().trim_end_matches("[]");
        let f = match resolve(&s.fields, &rf.path) {
            Resolved::InsideJson => continue,
            Resolved::Missing(why) => {
                problems.push(format!("{}.{}: missing ({why})", s.name, rf.path));
                continue;
            }
            Resolved::Field(f) => f,
        };
        if !rf.path.contains('.') {
            order.push(f.name.clone());
        }
        if rf.kind != "oneOf" && f.nullable != rf.nullable {
            problems.push(format!(
                "{}.{}: nullable = {}, the file says {}",
                s.name,
                rf.path,
                f.nullable,
                if rf.nullable { "nullable" } else { "not null" }
            ));
        }
        if !compatible(name, &rf.kind, rf.format.as_deref(), &f.ty) {
            problems.push(format!(
                "{}.{}: declared {}, the file says {}{}",
                s.name,
                rf.path,
                f.ty,
                rf.kind,
                rf.format
                    .as_deref()
                    .map(|x| format!("({x})"))
                    .unwrap_or_default()
            ));
        }
        if let (Some((of, of_nullable)), FieldType::List(item)) = (&rf.of, &f.ty) {
            if !compatible("", of, None, &item.ty) {
                problems.push(format!(
                    "{}.{}[]: items declared {}, the file says {of}",
                    s.name, rf.path, item.ty
                ));
            }
            if item.nullable != *of_nullable {
                problems.push(format!(
                    "{}.{}[]: items nullable = {}, the file says {of_nullable}",
                    s.name, rf.path, item.nullable
                ));
            }
        }
    }
    // Listed top-level fields appear in the listed order.
    let declared_order: Vec<String> = s
        .fields
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| order.contains(n))
        .collect();
    if declared_order != order {
        problems.push(format!(
            "{}: field order differs from the file\n      file:     {order:?}\n      declared: {declared_order:?}",
            s.name
        ));
    }
}

#[test]
fn declarations_match_the_v3_field_list() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/ref/harvest-v3-fields.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not found", path.display());
        return;
    };
    let resources = parse_fields_file(&text);
    assert!(
        resources.len() >= 60,
        "parsed only {} resources",
        resources.len()
    );
    let r = registry();
    let mut problems = Vec::new();
    for (resource, listed) in &resources {
        let readers: Vec<&Stream> = r
            .streams()
            .iter()
            .filter(|s| &s.resource == resource)
            .collect();
        if readers.is_empty() {
            problems.push(format!("resource {resource}: no stream reads it"));
        }
        for s in readers {
            check_stream_against_file(s, listed, &mut problems);
        }
    }
    assert!(
        problems.is_empty(),
        "declarations differ from {} ({} problems):\n  {}",
        path.display(),
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn fields_file_parser_understands_the_notation() {
    let parsed = parse_fields_file(
        "### x\n  id: integer\n  a: array|null of string|null\n  b: string|null(date-time)\n  \
         c: string enum[\"p\", \"q\"]\n  d.e: integer|null\n",
    );
    let x = &parsed["x"];
    assert_eq!(x.len(), 5);
    assert_eq!(x[1].kind, "array");
    assert!(x[1].nullable);
    assert_eq!(x[1].of, Some(("string".to_string(), true)));
    assert_eq!(x[2].format.as_deref(), Some("date-time"));
    assert!(x[2].nullable);
    assert_eq!(x[3].kind, "string");
    assert!(!x[3].nullable);
    assert_eq!(x[4].path, "d.e");
}

// ---------------------------------------------------------------------------------------------
// Delete facts (ref §12, Greenhouse's webhook docs, and the simulator's ownership model)
// ---------------------------------------------------------------------------------------------

use greenhouse_extract::registry::{Cascade, DeleteMode, Deletes, WebhookRule};
use harvest_sim::model::{self, Del, R};

fn sim_resource(s: &Stream) -> R {
    R::from_name(&s.resource).unwrap_or_else(|| {
        panic!(
            "{}: resource {:?} unknown to the simulator",
            s.name, s.resource
        )
    })
}

/// Whether rows of `r` can disappear in the simulator: its own hard/soft delete, or an owning
/// ancestor's (owned children die with a hard-deleted parent).
fn sim_deletable(r: R) -> bool {
    model::def(r).delete != Del::Never || model::parent(r).is_some_and(sim_deletable)
}

#[test]
fn every_stream_states_its_delete_facts() {
    let r = registry();
    let never = names_where(&r, |s| s.deletes.mode == DeleteMode::Never);
    assert_eq!(
        never,
        set(&[
            "candidate_tags",
            "close_reasons",
            "interviewer_tags",
            "referrers",
            "rejection_reasons",
            "sources",
            "user_roles",
        ]),
        "streams whose rows never disappear"
    );
    let soft: BTreeMap<String, (String, bool)> = r
        .streams()
        .iter()
        .filter_map(|s| match &s.deletes.mode {
            DeleteMode::Soft { flag, deleted_when } => {
                Some((s.name.clone(), (flag.clone(), *deleted_when)))
            }
            _ => None,
        })
        .collect();
    let active = |n: &str| (n.to_string(), ("active".to_string(), false));
    let expected: BTreeMap<String, (String, bool)> = [
        active("custom_fields"),
        active("custom_field_options"),
        active("degrees"),
        active("disciplines"),
        active("schools"),
        active("demographic_question_sets"),
        active("demographic_questions"),
        active("demographic_answer_options"),
        active("job_board_custom_locations"),
        active("job_posts"),
        // Job stages: `active=false` in lists (ref §12), besides their deleted webhook.
        active("job_interview_stages"),
        active("prospect_pools"),
        ("users".to_string(), ("deactivated".to_string(), true)),
    ]
    .into_iter()
    .collect();
    assert_eq!(soft, expected, "soft-deleting streams and their flags");
    for s in r.streams() {
        let d: &Deletes = &s.deletes;
        // A hard stream that is not reconciled must have a parent through which its rows die.
        if d.is_hard() && !d.reconcile {
            assert!(
                !d.cascade.is_empty(),
                "{}: hard without reconcile needs a cascade",
                s.name
            );
        }
        // Tombstones must name a key: every delete stream has the plain `id` key.
        if d.mode != DeleteMode::Never {
            assert_eq!(s.primary_key, ["id"], "{}", s.name);
        }
    }
    // Erasure: candidates declare it, and everything that dies with a candidate follows.
    let erased: Vec<&str> = r.erasure_order().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(erased.first(), Some(&"candidates"), "{erased:?}");
    for n in [
        "applications",
        "offers",
        "scorecards",
        "notes",
        "attachments",
        "eeoc",
    ] {
        assert!(
            erased.contains(&n),
            "{n} is not erased with its candidate: {erased:?}"
        );
    }
    for n in ["jobs", "users", "departments"] {
        assert!(
            !erased.contains(&n),
            "{n} holds no candidate's data: {erased:?}"
        );
    }
    // Every stream is placed by the cascade order, parents first.
    let order: Vec<&str> = r.cascade_order().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(order.len(), r.streams().len());
    let pos = |n: &str| order.iter().position(|o| *o == n).unwrap();
    for s in r.streams() {
        for c in &s.deletes.cascade {
            assert!(
                pos(&c.parent) < pos(&s.name),
                "{} before {}",
                c.parent,
                s.name
            );
        }
    }
}

#[test]
fn simulator_hard_deletes_are_hard_and_reconciled() {
    let r = registry();
    let mut covered = BTreeSet::new();
    for s in r.streams() {
        let res = sim_resource(s);
        match model::def(res).delete {
            Del::Hard => {
                assert!(
                    s.deletes.is_hard() && s.deletes.reconcile,
                    "{}: the simulator hard-deletes {:?} on its own, so the stream must be hard with reconcile",
                    s.name,
                    res
                );
            }
            Del::Soft => assert!(
                matches!(s.deletes.mode, DeleteMode::Soft { .. }),
                "{}: the simulator soft-deletes {:?}",
                s.name,
                res
            ),
            Del::Never => {}
        }
        covered.insert(res);
    }
    // Every simulator resource is read by some stream.
    for res in R::ALL {
        assert!(covered.contains(res), "no stream reads {:?}", res);
    }
}

#[test]
fn simulator_children_cascade_through_the_parent_field() {
    let r = registry();
    for s in r.streams() {
        let res = sim_resource(s);
        let Some(parent) = model::parent(res) else {
            continue;
        };
        if !sim_deletable(parent) {
            continue;
        }
        let field = model::def(res).parent_field;
        let ok = s.deletes.cascade.iter().any(|c| {
            c.field == field
                && r.get(&c.parent)
                    .is_some_and(|p| p.resource == parent.name())
        });
        assert!(
            ok,
            "{}: rows die with their {} (through {field}) but no cascade says so; cascades: {:?}",
            s.name,
            parent.name(),
            s.deletes.cascade
        );
        assert_ne!(
            s.deletes.mode,
            DeleteMode::Never,
            "{}: dies with its parent",
            s.name
        );
    }
}

#[test]
fn cascades_follow_greenhouse_and_not_nulled_references() {
    let r = registry();
    let cascades = |n: &str| -> Vec<Cascade> { r.get(n).unwrap().deletes.cascade.clone() };
    let c = |field: &str, parent: &str| Cascade {
        field: field.into(),
        parent: parent.into(),
    };
    // A deleted candidate takes everything of theirs with it (webhook docs: delete_candidate).
    for (child, field) in [
        ("applications", "candidate_id"),
        ("attachments", "candidate_id"),
        ("offers", "candidate_id"),
        ("eeoc", "candidate_id"),
        ("notes", "candidate_id"),
        ("applied_candidate_tags", "candidate_id"),
        ("candidate_educations", "candidate_id"),
        ("candidate_employments", "candidate_id"),
    ] {
        assert!(cascades(child).contains(&c(field, "candidates")), "{child}");
    }
    // References Greenhouse (and the simulator) null instead of deleting.
    for (stream, field) in [
        ("applications", "job_id"),
        ("interviews", "job_id"),
        ("offers", "job_id"),
        ("jobs", "department_id"),
        ("departments", "parent_id"),
        ("offices", "parent_id"),
        ("future_job_permissions", "department_id"),
        ("future_job_permissions", "office_id"),
        ("custom_field_departments", "department_id"),
        ("custom_field_offices", "office_id"),
        ("prospect_details", "department_id"),
    ] {
        assert!(
            !cascades(stream).iter().any(|x| x.field == field),
            "{stream}.{field} is nulled, not cascaded"
        );
    }
    let kids: BTreeSet<String> = r
        .children_of("jobs")
        .iter()
        .map(|(s, _)| s.name.clone())
        .collect();
    for k in [
        "job_posts",
        "job_interview_stages",
        "openings",
        "job_notes",
        "job_owners",
    ] {
        assert!(kids.contains(k), "{k} dies with its job");
    }
}

#[test]
fn webhooks_match_greenhouse_payloads() {
    let r = registry();
    let rules = |n: &str| -> Vec<WebhookRule> { r.get(n).unwrap().deletes.webhooks.clone() };
    let one = |a: &str, p: &str| WebhookRule {
        action: a.into(),
        pointer: p.into(),
        many: false,
        merged_into: None,
    };
    assert_eq!(
        rules("candidates"),
        vec![
            one("delete_candidate", "/payload/person/id"),
            WebhookRule {
                merged_into: Some("/payload/person/new_candidate_id".into()),
                ..one("merge_candidate", "/payload/person/id")
            },
        ]
    );
    assert_eq!(
        r.get("candidates").unwrap().deletes.refresh,
        vec![one("candidate_anonymized", "/payload/candidate_id")]
    );
    let apps = rules("applications");
    assert!(apps.contains(&one("delete_application", "/payload/application/id")));
    assert!(apps.contains(&WebhookRule {
        many: true,
        ..one(
            "delete_candidate",
            "/payload/person/deleted_application_ids"
        )
    }));
    for (stream, action, object) in [
        ("offers", "offer_deleted", "offer"),
        ("interviews", "interview_deleted", "interview"),
        ("scorecards", "scorecard_deleted", "scorecard"),
        ("jobs", "job_deleted", "job"),
        ("departments", "department_deleted", "department"),
        ("offices", "office_deleted", "office"),
    ] {
        assert_eq!(
            rules(stream),
            vec![one(action, &format!("/payload/{object}/id"))],
            "{stream}"
        );
    }
    // No other stream claims a delete webhook: Greenhouse fires none for cascaded rows.
    let with_webhooks = names_where(&r, |s| !s.deletes.webhooks.is_empty());
    // Job posts and job stages are soft-deleted (`active = false`, still listed): their
    // webhooks need no tombstone, the flag arrives with the next incremental read.
    assert_eq!(with_webhooks.len(), 8, "{with_webhooks:?}");
}
