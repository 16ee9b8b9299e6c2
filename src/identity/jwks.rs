//! The identity provider's public keys, from a JWKS file (RFC 7517) that is
//! read again when it changes, so keys rotate without a restart.
//!
//! Each key verifies only with the algorithm of its type (RSA: RS256, P-256:
//! ES256, Ed25519: EdDSA), never the one a token's header asks for, so
//! neither `alg: none` nor an HMAC signed with a public key gets through.
//! Symmetric and unsupported keys in the file are left out.
//!
//! A token's `kid` picks its key, with its `alg` among keys that share one
//! `kid` (RFC 7517 §4.5 allows that for keys of different types). A token
//! without `kid` is tried against each key of its algorithm.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use sha2::{Digest, Sha256};

use super::jwk_checks::{algorithm_of, check_modulus, check_purpose, has_private_part};
use super::{current, validation, Claims, IdentityError, IdentitySettings, TokenRefused};

/// How long a read of the file is trusted before it is looked at again; a
/// token no known key signed looks at once.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

/// Verifies user tokens against the keys of a JWKS file.
#[derive(Clone)]
pub struct JwksFile(Arc<Inner>);

struct Inner {
    path: PathBuf,
    issuer: Option<String>,
    audience: Option<String>,
    loaded: RwLock<Loaded>,
}

/// The keys of one read of the file.
struct Loaded {
    keys: Vec<TrustedKey>,
    version: Option<FileVersion>,
    checked_at: Instant,
}

struct TrustedKey {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
    validation: Validation,
}

impl TrustedKey {
    /// Whether this key may have signed a token of this header.
    fn fits(&self, header: &Header) -> bool {
        self.algorithm == header.alg
            && (header.kid.is_none() || header.kid.as_deref() == self.kid.as_deref())
    }
}

/// One content of the file: its digest. The file is small, so it is read
/// to be compared; its time and size can stay the same across a rewrite.
#[derive(Debug, Clone, PartialEq)]
struct FileVersion([u8; 32]);

impl std::fmt::Debug for JwksFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwksFile({})", self.0.path.display())
    }
}

impl JwksFile {
    /// Reads the file now: a missing or unreadable file stops the start.
    pub fn open(path: PathBuf, settings: &IdentitySettings) -> Result<Self, IdentityError> {
        let inner = Inner {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            loaded: RwLock::new(Loaded {
                keys: Vec::new(),
                version: None,
                checked_at: Instant::now(),
            }),
            path,
        };
        let (keys, version) = inner.read().map_err(|reason| IdentityError::Jwks {
            path: inner.path.clone(),
            reason,
        })?;
        if keys.is_empty() {
            // Valid (a provider may publish keys later), but every token is refused until then.
            tracing::warn!(path = %inner.path.display(), "the JWKS file has no usable key: every user token is refused until it has one");
        } else {
            tracing::info!(path = %inner.path.display(), keys = keys.len(), "user tokens verified against the JWKS file");
        }
        *inner.loaded.write().expect("not poisoned") = Loaded {
            keys,
            version: Some(version),
            checked_at: Instant::now(),
        };
        Ok(Self(Arc::new(inner)))
    }

    /// The claims of a token signed by one of the file's keys, if it is current.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenRefused> {
        let header = super::header_of(token)?;
        // The key that signed it decides (its claims may still be refused);
        // else the first key's refusal of the signature.
        let verify = |loaded: &Loaded| {
            let mut verdict = Verdict::NoKeyFits;
            for key in loaded.keys.iter().filter(|key| key.fits(&header)) {
                match jsonwebtoken::decode::<Claims>(token, &key.decoding, &key.validation) {
                    Ok(data) => return Verdict::Signed(current(data.claims, crate::clock::now())),
                    Err(error) if !is_bad_signature(&error) => return Verdict::Refused(error),
                    Err(error) if matches!(verdict, Verdict::NoKeyFits) => {
                        verdict = Verdict::Refused(error)
                    }
                    Err(_) => {}
                }
            }
            verdict
        };
        self.0.refresh(false);
        let verdict = verify(&self.0.loaded.read().expect("not poisoned"));
        let unsigned = match &verdict {
            Verdict::Refused(error) => is_bad_signature(error),
            Verdict::NoKeyFits => true,
            Verdict::Signed(_) => false,
        };
        // A key the provider has just added, under a new `kid` or (without
        // one) in place of the old: look at the file before refusing, and
        // verify again only if it changed.
        let verdict = if unsigned && self.0.refresh(true) {
            verify(&self.0.loaded.read().expect("not poisoned"))
        } else {
            verdict
        };
        match verdict {
            Verdict::Signed(claims) => claims,
            Verdict::Refused(error) => Err(error.into()),
            Verdict::NoKeyFits => Err(TokenRefused::UnknownKey),
        }
    }
}

/// What the keys of one read of the file say of a token.
enum Verdict {
    /// A key's signature: the claims, or why they are not current.
    Signed(Result<Claims, TokenRefused>),
    /// The first refusal among the keys that fit the header.
    Refused(jsonwebtoken::errors::Error),
    NoKeyFits,
}

/// Whether a refusal is of the signature (not of the claims it signs).
fn is_bad_signature(error: &jsonwebtoken::errors::Error) -> bool {
    matches!(
        error.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    )
}

impl Inner {
    /// Reads the file again when it has changed since the last read (`now`:
    /// whenever last looked at; else not within `RECHECK_EVERY`); whether it
    /// did. A file that cannot be read or parsed keeps the keys already
    /// known. Looking, not reading, takes no write lock: a flood of tokens
    /// no key signed each looks, and must not hold up the verifications.
    fn refresh(&self, now: bool) -> bool {
        {
            let loaded = self.loaded.read().expect("not poisoned");
            if !now && loaded.checked_at.elapsed() < RECHECK_EVERY {
                return false;
            }
            if self.version().ok() == loaded.version {
                drop(loaded);
                if !now {
                    self.loaded.write().expect("not poisoned").checked_at = Instant::now();
                }
                return false;
            }
        }
        let mut loaded = self.loaded.write().expect("not poisoned");
        loaded.checked_at = Instant::now();
        // Looked at before the read: a file finished after a failed read
        // (rewritten in place) is then a change, and read.
        let looked_at = self.version().ok();
        match self.read() {
            Ok((keys, version)) => {
                tracing::info!(path = %self.path.display(), keys = keys.len(), "JWKS file read again");
                loaded.keys = keys;
                loaded.version = Some(version);
            }
            Err(reason) => {
                tracing::warn!(path = %self.path.display(), %reason, "JWKS file unreadable; keeping the keys known");
                // Read again only once it changes: a token with an unknown
                // `kid` would otherwise read it, and log, on every request.
                loaded.version = looked_at;
            }
        }
        true
    }

    /// The file's content as it is now.
    fn version(&self) -> std::io::Result<FileVersion> {
        Ok(version_of(&std::fs::read(&self.path)?))
    }

    fn read(&self) -> Result<(Vec<TrustedKey>, FileVersion), String> {
        let bytes = std::fs::read(&self.path).map_err(|e| e.to_string())?;
        let version = version_of(&bytes);
        let document: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let entries = document["keys"].as_array().ok_or("no \"keys\" array")?;
        let mut keys: Vec<TrustedKey> = Vec::new();
        for entry in entries {
            match self.trusted_key(entry) {
                Ok(key) => {
                    let same = |known: &TrustedKey| {
                        known.kid == key.kid && known.algorithm == key.algorithm
                    };
                    if keys.iter().any(same) {
                        tracing::warn!(path = %self.path.display(), kid = ?key.kid, "JWKS key left out: a second key of one kid and algorithm");
                    } else {
                        keys.push(key);
                    }
                }
                Err(reason) => {
                    tracing::warn!(path = %self.path.display(), %reason, "JWKS key left out");
                }
            }
        }
        Ok((keys, version))
    }

    fn trusted_key(&self, entry: &serde_json::Value) -> Result<TrustedKey, String> {
        let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
        let kid = jwk.common.key_id.clone();
        let name = kid.clone().unwrap_or_else(|| "a key without kid".into());
        check_purpose(&name, &jwk)?;
        let algorithm =
            algorithm_of(&jwk).ok_or(format!("{name}: not an RS256, ES256 or EdDSA key"))?;
        if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            check_modulus(&name, &rsa.n)?;
        }
        if has_private_part(entry) {
            tracing::warn!(path = %self.path.display(), kid = %name, "JWKS key with its private part: the file should hold public keys only (the public part is used)");
        }
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{name}: {e}"))?;
        let validation = validation(algorithm, self.issuer.as_deref(), self.audience.as_deref());
        Ok(TrustedKey {
            kid,
            algorithm,
            decoding,
            validation,
        })
    }
}

fn version_of(content: &[u8]) -> FileVersion {
    FileVersion(Sha256::digest(content).into())
}

#[cfg(test)]
mod tests {
    use super::super::jwk_checks::modulus;
    use super::*;

    #[test]
    fn a_broken_file_is_remembered_as_seen_until_it_changes_again() {
        let path = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
        std::fs::write(&path, r#"{"keys": []}"#).unwrap();
        let settings = IdentitySettings::default();
        let file = JwksFile::open(path.clone(), &settings).unwrap();
        std::fs::write(&path, "not a key set").unwrap();

        // As a token naming an unknown key does, on every request.
        file.0.refresh(true);
        let looked_at = file.0.loaded.read().unwrap().version.clone();

        // The broken version is the one known: the next look reads nothing.
        assert_eq!(looked_at, file.0.version().ok());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_rewritten_in_place_is_read_once_whole_even_after_a_failed_read() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
        let key_set = |kid: &str| {
            format!(
                r#"{{"keys": [{{"kty": "RSA", "kid": "{kid}", "use": "sig", "n": "{}", "e": "AQAB"}}]}}"#,
                modulus(256)
            )
        };
        std::fs::write(&path, key_set("k0")).unwrap();
        let file = JwksFile::open(path.clone(), &IdentitySettings::default()).unwrap();
        // Before, a read failing on a half-written file took the whole file's
        // version as seen, and it was never read (round 47 in a review).
        for round in 1..=1000 {
            let kid = format!("k{round}");
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let (path, text, done) = (path.clone(), key_set(&kid), done.clone());
                std::thread::spawn(move || {
                    // As `cp new.json jwks.json` or a shell redirect writes it.
                    let mut out = std::fs::File::create(&path).unwrap();
                    out.write_all(text.as_bytes()).unwrap();
                    drop(out);
                    done.store(true, std::sync::atomic::Ordering::SeqCst);
                })
            };
            // Tokens naming the new key arrive meanwhile: each looks at once.
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                file.0.refresh(true);
            }
            writer.join().unwrap();
            file.0.refresh(true);
            let known = (file.0.loaded.read().unwrap().keys.iter())
                .any(|key| key.kid.as_deref() == Some(kid.as_str()));
            assert!(known, "round {round}: the whole file was not read");
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_rewrite_of_the_same_length_and_time_is_read() {
        let path = std::env::temp_dir().join(format!("jwks-{}.json", uuid::Uuid::new_v4()));
        let key_set = |kid: &str| {
            format!(
                r#"{{"keys": [{{"kty": "RSA", "kid": "{kid}", "n": "{}", "e": "AQAB"}}]}}"#,
                modulus(256)
            )
        };
        std::fs::write(&path, key_set("k1")).unwrap();
        let file = JwksFile::open(path.clone(), &IdentitySettings::default()).unwrap();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        // In place, and its time put back, as `cp -p` or a coarse clock leaves it.
        std::fs::write(&path, key_set("k2")).unwrap();
        let out = std::fs::File::options().write(true).open(&path).unwrap();
        out.set_modified(modified).unwrap();
        drop(out);

        file.0.refresh(true);
        let kids: Vec<_> = (file.0.loaded.read().unwrap().keys.iter())
            .map(|key| key.kid.clone())
            .collect();
        assert_eq!(kids, [Some("k2".to_string())]);
        std::fs::remove_file(&path).unwrap();
    }
}
