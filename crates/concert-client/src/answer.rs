//! What a server answered: status, content type and body bytes, kept raw so
//! that each caller decides what a status means. Helpers decode the body into
//! a response type, or into the problem document every error carries.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::Error;

/// Most bytes of a body quoted in an error.
const EXCERPT_BYTES: usize = 300;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    /// The `X-Correlation-Id` header, empty when absent: the id that every
    /// event written by this request carries in its metadata.
    pub correlation_id: String,
    /// The whole body, as sent.
    pub body: Vec<u8>,
}

/// An RFC 9457 problem document, as every error of the API is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Machine-readable, from the table of error codes (`seat_unavailable`...).
    pub code: String,
    #[serde(default)]
    pub instance: Option<String>,
}

impl Answer {
    /// The body as `T` when the status is one of `expected`; otherwise an
    /// error naming `what`, the status and the start of the body.
    pub fn json<T: DeserializeOwned>(&self, what: &str, expected: &[u16]) -> Result<T, Error> {
        if !expected.contains(&self.status) {
            return Err(Error::Unexpected {
                what: what.to_string(),
                status: self.status,
                excerpt: String::from_utf8_lossy(&self.body[..self.body.len().min(EXCERPT_BYTES)])
                    .into_owned(),
            });
        }
        serde_json::from_slice(&self.body).map_err(|source| Error::Body {
            what: what.to_string(),
            source,
        })
    }

    /// The body as a problem document, if it is one.
    pub fn problem(&self) -> Option<Problem> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The problem document's `code`, if the body is one.
    pub fn code(&self) -> Option<String> {
        self.problem().map(|problem| problem.code)
    }

    /// Whether this is an error as the API promises them: a problem document,
    /// sent as `application/problem+json`, whose `status` is the answer's.
    pub fn is_problem(&self) -> bool {
        self.content_type.starts_with("application/problem+json")
            && self
                .problem()
                .is_some_and(|problem| problem.status == self.status)
    }

    /// The body as text, for messages.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: &str, body: &str) -> Answer {
        Answer {
            status,
            content_type: content_type.to_string(),
            correlation_id: String::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    const SEAT_TAKEN: &str = r#"{"type":"/problems/seat-unavailable","title":"Seat unavailable","status":409,"detail":"seat 17 is held","code":"seat_unavailable"}"#;

    #[test]
    fn a_problem_document_decodes_with_its_code() {
        let answer = answer(409, "application/problem+json", SEAT_TAKEN);

        let problem = answer.problem().expect("a problem");

        assert_eq!(problem.kind, "/problems/seat-unavailable");
        assert_eq!(problem.detail, "seat 17 is held");
        assert_eq!(answer.code().as_deref(), Some("seat_unavailable"));
        assert!(answer.is_problem());
    }

    #[test]
    fn a_problem_needs_its_content_type_and_matching_status() {
        assert!(!answer(409, "application/json", SEAT_TAKEN).is_problem());
        assert!(!answer(500, "application/problem+json", SEAT_TAKEN).is_problem());
    }

    #[test]
    fn a_body_without_the_problem_fields_is_no_problem() {
        let answer = answer(409, "application/problem+json", r#"{"code":"x"}"#);

        assert_eq!(answer.problem(), None);
        assert_eq!(answer.code(), None);
        assert!(!answer.is_problem());
    }

    #[test]
    fn an_unexpected_status_names_the_call_and_quotes_the_body() {
        let answer = answer(409, "application/problem+json", SEAT_TAKEN);

        let error = answer
            .json::<serde_json::Value>("hold", &[201])
            .unwrap_err();

        assert!(matches!(error, Error::Unexpected { status: 409, .. }));
        assert_eq!(error.to_string(), format!("hold: HTTP 409 {SEAT_TAKEN}"));
    }

    #[test]
    fn an_expected_status_decodes_the_body() {
        let answer = answer(
            200,
            "application/json",
            r#"{"user_id":"00000000-0000-0000-0000-000000000000","balance":7}"#,
        );

        let balance: crate::Balance = answer.json("balance", &[200]).unwrap();

        assert_eq!(balance.balance, 7);
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_body_error() {
        let error = answer(200, "application/json", "[]")
            .json::<crate::Balance>("balance", &[200])
            .unwrap_err();

        assert!(matches!(error, Error::Body { .. }));
        assert!(error.to_string().starts_with("balance: bad body: "));
    }
}
