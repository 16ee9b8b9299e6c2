//! What an operator mistypes is refused at once with a message that names
//! it, before a private PostgreSQL is started (or created where none was
//! meant to be), and changes nothing.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::harness::{self, Api, Server, Workdir};

#[tokio::test]
async fn tools_refuse_a_mistyped_store_or_file_before_starting_a_database() {
    let _turn = harness::serial().await;
    let work = Workdir::new("typo");
    let data = work.data();
    let no_store = [("CONCERT_DATA_DIR", data.display().to_string())];
    let folder = work.root.display().to_string();
    let missing = work.root.join("no-such.dump").display().to_string();
    // Paths that are there but are not backup files: said so, not "no such file".
    let dangling = work.root.join("dangling.dump");
    std::os::unix::fs::symlink(work.root.join("gone"), &dangling).unwrap();
    let dangling = dangling.display().to_string();

    for (args, expected) in [
        (vec!["audit"], "no store under"),
        (vec!["events"], "no store under"),
        (vec!["replay"], "no store under"),
        (
            vec!["user-token", "8f1c3a52-2b1e-4c7e-9d7a-3f5b6c8d9e0f"],
            "no store under",
        ),
        (vec!["backup", "copy.dump"], "no store under"),
        (vec!["backup", folder.as_str()], "is a folder"),
        (vec!["restore", missing.as_str()], "no such backup file"),
        (vec!["restore", dangling.as_str()], "a link to nothing"),
        (vec!["restore", "/dev/null"], "not a regular file"),
        (vec!["restore", folder.as_str()], "is a folder"),
    ] {
        let (code, out, err) = harness::cli(&no_store, &args).await;
        // The audit's 1 says a violation; it could not check at all.
        let could_not_run = if args[0] == "audit" { 2 } else { 1 };
        assert_eq!(code, could_not_run, "concert {args:?}: {out}{err}");
        assert!(err.contains(expected), "concert {args:?}: {err}");
        assert!(
            !data.exists(),
            "concert {args:?} created {}",
            data.display()
        );
    }
    // Nor a partial file beside it (`<file>.<pid>.partial`).
    let name = work
        .root
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let beside = std::fs::read_dir(work.root.parent().unwrap()).unwrap();
    let partials: Vec<String> = beside
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|file| file.starts_with(&format!("{name}.")) && file.ends_with(".partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
}

/// A store another user may not look into (PostgreSQL's, mode 0700) was
/// called absent, with the advice to make one there.
#[tokio::test]
async fn a_store_this_user_may_not_read_is_not_called_absent() {
    use std::os::unix::fs::PermissionsExt;
    let _turn = harness::serial().await;
    let work = Workdir::new("unread");
    let data = work.data();
    std::fs::create_dir_all(data.join("pgdata")).unwrap();
    std::fs::write(data.join("pgdata").join("PG_VERSION"), "15\n").unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let settings = [("CONCERT_DATA_DIR", data.display().to_string())];

    let Some((code, out, err)) = harness::cli_as_nobody(&settings, &["audit"]).await else {
        println!("not root: no other user to run as");
        return;
    };

    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("cannot look for a store under") && err.contains("ermission denied"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_serve_on_a_served_folder_names_the_concert_serving_it() {
    let _turn = harness::serial().await;
    let work = Workdir::new("twice");
    let mut first = Server::start(&work, "first", &[]).await;
    let settings = [
        ("CONCERT_DATA_DIR", work.data().display().to_string()),
        (
            "CONCERT_BIND",
            format!("127.0.0.1:{}", harness::free_port()),
        ),
    ];

    let (code, out, err) = harness::cli(&settings, &["serve"]).await;

    assert_eq!(code, 1, "{out}{err}");
    // Not "another PostgreSQL server is using it; stop it first": that is
    // the first concert's own, which it would restart.
    let pid = first.pid();
    assert!(
        err.contains(&format!("concert (pid {pid}) serves")),
        "{err}"
    );
    let api = Api::new(vec![first.base()], Duration::from_secs(10));
    api.create_concert(2, 1_000).await;
    assert!(first.terminate().await.success());
}

#[tokio::test]
async fn serve_on_a_port_in_use_says_which_address_and_starts_no_database() {
    let _turn = harness::serial().await;
    let work = Workdir::new("port");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let settings = [
        ("CONCERT_DATA_DIR", work.data().display().to_string()),
        ("CONCERT_BIND", address.clone()),
    ];

    let started = Instant::now();
    let (code, out, err) = harness::cli(&settings, &["serve"]).await;

    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!(
            "cannot listen on {address} (--bind / CONCERT_BIND)"
        )),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!work.data().exists(), "a database was created");
}

/// A JWKS file that is not there stopped the start only once the store was
/// made and migrated, leaving the new store behind.
#[tokio::test]
async fn serve_with_a_missing_jwks_file_says_so_and_starts_no_database() {
    let _turn = harness::serial().await;
    let work = Workdir::new("jwks");
    let missing = work.root.join("no-such-jwks.json").display().to_string();
    let settings = [
        ("CONCERT_DATA_DIR", work.data().display().to_string()),
        ("CONCERT_BIND", "127.0.0.1:0".to_string()),
        ("CONCERT_AUTH_JWKS_FILE", missing.clone()),
    ];

    let (code, out, err) = harness::cli(&settings, &["serve"]).await;

    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(!work.data().exists(), "a database was created");
}

#[tokio::test]
async fn an_empty_admin_token_is_replaced_by_a_generated_one() {
    let _turn = harness::serial().await;
    let work = Workdir::new("admin");
    // With warnings filtered out of the log, the token is printed still.
    for filter in ["warn", "error"] {
        let mut server = Server::start(
            &work,
            &format!("empty-admin-{filter}"),
            &[
                ("CONCERT_ADMIN_TOKEN", String::new()),
                ("RUST_LOG", filter.to_string()),
            ],
        )
        .await;

        let log = std::fs::read_to_string(&server.log).unwrap();
        let lines: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("generated this admin token"))
            .collect();
        assert_eq!(lines.len(), 1, "RUST_LOG={filter}, the token once:\n{log}");
        let generated = match serde_json::from_str::<serde_json::Value>(lines[0]) {
            // JSON log lines carry their fields at the top level.
            Ok(line) => line["admin_token"].as_str().expect("the token").to_string(),
            Err(_) => lines[0].rsplit(": ").next().unwrap().to_string(),
        };
        let client = reqwest::Client::new();
        let audit = |token: String| {
            client
                .get(format!("{}/api/v1/audit/events", server.base()))
                .bearer_auth(token)
                .send()
        };
        assert_eq!(
            audit(generated).await.unwrap().status(),
            200,
            "RUST_LOG={filter}"
        );
        assert_eq!(audit(String::new()).await.unwrap().status(), 401);
        assert!(server.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_checks_admissions_against_the_limit_the_service_ran_with() {
    let _turn = harness::serial().await;
    let work = Workdir::new("limit");
    let limit = Duration::from_secs(20);
    let mut server = Server::start(
        &work,
        "limit",
        &[("CONCERT_QUEUE_ACTIVE_MAX", "3".to_string())],
    )
    .await;
    let api = Api::new(vec![server.base()], limit);
    let (concert, _) = api.create_concert(10, 1000).await;
    for _ in 0..3 {
        let entered = api.enter(Uuid::new_v4(), concert, limit).await.unwrap();
        let token = harness::body(&entered)["token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            api.wait_admitted(&token, limit).await.as_deref(),
            Some("active")
        );
    }
    assert!(server.terminate().await.success());
    let data = [("CONCERT_DATA_DIR", work.data().display().to_string())];

    // Not given one, the audit takes the service's; a smaller one given by
    // flag or environment names the admissions beyond it.
    let (code, out, err) = harness::cli(&data, &["audit"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("CONCERT_QUEUE_ACTIVE_MAX=3 (as the service ran with it)"),
        "{out}"
    );
    let (code, out, _) = harness::cli(&data, &["audit", "--queue-active-max", "2"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("admissions stay within the active limit"),
        "{out}"
    );
    let smaller = ("CONCERT_QUEUE_ACTIVE_MAX", "2".to_string());
    let (code, _, _) = harness::cli(&[data[0].clone(), smaller], &["audit"]).await;
    assert_eq!(code, 1);

    // A copy keeps it: restoring one serves nothing, and records nothing.
    let file = work.root.join("limit.dump").display().to_string();
    let (code, out, err) = harness::cli(&data, &["backup", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    let copy = [(
        "CONCERT_DATA_DIR",
        work.root.join("copy").display().to_string(),
    )];
    let (code, out, err) = harness::cli(&copy, &["restore", &file]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = harness::cli(&copy, &["audit"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("CONCERT_QUEUE_ACTIVE_MAX=3 (as the service ran with it)"),
        "{out}"
    );

    // Serving with another limit is recorded, and said in the log.
    server
        .restart(&[("CONCERT_QUEUE_ACTIVE_MAX", "5".to_string())])
        .await;
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("served with another CONCERT_QUEUE_ACTIVE_MAX"),
        "{log}"
    );
    assert!(server.terminate().await.success());

    // Lowered below the 3 admitted at once before: those admissions are
    // held to the limit of their time, not to the one served last.
    server
        .restart(&[("CONCERT_QUEUE_ACTIVE_MAX", "2".to_string())])
        .await;
    assert!(server.terminate().await.success());
    let (code, out, err) = harness::cli(&data, &["audit"]).await;
    assert_eq!(code, 0, "{out}{err}");
    // (5, served with no event written, gave way to 2 at the same position.)
    assert!(out.contains("=3, then 2 after position "), "{out}");
}

/// A log read through a pipe whose reader goes (`concert serve 2>&1 | head
/// -1`) loses its lines, not the service: the failed write was reported on
/// that same stderr, which panicked (exit 101) at the next log line.
#[tokio::test]
async fn a_log_pipe_whose_reader_went_stops_no_service() {
    use tokio::io::AsyncBufReadExt;

    let _turn = harness::serial().await;
    let work = Workdir::new("pipe");
    let address = format!("127.0.0.1:{}", harness::free_port());
    let mut serve = harness::spawn_cli(
        &[
            ("CONCERT_DATA_DIR", work.data().display().to_string()),
            ("CONCERT_BIND", address.clone()),
            ("CONCERT_ADMIN_TOKEN", "pipe-admin".to_string()),
            ("RUST_LOG", "info".to_string()),
        ],
        &["serve"],
    );
    // Read the first line, then go, as `head -1` does.
    let stderr = serve.stderr.take().expect("stderr piped");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    lines.next_line().await.unwrap().expect("a first log line");
    drop(lines);

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = 0;
    while answered < 20 && Instant::now() < deadline {
        // Each request logs a line at `info`: each write now fails.
        if let Ok(health) = client.get(format!("http://{address}/readyz")).send().await {
            answered += usize::from(health.status() == 200);
        }
        if let Some(status) = serve.try_wait().unwrap() {
            panic!("the service stopped with {status} once its log pipe closed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, 20, "the service did not answer");
    let pid = nix::unistd::Pid::from_raw(serve.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), serve.wait())
        .await
        .expect("stopped within 30 s")
        .unwrap();
    assert!(status.success(), "stopped with {status}");
}

/// A `DATABASE_URL` where nothing listens is named with why it failed, not
/// only with the pool's "timed out while waiting for an open connection".
#[tokio::test]
async fn a_database_url_where_nothing_listens_says_the_connection_was_refused() {
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/concert",
        harness::free_port()
    );
    let (code, _, err) = harness::cli(&[("DATABASE_URL", url)], &["migrate"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Connection refused"), "{err}");
}

/// An empty `DATABASE_URL` (`DATABASE_URL=` in a compose file) is unset, as
/// an empty admin token is: the private server, not "not a PostgreSQL URL".
#[tokio::test]
async fn an_empty_database_url_is_the_private_server() {
    let _turn = harness::serial().await;
    let work = Workdir::new("empty-url");
    let env = [
        ("DATABASE_URL", String::new()),
        ("CONCERT_DATA_DIR", work.data().display().to_string()),
    ];
    let (code, out, err) = harness::cli(&env, &["migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("database migrated"), "{out}");
    assert!(work.data().join("pgdata").exists());
}
