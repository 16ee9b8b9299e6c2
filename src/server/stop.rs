//! When `serve` stops: at SIGINT or SIGTERM, after the drain
//! (`crate::draining`), or at once when the private server's supervisor
//! gave up.

use std::time::Duration;

use tokio::sync::watch;

use crate::draining::Draining;

/// SIGINT or SIGTERM, after `drain` of serving on while not ready
/// (a second signal cuts it short), or the supervisor
/// giving up on the private server, at once.
pub fn stop_signal(
    gave_up: Option<watch::Receiver<bool>>,
    drain: Duration,
    draining: Draining,
) -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let gave_up = async move {
            match gave_up {
                Some(mut gave_up) => {
                    let _ = gave_up.wait_for(|gave_up| *gave_up).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(gave_up);
        tokio::select! {
            signal = super::stop_requested() => {
                if !drain.is_zero() {
                    draining.begin();
                    tracing::info!(
                        signal,
                        drain_secs = drain.as_secs(),
                        "draining before the stop: /readyz answers 503 and every answer asks its client to close the connection (a second signal stops at once)"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(drain) => {}
                        _ = super::stop_requested() => {}
                        _ = &mut gave_up => {}
                    }
                }
                tracing::info!(signal, "shutting down: finishing requests in flight");
            }
            _ = &mut gave_up => {
                tracing::error!("stopping: supervision of the private PostgreSQL server gave up");
            }
        }
        let _ = sender.send(true);
    });
    receiver
}
