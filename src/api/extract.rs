//! Extractors whose rejections are problem documents like every other error.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::json_headers::check_json_headers;

/// A JSON object as the body; malformed JSON is 400, well-formed JSON of
/// the wrong shape is 422.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        check_json_headers(request.headers())?;
        let bytes = body_bytes(request, state).await?;
        json_object(&bytes).map(Json)
    }
}

/// The whole body; above the body limit, `413`.
pub async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::BadRequest(rejection.body_text()),
        })
}

/// The JSON object in `bytes`, read as a `T`.
pub fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde checks the text of the strings it keeps, not of those it skips:
    // bad bytes in an unknown field would pass. JSON is UTF-8 (RFC 8259).
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::BadRequest(
            "the body is not UTF-8 text, as JSON must be".into(),
        ));
    }
    // The whole text is read as JSON first: a typed read stops at its first
    // wrong value, and `{"amount": "5"} garbage` would be told it is
    // well-formed JSON of the wrong shape (422) rather than malformed (400).
    if let Err(error) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::BadRequest(quoting_at_most_a_little(format!(
            "Failed to parse the request body as JSON: {error}"
        ))));
    }
    // serde reads a struct from an array too, field by field in order:
    // `[1]` would charge 1 won. Every body of the contract is an object.
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::Validation(
            "the body must be a JSON object, not an array".into(),
        ));
    }
    match axum::Json::from_bytes(bytes) {
        Ok(axum::Json(value)) => Ok(value),
        Err(JsonRejection::JsonSyntaxError(error)) if out_of_range(&error.body_text()) => {
            let text = error.body_text();
            let text = text.strip_prefix(SYNTAX_PREFIX).unwrap_or(&text);
            Err(ApiError::Validation(quoting_at_most_a_little(
                match expected_of_unreadable_number::<T>(bytes) {
                    Some(expected) => format!("{text}, {expected}"),
                    None => text.to_string(),
                },
            )))
        }
        Err(rejection) => Err(rejection.into()),
    }
}

/// How axum's rejection of a body of the wrong shape begins.
const DATA_PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";

/// How axum's rejection of text serde_json could not read begins.
const SYNTAX_PREFIX: &str = "Failed to parse the request body as JSON: ";

/// What the field holding a number beyond every numeric type (`1e400`)
/// expects ("expected a whole number from 1 to 1000000000"). serde_json
/// stops at such a number before the field's own rules see it, so the body
/// is read again with a stand-in there that those rules can read and no
/// whole number's range holds. None when the field takes the stand-in.
fn expected_of_unreadable_number<T: DeserializeOwned>(bytes: &[u8]) -> Option<String> {
    let error = serde_json::from_slice::<T>(bytes).err()?;
    // The column is that of the number's last byte, counted from 1.
    let line_start = match error.line() {
        1 => 0,
        line => {
            bytes
                .iter()
                .enumerate()
                .filter(|(_, byte)| **byte == b'\n')
                .nth(line - 2)?
                .0
                + 1
        }
    };
    let last = line_start + error.column().checked_sub(1)?;
    let is_of_number = |byte: &u8| byte.is_ascii_digit() || b"+-.eE".contains(byte);
    if !bytes.get(last).is_some_and(is_of_number) {
        return None;
    }
    let first = bytes[..last].iter().rposition(|byte| !is_of_number(byte))? + 1;
    let stand_in = [&bytes[..first], b"1e300", &bytes[last + 1..]].concat();
    let message = serde_json::from_slice::<T>(&stand_in).err()?.to_string();
    let expected = &message[message.find("expected ")?..message.rfind(" at line")?];
    Some(without_type_names(expected))
}

/// Typed path parameters; a bad UUID is 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Typed query parameters; unparsable ones are 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// A whole number in a query string where an empty value (`?limit=`) means
/// the default, as a left-out one does.
pub fn blank_as_default<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(number) => number
            .parse()
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("{number:?}: {error}"))),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => {
                let text = error.body_text();
                // "…into the target type": a name inside the service again.
                let text = text.strip_prefix(DATA_PREFIX).unwrap_or(&text);
                ApiError::Validation(quoting_at_most_a_little(in_json_terms(
                    &without_type_names(text),
                )))
            }
            // serde_json calls a number beyond every numeric type (`1e400`) a
            // syntax error, but the body is well-formed JSON (RFC 8259 sets
            // no limit): a value out of range, as `2^63` is.
            JsonRejection::JsonSyntaxError(error) if out_of_range(&error.body_text()) => {
                ApiError::Validation(quoting_at_most_a_little(error.body_text()))
            }
            JsonRejection::BytesRejection(error)
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge
            }
            other => ApiError::BadRequest(quoting_at_most_a_little(other.body_text())),
        }
    }
}

/// The parser's own message at the end of a rejection's text. The text is
/// the path to the value (the client's own keys), then the message, which
/// never holds `": "`: only that last part is read, so a key spelling a
/// message does not pass for it.
fn parser_message(text: &str) -> &str {
    text.rsplit(": ").next().unwrap_or(text)
}

/// Whether a syntax error's text is serde_json's for a number no numeric
/// type holds.
fn out_of_range(text: &str) -> bool {
    parser_message(text).starts_with("number out of range at line")
}

/// serde names the type it expected ("expected struct ChargeRequest",
/// "expected u32"): names inside the service, of no use to its clients,
/// who see JSON. A struct is a JSON object; a Rust integer a whole number
/// in its range.
fn without_type_names(text: &str) -> String {
    const EXPECTED: &str = "expected ";
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(EXPECTED) {
        let after = &rest[at + EXPECTED.len()..];
        let word_ends = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let (word, tail) = after.split_at(word_ends);
        plain.push_str(&rest[..at + EXPECTED.len()]);
        rest = match (word, JSON_TERMS.iter().find(|(rust, _)| *rust == word)) {
            ("struct", _) => {
                plain.push_str("a JSON object");
                let name = tail.trim_start_matches(' ');
                let name_ends = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                &name[name_ends..]
            }
            (_, Some((_, json))) => {
                plain.push_str(json);
                tail
            }
            _ => after,
        };
    }
    plain.push_str(rest);
    plain
}

/// serde's words for JSON's values ("invalid type: map, expected a
/// sequence") in JSON's own. Whole digits beyond 64 bits are read as a
/// float, and were told as "floating point `1e20`" to a client that wrote
/// none.
fn in_json_terms(text: &str) -> String {
    const TERMS: [(&str, &str); 5] = [
        ("invalid type: floating point `", "invalid value: number `"),
        ("invalid type: map,", "invalid type: a JSON object,"),
        ("invalid type: sequence,", "invalid type: a JSON array,"),
        ("expected a sequence", "expected a JSON array"),
        ("expected a map", "expected a JSON object"),
    ];
    TERMS.iter().fold(text.to_string(), |text, (serde, json)| {
        text.replace(serde, json)
    })
}

/// Rust's number types as a JSON client reads them.
const JSON_TERMS: [(&str, &str); 10] = [
    ("u8", "a whole number from 0 to 255"),
    ("u16", "a whole number from 0 to 65535"),
    ("u32", "a whole number from 0 to 4294967295"),
    ("u64", "a whole number from 0 to 18446744073709551615"),
    ("usize", "a whole number from 0 to 18446744073709551615"),
    ("i16", "a whole number from -32768 to 32767"),
    ("i32", "a whole number from -2147483648 to 2147483647"),
    (
        "i64",
        "a whole number from -9223372036854775808 to 9223372036854775807",
    ),
    ("f32", "a number"),
    ("f64", "a number"),
];

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(quoting_at_most_a_little(rejection.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        let text = quoting_at_most_a_little(rejection.body_text());
        // Digits beyond the field's type (`limit=99999999999999999999`) are
        // a number out of range, as `limit=5001` is; not a malformed query.
        if matches!(
            parser_message(&text),
            "number too large to fit in target type" | "number too small to fit in target type"
        ) {
            return ApiError::Validation(text);
        }
        ApiError::BadRequest(text)
    }
}

/// The most characters of a rejection's text sent back.
const MOST_QUOTED: usize = 300;

/// A rejection quotes what was sent (a path segment, a query value): an
/// answer need not carry 30 KB of the client's own head back to it.
fn quoting_at_most_a_little(text: String) -> String {
    match text.char_indices().nth(MOST_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct ChargeRequest {
        #[allow(dead_code)]
        amount: i64,
    }

    fn refusal(body: &str) -> ApiError {
        json_object::<ChargeRequest>(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_number_beyond_every_type_is_out_of_range_not_malformed() {
        for body in [r#"{"amount": 1e400}"#, r#"{"amount": -1e400}"#] {
            assert!(matches!(refusal(body), ApiError::Validation(_)), "{body}");
        }
        for malformed in [
            r#"{"amount": 1e}"#,
            r#"{"number out of range at line 1 column 2": tru}"#,
        ] {
            assert!(
                matches!(refusal(malformed), ApiError::BadRequest(_)),
                "{malformed}"
            );
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct BoundedCharge {
        #[allow(dead_code)]
        amount: crate::api::bounded::Bounded<1, 1_000_000_000>,
        #[allow(dead_code)]
        note: Option<f64>,
    }

    #[test]
    fn a_number_beyond_every_type_is_told_the_range_its_field_takes() {
        for body in [
            r#"{"amount": 1e400}"#,
            r#"{"amount":-1E+400}"#,
            "{\n  \"note\": 1,\n  \"amount\":\n 1.5e400 }",
            &format!(r#"{{"amount": 1{}}}"#, "0".repeat(400)),
        ] {
            let refusal = json_object::<BoundedCharge>(body.as_bytes()).unwrap_err();
            let ApiError::Validation(detail) = refusal else {
                panic!("{body}: {refusal:?}");
            };
            assert!(
                detail.starts_with("amount: number out of range at line")
                    && detail.ends_with(", expected a whole number from 1 to 1000000000"),
                "{body}: {detail}"
            );
        }
        // A field that takes any number has no range to tell.
        let refusal = json_object::<BoundedCharge>(br#"{"amount": 1, "note": 1e400}"#);
        let Err(ApiError::Validation(detail)) = refusal else {
            panic!("{refusal:?}");
        };
        assert_eq!(detail, "note: number out of range at line 1 column 27");
    }

    #[test]
    fn digits_beyond_64_bits_are_not_called_floating_point() {
        for body in [r#"{"amount": 99999999999999999999}"#, r#"{"amount": 1.5}"#] {
            let refusal = json_object::<BoundedCharge>(body.as_bytes()).unwrap_err();
            let ApiError::Validation(detail) = refusal else {
                panic!("{body}: {refusal:?}");
            };
            assert!(
                detail.starts_with("amount: invalid value: number `")
                    && detail.contains("`, expected a whole number from 1 to 1000000000 at line 1"),
                "{body}: {detail}"
            );
        }
    }

    #[test]
    fn malformed_json_is_malformed_whatever_comes_before_the_fault() {
        for malformed in [
            r#"{"amount": "5"} garbage"#,
            "{} garbage",
            r#"{"amount": 1.5,"#,
            r#"{"amount": null"#,
            "123abc",
            "[",
            "[1,",
            "[}",
        ] {
            assert!(
                matches!(refusal(malformed), ApiError::BadRequest(_)),
                "{malformed}"
            );
        }
        for wrong_shape in [r#"{"amount": "5"}"#, "[1]", "{}", "null"] {
            assert!(
                matches!(refusal(wrong_shape), ApiError::Validation(_)),
                "{wrong_shape}"
            );
        }
    }

    #[test]
    fn a_long_key_in_malformed_json_is_not_sent_back_whole() {
        let body = format!(r#"{{"{}": tru}}"#, "k".repeat(60_000));
        let ApiError::BadRequest(detail) = refusal(&body) else {
            panic!("not a bad request");
        };
        assert!(
            detail.chars().count() <= MOST_QUOTED + 1,
            "{}",
            detail.len()
        );
    }

    #[test]
    fn values_are_named_as_json_names_them() {
        #[derive(Debug, serde::Deserialize)]
        struct Dates {
            #[allow(dead_code)]
            dates: Vec<u32>,
        }
        let refusal = |body: &str| match json_object::<Dates>(body.as_bytes()) {
            Err(ApiError::Validation(detail)) => detail,
            other => panic!("{body}: {other:?}"),
        };
        let detail = refusal(r#"{"dates": {}}"#);
        assert!(
            detail.contains("invalid type: a JSON object, expected a JSON array"),
            "{detail}"
        );
        let detail = refusal(r#"{"dates": [[]]}"#);
        assert!(detail.contains("invalid type: a JSON array,"), "{detail}");
    }

    #[test]
    fn a_long_quote_is_cut() {
        let long = "é".repeat(MOST_QUOTED + 50);
        let cut = quoting_at_most_a_little(long);
        assert_eq!(cut.chars().count(), MOST_QUOTED + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(quoting_at_most_a_little("short".into()), "short");
    }

    #[test]
    fn a_refusal_names_no_type_of_the_service() {
        let ApiError::Validation(detail) = refusal("null") else {
            panic!("not a validation failure");
        };
        assert!(detail.contains("expected a JSON object"), "{detail}");
        assert!(!detail.contains("ChargeRequest"), "{detail}");
        assert!(!detail.contains("target type"), "{detail}");
        assert_eq!(
            without_type_names("invalid type: map, expected struct A_b1 at line 1"),
            "invalid type: map, expected a JSON object at line 1"
        );
        let ApiError::Validation(detail) = refusal(r#"{"amount": "5"}"#) else {
            panic!("not a validation failure");
        };
        assert!(
            detail.contains("expected a whole number from -9223372036854775808 to"),
            "{detail}"
        );
        assert_eq!(
            without_type_names("invalid value: integer `4294967296`, expected u32 at line 1"),
            "invalid value: integer `4294967296`, expected a whole number from 0 to 4294967295 at line 1"
        );
        // Words that are no type are left as they are.
        assert_eq!(
            without_type_names("expected a string, expected u32x, expected"),
            "expected a string, expected u32x, expected"
        );
    }
}
