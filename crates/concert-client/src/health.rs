//! The probes outside `/api/v1`: liveness (`/healthz`), readiness (`/readyz`) and the Prometheus
//! metrics (`/metrics`). Unlike `Client::healthy`, these are calls like the
//! others: one server in turn, told to the observer, so that a test reading
//! them during a fault counts their answers too.

use reqwest::Method;

use crate::answer::Answer;
use crate::client::Client;
use crate::error::Error;

impl Client {
    /// `GET /healthz`, endpoint `healthz`: 200 while the process is up. It
    /// touches no database, so its rate is the floor under every other call.
    pub async fn liveness(&self) -> Result<Answer, Error> {
        let request = self.request_from_root(Method::GET, "/healthz");
        self.send("healthz", request).await
    }

    /// `GET /readyz`, endpoint `ready`: 200 when the server can serve
    /// (`projection_lag_events` says how far the read models trail the log),
    /// a 503 problem when not.
    pub async fn readiness(&self) -> Result<Answer, Error> {
        let request = self.request_from_root(Method::GET, "/readyz");
        self.send("ready", request).await
    }

    /// `GET /metrics`, endpoint `metrics`: the Prometheus text format.
    pub async fn metrics(&self) -> Result<Answer, Error> {
        let request = self.request_from_root(Method::GET, "/metrics");
        self.send("metrics", request).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use crate::fake_server::{FakeServer, CORRELATION_ID};
    use crate::{Call, Options};

    use super::*;

    #[tokio::test]
    async fn the_probes_live_outside_the_api_and_are_observed() {
        let server = FakeServer::start(|_| (200, "text/plain", "ok".into()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let client = Client::new(&[server.root()], "admin", Options::default())
            .unwrap()
            .with_observer(move |call: &Call<'_>| log.lock().unwrap().push(call.endpoint));

        let ready = client.readiness().await.unwrap();
        client.metrics().await.unwrap();

        assert_eq!(ready.status, 200);
        let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/readyz", "/metrics"]);
        assert_eq!(*seen.lock().unwrap(), ["ready", "metrics"]);
    }

    #[tokio::test]
    async fn an_answer_carries_its_correlation_id() {
        let server = FakeServer::start(|_| (200, "text/plain", "ok".into()));
        let client = Client::new(&[server.root()], "admin", Options::default()).unwrap();

        let answer = client.readiness().await.unwrap();

        assert_eq!(answer.correlation_id, CORRELATION_ID);
    }
}
