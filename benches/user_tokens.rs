//! The cost of knowing who is calling: verifying a user token with the
//! service's own HS256 key and with each kind of identity-provider key
//! (RS256, ES256, EdDSA) read from a JWKS file, and minting one, beside the
//! queue token's HMAC check as the baseline of the same run. No database.
//!
//! `cargo bench --bench user_tokens` (about half a minute).

use std::path::{Path, PathBuf};
use std::time::Duration;

use concert::identity::{IdentitySettings, JwksFile, OwnIssuer, UserTokens};
use concert::ids::{TicketId, UserId};
use concert::tokens::TokenSigner;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// A JWKS file of the test keys, each under its own name as kid.
fn jwks_file() -> PathBuf {
    let public: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("public-jwks.json")).unwrap())
            .unwrap();
    let keys: Vec<Value> = ["rsa-a", "ec-p256", "ed25519"]
        .iter()
        .map(|name| {
            let mut jwk = public[name].clone();
            jwk["kid"] = json!(name);
            jwk
        })
        .collect();
    let path = std::env::temp_dir().join(format!("concert-bench-jwks-{}.json", std::process::id()));
    std::fs::write(&path, json!({ "keys": keys }).to_string()).unwrap();
    path
}

fn provider_token(name: &str, algorithm: Algorithm, user: UserId) -> String {
    let pem = std::fs::read(fixture(&format!("{name}.pem"))).unwrap();
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        _ => EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = Some(name.to_string());
    let exp = chrono::Utc::now().timestamp() + 3600;
    jsonwebtoken::encode(&header, &json!({"sub": user.to_string(), "exp": exp}), &key).unwrap()
}

fn user_tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("user token");
    let signer = TokenSigner::new(vec![7; 32]);
    let queue_token = signer.issue(TicketId::new());
    group.bench_function("baseline: verify a queue token (HMAC-SHA256)", |b| {
        b.iter(|| signer.verify(black_box(&queue_token)).unwrap())
    });
    let user = UserId::new();
    let own = UserTokens::Own(OwnIssuer::new(&[7; 32], &IdentitySettings::default()));
    let minted = own.mint(user, Duration::from_secs(3600)).unwrap().token;
    group.bench_function("mint (own HS256 key)", |b| {
        b.iter(|| own.mint(black_box(user), Duration::from_secs(3600)))
    });
    group.bench_function("verify (own HS256 key)", |b| {
        b.iter(|| own.verify(black_box(&minted)).unwrap())
    });
    let path = jwks_file();
    let jwks =
        UserTokens::Jwks(JwksFile::open(path.clone(), &IdentitySettings::default()).unwrap());
    for (name, algorithm) in [
        ("rsa-a", Algorithm::RS256),
        ("ec-p256", Algorithm::ES256),
        ("ed25519", Algorithm::EdDSA),
    ] {
        let token = provider_token(name, algorithm, user);
        group.bench_function(format!("verify (JWKS {algorithm:?})"), |b| {
            b.iter(|| jwks.verify(black_box(&token)).unwrap())
        });
    }
    group.finish();
    let _ = std::fs::remove_file(path);
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = user_tokens
}
criterion_main!(benches);
