//! Which keys of a JWKS file verify user tokens, and why the others are
//! left out (each said in the log when the file is read).

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::Algorithm;

/// Refuses a key not meant for verifying signatures: one whose `use` is
/// encryption, or whose `key_ops` (RFC 7517 §4.3) do not include `verify`
/// (a key marked for encryption only verified tokens before).
pub(super) fn check_purpose(name: &str, jwk: &Jwk) -> Result<(), String> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return Err(format!("{name}: an encryption key"));
    }
    match &jwk.common.key_operations {
        Some(operations) if !operations.contains(&KeyOperations::Verify) => {
            Err(format!("{name}: its key_ops do not include verify"))
        }
        _ => Ok(()),
    }
}

/// Whether a JWK carries private key material (RFC 7518 §6.3.2, §6.2.2;
/// RFC 8037 §2: `d` for every type, the RSA primes and their exponents).
pub(super) fn has_private_part(entry: &serde_json::Value) -> bool {
    ["d", "p", "q", "dp", "dq", "qi", "oth"]
        .iter()
        .any(|member| entry.get(member).is_some())
}

/// The one algorithm a key verifies with, from its type; a declared `alg`
/// that disagrees leaves the key out.
pub(super) fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let (algorithm, declared) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(named) if named != declared => None,
        _ => Some(algorithm),
    }
}

/// The RSA moduli the verifier takes: 2,048 to 8,192 bits. It refuses any
/// other at every token, so such a key is left out, and said, at its read.
pub(super) fn check_modulus(kid: &str, n: &str) -> Result<(), String> {
    use base64::Engine as _;
    let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .map_err(|_| format!("{kid}: an RSA modulus that is not base64url"))?;
    let significant: Vec<u8> = modulus.into_iter().skip_while(|byte| *byte == 0).collect();
    let bits = significant.first().map_or(0, |first| {
        (significant.len() - 1) * 8 + (8 - first.leading_zeros() as usize)
    });
    if !(2048..=8192).contains(&bits) {
        return Err(format!(
            "{kid}: an RSA key of {bits} bits (2048 to 8192 are verified)"
        ));
    }
    Ok(())
}

/// An RSA modulus of `bytes` bytes, its top bit set, in base64url (tests).
#[cfg(test)]
pub(super) fn modulus(bytes: usize) -> String {
    use base64::Engine as _;
    let mut modulus = vec![0xc5u8; bytes];
    modulus[0] = 0x80;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(modulus)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(extra: serde_json::Value) -> (Jwk, serde_json::Value) {
        let mut entry =
            serde_json::json!({"kty": "RSA", "kid": "k", "n": modulus(256), "e": "AQAB"});
        entry
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        (serde_json::from_value(entry.clone()).unwrap(), entry)
    }

    #[test]
    fn keys_not_meant_for_verifying_are_left_out() {
        let purpose = |extra| check_purpose("k", &jwk(extra).0);
        assert!(purpose(serde_json::json!({})).is_ok());
        assert!(purpose(serde_json::json!({"use": "sig"})).is_ok());
        assert!(purpose(serde_json::json!({"key_ops": ["verify"]})).is_ok());
        assert!(purpose(serde_json::json!({"key_ops": ["sign", "verify"]})).is_ok());
        assert!(purpose(serde_json::json!({"use": "enc"})).is_err());
        assert!(purpose(serde_json::json!({"key_ops": ["encrypt"]})).is_err());
        assert!(purpose(serde_json::json!({"key_ops": []})).is_err());
    }

    #[test]
    fn a_key_with_its_private_part_is_told_apart() {
        assert!(!has_private_part(&jwk(serde_json::json!({})).1));
        assert!(has_private_part(&jwk(serde_json::json!({"d": "AQAB"})).1));
        assert!(has_private_part(&jwk(serde_json::json!({"p": "AQAB"})).1));
    }

    #[test]
    fn rsa_keys_the_verifier_refuses_are_left_out() {
        assert!(check_modulus("k", &modulus(128)).is_err(), "1,024 bits");
        assert!(check_modulus("k", &modulus(255)).is_err(), "2,040 bits");
        // 256 bytes whose first has its top bit clear: 2,047 bits.
        let short = {
            use base64::Engine as _;
            let mut bytes = vec![0xc5u8; 256];
            bytes[0] = 0x7f;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        };
        assert!(check_modulus("k", &short).is_err(), "2,047 bits");
        assert!(check_modulus("k", &modulus(256)).is_ok(), "2,048 bits");
        assert!(check_modulus("k", &modulus(512)).is_ok(), "4,096 bits");
        assert!(check_modulus("k", &modulus(1025)).is_err(), "8,200 bits");
        assert!(check_modulus("k", "not base64!").is_err());
    }
}
