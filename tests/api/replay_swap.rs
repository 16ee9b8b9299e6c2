//! A replay's swap and the long readers of the read models it replaces.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use uuid::Uuid;

use crate::helpers::spawn_app;

/// A session holding the replay's lock, as a replay running does.
async fn replay_running(pool: &sqlx::PgPool) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut running = pool.acquire().await.unwrap();
    sqlx::query("select pg_advisory_lock($1)")
        .bind(concert::replay::REPLAY_LOCK)
        .execute(&mut *running)
        .await
        .unwrap();
    running
}

/// A replay, which sets `ended` once it is done (swapped in, or failed).
async fn replay_noting_its_end(
    pool: &sqlx::PgPool,
    ended: &AtomicBool,
) -> Result<concert::replay::ReplayReport, concert::replay::ReplayError> {
    let replayed = concert::replay::replay(pool, &mut |_, _| {}).await;
    ended.store(true, Ordering::SeqCst);
    replayed
}

/// Charges `user` 1 won `times` times, each answered `200` within `within`.
async fn charges_keep_being_answered(
    app: &crate::helpers::TestApp,
    user: Uuid,
    times: usize,
    within: Duration,
) {
    for _ in 0..times {
        let started = Instant::now();
        let answer = app.charge(user, 1).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(
            started.elapsed() < within,
            "a charge took {:?} while the replay waited",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A backup copies every table under one snapshot for as long as it runs,
/// and an export reads them at length: the rebuilt read models are swapped
/// in once they are done, and the service is not held up meanwhile.
#[tokio::test]
async fn a_replay_swaps_after_long_readers_without_holding_up_the_service() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    assert_eq!(app.charge(user, 100).await.status, 200);

    // As `concert backup` does: the copy lock shared, and the tables read
    // under a snapshot held to the end.
    let mut backup = sqlx::PgConnection::connect_with(&app.pool.connect_options())
        .await
        .unwrap();
    share_the_copy_lock(&mut backup).await;
    let mut snapshot = backup.begin().await.unwrap();
    read_the_table(&mut snapshot, "balances").await;

    let swapped = AtomicBool::new(false);
    let replay = replay_noting_its_end(&app.pool, &swapped);
    let readers = async {
        charges_keep_being_answered(&app, user, 12, Duration::from_secs(1)).await;
        assert!(
            !swapped.load(Ordering::SeqCst),
            "swapped while a backup read the tables"
        );
        // The backup is done, but another reader still holds the balances.
        sqlx::query("select pg_advisory_unlock_shared($1)")
            .bind(concert::backup::COPY_LOCK)
            .execute(&mut *snapshot)
            .await
            .unwrap();
        charges_keep_being_answered(&app, user, 12, Duration::from_secs(1)).await;
        assert!(
            !swapped.load(Ordering::SeqCst),
            "swapped while a reader held the balances"
        );
        snapshot.rollback().await.unwrap();
    };
    let (replayed, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(replay, readers)
    })
    .await
    .expect("the replay swaps once the readers are done");
    let report = replayed.expect("the replay succeeds");
    assert!(report.events > 0);
    // The wallet is the one stream that moved during the rebuild, caught up
    // pass after pass while the swap waited: one stream, however often.
    assert_eq!(report.caught_up_streams, 1, "{report:?}");
    let balance: i64 = sqlx::query_scalar("select balance from balances where user_id = $1")
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(balance, 100 + 24);
    crate::helpers::assert_replay_rebuilds_the_read_models(&app.pool).await;
}

/// Backups one after another (a loop of them, as a probe ran) leave the
/// swap its turn: it waits for the copy lock in line, and the next backup,
/// which tries the lock, waits behind it. Trying the lock every 2 s, the
/// swap found it held nearly always: a replay took 150 s where 14 s did.
#[tokio::test]
async fn back_to_back_backups_keep_no_replay_from_swapping() {
    const BACKUP_TAKES: Duration = Duration::from_millis(500);
    let app = spawn_app().await;
    assert_eq!(app.charge(Uuid::new_v4(), 5).await.status, 200);
    let mut backup = sqlx::PgConnection::connect_with(&app.pool.connect_options())
        .await
        .unwrap();
    let swapped = AtomicBool::new(false);
    let replay = replay_noting_its_end(&app.pool, &swapped);
    let backups = async {
        let mut taken = 0;
        while !swapped.load(Ordering::SeqCst) {
            // As `concert backup` takes the lock: tried until shared.
            let shared: bool = sqlx::query_scalar("select pg_try_advisory_lock_shared($1)")
                .bind(concert::backup::COPY_LOCK)
                .fetch_one(&mut backup)
                .await
                .unwrap();
            if !shared {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            taken += 1;
            tokio::time::sleep(BACKUP_TAKES).await;
            sqlx::query("select pg_advisory_unlock_shared($1)")
                .bind(concert::backup::COPY_LOCK)
                .execute(&mut backup)
                .await
                .unwrap();
        }
        taken
    };
    let (replayed, taken) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(replay, backups)
    })
    .await
    .expect("the replay swaps between two backups");
    assert!(replayed.expect("the replay succeeds").events > 0);
    assert!(taken > 0, "no backup ran while the replay did");
}

/// One replay at a time: another waits for it, rather than failing on the
/// build schema's lock after the pool's lock timeout (three at once failed
/// the second that way, 20 s in), and then rebuilds as usual.
#[tokio::test]
async fn a_replay_waits_for_the_one_running_and_then_rebuilds() {
    let app = spawn_app().await;
    assert_eq!(app.charge(Uuid::new_v4(), 5).await.status, 200);
    let before = concert::replay::dump_read_models(&app.pool).await.unwrap();

    // Another replay, as far as the lock is concerned.
    let mut running = replay_running(&app.pool).await;
    let mut progress = |_, _| {};
    let replay = concert::replay::replay(&app.pool, &mut progress);
    tokio::pin!(replay);
    // Longer than the pool's lock timeout (10 s) would be too slow a test;
    // the wait is a loop of short statements, which no timeout ends.
    let waited = tokio::time::timeout(Duration::from_secs(2), &mut replay).await;
    assert!(waited.is_err(), "the replay waits for the one running");
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(concert::replay::REPLAY_LOCK)
        .execute(&mut *running)
        .await
        .unwrap();

    let report = replay
        .await
        .expect("the replay rebuilds once the other ends");
    assert!(report.events > 0);
    let after = concert::replay::dump_read_models(&app.pool).await.unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_replay_running_holds_no_admission_back() {
    let mut config = crate::helpers::test_config();
    config.queue_active_max = 1;
    config.queue_active_ttl_secs = 2;
    let app = crate::helpers::spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    app.active_user(&concert.concert_id).await;

    // A replay, as far as its lock is concerned, for the whole test.
    let _running = replay_running(&app.pool).await;
    // The second waits for the first's token to lapse (2 s), then the
    // scheduler admits it. Before, the replay's lock was the admissions'
    // leadership lock: nobody was admitted while a replay ran.
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(second["status"], "waiting", "{second}");
    app.wait_until_active(second["token"].as_str().unwrap())
        .await;
}

/// A swap that waits names who holds the live tables (a swap that gave up
/// after ten minutes said only "long reads"): a session reading a read
/// model in an open transaction, and a backup's copy lock; not a session
/// that holds neither.
#[tokio::test]
async fn the_sessions_a_swap_waits_for_are_named() {
    use concert::replay::table_holders::{describe, table_holders};

    let app = spawn_app().await;
    assert_eq!(app.charge(Uuid::new_v4(), 100).await.status, 200);
    // Stopped, so that only this test's sessions hold anything.
    let pool = app.shutdown().await;
    let session = || async {
        let options = (*pool.connect_options())
            .clone()
            .application_name("long-reader");
        sqlx::PgConnection::connect_with(&options).await.unwrap()
    };
    let mut reader = session().await;
    let mut backup = session().await;
    let mut bystander = session().await;
    let (reader_pid, backup_pid) = (
        backend_pid(&mut reader).await,
        backend_pid(&mut backup).await,
    );
    // Looked up from a transaction older than the reader's, as a replay's
    // is: the reader's age was counted to the looker's start (6 s told of
    // 18 s), and here would have been 0 or less.
    let mut looking = pool.begin().await.unwrap();
    sqlx::query("select 1")
        .execute(&mut *looking)
        .await
        .unwrap();
    let mut reading = reader.begin().await.unwrap();
    read_the_table(&mut reading, "balances").await;
    share_the_copy_lock(&mut backup).await;
    let mut bystanding = bystander.begin().await.unwrap();
    read_the_table(&mut bystanding, "events").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    let holders = table_holders(
        &mut looking,
        &concert::replay::READ_MODEL_TABLES,
        concert::backup::COPY_LOCK,
    )
    .await
    .unwrap();

    let mut pids: Vec<i32> = holders.iter().map(|holder| holder.pid).collect();
    pids.sort_unstable();
    let mut expected = vec![reader_pid, backup_pid];
    expected.sort_unstable();
    assert_eq!(pids, expected, "{holders:#?}");
    let reader_age = holders
        .iter()
        .find(|holder| holder.pid == reader_pid)
        .and_then(|holder| holder.transaction_secs);
    assert!(reader_age.is_some_and(|secs| secs >= 1), "{holders:#?}");
    let named = describe(&holders);
    assert!(
        named.contains(&format!(
            "pid {reader_pid} (client backend \"long-reader\", idle in transaction"
        )) && named.contains("last statement: select count(*) from balances"),
        "{named}"
    );
    reading.rollback().await.unwrap();
    bystanding.rollback().await.unwrap();
}

async fn backend_pid(connection: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(connection)
        .await
        .unwrap()
}

/// Shares the copy lock, as `concert backup` does while it copies.
async fn share_the_copy_lock(connection: &mut sqlx::PgConnection) {
    sqlx::query("select pg_advisory_lock_shared($1)")
        .bind(concert::backup::COPY_LOCK)
        .execute(connection)
        .await
        .unwrap();
}

/// Reads every row of `table`: its lock is then held to the transaction's end.
async fn read_the_table(connection: &mut sqlx::PgConnection, table: &str) {
    sqlx::query(&format!("select count(*) from {table}"))
        .execute(connection)
        .await
        .unwrap();
}
