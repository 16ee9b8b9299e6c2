//! A full disk: too full to start is a clear error within seconds, and a disk
//! that fills up while serving gives `503 unavailable` problems at once (not
//! a hang) and heals when space is freed. Uses small tmpfs mounts, so it
//! needs root (CAP_SYS_ADMIN); elsewhere it says so and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::harness::{self, Api, Server, Workdir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_a_clear_error_not_a_hang() {
    let _turn = harness::serial().await;
    let work = Workdir::new("disk");

    // Too small to even initialise a cluster.
    let small = work.root.join("small");
    let Some(_small_mount) = Tmpfs::mount(&small, "30m") else {
        println!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let started = Instant::now();
    let env = [
        ("CONCERT_DATA_DIR", small.join("d").display().to_string()),
        (
            "CONCERT_BIND",
            format!("127.0.0.1:{}", harness::free_port()),
        ),
    ];
    let (code, _, err) = harness::cli(&env, &["serve"]).await;
    let refused_in = started.elapsed();
    assert_ne!(code, 0);
    assert!(err.contains("is full"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(refused_in < Duration::from_secs(20), "took {refused_in:?}");
    println!("start on a full disk refused in {refused_in:?}: {err}");

    // Room to start; then the disk fills up while serving.
    let _mount = Tmpfs::mount(&work.data(), "120m").expect("a second tmpfs");
    let mut server = Server::start(&work, "disk", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let user = Uuid::new_v4();
    api.user_token(user).await;
    let filler = work.data().join("filler");
    fill(&filler);
    let mut refused = 0;
    for _ in 0..20 {
        let sent = Instant::now();
        let answer = api.client.charge(user, 100, None).await.expect("an answer");
        let elapsed = sent.elapsed();
        assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
        if answer.status == 503 {
            assert!(answer.is_problem(), "{}", answer.text());
            refused += 1;
        }
    }
    assert!(refused > 0, "a full disk must refuse some writes");
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = api.client.charge(user, 100, None).await.expect("an answer");
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not healed: {}", answer.text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    assert!(
        log.contains("No space left on device"),
        "the cause is logged"
    );
    println!(
        "{refused} of 20 writes refused with 503 while the disk was full; healed after freeing it"
    );
    let status = server.terminate().await;
    assert!(status.success());
}

/// Writes zeros to `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 1 << 20];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .ok()?;
        status.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The server on it may still be finishing its shutdown.
        for _ in 0..50 {
            let unmounted = Command::new("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|status| status.success());
            if unmounted {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("could not unmount {}", self.0.display());
    }
}
