//! The scheduler's leadership: one instance leads each tick, by a lock held
//! as long as its transaction. A leader whose session is cut mid-tick loses
//! the lock without knowing; it looks again before admitting, the one step
//! two leaders would overdo (each filling the free active places).

use std::time::Duration;

use concert::commands::CommandContext;
use concert::scheduler::{admit_tickets, take_leadership};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::helpers::{spawn_app_with, test_config};

/// The leadership, taken as soon as the service's own scheduler lets go.
async fn lead(pool: &PgPool) -> Transaction<'static, Postgres> {
    let mut leadership = pool.begin().await.unwrap();
    for _ in 0..200 {
        if take_leadership(&mut leadership).await.unwrap() {
            return leadership;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never took the leadership");
}

#[tokio::test]
async fn a_leader_whose_session_was_cut_admits_no_one() {
    // The service's own scheduler ticks once, at its start, and then not
    // for a day: the waiting token is this test's to admit.
    let mut config = test_config();
    config.scheduler_interval_ms = 86_400_000;
    let app = spawn_app_with(config.clone()).await;
    let concert = app.create_concert(1, 10, 1000).await;
    let (_, ticket) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(ticket["status"], "waiting");
    let token = ticket["token"].as_str().unwrap();
    // A second instance on the same store, as the one whose session is cut.
    let instance = concert::server::prepare(app.pool.clone(), config)
        .await
        .unwrap();
    let context = CommandContext::scheduler();

    let mut cut = lead(&app.pool).await;
    let session: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *cut)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend($1)")
        .bind(session)
        .execute(&app.pool)
        .await
        .unwrap();
    let admitted = admit_tickets(&instance, &mut cut, &context).await;
    assert!(admitted.is_err(), "{admitted:?}");
    let standing = app.get_json("/queue/tokens/current", Some(token)).await;
    assert_eq!(standing["status"], "waiting");

    // A leader whose session holds admits it.
    let mut live = lead(&app.pool).await;
    let admitted = admit_tickets(&instance, &mut live, &context).await.unwrap();
    assert_eq!(admitted, 1);
}
