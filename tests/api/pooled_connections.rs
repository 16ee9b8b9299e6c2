//! A pooled connection goes back to the pool as it came out: a `BEGIN`
//! cancelled on its way (a request dropped by its client or its timeout, a
//! scheduler round cut short by a stop) leaves no transaction open on it.
//! sqlx 0.8.6 left one, and the next borrowers' statements ran inside it,
//! holding their locks for as long as the connection lived: a replay's swap
//! waited ten minutes for the audit's reads of the read models, and gave up.

use std::task::Poll;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::helpers::{database_url_of, fresh_database};

#[tokio::test]
async fn a_begin_cancelled_after_it_reached_the_server_leaves_no_transaction_open() {
    let url = database_url_of(&fresh_database().await);
    // One connection, so that each borrower gets the one the begin had.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut watcher = PgConnection::connect(&url).await.unwrap();

    // The same `begin` as `pool.begin()`'s, with its answer held back a
    // second by the server, so that it is surely cancelled before the
    // answer is read.
    let mut begin = Box::pin(pool.begin_with("begin; select pg_sleep(1)"));
    let mut steps = 0;
    'stepping: loop {
        if let Poll::Ready(begun) = futures::poll!(&mut begin) {
            panic!(
                "the begin ended before it could be cancelled: {:?}",
                begun.map(|_| ())
            );
        }
        steps += 1;
        assert!(steps < 100, "the server never began the transaction");
        // A step's answer is read only when polled again.
        for _ in 0..50 {
            if session_state(&mut watcher, pid).await == "active in transaction" {
                break 'stepping;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    drop(begin);

    // The next borrower's statement runs on its own, as every statement
    // outside a transaction does.
    sqlx::query("select count(*) from events")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(session_state(&mut watcher, pid).await, "idle");
}

/// The `state` of backend `pid` in `pg_stat_activity`, "active in
/// transaction" for a statement running inside a transaction block.
async fn session_state(watcher: &mut PgConnection, pid: i32) -> String {
    sqlx::query_scalar(
        "select case when state = 'active' and query like 'begin;%' then 'active in transaction'
                     else coalesce(state, '') end
         from pg_stat_activity where pid = $1",
    )
    .bind(pid)
    .fetch_one(watcher)
    .await
    .unwrap()
}
