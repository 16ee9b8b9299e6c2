use super::binaries::parse_major_version;
use super::*;
use sqlx::{Connection, Executor, PgConnection};
use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A fresh folder under /tmp, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = PathBuf::from(format!(
            "/tmp/concert-pg-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

fn alive(pid: i32) -> bool {
    // A zombie (not reaped by a container's init) counts as gone.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn uid_of(pid: i32) -> u32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn restart_keeps_data() {
    let tmp = TempDir::new("restart");
    let data_dir = tmp.0.join(".concert");

    // Started by a thread that ends at once: the server must outlive it
    // (the parent-death signal is tied to the spawning thread).
    let dir = data_dir.clone();
    let pg = thread::spawn(move || PrivatePostgres::start(&dir).expect("first start"))
        .join()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let url = pg.database_url();
    assert!(url.contains("/concert?host=/tmp/"), "{url}");
    let pid = pg.server_pid().unwrap();
    if nix::unistd::geteuid().is_root() {
        assert_ne!(uid_of(pid), 0, "the server must not run as root");
    }
    block_on(async {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        conn.execute("create table seats (id int primary key, holder text not null)")
            .await
            .unwrap();
        conn.execute("insert into seats values (7, 'alice')")
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    pg.stop().expect("a clean stop");
    assert!(!alive(pid), "stop() waits for the server to exit");
    assert!(
        !data_dir.join("pgdata/postmaster.pid").exists(),
        "clean shutdown"
    );

    let pg = PrivatePostgres::start(&data_dir).expect("second start");
    let holder: String = block_on(async {
        let mut conn = PgConnection::connect(&pg.database_url()).await.unwrap();
        sqlx::query_scalar("select holder from seats where id = 7")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(holder, "alice");
    let pid = pg.server_pid().unwrap();
    drop(pg);
    assert!(!alive(pid), "drop stops the server");
    let log = fs::read_to_string(data_dir.join("postgres.log")).unwrap();
    assert!(
        log.contains("database system is ready to accept connections"),
        "{log}"
    );
}

/// A data folder too long to hold the socket gets a private socket folder
/// of its own, not a loopback port: with `trust` authentication, TCP let
/// every local user in as superuser.
#[test]
fn a_long_data_dir_gets_a_private_socket_folder_and_no_tcp() {
    use std::os::unix::fs::MetadataExt;

    let tmp = TempDir::new("long");
    let data_dir = tmp.0.join("x".repeat(100));
    let pg = PrivatePostgres::start(&data_dir).expect("start");
    let url = pg.database_url();
    let Endpoint::Socket { dir, .. } = pg.endpoint.clone() else {
        panic!("served on TCP: {url}");
    };
    assert!(
        url.ends_with(&format!(
            "?host={}",
            percent_encode(dir.as_os_str().as_bytes())
        )),
        "{url}"
    );
    assert!(!dir.starts_with(&data_dir), "{}", dir.display());
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
    let (db, listening): (String, String) = block_on(async {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::query_as("select current_database()::text, current_setting('listen_addresses')")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(db, "concert");
    assert_eq!(listening, "", "no TCP address");
    pg.stop().expect("a clean stop");
    assert!(!dir.exists(), "the socket folder goes with the server");
}

#[test]
fn second_server_on_same_data_dir_is_refused() {
    let tmp = TempDir::new("twice");
    let pg = PrivatePostgres::start(&tmp.0).expect("start");
    // The folder's lock refuses it (another process is named as the `serve`
    // it is; this one is the owner itself).
    match PrivatePostgres::start(&tmp.0) {
        Err(PrivatePostgresError::FolderBusy(dir)) => assert_eq!(dir, pg.data_dir()),
        other => panic!("expected FolderBusy, got {other:?}"),
    }
    // The first server is unharmed.
    block_on(async {
        PgConnection::connect(&pg.database_url())
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
    });
}

#[tokio::test]
async fn starts_inside_a_tokio_runtime() {
    let tmp = TempDir::new("runtime");
    let pg = PrivatePostgres::start(&tmp.0).expect("start");
    let mut conn = PgConnection::connect(&pg.database_url()).await.unwrap();
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    pg.stop().expect("a clean stop");
}

const HELPER_ENV: &str = "CONCERT_PRIVATE_PG_HELPER_DIR";

/// Not a test by itself: the child process of `server_dies_with_its_parent`,
/// which runs it with `--ignored`. To run it by hand (it starts a server
/// and waits two minutes to be killed):
/// `CONCERT_PRIVATE_PG_HELPER_DIR=<dir> cargo test --lib -- --ignored --exact private_postgres::tests::parent_death_helper`
#[test]
#[ignore = "the child process of server_dies_with_its_parent"]
fn parent_death_helper() {
    let dir = std::env::var_os(HELPER_ENV)
        .expect("CONCERT_PRIVATE_PG_HELPER_DIR names a scratch directory");
    let dir = PathBuf::from(dir);
    let pg = PrivatePostgres::start(&dir.join("data")).expect("start");
    fs::write(dir.join("pid.tmp"), pg.server_pid().unwrap().to_string()).unwrap();
    fs::rename(dir.join("pid.tmp"), dir.join("pid")).unwrap();
    thread::sleep(Duration::from_secs(120)); // to be SIGKILLed meanwhile
}

#[test]
fn server_dies_with_its_parent() {
    let tmp = TempDir::new("orphan");
    let test_name = format!(
        "{}::parent_death_helper",
        module_path!().split_once("::").unwrap().1
    );
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            test_name.as_str(),
            "--ignored",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, &tmp.0)
        .stdin(Stdio::null())
        .stdout(File::create(tmp.0.join("helper.out")).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let pid = loop {
        if let Ok(pid) = fs::read_to_string(tmp.0.join("pid")) {
            break pid.parse::<i32>().unwrap();
        }
        if let Some(status) = helper.try_wait().unwrap() {
            panic!("helper exited early ({status})");
        }
        assert!(Instant::now() < deadline, "helper did not start a server");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(alive(pid));
    if nix::unistd::geteuid().is_root() {
        assert_ne!(uid_of(pid), 0, "the server must not run as root");
    }

    helper.kill().unwrap(); // SIGKILL: no destructors run
    helper.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "postgres {pid} outlived its parent"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let pgdata = tmp.0.join("data/pgdata");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pgdata.join("postmaster.pid").exists() {
        assert!(
            Instant::now() < deadline,
            "postmaster.pid left behind: no clean shutdown"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let log = fs::read_to_string(tmp.0.join("data/postgres.log")).unwrap();
    assert!(log.contains("received fast shutdown request"), "{log}");
}

#[test]
fn urls() {
    let mut pg = PrivatePostgres {
        data_dir: PathBuf::from("/srv/my app"),
        pgdata: PathBuf::from("/srv/my app/pgdata"),
        log_path: PathBuf::from("/srv/my app/postgres.log"),
        endpoint: Endpoint::Socket {
            dir: PathBuf::from("/srv/my app+x"),
            port: 5432,
        },
        own_socket_dir: None,
        folder_lock: None,
        server: None,
        launcher: None,
    };
    assert_eq!(
        pg.database_url(),
        "postgres://postgres@localhost:5432/concert?host=/srv/my%20app%2Bx"
    );
    let opts: PgConnectOptions = pg.database_url().parse().unwrap();
    assert_eq!(opts.get_socket(), Some(&PathBuf::from("/srv/my app+x")));
    assert_eq!(opts.get_database(), Some("concert"));
    pg.endpoint = Endpoint::Tcp { port: 40123 };
    assert_eq!(
        pg.url_for("other"),
        "postgres://postgres@127.0.0.1:40123/other"
    );
    assert!(socket_endpoint(Path::new("/tmp/short")).is_some());
    assert!(socket_endpoint(&Path::new("/tmp").join("y".repeat(90))).is_none());
    assert!(socket_endpoint(Path::new("/tmp/a,b")).is_none());
}

#[test]
fn versions() {
    let v = |s: &str| parse_major_version(s);
    assert_eq!(
        v("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n").as_deref(),
        Some("15")
    );
    assert_eq!(v("postgres (PostgreSQL) 17beta1").as_deref(), Some("17"));
    assert_eq!(v("postgres (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
    assert_eq!(v("nonsense"), None);
    let message = PrivatePostgresError::NoBinaries.to_string();
    assert!(!message.contains('\n') && message.contains("apt-get install postgresql"));
}

/// The child half of the next test: a one-off command on the folder's
/// server for two seconds. Started only by it.
#[test]
#[ignore = "run by a_serve_waits_for_a_one_off_command_on_its_folder"]
fn tool_child() {
    let Ok(dir) = std::env::var("CONCERT_TOOL_DIR") else {
        return;
    };
    let pg = PrivatePostgres::attach_or_start(Path::new(&dir)).expect("the tool's server");
    thread::sleep(Duration::from_secs(2));
    pg.stop().expect("a clean stop");
}

/// `serve` started while a one-off command (a nightly backup) runs on the
/// folder's server waits for it, rather than being refused as if another
/// `serve` owned the folder.
#[test]
fn a_serve_waits_for_a_one_off_command_on_its_folder() {
    let tmp = TempDir::new("tool");
    let mut tool = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::tool_child", "--ignored"])
        .env("CONCERT_TOOL_DIR", &tmp.0)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let serving = || {
        tmp.0.join("concert.owner").exists()
            && fs::read_to_string(tmp.0.join("postgres.log"))
                .is_ok_and(|log| log.contains("ready to accept connections"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !serving() {
        assert!(Instant::now() < deadline, "the tool's server never started");
        thread::sleep(Duration::from_millis(50));
    }

    let pg = PrivatePostgres::start(&tmp.0).expect("started once the command ended");

    assert!(
        tool.try_wait().unwrap().is_some(),
        "started before the command ended"
    );
    assert!(tool.wait().unwrap().success());
    pg.stop().expect("a clean stop");
}

/// Two `serve` started at once on one fresh folder: one serves, the other
/// is told the folder is busy. Both ran initdb in the folder and both
/// failed, or one took over the other's owner file and removed it.
#[test]
fn two_starts_at_once_on_a_fresh_folder_leave_one_serving() {
    let tmp = TempDir::new("twice-at-once");
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let dir = tmp.0.clone();
            thread::spawn(move || PrivatePostgres::start(&dir))
        })
        .collect();
    let mut outcomes: Vec<_> = starts
        .into_iter()
        .map(|start| start.join().unwrap())
        .collect();
    outcomes.sort_by_key(|outcome| outcome.is_err());

    let [Ok(pg), Err(refused)] = &outcomes[..] else {
        panic!("expected one start and one refusal: {outcomes:?}");
    };
    assert!(
        matches!(refused, PrivatePostgresError::FolderBusy(_)),
        "{refused:?}"
    );
    assert!(
        tmp.0.join("concert.owner").exists(),
        "the winner's owner file"
    );
    let one: i32 = block_on(async {
        let mut conn = PgConnection::connect(&pg.database_url()).await.unwrap();
        sqlx::query_scalar("select 1")
            .fetch_one(&mut conn)
            .await
            .unwrap()
    });
    assert_eq!(one, 1);
}

/// As root: another user's empty `pgdata` was removed and replaced by a new
/// cluster of PostgreSQL's user, without a word.
#[test]
fn another_user_s_empty_cluster_folder_is_refused_not_replaced() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let tmp = TempDir::new("foreign");
    let data_dir = tmp.0.join("d");
    let pgdata = data_dir.join("pgdata");
    fs::create_dir_all(&pgdata).unwrap();
    let nobody = super::run_as::hand_to_nobody(&pgdata);

    let error = PrivatePostgres::start(&data_dir).map(|_| ()).unwrap_err();

    assert!(error.to_string().contains("belongs to nobody"), "{error}");
    let meta = fs::metadata(&pgdata).unwrap();
    assert_eq!(meta.uid(), nobody.uid.as_raw(), "pgdata changed hands");
    assert!(
        !pgdata.join("PG_VERSION").exists(),
        "a cluster was made in it"
    );
}
