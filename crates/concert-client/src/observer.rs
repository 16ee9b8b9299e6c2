//! The seam through which a caller watches every call without wrapping the
//! client: the load generator times calls into its statistics, the
//! reliability tests count and check every answer. The observer is told after
//! each call, answered or not; minting a user token is a call like the others
//! (endpoint `sign-in`).

use std::time::Duration;

use crate::answer::Answer;

/// One finished call, as an observer sees it.
#[derive(Debug)]
pub struct Call<'a> {
    /// The endpoint's name, e.g. `hold`, `pay`, `sign-in`.
    pub endpoint: &'static str,
    /// The answer, or why none came.
    pub outcome: Result<&'a Answer, &'a reqwest::Error>,
    /// From sending the request to the last byte of the body.
    pub elapsed: Duration,
}

impl Call<'_> {
    /// The answer's status; `None` when no answer came.
    pub fn status(&self) -> Option<u16> {
        self.outcome.as_ref().ok().map(|answer| answer.status)
    }
}

/// Told of every call a client makes.
pub trait Observer: Send + Sync {
    /// Called once the call is over, on the task that made it: keep it quick.
    fn observe(&self, call: &Call<'_>);
}

impl<F> Observer for F
where
    F: Fn(&Call<'_>) + Send + Sync,
{
    fn observe(&self, call: &Call<'_>) {
        self(call)
    }
}
