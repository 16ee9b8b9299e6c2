//! A command whose report nobody can read (`concert audit | head -1`, a full
//! disk) still does its work and exits with its own code: before, `audit`,
//! `user-token` and `backup` panicked on the failed write and exited 101,
//! after a backup written whole. `user-token`'s output is its whole result,
//! so losing it is its failure (exit 1): it exited 0 with nothing written.

use std::process::Stdio;

use uuid::Uuid;

use crate::helpers::{database_url_of, spawn_app};

/// Where a command's report goes: a pipe whose reader went, or a full disk.
#[derive(Debug, Clone, Copy)]
enum LostOutput {
    ClosedPipe,
    FullDisk,
}

/// Runs `concert args` with its stdout and stderr lost; its exit code.
async fn run_unread(database_url: &str, args: &[&str], lost: LostOutput) -> i32 {
    let sink = || match lost {
        LostOutput::ClosedPipe => Stdio::piped(),
        LostOutput::FullDisk => std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap()
            .into(),
    };
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdout(sink())
        .stderr(sink())
        .spawn()
        .unwrap();
    // Gone before the first line, as `head` is once it has its lines.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().await.unwrap();
    status.code().unwrap_or(-1)
}

#[tokio::test]
async fn commands_whose_report_is_lost_do_their_work_and_exit_with_their_own_code() {
    let app = spawn_app().await;
    app.fund(Uuid::new_v4(), 500).await;
    let url = database_url_of(&app.pool);
    let user = Uuid::new_v4().to_string();
    let folder = std::env::temp_dir().join(format!("concert-lost-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&folder).unwrap();
    for lost in [LostOutput::ClosedPipe, LostOutput::FullDisk] {
        assert_eq!(
            run_unread(&url, &["audit"], lost).await,
            0,
            "audit, {lost:?}"
        );
        assert_eq!(
            run_unread(&url, &["user-token", &user], lost).await,
            1,
            "user-token, {lost:?}"
        );
        let file = folder.join(format!("{lost:?}.dump"));
        let file_arg = file.display().to_string();
        assert_eq!(
            run_unread(&url, &["backup", &file_arg], lost).await,
            0,
            "backup, {lost:?}"
        );
        assert!(std::fs::metadata(&file).unwrap().len() > 0, "{lost:?}");
    }
    std::fs::remove_dir_all(&folder).unwrap();
}
