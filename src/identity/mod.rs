//! User tokens: who the caller is. A JWT (RFC 7519) whose `sub` is the user's
//! id, verified either against the identity provider's JWKS file or, when none
//! is configured, against the service's own signing key, which also mints them.

mod jwk_checks;
mod jwks;
mod own_issuer;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use jwks::JwksFile;
pub use own_issuer::OwnIssuer;

use crate::ids::UserId;

/// Clock skew forgiven on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 60;
/// Shortest and longest lifetime of a minted token, in seconds.
pub const TTL_RANGE_SECS: std::ops::RangeInclusive<u64> = 60..=86_400;
/// Lifetime of a minted token when none is asked for, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3_600;

/// Where user tokens come from.
#[derive(Debug, Clone, Default)]
pub struct IdentitySettings {
    /// The identity provider's public keys; unset makes the service its own issuer.
    pub jwks_file: Option<PathBuf>,
    /// `iss` every token must carry, when set.
    pub issuer: Option<String>,
    /// `aud` every token must name, when set.
    pub audience: Option<String>,
}

/// Why a user token was refused. Every case is `401 token_invalid` to the
/// caller; the cause is for logs and tests.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenRefused {
    #[error("not a JWT signed by a trusted key: {0}")]
    Invalid(String),
    #[error("no trusted key has the token's kid")]
    UnknownKey,
    #[error("the subject is not a user id")]
    BadSubject,
}

impl From<jsonwebtoken::errors::Error> for TokenRefused {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        TokenRefused::Invalid(error.to_string())
    }
}

/// The claims this service reads (`iss` and `aud` are checked by the
/// validation); `exp` is required, `nbf` honoured. Both are NumericDates
/// (RFC 7519 §2): seconds since the epoch, whole or not (many libraries
/// write `time.time() + ttl` as it is). A string is refused, not skipped.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: f64,
    /// Absent or a number: `null` is refused like any other type.
    #[serde(default, deserialize_with = "a_number")]
    pub nbf: Option<f64>,
    /// Read only to refuse what is not one string (RFC 7519 §4.1.1): the
    /// validation would take an array naming the issuer among others.
    #[serde(default, rename = "iss")]
    _issuer: Option<String>,
}

/// A claim that, when present, is a number (`Option` reads `null` as absent).
fn a_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(deserializer).map(Some)
}

/// A token the service minted.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
}

/// Verifies user tokens, and mints them when the service is its own issuer.
#[derive(Clone, Debug)]
pub enum UserTokens {
    /// The service's own HS256 key, kept in the database.
    Own(OwnIssuer),
    /// The public keys of the identity provider the deployment trusts.
    Jwks(JwksFile),
}

impl UserTokens {
    /// The verifier the settings ask for: the JWKS file (read now, so a bad
    /// file stops the start) or the database's signing key.
    pub async fn from_settings(
        settings: &IdentitySettings,
        pool: &PgPool,
    ) -> Result<Self, IdentityError> {
        match &settings.jwks_file {
            Some(path) => {
                if settings.audience.is_none() {
                    tracing::warn!(
                        "CONCERT_AUTH_AUDIENCE is unset: a token the identity provider issued for any of its other services is accepted here too"
                    );
                }
                Ok(UserTokens::Jwks(JwksFile::open(path.clone(), settings)?))
            }
            None => Ok(UserTokens::Own(
                OwnIssuer::from_database(pool, settings).await?,
            )),
        }
    }

    /// The user a genuine, current token names.
    pub fn verify(&self, token: &str) -> Result<UserId, TokenRefused> {
        let claims = match self {
            UserTokens::Own(issuer) => issuer.verify(token)?,
            UserTokens::Jwks(keys) => keys.verify(token)?,
        };
        user_of(&claims.sub)
    }

    /// Whether the service mints user tokens (no identity provider issues them).
    pub fn mints(&self) -> bool {
        matches!(self, UserTokens::Own(_))
    }

    /// Mints a token for `user_id`; `None` when an identity provider issues them.
    pub fn mint(&self, user_id: UserId, ttl: Duration) -> Option<MintedToken> {
        match self {
            UserTokens::Own(issuer) => Some(issuer.mint(user_id, ttl)),
            UserTokens::Jwks(_) => None,
        }
    }
}

/// The header of a token this service can honour. A `crit` header names
/// extensions the receiver must understand or refuse the token (RFC 7515
/// §4.1.11); this service understands none, and an empty list is itself
/// invalid, so a token carrying one is refused. Before, it was ignored: a
/// token a provider limited to receivers of an extension was accepted here.
fn header_of(token: &str) -> Result<jsonwebtoken::Header, TokenRefused> {
    let header = jsonwebtoken::decode_header(token)?;
    if let Some(critical) = &header.crit {
        return Err(TokenRefused::Invalid(format!(
            "the token's crit header names extensions this service does not understand: {critical:?}"
        )));
    }
    Ok(header)
}

/// The claims of a token that is current at `now`, with the leeway:
/// `exp` not passed, `nbf` reached. jsonwebtoken reads both as whole
/// seconds only, so they are checked here.
fn current(claims: Claims, now: DateTime<Utc>) -> Result<Claims, TokenRefused> {
    let now = now.timestamp_micros() as f64 / 1e6;
    let leeway = LEEWAY_SECS as f64;
    if claims.exp < now - leeway {
        return Err(TokenRefused::Invalid("the token has expired".into()));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TokenRefused::Invalid("the token is not valid yet".into()));
    }
    Ok(claims)
}

/// The user a `sub` names: a UUID written as every id of the API is, hyphenated
/// and in lower case. `sub` is compared as a string (RFC 7519), so
/// `urn:uuid:…`, `{…}`, 32 bare digits or upper case are other subjects to an
/// identity provider, and must not all open one wallet.
fn user_of(sub: &str) -> Result<UserId, TokenRefused> {
    match Uuid::try_parse(sub) {
        Ok(id) if id.hyphenated().to_string() == sub => Ok(UserId(id)),
        _ => Err(TokenRefused::BadSubject),
    }
}

/// Why the identity settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("JWKS file {path}: {reason}")]
    Jwks { path: PathBuf, reason: String },
}

/// The checks jsonwebtoken makes of every user token, for a key of
/// algorithm `algorithm`: `sub` required, and `iss`/`aud` when the settings
/// name them. `exp` (required by `Claims`) and `nbf` are `current`'s.
fn validation(algorithm: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut required = vec!["sub"];
    if let Some(issuer) = issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // With no audience configured, whatever `aud` a token names is not ours to judge.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}
