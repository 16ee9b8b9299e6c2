//! Draining before a stop (`CONCERT_SHUTDOWN_DRAIN_SECS`): after SIGTERM the
//! service serves on for that long, not ready, each answer asking its
//! client to close the connection, then stops by itself.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};

use super::process::{free_address, Service};

const DRAIN_SECS: u64 = 4;

/// The head of the answer to `request_line` on a kept-alive connection, in
/// lower case; empty when nothing listens.
fn answer_head(address: &str, request_line: &str) -> String {
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!("{request_line} HTTP/1.1\r\nHost: x\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return String::new();
    }
    let mut answer = String::new();
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) if !line.is_empty() => {
                answer.push_str(&line.to_ascii_lowercase());
                answer.push('\n');
            }
            _ => break,
        }
    }
    answer
}

#[test]
fn after_sigterm_a_draining_service_serves_on_not_ready_then_stops() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = PathBuf::from(format!("/tmp/concert-drain-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let address = free_address();
    let drain = DRAIN_SECS.to_string();
    let mut service =
        Service::start_with(&dir, &address, &[("CONCERT_SHUTDOWN_DRAIN_SECS", &drain)]);
    let started = Instant::now();
    while !answer_head(&address, "GET /readyz").starts_with("http/1.1 200") {
        assert!(started.elapsed() < Duration::from_secs(90), "never ready");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!answer_head(&address, "GET /healthz").contains("connection: close"));

    kill(service.pid(), Signal::SIGTERM).unwrap();
    let signalled = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    let ready = answer_head(&address, "GET /readyz");
    assert!(ready.starts_with("http/1.1 503"), "{ready}");
    let healthz = answer_head(&address, "GET /healthz");
    assert!(healthz.starts_with("http/1.1 200"), "{healthz}");
    assert!(healthz.contains("connection: close"), "{healthz}");
    assert!(service.exited().is_none(), "stopped before its drain ended");

    let status = loop {
        if let Some(status) = service.exited() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(60),
            "never stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() >= Duration::from_secs(DRAIN_SECS));
    assert!(service.log().contains("draining before the stop"));
    fs::remove_dir_all(&dir).ok();
}
