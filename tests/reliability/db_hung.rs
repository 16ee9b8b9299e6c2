//! A database connection that stops answering without closing (a proxy or a
//! network path that freezes): the commands waiting on it are given up at
//! their batch's deadline, the connection is closed rather than handed back
//! to the pool, and the service answers again on fresh connections (the
//! streams of the frozen transaction once PostgreSQL ends it), where before
//! every command on a stream of a stuck batch waited for it for good.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::harness::{self, Api, Server, Workdir};

/// `CONCERT_REQUEST_TIMEOUT_SECS` of the instance behind the proxy: its
/// batches are given up after twice that (`batching::batch_deadline`, 10 s).
const REQUEST_TIMEOUT_SECS: u64 = 5;
/// How long every wallet has, from the freeze, to take charges again. The
/// wallets of the frozen transaction stay locked until PostgreSQL ends it
/// for idling a minute (`idle_in_transaction_session_timeout`, src/db.rs):
/// it never hears that its client gave up. The others take charges once
/// the batches waiting on frozen connections are given up.
const RECOVERY_LIMIT: Duration = Duration::from_secs(80);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_a_connection_that_stops_answering_are_given_up_and_the_service_recovers() {
    let _turn = harness::serial().await;
    let started = Instant::now();
    let work = Workdir::new("hung");
    let mut owner = Server::start(&work, "hung-owner", &[]).await;
    let proxy = FreezingProxy::start(work.data().join(".s.PGSQL.5432")).await;
    let behind_proxy = [
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/concert", proxy.port),
        ),
        (
            "CONCERT_REQUEST_TIMEOUT_SECS",
            REQUEST_TIMEOUT_SECS.to_string(),
        ),
    ];
    let mut server = Server::start(&work, "hung-behind-proxy", &behind_proxy).await;
    let api = Arc::new(Api::new(vec![server.base()], Duration::from_secs(20)));
    let users: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for user in &users {
        api.user_token(*user).await;
    }

    // Each user charges without pause; the freeze catches batches mid-query.
    let frozen_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let load: Vec<JoinHandle<Option<Duration>>> = users
        .iter()
        .map(|&user| {
            let (api, frozen_at) = (api.clone(), frozen_at.clone());
            tokio::spawn(async move {
                loop {
                    let sent = Instant::now();
                    let status = api.client.charge(user, 100, None).await.map(|a| a.status);
                    let freeze = *frozen_at.lock().unwrap();
                    match freeze {
                        // Sent after the freeze and charged: recovered.
                        Some(at) if sent > at && status.as_ref().is_ok_and(|s| *s == 200) => {
                            return Some(sent - at)
                        }
                        Some(at) if at.elapsed() > RECOVERY_LIMIT => return None,
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Frozen as a wallet batch sends a statement, whose answer never comes.
    proxy.freeze_after(b"Wallet");
    let armed = Instant::now();
    while !proxy.frozen() {
        assert!(
            armed.elapsed() < Duration::from_secs(10),
            "no statement of a wallet batch went through the proxy"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    *frozen_at.lock().unwrap() = Some(Instant::now());
    let recovered: Vec<Option<Duration>> = join_all(load)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    // The frozen connections end with the proxy, so the instance stops.
    proxy.stop();

    let status = server.terminate().await;
    assert!(status.success(), "stopped with {status}");
    let status = owner.terminate().await;
    assert!(status.success(), "stopped with {status}");
    let stuck = recovered.iter().filter(|wait| wait.is_none()).count();
    assert_eq!(
        stuck,
        0,
        "{stuck} of {} wallets took no charge within {RECOVERY_LIMIT:?} of the freeze; log:\n{}",
        users.len(),
        harness::tail(&server.log, 30)
    );
    let slowest = recovered.iter().flatten().max().copied().unwrap();
    let fastest = recovered.iter().flatten().min().copied().unwrap();
    let (code, audit) = harness::audit(&work.data(), 100).await;
    assert_eq!(code, 0, "concert audit failed:\n{audit}");
    harness::report_figures(
        "db_hung",
        json!({
            "wallets": users.len(),
            "fastest_recovery_ms": fastest.as_millis(),
            "slowest_recovery_ms": slowest.as_millis(),
            "seconds": started.elapsed().as_secs_f64(),
        }),
    );
}

/// A TCP proxy to the private server's socket whose connections, those open
/// when it freezes, stay open and relay nothing more; later ones relay.
struct FreezingProxy {
    port: u16,
    freeze: Arc<Freeze>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// When the proxy freezes: `era` counts freezes; once `trigger` is set, the
/// next message to the server that holds it is relayed and then everything
/// freezes, so its answer never comes back.
#[derive(Default)]
struct Freeze {
    era: AtomicU64,
    trigger: Mutex<Option<&'static [u8]>>,
}

impl FreezingProxy {
    async fn start(socket: PathBuf) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let freeze = Arc::new(Freeze::default());
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_freeze, accept_tasks) = (freeze.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = UnixStream::connect(&socket).await else {
                    continue;
                };
                let born = accept_freeze.era.load(Ordering::SeqCst);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let mut tasks = accept_tasks.lock().unwrap();
                for (from, to, to_server) in [
                    (
                        Box::new(client_read) as Box<dyn AsyncRead + Send + Unpin>,
                        Box::new(server_write) as Box<dyn AsyncWrite + Send + Unpin>,
                        true,
                    ),
                    (Box::new(server_read), Box::new(client_write), false),
                ] {
                    let freeze = accept_freeze.clone();
                    tasks.push(tokio::spawn(relay(from, to, to_server, born, freeze)));
                }
            }
        });
        tasks.lock().unwrap().push(accept);
        FreezingProxy {
            port,
            freeze,
            tasks,
        }
    }

    /// Every connection open stops relaying, and stays open, once a message
    /// to the server that holds `trigger` has been relayed.
    fn freeze_after(&self, trigger: &'static [u8]) {
        *self.freeze.trigger.lock().unwrap() = Some(trigger);
    }

    fn frozen(&self) -> bool {
        self.freeze.era.load(Ordering::SeqCst) > 0
    }

    /// Closes every connection.
    fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// Copies `from` to `to` until either closes, or for good once the proxy
/// froze after the connection was made.
async fn relay(
    mut from: Box<dyn AsyncRead + Send + Unpin>,
    mut to: Box<dyn AsyncWrite + Send + Unpin>,
    to_server: bool,
    born: u64,
    freeze: Arc<Freeze>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if freeze.era.load(Ordering::SeqCst) != born {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
        if to_server {
            let mut trigger = freeze.trigger.lock().unwrap();
            let pulled = trigger.is_some_and(|bytes| {
                buffer[..read]
                    .windows(bytes.len())
                    .any(|window| window == bytes)
            });
            if pulled {
                *trigger = None;
                freeze.era.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
