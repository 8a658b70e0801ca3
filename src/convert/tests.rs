//! Unit tests for the converter (shared `stream()` fixture used by the sibling modules' tests and
//! by the sink's tests).

use super::*;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{BooleanArray, ListArray, StructArray};
use chrono::TimeZone;
use serde_json::json;

const INCREMENTAL: &str =
    r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#;

/// Every declared type, nested lists and structs included.
const FIELDS: &str = r#"
  { name = "id", type = "integer" },
  { name = "updated_at", type = "timestamp" },
  { name = "name", type = "string", nullable = true, description = "Display name." },
  { name = "age", type = "integer", nullable = true },
  { name = "score", type = "number", nullable = true },
  { name = "active", type = "boolean", nullable = true },
  { name = "born_on", type = "date", nullable = true },
  { name = "tags", type = "list", nullable = true, items = { type = "string" } },
  { name = "emails", type = "list", nullable = true, items = { type = "struct", fields = [
      { name = "value", type = "string" },
      { name = "type", type = "string", nullable = true, enum = ["personal", "work", "other"] },
  ] } },
  { name = "source", type = "struct", nullable = true, fields = [
      { name = "id", type = "integer" },
      { name = "name", type = "string", nullable = true },
  ] },
  { name = "owner", type = "struct", nullable = true, fields = [
      { name = "id", type = "integer", nullable = true },
      { name = "roles", type = "list", nullable = true, items = { type = "struct", fields = [
          { name = "name", type = "string", nullable = true },
      ] } },
  ] },
  { name = "matrix", type = "list", nullable = true, items = { type = "list", nullable = true, items = { type = "integer", nullable = true } } },
  { name = "custom_fields", type = "json", nullable = true },
"#;

fn stream_with(replication: &str) -> Stream {
    crate::registry::fixture("x", replication, FIELDS).streams()[0].clone()
}

pub(crate) fn stream() -> Stream {
    stream_with(INCREMENTAL)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap()
}

fn converter() -> Converter {
    Converter::new(&stream(), "run-1", t0())
}

fn convert(records: serde_json::Value) -> ConvertedPage {
    converter()
        .convert_page(records.to_string().as_bytes())
        .unwrap()
}

fn col<'a>(page: &'a ConvertedPage, name: &str) -> &'a ArrayRef {
    page.batch.column_by_name(name).unwrap()
}

fn extra(page: &ConvertedPage, row: usize) -> Option<serde_json::Value> {
    let col = col(page, EXTRA_COLUMN).as_string::<i32>();
    col.is_valid(row)
        .then(|| serde_json::from_str(col.value(row)).unwrap())
}

fn micros(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
}

fn base(id: i64) -> serde_json::Value {
    json!({"id": id, "updated_at": "2024-01-15T10:30:00Z"})
}

fn with(mut v: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().insert(key.to_string(), value);
    v
}

#[test]
fn converts_every_type() {
    let page = convert(json!([{
        "id": 1,
        "updated_at": "2024-01-15T10:30:00.123Z",
        "name": "Ada",
        "age": 36,
        "score": 4.5,
        "active": true,
        "born_on": "1815-12-10",
        "tags": ["a", "b"],
        "emails": [{"value": "ada@example.com", "type": "work"}, {"value": "a@b.c", "type": null}],
        "source": {"id": 7, "name": "Referral"},
        "owner": {"id": 3, "roles": [{"name": "admin"}]},
        "matrix": [[1, 2], [], null, [3]],
        "custom_fields": {"level": "senior", "n": 3}
    }]));
    assert_eq!(page.rows, 1);
    assert_eq!(page.batch.num_rows(), 1);
    assert_eq!(
        (
            page.extra_fields,
            page.type_mismatches,
            page.null_violations
        ),
        (0, 0, 0)
    );
    assert_eq!(col(&page, "id").as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(
        col(&page, "updated_at")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        micros("2024-01-15T10:30:00.123Z")
    );
    assert_eq!(col(&page, "name").as_string::<i32>().value(0), "Ada");
    assert_eq!(col(&page, "age").as_primitive::<Int64Type>().value(0), 36);
    assert_eq!(
        col(&page, "score").as_primitive::<Float64Type>().value(0),
        4.5
    );
    assert!(col(&page, "active").as_boolean().value(0));
    let born = col(&page, "born_on").as_primitive::<Date32Type>().value(0);
    assert_eq!(
        chrono::NaiveDate::from_ymd_opt(1815, 12, 10).unwrap(),
        DateTime::from_timestamp(i64::from(born) * 86_400, 0)
            .unwrap()
            .date_naive()
    );

    let tags = col(&page, "tags").as_list::<i32>().value(0);
    let tags: Vec<_> = tags.as_string::<i32>().iter().flatten().collect();
    assert_eq!(tags, ["a", "b"]);

    let emails = col(&page, "emails").as_list::<i32>().value(0);
    let emails = emails.as_struct();
    assert_eq!(emails.len(), 2);
    let values = emails.column_by_name("value").unwrap().as_string::<i32>();
    let types = emails.column_by_name("type").unwrap().as_string::<i32>();
    assert_eq!(values.value(0), "ada@example.com");
    assert_eq!(types.value(0), "work");
    assert_eq!(values.value(1), "a@b.c");
    assert!(types.is_null(1));

    let source = col(&page, "source").as_struct();
    assert_eq!(
        source
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        7
    );

    let matrix = col(&page, "matrix").as_list::<i32>().value(0);
    let matrix = matrix.as_list::<i32>();
    assert_eq!(matrix.len(), 4);
    assert!(matrix.is_null(2));
    assert!(!matrix.is_null(1));
    assert_eq!(matrix.value(1).len(), 0);
    let first: Vec<_> = matrix
        .value(0)
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(first, [1, 2]);

    let cf = col(&page, "custom_fields").as_string::<i32>().value(0);
    assert_eq!(cf, r#"{"level":"senior","n":3}"#);
    assert!(extra(&page, 0).is_none());

    // The extractor columns.
    assert_eq!(
        col(&page, EXTRACTED_AT_COLUMN)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        t0().timestamp_micros()
    );
    assert_eq!(
        col(&page, RUN_ID_COLUMN).as_string::<i32>().value(0),
        "run-1"
    );
    assert_eq!(page.batch.schema(), arrow_schema(&stream()));
}

#[test]
fn absent_and_null_values_are_null_and_nested_nulls_propagate() {
    let page = convert(json!([
        base(1),
        with(with(base(2), "source", json!(null)), "emails", json!(null)),
        with(
            with(base(3), "emails", json!([])),
            "owner",
            json!({"roles": null})
        ),
    ]));
    assert_eq!(page.null_violations, 0);
    for name in [
        "name",
        "age",
        "score",
        "active",
        "born_on",
        "tags",
        "custom_fields",
    ] {
        assert_eq!(col(&page, name).null_count(), 3, "{name}");
    }
    let emails = col(&page, "emails").as_list::<i32>();
    assert!(emails.is_null(0) && emails.is_null(1));
    assert!(emails.is_valid(2));
    assert_eq!(emails.value(2).len(), 0);
    let source = col(&page, "source").as_struct();
    assert_eq!(source.null_count(), 3);
    let owner = col(&page, "owner").as_struct();
    assert!(owner.is_null(0) && owner.is_valid(2));
    assert!(owner.column_by_name("id").unwrap().is_null(2));
    assert!(owner.column_by_name("roles").unwrap().is_null(2));
}

#[test]
fn null_violations_are_counted_not_fatal() {
    let page = convert(json!([
        // id absent, updated_at null: two violations at the top level.
        {"updated_at": null},
        // A null list item of a non-null item type, and a null required struct child.
        with(with(base(2), "tags", json!(["a", null])), "source", json!({"id": null})),
        // A required child inside a list element.
        with(base(3), "emails", json!([{"type": "work"}])),
        // A required child under a null struct is not a violation: the parent is null.
        with(base(4), "source", json!(null)),
    ]));
    assert_eq!(page.null_violations, 5);
    assert_eq!(page.type_mismatches, 0);
    // The row without an id is quarantined, not written with a NULL key.
    assert_eq!(page.rows, 3);
    assert_eq!(col(&page, "id").null_count(), 0);
    assert_eq!(page.ids, [2, 3, 4]);
    assert_eq!(page.quarantined, [r#"{"updated_at":null}"#]);
}

#[test]
fn records_without_a_usable_key_are_quarantined_whole() {
    let page = convert(json!([
        base(9),
        with(base(8), "id", json!("abc")),
        with(base(7), "id", json!(null)),
        with(base(6), "id", json!("6")),
    ]));
    assert_eq!(page.rows, 2);
    assert_eq!(page.batch.num_rows(), 2);
    assert_eq!(page.ids, [9, 6]);
    assert_eq!(page.quarantined.len(), 2);
    let q: serde_json::Value = serde_json::from_str(&page.quarantined[0]).unwrap();
    assert_eq!(q, with(base(8), "id", json!("abc")));
    // The rows that stay keep their own `_extra` (none here) and order.
    assert_eq!(extra(&page, 0), None);
}

#[test]
fn lone_surrogates_are_decoded_leniently_and_kept() {
    let mut c = Converter::new(&stream(), "r", t0());
    // A truncated emoji in a string column, in a list element and in a JSON column; a whole
    // pair elsewhere stays an emoji.
    let body = r#"[{"id":1,"updated_at":"2024-01-15T10:30:00Z","name":"\ud83dZo\u00eb","tags":["ok\ud83d\ude00","x\udc00"],"custom_fields":{"k":"\ud800"}},{"id":2,"updated_at":"2024-01-15T10:30:00Z","name":"fine"}]"#;
    let page = c.convert_page(body.as_bytes()).unwrap();
    assert_eq!(page.rows, 2);
    let name = col(&page, "name").as_string::<i32>();
    assert_eq!(name.value(0), "\u{FFFD}Zoë");
    assert_eq!(name.value(1), "fine");
    let tags = col(&page, "tags").as_list::<i32>().value(0);
    let tags = tags.as_string::<i32>();
    assert_eq!(tags.value(0), "ok😀");
    assert_eq!(tags.value(1), "x\u{FFFD}");
    // The JSON column holds the text as received.
    let cf = col(&page, "custom_fields").as_string::<i32>();
    assert_eq!(cf.value(0), r#"{"k":"\ud800"}"#);
    assert_eq!(page.type_mismatches, 2);
    assert_eq!(
        extra(&page, 0).unwrap(),
        json!({"name": r"\ud83dZo\u00eb", "tags[1]": r"x\udc00"})
    );
    assert_eq!(extra(&page, 1), None);
}

#[test]
fn sub_microsecond_digits_and_missing_offsets_are_kept() {
    let page = convert(json!([
        with(
            base(1),
            "updated_at",
            json!("2024-01-15T10:30:00.123456789Z")
        ),
        with(
            base(2),
            "updated_at",
            json!("2024-01-15T10:30:00.123456000Z")
        ),
        with(base(3), "updated_at", json!("2024-01-15T10:30:00.5")),
    ]));
    let col = col(&page, "updated_at").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(col.value(0), micros("2024-01-15T10:30:00.123456Z"));
    assert_eq!(col.value(1), micros("2024-01-15T10:30:00.123456Z"));
    assert_eq!(col.value(2), micros("2024-01-15T10:30:00.5Z"));
    assert_eq!(page.type_mismatches, 2);
    assert_eq!(
        extra(&page, 0).unwrap(),
        json!({"updated_at": "2024-01-15T10:30:00.123456789Z"})
    );
    assert_eq!(extra(&page, 1), None);
    assert_eq!(
        extra(&page, 2).unwrap(),
        json!({"updated_at": "2024-01-15T10:30:00.5"})
    );
}

#[test]
fn timestamps_in_every_form() {
    let forms = [
        ("2024-01-15T10:30:00Z", Some("2024-01-15T10:30:00Z")),
        ("2024-01-15T10:30:00.123Z", Some("2024-01-15T10:30:00.123Z")),
        (
            "2024-01-15T10:30:00.123456Z",
            Some("2024-01-15T10:30:00.123456Z"),
        ),
        ("2024-01-15T10:30:00", Some("2024-01-15T10:30:00Z")),
        ("2024-01-15T05:30:00-05:00", Some("2024-01-15T10:30:00Z")),
        (
            "2024-01-15T12:30:00.5+02:00",
            Some("2024-01-15T10:30:00.5Z"),
        ),
        ("2024-01-15T12:30:00+0200", Some("2024-01-15T10:30:00Z")),
        ("not a time", None),
        ("2024-02-30T00:00:00Z", None),
    ];
    let records: Vec<_> = forms
        .iter()
        .enumerate()
        .map(|(i, (text, _))| with(base(i as i64), "updated_at", json!(text)))
        .collect();
    let page = convert(serde_json::Value::Array(records));
    let col = col(&page, "updated_at").as_primitive::<TimestampMicrosecondType>();
    for (i, (text, want)) in forms.iter().enumerate() {
        match want {
            Some(w) => assert_eq!(col.value(i), micros(w), "{text}"),
            None => {
                assert!(col.is_null(i), "{text}");
                assert_eq!(extra(&page, i).unwrap(), json!({"updated_at": text}));
            }
        }
    }
    // No offset: read as UTC, and the text is kept (and counted) since that is an assumption.
    assert_eq!(
        extra(&page, 3).unwrap(),
        json!({"updated_at": "2024-01-15T10:30:00"})
    );
    assert_eq!(page.type_mismatches, 3);
    // A number is not a timestamp.
    let page = convert(json!([with(base(1), "updated_at", json!(1_700_000_000))]));
    assert_eq!(page.type_mismatches, 1);
    assert_eq!(
        extra(&page, 0).unwrap(),
        json!({"updated_at": 1_700_000_000})
    );
}

#[test]
fn dates() {
    let page = convert(json!([
        with(base(1), "born_on", json!("2024-02-29")),
        with(base(2), "born_on", json!("2024-02-30")),
        with(base(3), "born_on", json!("2024-03-01T23:30:00-05:00")),
        with(base(4), "born_on", json!(20240301)),
    ]));
    let born = col(&page, "born_on").as_primitive::<Date32Type>();
    let day = |y, m, d| {
        (chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    };
    assert_eq!(born.value(0), day(2024, 2, 29));
    assert!(born.is_null(1));
    // A full timestamp: the date as written, and the original kept because the time is lost.
    assert_eq!(born.value(2), day(2024, 3, 1));
    assert_eq!(
        extra(&page, 2).unwrap(),
        json!({"born_on": "2024-03-01T23:30:00-05:00"})
    );
    assert!(born.is_null(3));
    assert_eq!(page.type_mismatches, 3);
    assert!(extra(&page, 0).is_none());
}

#[test]
fn unknown_fields_are_kept_in_extra_under_their_path() {
    let page = convert(json!([
        {
            "id": 1, "updated_at": "2024-01-15T10:30:00Z",
            "new_field": {"deep": [1, 2]},
            "another": null,
            "source": {"id": 2, "kind": "agency"},
            "emails": [{"value": "a"}, {"value": "b", "verified": true}],
            "owner": {"id": 1, "roles": [{"name": "x"}, {"name": "y", "scope": "all"}], "team": 9}
        },
        base(2),
    ]));
    assert_eq!(page.extra_fields, 6);
    assert_eq!(page.type_mismatches, 0);
    assert_eq!(
        extra(&page, 0).unwrap(),
        json!({
            "new_field": {"deep": [1, 2]},
            "another": null,
            "source.kind": "agency",
            "emails[1].verified": true,
            "owner.roles[1].scope": "all",
            "owner.team": 9
        })
    );
    assert!(extra(&page, 1).is_none());
    // The known parts are still typed.
    assert_eq!(
        col(&page, "source")
            .as_struct()
            .column_by_name("id")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0),
        2
    );
}

#[test]
fn type_mismatches_become_null_and_are_kept() {
    let page = convert(json!([
        with(base(1), "age", json!(1.5)),
        with(base(2), "age", json!("abc")),
        with(base(3), "name", json!({"first": "A"})),
        with(base(4), "name", json!(12)),
        with(base(5), "active", json!("true")),
        with(base(6), "score", json!([1])),
        with(base(7), "source", json!("Referral")),
        with(base(8), "tags", json!({"a": 1})),
        with(base(9), "tags", json!(["a", 5, "c"])),
        with(base(10), "age", json!(u64::MAX)),
        with(base(11), "emails", json!([{"value": "a"}, "b@c.d"])),
        with(base(12), "matrix", json!([[1], [2.5, 3]])),
    ]));
    assert_eq!(page.type_mismatches, 12);
    assert_eq!(page.extra_fields, 0);
    let expected = [
        json!({"age": 1.5}),
        json!({"age": "abc"}),
        json!({"name": {"first": "A"}}),
        json!({"name": 12}),
        json!({"active": "true"}),
        json!({"score": [1]}),
        json!({"source": "Referral"}),
        json!({"tags": {"a": 1}}),
        json!({"tags[1]": 5}),
        json!({"age": u64::MAX}),
        json!({"emails[1]": "b@c.d"}),
        json!({"matrix[1][0]": 2.5}),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&extra(&page, i).unwrap(), want, "row {i}");
    }
    // Never truncated: 1.5 is null, not 1.
    let age = col(&page, "age").as_primitive::<Int64Type>();
    assert!(age.is_null(0) && age.is_null(1) && age.is_null(9));
    assert!(col(&page, "name").is_null(2) && col(&page, "name").is_null(3));
    assert!(col(&page, "source").is_null(6));
    let tags = col(&page, "tags").as_list::<i32>();
    assert!(tags.is_null(7));
    let row9 = tags.value(8);
    let row9 = row9.as_string::<i32>();
    assert_eq!(
        row9.iter().collect::<Vec<_>>(),
        [Some("a"), None, Some("c")]
    );
    let matrix = col(&page, "matrix").as_list::<i32>().value(11);
    let inner = matrix.as_list::<i32>().value(1);
    let inner = inner.as_primitive::<Int64Type>();
    assert_eq!(inner.iter().collect::<Vec<_>>(), [None, Some(3)]);
}

#[test]
fn lossless_coercions() {
    let page = convert(json!([
        {"id": "42", "updated_at": "2024-01-15T10:30:00Z", "age": 3.0, "score": 2},
        {"id": 43, "updated_at": "2024-01-15T10:30:00Z", "age": "042", "score": "2.5"},
    ]));
    let id = col(&page, "id").as_primitive::<Int64Type>();
    assert_eq!(id.value(0), 42);
    let age = col(&page, "age").as_primitive::<Int64Type>();
    assert_eq!(age.value(0), 3);
    // Numeric text that is not the number's canonical spelling: stored, and the text kept.
    assert_eq!(age.value(1), 42);
    let score = col(&page, "score").as_primitive::<Float64Type>();
    assert_eq!((score.value(0), score.value(1)), (2.0, 2.5));
    assert_eq!(page.type_mismatches, 1);
    assert_eq!(extra(&page, 1).unwrap(), json!({"age": "042"}));
    assert_eq!(page.ids, [42, 43]);
}

#[test]
fn json_columns_round_trip_exactly() {
    let values = [
        json!({"a": 1, "b": [true, null, {"c": "ü\"\n"}], "d": -1.25e-7, "e": {}}),
        json!([1, 2, 3]),
        json!("plain string"),
        json!(42),
        json!(false),
        json!({"k": u64::MAX, "m": i64::MIN}),
    ];
    let mut records: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| with(base(i as i64), "custom_fields", v.clone()))
        .collect();
    records.push(with(base(99), "custom_fields", json!(null)));
    let page = convert(serde_json::Value::Array(records));
    let cf = col(&page, "custom_fields").as_string::<i32>();
    for (i, v) in values.iter().enumerate() {
        let back: serde_json::Value = serde_json::from_str(cf.value(i)).unwrap();
        assert_eq!(&back, v);
    }
    assert!(cf.is_null(values.len()));
    assert_eq!(page.type_mismatches + page.extra_fields, 0);
}

#[test]
fn empty_page_is_a_zero_row_batch() {
    let mut c = converter();
    let page = c.convert_page(b"[]").unwrap();
    assert_eq!(page.rows, 0);
    assert_eq!(page.batch.num_rows(), 0);
    assert_eq!(page.batch.schema(), c.schema());
    assert_eq!(page.max_cursor, None);
    assert!(page.ids.is_empty());
    assert_eq!(c.empty_batch().num_rows(), 0);
    let page = c.convert_page(b" [ ]\n").unwrap();
    assert_eq!(page.rows, 0);
}

#[test]
fn malformed_bodies_are_errors() {
    let mut c = converter();
    for bad in [
        &b""[..],
        b"null",
        b"{\"id\": 1}",
        b"[1, 2]",
        b"[{\"id\": 1}, null]",
        b"[{\"id\": 1},",
        b"[{\"id\": 1}] trailing",
        b"<html>502 Bad Gateway</html>",
        b"[\"\xff\"]",
    ] {
        assert!(
            matches!(
                c.convert_page(bad),
                Err(ConvertError::NotAnArrayOfObjects(_))
            ),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(c.totals().pages, 0);
}

#[test]
fn max_cursor_and_ids() {
    let mut c = converter();
    let page = c
        .convert_page(
            json!([
                {"id": 30, "updated_at": "2024-01-15T10:30:00Z"},
                {"id": 20, "updated_at": "2024-03-01T00:00:00.250+01:00"},
                {"id": 10, "updated_at": "garbage"},
                {"id": 5, "updated_at": "2023-12-31T23:59:59Z"},
            ])
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(page.ids, [30, 20, 10, 5]);
    assert_eq!(
        page.max_cursor,
        Some(
            DateTime::parse_from_rfc3339("2024-02-29T23:00:00.250Z")
                .unwrap()
                .with_timezone(&Utc)
        )
    );
    let page2 = c
        .convert_page(
            json!([{"id": 1, "updated_at": null}])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(page2.max_cursor, None);
    assert_eq!(
        c.totals(),
        ConvertTotals {
            pages: 2,
            rows: 5,
            extra_fields: 0,
            type_mismatches: 1,
            null_violations: 1,
            quarantined: 0,
        }
    );
}

#[test]
fn full_refresh_streams_have_no_cursor() {
    let s = stream_with(r#"{ mode = "full_refresh", reason = "no filter" }"#);
    let mut c = Converter::new(&s, "r", t0());
    let page = c
        .convert_page(json!([base(1)]).to_string().as_bytes())
        .unwrap();
    assert_eq!(page.max_cursor, None);
    assert_eq!(page.ids, [1]);
}

#[test]
fn batches_survive_slicing_and_concatenation_shapes() {
    // Lists of structs with nulls at several levels must produce valid Arrow data.
    let page = convert(json!([
        with(
            base(1),
            "emails",
            json!([{"value": "a"}, null, {"value": null, "type": "work"}])
        ),
        with(
            base(2),
            "owner",
            json!({"id": 1, "roles": [null, {"name": null}]})
        ),
    ]));
    page.batch
        .column_by_name("emails")
        .unwrap()
        .to_data()
        .validate_full()
        .unwrap();
    page.batch
        .column_by_name("owner")
        .unwrap()
        .to_data()
        .validate_full()
        .unwrap();
    let emails = col(&page, "emails").as_list::<i32>().value(0);
    assert!(emails.is_null(1));
    // Two null elements of non-nullable item types, plus a null required child.
    assert_eq!(page.null_violations, 3);
    let _: &ListArray = col(&page, "emails").as_list::<i32>();
    let _: &StructArray = col(&page, "owner").as_struct();
    let _: &BooleanArray = col(&page, "active").as_boolean();
}

#[test]
fn integer_keys_follow_the_converters_rule() {
    use serde_json::json;
    for (v, want) in [
        (json!(7), Some(7)),
        (json!(-7), Some(-7)),
        (json!(3.0), Some(3)),
        (json!("007"), Some(7)),
        (json!("abc"), None),
        (json!(null), None),
        (json!(1.5), None),
        (json!(true), None),
    ] {
        assert_eq!(super::integer_key(&v), want, "{v}");
    }
}

/// The reader guesses each key's column from the previous record's key order; records whose
/// keys come in other orders (or repeat) must read exactly the same.
#[test]
fn key_order_does_not_matter_and_repeated_keys_are_kept() {
    let texts = [
        r#"{"id":1,"updated_at":"2024-01-15T10:30:00Z","name":"a","age":3,"source":{"id":7,"name":"s"}}"#,
        r#"{"source":{"name":"s","id":7},"age":3,"name":"a","updated_at":"2024-01-15T10:30:00Z","id":2}"#,
        r#"{"name":"a","id":3,"source":{"id":7,"name":"s"},"updated_at":"2024-01-15T10:30:00Z","age":3}"#,
        r#"{"id":4,"updated_at":"2024-01-15T10:30:00Z","name":"a","name":"b","age":3,"source":{"id":7,"id":8,"name":"s"}}"#,
    ];
    let body = format!("[{}]", texts.join(","));
    let mut c = converter();
    // Twice through one converter: the second page starts from the first one's guesses.
    for _ in 0..2 {
        let page = c.convert_page(body.as_bytes()).unwrap();
        assert_eq!(page.ids, [1, 2, 3, 4]);
        let name = col(&page, "name").as_string::<i32>();
        let age = col(&page, "age").as_primitive::<Int64Type>();
        let source = col(&page, "source").as_struct();
        let source_id = source.column(0).as_primitive::<Int64Type>();
        let source_name = source.column(1).as_string::<i32>();
        for row in 0..4 {
            assert_eq!(name.value(row), "a", "row {row}");
            assert_eq!(age.value(row), 3, "row {row}");
            assert_eq!(source_id.value(row), 7, "row {row}");
            assert_eq!(source_name.value(row), "s", "row {row}");
        }
        for row in 0..3 {
            assert_eq!(extra(&page, row), None, "row {row}");
        }
        // A repeated key: the first value is typed, the later one kept under the same path.
        assert_eq!(
            extra(&page, 3).unwrap(),
            json!({"name": "b", "source.id": 8})
        );
        assert_eq!(page.extra_fields, 2);
        assert_eq!(page.type_mismatches + page.null_violations, 0);
    }
}

/// A page that fails to parse halfway leaves nothing behind for the next page.
#[test]
fn a_failed_page_does_not_leak_into_the_next() {
    let mut c = converter();
    let bad =
        r#"[{"id":1,"updated_at":"2024-01-15T10:30:00Z","tags":["a","b"]},{"id":2,"tags":["c""#;
    assert!(matches!(
        c.convert_page(bad.as_bytes()),
        Err(ConvertError::NotAnArrayOfObjects(_))
    ));
    let page = c
        .convert_page(
            json!([with(base(3), "tags", json!(["z"]))])
                .to_string()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(page.rows, 1);
    let tags = col(&page, "tags").as_list::<i32>();
    assert_eq!(tags.value(0).as_string::<i32>().value(0), "z");
    assert_eq!(tags.value(0).len(), 1);
}
