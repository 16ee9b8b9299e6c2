//! Signing in: `POST /users/{user}/tokens` mints a user token with the admin
//! token, and the client keeps it for every later call of that user (and
//! every clone of the client), so a workload that signs its users in during
//! its setup mints nothing while it is timed.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::Client;
use crate::error::Error;

/// `201` of `POST /users/{user}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserToken {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The user tokens minted so far, by user.
#[derive(Debug, Default)]
pub(crate) struct UserTokens(Mutex<HashMap<Uuid, String>>);

impl UserTokens {
    fn get(&self, user: Uuid) -> Option<String> {
        self.0.lock().expect("user token lock").get(&user).cloned()
    }

    /// Keeps `token` unless one is kept already; returns the kept one. Two
    /// first calls at once may both mint; either token is good.
    fn keep(&self, user: Uuid, token: String) -> String {
        self.0
            .lock()
            .expect("user token lock")
            .entry(user)
            .or_insert(token)
            .clone()
    }
}

impl Client {
    /// `POST /users/{user}/tokens` (admin), endpoint `sign-in`: a new user
    /// token living `ttl_secs` (the server's default when `None`). Not kept.
    pub async fn mint_user_token(
        &self,
        user: Uuid,
        ttl_secs: Option<u64>,
    ) -> Result<Answer, Error> {
        let body = match ttl_secs {
            Some(ttl_secs) => json!({ "ttl_secs": ttl_secs }),
            None => json!({}),
        };
        let request = self
            .as_admin(Method::POST, &format!("/users/{user}/tokens"))
            .json(&body);
        self.send("sign-in", request).await
    }

    /// The user token of `user`: the one kept from an earlier call, or one
    /// minted now (living `Options::user_token_ttl_secs`) and kept.
    pub async fn user_token(&self, user: Uuid) -> Result<String, Error> {
        if let Some(token) = self.user_tokens().get(user) {
            return Ok(token);
        }
        let minted: UserToken = self
            .mint_user_token(user, Some(self.user_token_ttl_secs()))
            .await?
            .json("sign in", &[201])?;
        Ok(self.user_tokens().keep(user, minted.token))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::fake_server::FakeServer;
    use crate::{Call, Client, Options};

    use super::*;

    fn minting_server() -> FakeServer {
        FakeServer::start(|request| {
            let user = request.path.split('/').nth(4).unwrap_or_default();
            let body = format!(
                r#"{{"token":"token-of-{user}","user_id":"{user}","expires_at":"2030-01-01T00:00:00Z"}}"#
            );
            (201, "application/json", body)
        })
    }

    #[tokio::test]
    async fn a_user_is_signed_in_once_for_every_clone() {
        let server = minting_server();
        let signed_in = Arc::new(AtomicUsize::new(0));
        let counter = signed_in.clone();
        let client = Client::new(&[server.root()], "admin", Options::default())
            .unwrap()
            .with_observer(move |call: &Call<'_>| {
                assert_eq!((call.endpoint, call.status()), ("sign-in", Some(201)));
                counter.fetch_add(1, Ordering::Relaxed);
            });
        let user = Uuid::new_v4();

        let first = client.user_token(user).await.unwrap();
        let again = client.clone().user_token(user).await.unwrap();

        assert_eq!(first, format!("token-of-{user}"));
        assert_eq!(again, first);
        assert_eq!(signed_in.load(Ordering::Relaxed), 1);
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn minting_sends_the_admin_token_and_the_ttl() {
        let server = minting_server();
        let options = Options {
            user_token_ttl_secs: 3_600,
            ..Options::default()
        };
        let client = Client::new(&[server.root()], "secret", options).unwrap();
        let user = Uuid::new_v4();

        client.user_token(user).await.unwrap();

        let request = &server.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/api/v1/users/{user}/tokens"));
        assert_eq!(request.header("authorization"), Some("Bearer secret"));
        assert_eq!(request.body, r#"{"ttl_secs":3600}"#);
    }

    #[tokio::test]
    async fn a_refused_sign_in_is_an_error_and_keeps_nothing() {
        let server = FakeServer::start(|_| (401, "application/problem+json", "{}".into()));
        let client = Client::new(&[server.root()], "wrong", Options::default()).unwrap();
        let user = Uuid::new_v4();

        let first = client.user_token(user).await.unwrap_err();
        let again = client.user_token(user).await.unwrap_err();

        assert_eq!((first.status(), again.status()), (Some(401), Some(401)));
        assert_eq!(server.requests().len(), 2);
    }
}
