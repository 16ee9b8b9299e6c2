//! The headers a JSON body is sent with: its media type, and neither a
//! content coding nor a transfer coding but `chunked`.

use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::HeaderMap;

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
    let media_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    let is_json = media_type.as_deref().is_some_and(|essence| {
        essence == "application/json"
            || essence
                .strip_prefix("application/")
                .is_some_and(|subtype| subtype.ends_with("+json"))
    });
    if !is_json {
        return Err(ApiError::BadRequest(
            "Expected request with `Content-Type: application/json`".into(),
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
    if !headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .all(|value| value.to_str().is_ok_and(only_chunked))
    {
        return Err(ApiError::BadRequest(
            "a Transfer-Encoding other than chunked is not supported: send the body \
             unencoded, with a Content-Length or chunked alone"
                .into(),
        ));
    }
    Ok(())
}

/// Whether a Transfer-Encoding header lists `chunked` and nothing else.
fn only_chunked(codings: &str) -> bool {
    codings
        .split(',')
        .map(str::trim)
        .filter(|coding| !coding.is_empty())
        .all(|coding| coding.eq_ignore_ascii_case("chunked"))
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
