//! User tokens from an identity provider: the service trusts the keys of a
//! JWKS file (made here from the test keys in `tests/fixtures/keys`), checks
//! issuer and audience, picks keys by `kid`, and follows the file as it
//! changes, without a restart.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, eventually, problem_code, spawn_app_with, test_config, TestApp, ADMIN_TOKEN,
};

const ISSUER: &str = "https://id.example.test";
const AUDIENCE: &str = "concert-api";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn private_key(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("{name}.pem"))).unwrap()
}

/// The public JWK of test key `name`, under `kid`.
pub(crate) fn public_jwk(name: &str, kid: &str) -> Value {
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("public-jwks.json")).unwrap())
            .unwrap();
    let mut jwk = all[name].clone();
    jwk["kid"] = json!(kid);
    jwk
}

/// Writes a JWKS of `(key name, kid)` pairs, replacing the file at once (a
/// rename, as a deployment tool would).
pub(crate) fn write_jwks(path: &Path, keys: &[(&str, &str)]) {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(name, kid)| public_jwk(name, kid))
        .collect();
    let staging = path.with_extension("tmp");
    std::fs::write(&staging, json!({"keys": keys}).to_string()).unwrap();
    std::fs::rename(staging, path).unwrap();
}

pub(crate) struct Provider {
    pub app: TestApp,
    pub jwks: PathBuf,
    _dir: TempDir,
}

/// A folder removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) async fn provider(keys: &[(&str, &str)]) -> Provider {
    let dir = std::env::temp_dir().join(format!("concert-jwks-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    write_jwks(&jwks, keys);
    let mut config = test_config();
    config.auth_jwks_file = Some(jwks.clone());
    config.auth_issuer = Some(ISSUER.into());
    config.auth_audience = Some(AUDIENCE.into());
    Provider {
        app: spawn_app_with(config).await,
        jwks,
        _dir: TempDir(dir),
    }
}

/// A token for `user` signed by test key `key` under `kid`, with `overrides` merged into its claims.
pub(crate) fn token(
    key: &str,
    algorithm: Algorithm,
    kid: &str,
    user: Uuid,
    overrides: Value,
) -> String {
    token_under(key, algorithm, Some(kid), user, overrides)
}

/// As `token`, with no `kid` in the header when `kid` is `None`.
pub(crate) fn token_under(
    key: &str,
    algorithm: Algorithm,
    kid: Option<&str>,
    user: Uuid,
    overrides: Value,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"sub": user.to_string(), "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600});
    for (name, value) in overrides.as_object().unwrap() {
        claims[name] = value.clone();
    }
    let pem = private_key(key);
    let encoding = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no test key for {other:?}"),
    }
    .unwrap();
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
}

/// The answer to reading `user`'s balance with `token`: (status, code or "").
pub(crate) async fn read_balance(app: &TestApp, user: Uuid, token: &str) -> (u16, String) {
    let response = app
        .get(&format!("/users/{user}/balance"), Some(token))
        .await;
    let status = response.status().as_u16();
    if status == 200 {
        return (200, String::new());
    }
    let (status, code) = problem_code(response).await;
    (status.as_u16(), code)
}

#[tokio::test]
async fn rs256_es256_and_eddsa_keys_sign_users_in_and_tokens_are_checked() {
    let provider = provider(&[("rsa-a", "rsa-1"), ("ec-p256", "ec-1"), ("ed25519", "ed-1")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    for (key, algorithm, kid) in [
        ("rsa-a", Algorithm::RS256, "rsa-1"),
        ("ec-p256", Algorithm::ES256, "ec-1"),
        ("ed25519", Algorithm::EdDSA, "ed-1"),
    ] {
        let good = token(key, algorithm, kid, user, json!({}));
        assert_eq!(
            read_balance(app, user, &good).await,
            (200, String::new()),
            "{kid}"
        );
        // Another user's genuine token is no key to this wallet.
        assert_eq!(
            read_balance(app, Uuid::new_v4(), &good).await.0,
            403,
            "{kid}"
        );
    }
    let refused = |what: &'static str, token: String| (what, token);
    let now = chrono::Utc::now().timestamp();
    let cases = [
        refused(
            "wrong issuer",
            token(
                "rsa-a",
                Algorithm::RS256,
                "rsa-1",
                user,
                json!({"iss": "https://evil.test"}),
            ),
        ),
        refused(
            "no issuer",
            token(
                "rsa-a",
                Algorithm::RS256,
                "rsa-1",
                user,
                json!({"iss": null}),
            ),
        ),
        refused(
            "the issuer among others",
            token(
                "rsa-a",
                Algorithm::RS256,
                "rsa-1",
                user,
                json!({"iss": ["https://evil.test", ISSUER]}),
            ),
        ),
        refused(
            "the user as a URN",
            token(
                "rsa-a",
                Algorithm::RS256,
                "rsa-1",
                user,
                json!({"sub": user.urn().to_string()}),
            ),
        ),
        refused(
            "wrong audience",
            token(
                "rsa-a",
                Algorithm::RS256,
                "rsa-1",
                user,
                json!({"aud": "another-api"}),
            ),
        ),
        refused(
            "expired",
            token(
                "ec-p256",
                Algorithm::ES256,
                "ec-1",
                user,
                json!({"exp": now - 3600}),
            ),
        ),
        refused(
            "not valid yet",
            token(
                "ed25519",
                Algorithm::EdDSA,
                "ed-1",
                user,
                json!({"nbf": now + 3600}),
            ),
        ),
        refused(
            "unknown kid",
            token("rsa-a", Algorithm::RS256, "rsa-9", user, json!({})),
        ),
        // A key the file does not hold, under a kid it does.
        refused(
            "a key under another key's kid",
            token("rsa-b", Algorithm::RS256, "rsa-1", user, json!({})),
        ),
        refused(
            "another key's algorithm",
            token("ec-p256", Algorithm::ES256, "rsa-1", user, json!({})),
        ),
        refused(
            "HS256 signed with the RSA public key",
            hs256_with_public_key(user),
        ),
    ];
    for (what, bad) in cases {
        assert_eq!(
            read_balance(app, user, &bad).await,
            (401, "token_invalid".to_string()),
            "{what}"
        );
    }
    // With an identity provider, the service mints nothing, whatever the
    // body asks (its checks once answered 400 or 422 first).
    for body in [json!({}), json!({"ttl_secs": 5}), json!([])] {
        let minting = app
            .post(&format!("/users/{user}/tokens"), Some(ADMIN_TOKEN), body)
            .await;
        assert_problem(minting, StatusCode::NOT_FOUND, "not_found").await;
    }
    let not_json = app
        .client
        .post(app.url(&format!("/users/{user}/tokens")))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body("{\"ttl_secs\":")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, StatusCode::NOT_FOUND, "not_found").await;
}

/// The classic key-confusion forgery: HS256 keyed with the RSA public key.
fn hs256_with_public_key(user: Uuid) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user.to_string(), "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600});
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let public_pem = std::fs::read(fixture("rsa-a.pub.pem")).unwrap();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public_pem)).unwrap()
}

#[tokio::test]
async fn a_key_rotated_in_the_file_is_followed_without_a_restart() {
    let provider = provider(&[("rsa-a", "2026-a")]).await;
    let (app, jwks) = (&provider.app, &provider.jwks);
    let user = Uuid::new_v4();
    let old = token("rsa-a", Algorithm::RS256, "2026-a", user, json!({}));
    let new = token("rsa-b", Algorithm::RS256, "2026-b", user, json!({}));
    assert_eq!(read_balance(app, user, &old).await.0, 200);
    assert_eq!(read_balance(app, user, &new).await.0, 401);
    // The provider publishes the new key beside the old, then drops the old.
    write_jwks(jwks, &[("rsa-a", "2026-a"), ("rsa-b", "2026-b")]);
    assert_eq!(
        read_balance(app, user, &new).await.0,
        200,
        "a new kid is looked up at once"
    );
    assert_eq!(read_balance(app, user, &old).await.0, 200);
    write_jwks(jwks, &[("rsa-b", "2026-b")]);
    eventually("the dropped key is refused", || async {
        read_balance(app, user, &old).await.0 == 401
    })
    .await;
    assert_eq!(read_balance(app, user, &new).await.0, 200);
    // A broken file keeps the keys known rather than locking everyone out.
    std::fs::write(jwks, "{ not json").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(read_balance(app, user, &new).await.0, 200);
}

/// A provider that leaves `kid` out rotates its key: the first token of the
/// new key is taken at once, as one naming a new `kid` is.
#[tokio::test]
async fn a_token_without_kid_from_a_rotated_key_is_taken_on_its_first_request() {
    let provider = provider(&[("rsa-a", "2026-a")]).await;
    let (app, jwks) = (&provider.app, &provider.jwks);
    let user = Uuid::new_v4();
    let old = token_under("rsa-a", Algorithm::RS256, None, user, json!({}));
    let new = token_under("rsa-b", Algorithm::RS256, None, user, json!({}));
    assert_eq!(read_balance(app, user, &old).await.0, 200);
    assert_eq!(
        read_balance(app, user, &new).await,
        (401, "token_invalid".into())
    );

    write_jwks(jwks, &[("rsa-b", "2026-b")]);

    assert_eq!(
        read_balance(app, user, &new).await.0,
        200,
        "the file was not looked at"
    );
    assert_eq!(read_balance(app, user, &old).await.0, 401);
}

#[tokio::test]
async fn a_missing_or_broken_jwks_file_stops_the_start() {
    let mut config = test_config();
    config.auth_jwks_file = Some(std::env::temp_dir().join("concert-no-such-jwks.json"));
    let pool = crate::helpers::fresh_database().await;
    let error = concert::server::prepare(pool, config)
        .await
        .err()
        .expect("no start without the JWKS file");
    assert!(error.to_string().contains("JWKS"), "{error}");
}

#[tokio::test]
async fn queue_entry_with_a_provider_token_gets_the_users_own_queue_token() {
    let provider = provider(&[("ed25519", "ed-1")]).await;
    let app = &provider.app;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();
    let signed_in = token("ed25519", Algorithm::EdDSA, "ed-1", user, json!({}));
    let entered = app
        .post(
            "/queue/tokens",
            Some(&signed_in),
            json!({"concert_id": concert.concert_id}),
        )
        .await;
    assert_eq!(entered.status(), StatusCode::CREATED);
    let entered: Value = entered.json().await.unwrap();
    assert_eq!(entered["user_id"], user.to_string());
    let forbidden = app
        .post(
            "/queue/tokens",
            Some(&signed_in),
            json!({"concert_id": concert.concert_id, "user_id": Uuid::new_v4()}),
        )
        .await;
    assert_problem(forbidden, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn fractional_times_as_many_libraries_write_them_are_honoured() {
    // RFC 7519 §2 allows a NumericDate that is not whole: `time.time() + 600`.
    let provider = provider(&[("rsa-a", "rsa-1")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
    let with_times = |times: Value| token("rsa-a", Algorithm::RS256, "rsa-1", user, times);
    let current = with_times(json!({"iat": now, "nbf": now, "exp": now + 600.0}));
    assert_eq!(
        read_balance(app, user, &current).await,
        (200, String::new())
    );
    for (what, times) in [
        ("expired", json!({"iat": now - 900.5, "exp": now - 300.5})),
        (
            "not yet valid",
            json!({"nbf": now + 300.5, "exp": now + 900.5}),
        ),
    ] {
        assert_eq!(
            read_balance(app, user, &with_times(times)).await,
            (401, "token_invalid".to_string()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_token_naming_critical_extensions_is_refused() {
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood or
    // the token refused; this service understands none, and an empty list
    // is itself invalid. Before, `crit` was ignored and each was accepted.
    let provider = provider(&[("rsa-a", "rsa-1")]).await;
    let app = &provider.app;
    let user = Uuid::new_v4();
    let signed_with = |critical: Option<Vec<&str>>| {
        let now = chrono::Utc::now().timestamp();
        let claims =
            json!({"sub": user.to_string(), "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        header.crit = critical.map(|names| names.into_iter().map(str::to_string).collect());
        let key = EncodingKey::from_rsa_pem(&private_key("rsa-a")).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    assert_eq!(
        read_balance(app, user, &signed_with(None)).await,
        (200, String::new())
    );
    for critical in [vec!["urn:example:must-understand"], vec!["exp"], vec![]] {
        assert_eq!(
            read_balance(app, user, &signed_with(Some(critical.clone()))).await,
            (401, "token_invalid".to_string()),
            "crit {critical:?}"
        );
    }
}
