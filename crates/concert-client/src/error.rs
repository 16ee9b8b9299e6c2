//! What can go wrong with a call, kept apart by cause: no answer at all, an
//! answer of a status the caller did not expect, or a body of the wrong shape.

/// An error of the client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client was given no server to talk to.
    #[error("no server URL given")]
    NoServer,
    /// The HTTP client could not be built (e.g. no TLS backend).
    #[error(transparent)]
    Setup(reqwest::Error),
    /// No HTTP answer: connection refused or reset, or the client's timeout.
    #[error("{endpoint}: {source}")]
    Transport {
        endpoint: &'static str,
        source: reqwest::Error,
    },
    /// An answer whose status the caller did not expect.
    #[error("{what}: HTTP {status} {excerpt}")]
    Unexpected {
        what: String,
        status: u16,
        /// The start of the body.
        excerpt: String,
    },
    /// An expected status whose body is not the promised shape.
    #[error("{what}: bad body: {source}")]
    Body {
        what: String,
        source: serde_json::Error,
    },
}

impl Error {
    /// The status of an unexpected answer; `None` when there was no answer
    /// or the answer was expected.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}
