//! Wallets: charging one and reading its balance, each with the user token of
//! the wallet's user (minted on first use).

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::{with_idempotency_key, Client};
use crate::error::Error;

/// `200` of `GET /users/{user}/balance` and of a charge.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Balance {
    pub user_id: Uuid,
    /// Won.
    pub balance: i64,
}

impl Client {
    /// `POST /users/{user}/balance/charges` with the user's token, endpoint
    /// `charge`; with an `Idempotency-Key` when given.
    pub async fn charge(
        &self,
        user: Uuid,
        amount: i64,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Error> {
        let token = self.user_token(user).await?;
        let request = self
            .request(Method::POST, &format!("/users/{user}/balance/charges"))
            .bearer_auth(token)
            .json(&json!({ "amount": amount }));
        self.send("charge", with_idempotency_key(request, idempotency_key))
            .await
    }

    /// `GET /users/{user}/balance` with the user's token, endpoint `balance`.
    pub async fn balance(&self, user: Uuid) -> Result<Answer, Error> {
        let token = self.user_token(user).await?;
        let request = self
            .request(Method::GET, &format!("/users/{user}/balance"))
            .bearer_auth(token);
        self.send("balance", request).await
    }
}

#[cfg(test)]
mod tests {
    use crate::fake_server::FakeServer;
    use crate::Options;

    use super::*;

    /// Mints `user-token` for anyone and answers every other call with a balance of 5.
    fn wallet_server() -> FakeServer {
        FakeServer::start(|request| {
            if request.path.ends_with("/tokens") {
                let body = r#"{"token":"user-token","user_id":"00000000-0000-0000-0000-000000000000","expires_at":"2030-01-01T00:00:00Z"}"#;
                return (201, "application/json", body.into());
            }
            let body = r#"{"user_id":"00000000-0000-0000-0000-000000000000","balance":5}"#;
            (200, "application/json", body.into())
        })
    }

    #[tokio::test]
    async fn a_charge_sends_the_user_token_the_amount_and_the_key() {
        let server = wallet_server();
        let client = Client::new(&[server.root()], "admin", Options::default()).unwrap();
        let user = Uuid::new_v4();

        let answer = client.charge(user, 500, Some("k-1")).await.unwrap();
        client.charge(user, 500, None).await.unwrap();

        assert_eq!(answer.status, 200);
        let requests = server.requests();
        let (keyed, plain) = (&requests[1], &requests[2]);
        assert_eq!(keyed.path, format!("/api/v1/users/{user}/balance/charges"));
        assert_eq!(keyed.header("authorization"), Some("Bearer user-token"));
        assert_eq!(keyed.header("idempotency-key"), Some("k-1"));
        assert_eq!(keyed.body, r#"{"amount":500}"#);
        assert_eq!(plain.header("idempotency-key"), None);
    }
}
