//! A value the store refuses (a data exception, SQLSTATE class 22) fails the
//! transaction of its whole batch. The pipeline then stores each stream of
//! that batch alone: the command that holds the value is refused with `400`
//! and nothing of it is stored, and the commands that shared its batch
//! commit. (Found with a concert dated before 4713 BC, and with titles a
//! database's encoding could not hold; both are refused before the store
//! now, so this test makes the store refuse a title of its own.)

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{
    assert_problem, assert_replay_rebuilds_the_read_models, spawn_app, ADMIN_TOKEN,
};

#[tokio::test]
async fn a_value_the_store_refuses_fails_its_own_command_not_its_batch() {
    let app = spawn_app().await;
    sqlx::raw_sql(
        "create function refuse_poison() returns trigger language plpgsql as $$
         begin
           if new.title = 'Poison' then
             raise exception 'a value this store refuses' using errcode = '22023';
           end if;
           return new;
         end $$;
         create trigger refuse_poison before insert on concerts
           for each row execute function refuse_poison();",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let poisoned = |at: usize| at % 10 == 3;
    let created = join_all((0..40).map(|at| {
        let title = if poisoned(at) {
            "Poison".to_string()
        } else {
            format!("Shared batch {at}")
        };
        let body = json!({"title": title, "dates": [{"starts_at": "2031-01-01T19:00:00Z", "seats": 5, "price": 1_000}]});
        app.post("/concerts", Some(ADMIN_TOKEN), body)
    }))
    .await;

    let mut stored = 0;
    for (at, answer) in created.into_iter().enumerate() {
        if poisoned(at) {
            assert_problem(answer, reqwest::StatusCode::BAD_REQUEST, "bad_request").await;
        } else {
            assert_eq!(
                answer.status(),
                reqwest::StatusCode::CREATED,
                "concert {at}"
            );
            stored += 1;
        }
    }
    let concerts = app.get_json("/concerts", None).await;
    assert_eq!(concerts["concerts"].as_array().unwrap().len(), stored);
    let scheduled: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'ConcertScheduled'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(scheduled, stored as i64, "a refused concert left an event");
    sqlx::raw_sql("drop trigger refuse_poison on concerts")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_replay_rebuilds_the_read_models(&app.pool).await;
}
