//! The rows' `custom_fields` maps (the definitions and vocabularies are `cf_defs`).
//!
//! Contract: the custom fields of the simulated account are a fixed table (`DEFS`, one row of
//! `/v3/custom_fields` each, in index order).  Rows of candidates, applications, jobs, offers,
//! openings, users and rejection details carry a `custom_fields` map keyed by `name_key`
//! with `{name, type, value}` for every definition of their `field_type`, covering every JSON
//! value kind (string, float, integer, boolean, array, object, null).  Select-type
//! definitions own `/v3/custom_field_options` rows whose names come from `option_name`, so a
//! row's select value always names an existing option.

use super::cf_defs::{CfDef, DEFS, INTEGER_KEYS, options};
use super::data::Db;
use super::json::{JsonOut, Millis, days_from_civil};
use super::model::R;
use super::rng::Rng;
use super::text;

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
