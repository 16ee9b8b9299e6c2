//! `serve --demo` on an empty store schedules one sample concert, however
//! many instances start on it at once.

use crate::helpers::{fresh_database, test_config};

#[tokio::test]
async fn instances_started_together_on_an_empty_store_seed_one_demo_concert() {
    let pool = fresh_database().await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(
            concert::server::prepare(pool.clone(), test_config())
                .await
                .expect("service prepares"),
        );
    }
    let seeded =
        futures::future::join_all(instances.iter().map(concert::demo::seed_if_empty)).await;
    let seeded: Vec<_> = seeded
        .into_iter()
        .map(|seeded| seeded.expect("seeded"))
        .collect();
    assert_eq!(seeded.iter().flatten().count(), 1, "{seeded:?}");
    let concerts: i64 = sqlx::query_scalar("select count(*) from concerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(concerts, 1);
}
