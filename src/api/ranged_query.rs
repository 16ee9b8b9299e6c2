//! Query parameters with whole numbers, whose digits may run past their
//! type: such a number is out of range (`422`), as `limit=5001` is, and is
//! said so after the credential's check, as every range is; a query that
//! does not parse is `400` at once (README, "Order of checks").

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The parameters, or the out-of-range refusal kept for `in_range`.
pub struct RangedQuery<T>(Result<T, ApiError>);

impl<T> RangedQuery<T> {
    /// The parameters; called once the credential is checked.
    pub fn in_range(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T, S> FromRequestParts<S> for RangedQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(parameters)) => Ok(Self(Ok(parameters))),
            Err(rejection) => match ApiError::from(rejection) {
                refusal @ ApiError::Validation(_) => Ok(Self(Err(refusal))),
                malformed => Err(malformed),
            },
        }
    }
}
