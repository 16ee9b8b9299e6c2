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
        (vec!["restore", folder.as_str()], "is a folder"),
    ] {
        let (code, out, err) = harness::cli(&no_store, &args).await;
        assert_eq!(code, 1, "concert {args:?}: {out}{err}");
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
        err.contains(&format!("cannot listen on {address} (CONCERT_BIND)")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
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
        out.contains("CONCERT_QUEUE_ACTIVE_MAX=3 (the service's last run)"),
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
        out.contains("CONCERT_QUEUE_ACTIVE_MAX=3 (the service's last run)"),
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
}
