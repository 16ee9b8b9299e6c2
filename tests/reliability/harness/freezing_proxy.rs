//! A TCP proxy to the private server's socket that freezes on a chosen
//! statement: the connections open then stay open and relay nothing more,
//! as a frozen network path or proxy would leave them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;

/// A TCP proxy to the private server's socket whose connections, those open
/// when it freezes, stay open and relay nothing more; later ones relay.
pub struct FreezingProxy {
    pub port: u16,
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
    pub async fn start(socket: PathBuf) -> FreezingProxy {
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
    pub fn freeze_after(&self, trigger: &'static [u8]) {
        *self.freeze.trigger.lock().unwrap() = Some(trigger);
    }

    /// How many times it has frozen.
    pub fn freezes(&self) -> u64 {
        self.freeze.era.load(Ordering::SeqCst)
    }

    /// Closes every connection.
    pub fn stop(&self) {
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
