//! The headers a JSON body is sent with: its media type, and neither a
//! content coding nor a transfer coding but `chunked`.

use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue};

use super::error::ApiError;

/// A JSON media type (`application/json` or `…+json`, parameters and the
/// spaces RFC 9110 allows around them aside), and no content coding: a
/// gzip body read as plain JSON fails with a message about the wrong thing,
/// and a plain one labelled gzip is not what its sender meant.
pub fn check_json_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    // Two would leave the body's type to whichever one is read.
    if headers.get_all(CONTENT_TYPE).iter().nth(1).is_some() {
        return Err(ApiError::BadRequest(
            "more than one Content-Type header: send one, `application/json`".into(),
        ));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let is_json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .and_then(|subtype| subtype.strip_suffix("+json"))
            .is_some_and(|name| !name.is_empty());
    if !is_json {
        return Err(ApiError::BadRequest(
            "Expected request with `Content-Type: application/json`".into(),
        ));
    }
    // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset
    // was read as UTF-8 all the same.
    if parts.any(declares_another_charset) {
        return Err(ApiError::BadRequest(
            "JSON is UTF-8: send the body with `charset=utf-8`, or with no charset".into(),
        ));
    }
    let encodings = headers.get_all(CONTENT_ENCODING);
    if encodings.iter().any(|value| {
        !value
            .to_str()
            .is_ok_and(|value| value.trim().eq_ignore_ascii_case("identity"))
    }) {
        return Err(ApiError::BadRequest(
            "Content-Encoding is not supported: send the body unencoded".into(),
        ));
    }
    // hyper undoes `chunked`, the framing, and nothing else: a body sent as
    // `gzip, chunked` would reach the handler still gzipped.
    let mut transfer_codings = headers.get_all(TRANSFER_ENCODING).iter();
    if transfer_codings
        .next()
        .is_some_and(|first| !only_chunked(first))
        || transfer_codings.next().is_some()
    {
        return Err(ApiError::BadRequest(
            "a Transfer-Encoding other than chunked is not supported: send the body \
             unencoded, with a Content-Length or chunked alone"
                .into(),
        ));
    }
    Ok(())
}

/// Whether a media type's parameter is a `charset` other than UTF-8.
fn declares_another_charset(parameter: &str) -> bool {
    let Some((name, value)) = parameter.split_once('=') else {
        return false;
    };
    let value = value.trim().trim_matches('"');
    name.trim().eq_ignore_ascii_case("charset") && !value.eq_ignore_ascii_case("utf-8")
}

/// Whether a Transfer-Encoding header is `chunked` and nothing else: once
/// (RFC 9112 §6.1 forbids chunking twice), with no other coding.
fn only_chunked(codings: &HeaderValue) -> bool {
    let Ok(codings) = codings.to_str() else {
        return false;
    };
    let mut codings = codings.split(',').map(str::trim).filter(|c| !c.is_empty());
    codings
        .next()
        .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
        && codings.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        for (name, value) in extra {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    fn with_content_type(content_type: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn json_is_a_json_media_type_in_utf_8() {
        for fine in [
            "application/json",
            "Application/JSON ; charset=UTF-8",
            "application/json;charset=\"utf-8\"",
            "application/problem+json",
            "application/json; foo=bar",
        ] {
            assert!(
                check_json_headers(&with_content_type(fine)).is_ok(),
                "{fine}"
            );
        }
        for refused in [
            "application/+json",
            "text/json",
            "application/json; charset=utf-16",
            "application/json; charset=latin1",
            "application/json; charset=\"iso-8859-1\"",
        ] {
            assert!(
                matches!(
                    check_json_headers(&with_content_type(refused)),
                    Err(ApiError::BadRequest(_))
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn chunked_alone_is_the_one_transfer_coding_a_body_may_have() {
        for fine in [
            &[][..],
            &[("transfer-encoding", "chunked")],
            &[("transfer-encoding", " Chunked ")],
        ] {
            assert!(check_json_headers(&json_headers(fine)).is_ok(), "{fine:?}");
        }
        for coded in [
            &[("transfer-encoding", "gzip, chunked")][..],
            &[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "deflate,chunked")],
            &[("transfer-encoding", "chunked, chunked")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        ] {
            assert!(
                matches!(
                    check_json_headers(&json_headers(coded)),
                    Err(ApiError::BadRequest(_))
                ),
                "{coded:?}"
            );
        }
    }
}
