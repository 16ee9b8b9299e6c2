//! The floor of a fan-out on this machine: `connections` loopback TCP
//! connections, one write of `bytes` to each every `every`, and a reader
//! draining each. That is less than any event-stream server does for its
//! subscribers (no HTTP, no log to read, nothing to encode, no task per
//! subscriber), so what it costs the holds beside it is a floor under what
//! 10,000 subscribers can cost them here.
//!
//! Its writing side runs as a process of its own (`--floor-child`), started
//! by the main run for its second phase in place of the server's streams, so
//! that its CPU is counted apart; the reading side runs in the main run, as
//! the subscribers do.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Writer tasks: as many as this machine's two cores, as a server would
/// spread its fan-out.
const WRITERS: usize = 2;

/// Accepts the connections (after printing the address to connect to),
/// prints `ready`, then writes for `seconds`.
pub async fn run(connections: usize, every: Duration, bytes: usize, seconds: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("{}", listener.local_addr().expect("address"));
    std::io::stdout().flush().expect("stdout");
    let mut sending = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (socket, _) = listener.accept().await.expect("accept");
        socket.set_nodelay(true).expect("nodelay");
        sending.push(socket);
    }
    println!("ready");
    std::io::stdout().flush().expect("stdout");

    // A compact-format-like payload: seat numbers and letters.
    let payload: Vec<u8> = b"12345H,"
        .iter()
        .copied()
        .cycle()
        .take(bytes.max(1))
        .collect();
    let share = connections.div_ceil(WRITERS).max(1);
    let mut writers = Vec::new();
    let mut sending = sending.into_iter();
    for _ in 0..WRITERS {
        let mut mine: Vec<TcpStream> = sending.by_ref().take(share).collect();
        let payload = payload.clone();
        writers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while tick.tick().await < until {
                for socket in &mut mine {
                    if socket.write_all(&payload).await.is_err() {
                        return;
                    }
                }
            }
        }));
    }
    for writer in writers {
        let _ = writer.await;
    }
}

/// The floor's writing process, with a reader in this process draining each
/// of its connections; returns once every connection is open.
pub async fn start(connections: usize, every: Duration, bytes: usize, seconds: u64) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .args([
            "--floor-child",
            "--admin-token",
            "-",
            "--subscribers",
            &connections.to_string(),
            "--floor-every-ms",
            &every.as_millis().to_string(),
            "--floor-bytes",
            &bytes.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the floor's process starts");
    let mut said = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    said.read_line(&mut line).expect("the floor's address");
    let address = line.trim().to_string();
    for _ in 0..connections {
        let mut socket = TcpStream::connect(&address).await.expect("connect");
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 16 * 1024];
            while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
        });
    }
    line.clear();
    said.read_line(&mut line).expect("the floor says ready");
    assert_eq!(line.trim(), "ready", "the floor did not start");
    child
}
