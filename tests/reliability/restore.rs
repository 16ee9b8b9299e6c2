//! `concert restore` of files that are not a plain fresh copy: a store that
//! already holds events is refused, a corrupt or cut-short file changes
//! nothing, a copy made before a later migration restores into a migrated
//! store, and an entry number caught without its ticket is released.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use crate::backup::{data_env, path_str};
use crate::harness::{self, Api, Server, Workdir};

const PRICE: i64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_store_with_events_and_a_bad_file_changes_nothing() {
    let _turn = harness::serial().await;
    let work = Workdir::new("refuse");
    let mut server = Server::start(&work, "refuse", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20, PRICE).await;
    // This one through DATABASE_URL: a database that is not concert's own.
    let file = work.root.join("store.dump");
    let url = [("DATABASE_URL", work.database_url())];
    let (code, out, err) = harness::cli(&url, &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "concert backup failed: {out}{err}");
    server.terminate().await;
    let before = harness::events(&work.data()).await.events.len();

    let (code, _, err) = harness::cli(&data_env(&work.data()), &["restore", path_str(&file)]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("refusing to restore: the store already holds"),
        "{err}"
    );
    assert_eq!(harness::events(&work.data()).await.events.len(), before);

    let fresh = work.root.join("r");
    let whole = std::fs::read(&file).unwrap();
    let garbage = work.root.join("garbage.dump");
    std::fs::write(&garbage, b"PGDMP but not really a backup").unwrap();
    let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&garbage)]).await;
    assert_ne!(code, 0);
    assert!(err.contains("is not a readable backup"), "{err}");
    // Cut early, pg_restore cannot read the table of contents; cut late, the
    // restore fails mid-data and its single transaction rolls back.
    for keep in [whole.len() / 2, whole.len() - 200] {
        let cut = work.root.join(format!("cut-{keep}.dump"));
        std::fs::write(&cut, &whole[..keep]).unwrap();
        let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&cut)]).await;
        assert_ne!(code, 0);
        assert!(
            err.contains("rolled back, the store is unchanged")
                || err.contains("is not a readable backup"),
            "{err}"
        );
        println!("file cut to {keep} of {} bytes: {err}", whole.len());
    }

    // Nothing changed: the fresh store is still empty and takes the whole file.
    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(harness::events(&fresh).await.events.len(), before);
    let (code, audit) = harness::audit(&fresh, 100).await;
    assert_eq!(code, 0, "{audit}");
}

/// A copy made by a release before a later migration, restored into a store
/// that `concert migrate` prepared: the copy comes in whole and the newer
/// migration applies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_older_than_the_schema_restores_into_a_migrated_store() {
    let _turn = harness::serial().await;
    let work = Workdir::new("older");
    let mut server = Server::start(&work, "older", &[]).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    api.create_concert(20, PRICE).await;
    // The store as a release before migration 9 (served_settings) left it.
    let old = PgPool::connect(&work.database_url()).await.unwrap();
    sqlx::raw_sql("drop table served_settings; delete from _sqlx_migrations where version = 9")
        .execute(&old)
        .await
        .unwrap();
    old.close().await;
    server.terminate().await;
    let before = harness::events(&work.data()).await.events.len();
    let file = work.root.join("older.dump");
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");

    let copy_work = Workdir::new("older-copy");
    let fresh = copy_work.data();
    let (code, out, err) = harness::cli(&data_env(&fresh), &["migrate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    // A cut file first: the failed restore puts the migrated schema back.
    let whole = std::fs::read(&file).unwrap();
    let cut = work.root.join("cut.dump");
    std::fs::write(&cut, &whole[..whole.len() - 200]).unwrap();
    let (code, _, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&cut)]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("rolled back, the store is unchanged"), "{err}");
    let mut copy = Server::start(&copy_work, "older-copy", &[]).await;
    let target = PgPool::connect(&copy_work.database_url()).await.unwrap();
    let (set_aside, events): (bool, i64) = sqlx::query_as(
        "select exists (select 1 from pg_namespace where nspname = 'concert_before_restore'),
                (select count(*) from events)",
    )
    .fetch_one(&target)
    .await
    .unwrap();
    target.close().await;
    copy.terminate().await;
    assert_eq!((set_aside, events), (false, 0));

    let (code, out, err) = harness::cli(&data_env(&fresh), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(harness::events(&fresh).await.events.len(), before);
    let (code, audit) = harness::audit(&fresh, 100).await;
    assert_eq!(code, 0, "{audit}");
    // The copy serves, with every migration applied.
    let mut copy = Server::start(&copy_work, "older-copy-2", &[]).await;
    let api = Api::new(vec![copy.base()], Duration::from_secs(20));
    api.create_concert(5, PRICE).await;
    copy.terminate().await;
}

/// A copy taken between an entry's number and its ticket's commit holds the
/// number without a ticket; the restore records it unused, so the tickets
/// behind it keep their places in the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_number_a_copy_holds_without_its_ticket_is_released_by_the_restore() {
    let _turn = harness::serial().await;
    let work = Workdir::new("numbers");
    let settings = [("CONCERT_QUEUE_ACTIVE_MAX", "1".to_string())];
    let mut server = Server::start(&work, "numbers", &settings).await;
    let api = Api::new(vec![server.base()], Duration::from_secs(20));
    let (concert, _) = api.create_concert(5, PRICE).await;
    let token_of = |answer: Option<concert_client::Answer>| {
        let answer = answer.expect("entered");
        answer
            .json::<concert_client::QueueToken>("queue token", &[200, 201])
            .unwrap()
            .token
    };
    let first = token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    assert_eq!(
        api.wait_admitted(&first, Duration::from_secs(10))
            .await
            .as_deref(),
        Some("active")
    );
    token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    // The number an entry in flight took, its ticket not committed.
    let store = PgPool::connect(&work.database_url()).await.unwrap();
    sqlx::query("update queue_lines set issued = issued + 1 where concert_id = $1")
        .bind(concert)
        .execute(&store)
        .await
        .unwrap();
    store.close().await;
    let last = token_of(
        api.enter(Uuid::new_v4(), concert, Duration::from_secs(10))
            .await,
    );
    // Live, the entry in flight is still ahead of the last one.
    assert_eq!(position(&api, &last).await, 2);
    let file = work.root.join("numbers.dump");
    let (code, out, err) =
        harness::cli(&data_env(&work.data()), &["backup", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    server.terminate().await;

    let copy_work = Workdir::new("numbers-copy");
    let (code, out, err) =
        harness::cli(&data_env(&copy_work.data()), &["restore", path_str(&file)]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("1 queue entry numbers the copy caught without their ticket were released"),
        "{out}"
    );
    let mut copy = Server::start(&copy_work, "numbers-copy", &settings).await;
    let api = Api::new(vec![copy.base()], Duration::from_secs(20));
    assert_eq!(position(&api, &last).await, 1);
    copy.terminate().await;
}

/// The waiting tokens ahead of `token`.
async fn position(api: &Api, token: &str) -> i64 {
    let answer = api.client.current_token(token).await.unwrap();
    answer
        .json::<concert_client::QueueToken>("queue status", &[200])
        .unwrap()
        .position
}
