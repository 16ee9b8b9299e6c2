//! `concert events`: the history printed a page at a time.

use std::io::Write;
use std::time::Duration;

use concert::history::print_events;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::audit::booking_history;
use crate::helpers::{database_url_of, fresh_database, spawn_app};

/// What `concert events` prints with `page` events a statement.
async fn export(pool: &PgPool, stream: Option<&str>, after: i64, json: bool, page: i64) -> String {
    let mut out = Vec::new();
    print_events(pool, stream, after, json, page, &mut out)
        .await
        .expect("the export runs");
    String::from_utf8(out).unwrap()
}

/// `(position, stream, sequence)` of each exported JSON line.
fn keys(export: &str) -> Vec<(i64, String, i64)> {
    export
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            let stream = format!(
                "{}/{}",
                event["aggregate_type"].as_str().unwrap(),
                event["aggregate_id"].as_str().unwrap()
            );
            (
                event["position"].as_i64().unwrap(),
                stream,
                event["sequence"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_export_over_many_pages_is_the_log_in_order_each_event_once() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    let stored: Vec<(i64, String, i64)> = sqlx::query_as(
        "select position, aggregate_type || '/' || aggregate_id, sequence from events order by position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(stored.len() > 20, "{stored:?}");
    let wallet: String = sqlx::query_scalar(
        "select aggregate_type || '/' || aggregate_id from events where aggregate_type = 'Wallet'
         group by 1 having count(*) > 1 limit 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let paged = export(&pool, None, 0, true, 3).await;
    let one_page = export(&pool, None, 0, true, 100_000).await;
    let text_paged = export(&pool, None, 0, false, 4).await;
    let text_one_page = export(&pool, None, 0, false, 100_000).await;
    let after_five = export(&pool, None, 5, true, 2).await;
    let of_wallet = export(&pool, Some(&wallet), 0, true, 1).await;

    assert_eq!(keys(&paged), stored, "every event once, in commit order");
    assert_eq!(paged, one_page, "the pages print what one read prints");
    assert_eq!(text_paged, text_one_page);
    assert_eq!(keys(&after_five), stored[5..]);
    let wallet_events: Vec<_> = stored
        .iter()
        .filter(|key| key.1 == wallet)
        .cloned()
        .collect();
    assert_eq!(keys(&of_wallet), wallet_events);
}

/// A reader that takes its time: a millisecond every ten lines it counts.
struct SlowReader {
    lines: usize,
}

impl Write for SlowReader {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for _ in bytes.iter().filter(|byte| **byte == b'\n') {
            self.lines += 1;
            if self.lines % 10 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every pool cancels statements that run too long; an export read more
/// slowly than that (`concert events | less`) must still end whole.
#[tokio::test]
async fn an_export_read_for_longer_than_the_statement_timeout_ends_whole() {
    let pool = fresh_database().await;
    // 20 MB of events, more than the sockets between server and reader hold.
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Unprojected', 'long', n, 'Noted', '1.0',
                json_build_object('Noted', json_build_object('pad', repeat('x', 1000))), '{}'
         from generate_series(1, 20000) n",
    )
    .execute(&pool)
    .await
    .unwrap();
    concert::event_log::assign_positions(&pool).await.unwrap();
    let options: PgConnectOptions = database_url_of(&pool).parse().unwrap();
    let impatient = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.options([("statement_timeout", "300ms")]))
        .await
        .unwrap();
    let mut reader = SlowReader { lines: 0 };

    // About two seconds of reading.
    let printed = print_events(&impatient, None, 0, false, 1_000, &mut reader).await;

    assert_eq!(printed.expect("the export ends whole"), 20_000);
    assert_eq!(reader.lines, 20_000);
}

/// A `--stream` that is not `TYPE/ID` says how it is written, not that no
/// such stream exists.
#[tokio::test]
async fn a_stream_named_without_its_type_or_id_is_told_the_form() {
    let pool = fresh_database().await;
    let id = uuid::Uuid::new_v4();
    let cases = [
        (format!("/{id}"), "takes TYPE/ID"),
        (id.to_string(), "takes TYPE/ID"),
        ("Seat/".to_string(), "not a UUID"),
    ];
    for (stream, said) in cases {
        let mut out = Vec::new();
        let refused = print_events(&pool, Some(&stream), 0, false, 1_000, &mut out)
            .await
            .expect_err("a malformed --stream");
        assert!(refused.to_string().contains(said), "{stream}: {refused}");
    }
}
