//! The service as its own issuer: an HS256 key kept in the database, shared
//! by every instance like the queue-token secret, that mints and verifies.

use std::sync::Arc;
use std::time::Duration;

use chrono::SubsecRound;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{
    current, validation, Claims, IdentitySettings, MintedToken, TokenRefused, LEEWAY_SECS,
    TTL_RANGE_SECS,
};
use crate::ids::UserId;

/// `iss` of minted tokens when `CONCERT_AUTH_ISSUER` is unset.
const DEFAULT_ISSUER: &str = "concert";

/// Mints and verifies user tokens with the database's signing key.
#[derive(Clone)]
pub struct OwnIssuer(Arc<Inner>);

struct Inner {
    key_id: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    audience: Option<String>,
    validation: jsonwebtoken::Validation,
}

impl std::fmt::Debug for OwnIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnIssuer({})", self.0.key_id)
    }
}

impl OwnIssuer {
    /// The issuer with the database's signing key, created on first use.
    pub async fn from_database(pool: &PgPool, settings: &IdentitySettings) -> sqlx::Result<Self> {
        let secret = crate::db::server_secret(pool, "user_tokens").await?;
        Ok(Self::new(&secret, settings))
    }

    /// An issuer with the given secret.
    pub fn new(secret: &[u8], settings: &IdentitySettings) -> Self {
        let issuer = settings
            .issuer
            .clone()
            .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        let audience = settings.audience.clone();
        // The key id names the key without revealing it, so a rotated key is told apart.
        let key_id = format!("concert-{}", &hex::encode(Sha256::digest(secret))[..16]);
        Self(Arc::new(Inner {
            validation: validation(Algorithm::HS256, Some(&issuer), audience.as_deref()),
            key_id,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer,
            audience,
        }))
    }

    /// A token for `user_id`, valid for `ttl` from now.
    pub fn mint(&self, user_id: UserId, ttl: Duration) -> MintedToken {
        // Whole seconds, as the claims carry them: `expires_at` is `exp`.
        let now = crate::clock::now().trunc_subsecs(0);
        let expires_at = now + ttl;
        let mut claims = serde_json::json!({
            "sub": user_id.to_string(),
            "iss": self.0.issuer,
            "iat": now.timestamp(),
            "nbf": now.timestamp(),
            "exp": expires_at.timestamp(),
        });
        if let Some(audience) = &self.0.audience {
            claims["aud"] = audience.clone().into();
        }
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.0.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.0.encoding)
            .expect("HS256 signs any claims");
        MintedToken {
            token,
            user_id,
            expires_at,
        }
    }

    /// The claims of a token this key signed, if it is current.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenRefused> {
        let header = super::header_of(token)?;
        if header
            .kid
            .as_deref()
            .is_some_and(|kid| kid != self.0.key_id)
        {
            return Err(TokenRefused::UnknownKey);
        }
        let now = crate::clock::now();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.0.decoding, &self.0.validation)?;
        let claims = current(claims.claims, now)?;
        // No token this key minted lives longer than the longest lifetime;
        // one that claims to is not of our minting, whatever its signature.
        let latest_exp = now.timestamp() + (*TTL_RANGE_SECS.end() + LEEWAY_SECS) as i64;
        if claims.exp > latest_exp as f64 {
            return Err(TokenRefused::Invalid(
                "exp is later than any minted token's".into(),
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserTokens;
    use chrono::Utc;

    fn issuer(secret: u8) -> OwnIssuer {
        OwnIssuer::new(&[secret; 32], &IdentitySettings::default())
    }

    fn sign(claims: serde_json::Value, algorithm: Algorithm, secret: &[u8]) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn a_minted_token_verifies_to_its_user() {
        let tokens = UserTokens::Own(issuer(7));
        let user = UserId::new();
        let minted = tokens.mint(user, Duration::from_secs(60)).unwrap();
        assert_eq!(tokens.verify(&minted.token), Ok(user));
    }

    #[test]
    fn another_key_or_a_changed_signature_is_refused() {
        let minted = issuer(7).mint(UserId::new(), Duration::from_secs(60));
        assert_eq!(
            issuer(8).verify(&minted.token).unwrap_err(),
            TokenRefused::UnknownKey
        );
        // A middle character: the last one's low bits may be padding.
        let mut tampered: Vec<char> = minted.token.chars().collect();
        let at = tampered.len() - 5;
        tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        assert!(issuer(7).verify(&tampered).is_err());
    }

    #[test]
    fn expired_beyond_the_leeway_is_refused_and_within_it_accepted() {
        let now = Utc::now().timestamp();
        let claims = |exp: i64| serde_json::json!({"sub": UserId::new().to_string(), "iss": "concert", "exp": exp});
        let issuer = issuer(7);
        assert!(issuer
            .verify(&sign(claims(now - 120), Algorithm::HS256, &[7; 32]))
            .is_err());
        assert!(issuer
            .verify(&sign(claims(now - 30), Algorithm::HS256, &[7; 32]))
            .is_ok());
    }

    #[test]
    fn not_yet_valid_beyond_the_leeway_is_refused() {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "sub": UserId::new().to_string(), "iss": "concert", "exp": now + 3600, "nbf": now + 600
        });
        assert!(issuer(7)
            .verify(&sign(claims, Algorithm::HS256, &[7; 32]))
            .is_err());
    }

    #[test]
    fn fractional_numeric_dates_are_read_as_the_times_they_are() {
        // RFC 7519 §2: a NumericDate may be non-integer (`time.time() + ttl`).
        let now = Utc::now().timestamp() as f64 + 0.25;
        let claims = |exp: f64, nbf: f64| serde_json::json!({"sub": UserId::new().to_string(), "iss": "concert", "exp": exp, "nbf": nbf});
        let verify = |claims| issuer(7).verify(&sign(claims, Algorithm::HS256, &[7; 32]));
        assert!(verify(claims(now + 3600.5, now - 0.5)).is_ok());
        assert!(
            verify(claims(now - 30.5, now - 3600.5)).is_ok(),
            "within the leeway"
        );
        assert!(
            verify(claims(now - 120.5, now - 3600.5)).is_err(),
            "expired"
        );
        assert!(
            verify(claims(now + 3600.5, now + 600.5)).is_err(),
            "not yet valid"
        );
    }

    #[test]
    fn time_claims_of_the_wrong_type_are_refused_not_skipped() {
        // A string `nbf` or `exp` must not read as an absent one.
        let now = Utc::now().timestamp();
        let sub = UserId::new().to_string();
        for claims in [
            serde_json::json!({"sub": sub, "iss": "concert", "exp": now + 3600, "nbf": (now + 600).to_string()}),
            serde_json::json!({"sub": sub, "iss": "concert", "exp": (now + 3600).to_string()}),
            serde_json::json!({"sub": sub, "iss": "concert", "exp": null}),
            serde_json::json!({"sub": sub, "iss": "concert", "exp": [now + 3600]}),
            serde_json::json!({"sub": sub, "iss": "concert", "exp": now + 3600, "nbf": true}),
            serde_json::json!({"sub": sub, "iss": "concert", "exp": now + 3600, "nbf": null}),
        ] {
            assert!(
                issuer(7)
                    .verify(&sign(claims.clone(), Algorithm::HS256, &[7; 32]))
                    .is_err(),
                "{claims}"
            );
        }
    }

    #[test]
    fn a_token_without_exp_or_of_another_algorithm_or_issuer_is_refused() {
        let sub = UserId::new().to_string();
        let exp = Utc::now().timestamp() + 3600;
        let issuer = issuer(7);
        let no_exp = serde_json::json!({"sub": sub, "iss": "concert"});
        assert!(issuer
            .verify(&sign(no_exp, Algorithm::HS256, &[7; 32]))
            .is_err());
        let good = serde_json::json!({"sub": sub, "iss": "concert", "exp": exp});
        assert!(issuer
            .verify(&sign(good.clone(), Algorithm::HS512, &[7; 32]))
            .is_err());
        let foreign = serde_json::json!({"sub": sub, "iss": "elsewhere", "exp": exp});
        assert!(issuer
            .verify(&sign(foreign, Algorithm::HS256, &[7; 32]))
            .is_err());
        assert!(issuer
            .verify(&sign(good, Algorithm::HS256, &[7; 32]))
            .is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine as _;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let claims = serde_json::json!({
            "sub": UserId::new().to_string(), "iss": "concert", "exp": Utc::now().timestamp() + 3600
        });
        for alg in ["none", "None", "NONE"] {
            let token = format!(
                "{}.{}.",
                b64(serde_json::json!({"alg": alg, "typ": "JWT"})),
                b64(claims.clone())
            );
            assert!(issuer(7).verify(&token).is_err(), "{alg}");
        }
    }

    #[test]
    fn a_subject_that_is_no_user_id_is_refused() {
        let claims = serde_json::json!({
            "sub": "admin", "iss": "concert", "exp": Utc::now().timestamp() + 3600
        });
        let tokens = UserTokens::Own(issuer(7));
        assert_eq!(
            tokens.verify(&sign(claims, Algorithm::HS256, &[7; 32])),
            Err(TokenRefused::BadSubject)
        );
    }

    #[test]
    fn a_subject_in_another_spelling_of_a_uuid_is_refused() {
        let user = uuid::Uuid::new_v4();
        let tokens = UserTokens::Own(issuer(7));
        let exp = Utc::now().timestamp() + 3600;
        let token = |sub: String| {
            sign(
                serde_json::json!({"sub": sub, "iss": "concert", "exp": exp}),
                Algorithm::HS256,
                &[7; 32],
            )
        };
        for sub in [
            user.urn().to_string(),
            user.braced().to_string(),
            user.simple().to_string(),
            user.to_string().to_uppercase(),
        ] {
            assert_eq!(
                tokens.verify(&token(sub.clone())),
                Err(TokenRefused::BadSubject),
                "{sub}"
            );
        }
        assert_eq!(tokens.verify(&token(user.to_string())), Ok(UserId(user)));
    }

    #[test]
    fn an_issuer_that_is_not_one_string_is_refused() {
        let claims = serde_json::json!({
            "sub": UserId::new().to_string(),
            "iss": ["elsewhere", "concert"],
            "exp": Utc::now().timestamp() + 3600
        });
        assert!(issuer(7)
            .verify(&sign(claims, Algorithm::HS256, &[7; 32]))
            .is_err());
    }

    #[test]
    fn an_exp_later_than_any_minted_token_is_refused() {
        let now = Utc::now().timestamp();
        let claims = |exp: i64| serde_json::json!({"sub": UserId::new().to_string(), "iss": "concert", "exp": exp});
        let longest = *TTL_RANGE_SECS.end() as i64;
        assert!(issuer(7)
            .verify(&sign(claims(now + longest), Algorithm::HS256, &[7; 32]))
            .is_ok());
        for exp in [now + longest + 3600, i64::MAX] {
            assert!(issuer(7)
                .verify(&sign(claims(exp), Algorithm::HS256, &[7; 32]))
                .is_err());
        }
    }
}
