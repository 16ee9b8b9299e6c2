//! Request bodies for the hostile cases: the right shape for some endpoint
//! with fields swapped for nasty values, mutated, random JSON, or no JSON at all.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::fixture::Fixture;

/// Values that are not what a field expects, as raw JSON text: numbers no
/// `i64` holds, fractions, SQL, NULs, lone surrogates, wrong types.
pub(super) const NASTY_JSON: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "-0",
    "1e400",
    "-1e400",
    "1e9",
    "1000000000",
    "1000000001",
    "1000000000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "123456789012345678901234567890",
    "\"1000\"",
    "\"'; drop table events; --\"",
    "\"' or '1'='1\"",
    "\"\\\"); delete from seats; --\"",
    "\"%' union select * from balances --\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"💩\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"ffffffff-ffff-ffff-ffff-ffffffffffff\"",
    "\"2026-02-30T25:61:00Z\"",
    "\"+275760-09-13T00:00:00Z\"",
    "\"-000001-01-01T00:00:00Z\"",
    "null",
    "true",
    "[]",
    "{}",
    "[1, 2, 3]",
    "{\"$ne\": 1}",
];

/// Random JSON, nested a little.
pub(super) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A request body of the right shape for some endpoint, as JSON text with
/// `@` placeholders for its fields' values.
pub(super) fn body_template(fx: &Fixture) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    vec![
        ("{\"amount\": @amount}", vec![("amount", "500".to_string())]),
        (
            "{\"user_id\": @user_id, \"concert_id\": @concert_id}",
            vec![
                // The visitor's own id: the body of their user token's entry.
                ("user_id", format!("\"{}\"", fx.visitor.user_id)),
                ("concert_id", format!("\"{}\"", fx.concert_a)),
            ],
        ),
        (
            "{\"seat_id\": @seat_id}",
            vec![("seat_id", format!("\"{}\"", fx.seat_a))],
        ),
        (
            "{\"reservation_id\": @reservation_id}",
            vec![("reservation_id", format!("\"{}\"", fx.reservation))],
        ),
        (
            "{\"title\": @title, \"dates\": [{\"starts_at\": @starts_at, \"seats\": @seats, \"price\": @price}]}",
            vec![
                ("title", "\"Fuzz\"".to_string()),
                ("starts_at", format!("\"{starts_at}\"")),
                ("seats", "2".to_string()),
                ("price", "100".to_string()),
            ],
        ),
        (
            "{\"ttl_secs\": @ttl_secs}",
            vec![("ttl_secs", "3600".to_string())],
        ),
    ]
}

/// Fills a template: each field keeps its valid value or gets a nasty one.
pub(super) fn fill(
    template: &str,
    fields: &[(&str, String)],
    replacements: &[Option<String>],
) -> String {
    let mut text = template.to_string();
    for ((name, valid), replacement) in fields.iter().zip(replacements) {
        let value = replacement.as_deref().unwrap_or(valid);
        text = text.replace(&format!("@{name}"), value);
    }
    text
}

/// A body: templated, mutated, random JSON, random bytes, oversized, or none.
pub(super) fn body(fx: &Fixture) -> impl Strategy<Value = Option<Vec<u8>>> {
    let templates = body_template(fx);
    let nasty = prop_oneof![
        3 => proptest::sample::select(NASTY_JSON).prop_map(str::to_string),
        1 => any_json().prop_map(|v| v.to_string()),
        1 => "\\PC{0,20}".prop_map(|s| json!(s).to_string()),
    ];
    let templated = (
        proptest::sample::select(templates),
        proptest::collection::vec(proptest::option::weighted(0.4, nasty), 4),
    )
        .prop_map(|((template, fields), replacements)| fill(template, &fields, &replacements));
    // Mutations of a templated body: cut short, a byte flipped, a field
    // dropped, an unknown field, duplicated keys, wrapped in an array.
    let mutated = (templated.clone(), 0usize..6, any::<usize>(), any::<u8>()).prop_map(
        |(text, how, at, byte)| {
            let mut bytes = text.into_bytes();
            let at = at % bytes.len().max(1);
            match how {
                0 => bytes.truncate(at),
                1 => {
                    if let Some(b) = bytes.get_mut(at) {
                        *b = byte;
                    }
                }
                2 => {
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    bytes = text.replacen(", ", ", \"unknown\": 1, ", 1).into_bytes();
                }
                3 => {
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    bytes = text.replacen('{', "{\"amount\": -5, ", 1).into_bytes();
                }
                4 => {
                    let mut wrapped = b"[".to_vec();
                    wrapped.extend_from_slice(&bytes);
                    wrapped.push(b']');
                    bytes = wrapped;
                }
                _ => bytes.insert(at, byte),
            }
            bytes
        },
    );
    prop_oneof![
        2 => Just(None),
        6 => templated.prop_map(|text| Some(text.into_bytes())),
        3 => mutated.prop_map(Some),
        2 => any_json().prop_map(|v| Some(v.to_string().into_bytes())),
        2 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        1 => prop_oneof![
            Just("[".repeat(20_000)),
            Just(format!("{{\"amount\": 1{}}}", "0".repeat(5000))),
            Just(format!("{{\"title\": \"{}\"}}", "x".repeat(70 * 1024))),
            Just(format!("{{\"amount\": 5, \"pad\": \"{}\"}}", "y".repeat(60 * 1024))),
            Just("{\"amount\": 5, \"amount\": 7}".to_string()),
            Just("\u{feff}{\"amount\": 5}".to_string()),
        ]
        .prop_map(|text| Some(text.into_bytes())),
    ]
}
