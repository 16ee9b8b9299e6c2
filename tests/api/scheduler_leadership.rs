//! The scheduler's leadership: one instance leads each tick, by a lock held
//! as long as its transaction. A leader whose session is cut mid-tick loses
//! the lock without knowing; it looks again before admitting, the one step
//! two leaders would overdo (each filling the free active slots).

use std::time::Duration;

use concert::scheduler::{still_leading, take_leadership};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_leader_whose_session_was_cut_knows_it_leads_no_more() {
    let app = spawn_app().await;
    let mut leadership = app.pool.begin().await.unwrap();
    // The service's own scheduler leads its ticks now and then.
    let mut led = false;
    for _ in 0..200 {
        if take_leadership(&mut leadership).await.unwrap() {
            led = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(led, "never took the leadership");
    assert!(still_leading(&mut leadership).await);

    let session: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut *leadership)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend($1)")
        .bind(session)
        .execute(&app.pool)
        .await
        .unwrap();

    assert!(!still_leading(&mut leadership).await);
    // The lock went with the session: another takes it.
    let mut next = app.pool.begin().await.unwrap();
    let mut taken = false;
    for _ in 0..200 {
        if take_leadership(&mut next).await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(taken, "the cut leader's lock was never free again");
}
