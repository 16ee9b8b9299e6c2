//! How an identity provider's token finds its key: keys of different types
//! may share one `kid` (RFC 7517 §4.5), and a token without `kid` is tried
//! against the keys of its algorithm.

use jsonwebtoken::Algorithm;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::eventually;
use crate::identity_jwks::{provider, public_jwk, read_balance, token, token_under};

#[tokio::test]
async fn keys_of_different_types_under_one_kid_each_verify_their_own_tokens() {
    let provider = provider(&[("rsa-a", "2026"), ("ec-p256", "2026")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    for (key, algorithm) in [("rsa-a", Algorithm::RS256), ("ec-p256", Algorithm::ES256)] {
        let signed = token(key, algorithm, "2026", user, json!({}));
        assert_eq!(read_balance(app, user, &signed).await.0, 200, "{key}");
    }
    // A key the file does not hold, under the shared kid.
    let stranger = token("rsa-b", Algorithm::RS256, "2026", user, json!({}));
    assert_eq!(read_balance(app, user, &stranger).await.0, 401);
}

#[tokio::test]
async fn a_token_without_kid_is_verified_by_the_key_of_its_algorithm_that_signed_it() {
    let provider = provider(&[("rsa-a", "r-1"), ("rsa-b", "r-2"), ("ed25519", "e-1")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    for (key, algorithm) in [
        ("rsa-a", Algorithm::RS256),
        ("rsa-b", Algorithm::RS256),
        ("ed25519", Algorithm::EdDSA),
    ] {
        let signed = token_under(key, algorithm, None, user, json!({}));
        assert_eq!(read_balance(app, user, &signed).await.0, 200, "{key}");
    }
    // No key of the file signed it, or none of its algorithm is there.
    let provider = crate::identity_jwks::provider(&[("rsa-a", "r-1"), ("ed25519", "e-1")]).await;
    for (key, algorithm) in [("rsa-b", Algorithm::RS256), ("ec-p256", Algorithm::ES256)] {
        let signed = token_under(key, algorithm, None, user, json!({}));
        assert_eq!(
            read_balance(&provider.app, user, &signed).await,
            (401, "token_invalid".to_string()),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_key_whose_key_ops_leave_out_verify_verifies_no_token() {
    let provider = provider(&[("rsa-a", "r-1")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    let signed = token("rsa-a", Algorithm::RS256, "r-1", user, json!({}));
    assert_eq!(read_balance(app, user, &signed).await.0, 200);

    // The same key, marked for encryption only (RFC 7517 §4.3): before, it
    // still verified tokens, where `"use": "enc"` did not.
    let mut encrypting = public_jwk("rsa-a", "r-1");
    encrypting["key_ops"] = json!(["encrypt"]);
    let staging = provider.jwks.with_extension("tmp");
    std::fs::write(&staging, json!({"keys": [encrypting]}).to_string()).unwrap();
    std::fs::rename(staging, &provider.jwks).unwrap();
    eventually("the key is left out", || async {
        read_balance(app, user, &signed).await == (401, "token_invalid".to_string())
    })
    .await;
}
