//! Statements run on every command or scheduler round read what they need,
//! not the history beside it: each is run with EXPLAIN ANALYZE on a store
//! with a long history, under the generic plan PostgreSQL keeps after five
//! runs and under a custom one, and the pages it touched are counted.

use serde_json::Value;
use sqlx::PgConnection;

use uuid::Uuid;

use crate::helpers::{database_url_of, fresh_database};

/// The pages (buffers) an `execute` of `statement`, prepared with `types`
/// and run with `arguments`, touched under each plan.
async fn pages_touched(
    conn: &mut PgConnection,
    statement: &str,
    types: &str,
    arguments: &str,
) -> Vec<(String, i64)> {
    let in_parentheses = |list: &str| match list {
        "" => String::new(),
        _ => format!("({list})"),
    };
    let (types, arguments) = (in_parentheses(types), in_parentheses(arguments));
    sqlx::query(&format!("prepare measured{types} as {statement}"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut touched = Vec::new();
    for mode in ["force_generic_plan", "force_custom_plan"] {
        sqlx::query(&format!("set plan_cache_mode = {mode}"))
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Value = sqlx::query_scalar(&format!(
            "explain (analyze, buffers, format json) execute measured{arguments}"
        ))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let top = &plan[0]["Plan"];
        let pages = top["Shared Hit Blocks"].as_i64().unwrap()
            + top["Shared Read Blocks"].as_i64().unwrap();
        touched.push((mode.to_string(), pages));
    }
    sqlx::query("deallocate measured")
        .execute(&mut *conn)
        .await
        .unwrap();
    touched
}

/// A command loaded alone reads its stream from the snapshot on: the
/// snapshot's sequence bounds the index scan. It was a filter applied to
/// every event of the stream (a charge to a wallet of 20,000 events took
/// 19 ms, 1 ms more for every thousand events). A batch's load of several
/// streams keeps the filter (bounding it cost more than it saves on short
/// streams) and is checked here for what it returns.
#[tokio::test]
async fn a_stream_loaded_alone_reads_from_its_snapshot_however_long_its_history() {
    let pool = fresh_database().await;
    // Ten wallets of 20,000 events each, each with a snapshot ten events
    // before its end; the payloads are not read by the measurement.
    sqlx::raw_sql(
        "alter table events disable trigger events_chain_hash;
         insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Wallet', 'w' || (n % 10), n / 10 + 1, 'Charged', '1.0', '{}', '{}'
         from generate_series(0, 199999) as n;
         alter table events enable trigger events_chain_hash;
         insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
         select 'Wallet', 'w' || n, 19990, 1, '{}' from generate_series(0, 9) as n;
         analyze events; analyze snapshots;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();

    let one = pages_touched(
        &mut conn,
        concert::event_store::LOAD_STREAM,
        "text, text",
        "'Wallet', 'w3'",
    )
    .await;

    // Reading every event of the stream touches thousands of pages.
    for (mode, pages) in one {
        assert!(pages < 100, "{mode}: {pages} pages");
    }
    let rows: Vec<(String, i64, Option<i64>, Value)> =
        sqlx::query_as(concert::event_store::LOAD_STREAMS)
            .bind("Wallet")
            .bind(vec!["w3", "w4", "w4"])
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let loaded: Vec<(String, i64)> = rows
        .into_iter()
        .map(|(id, sequence, _, _)| (id, sequence))
        .collect();
    let expected: Vec<(String, i64)> = ["w3", "w4"]
        .into_iter()
        .flat_map(|id| (19990..=20000).map(move |sequence| (id.to_string(), sequence)))
        .collect();
    assert_eq!(
        loaded, expected,
        "each stream once: its snapshot, then the events after it"
    );
}

/// The scheduler asks every round (four times a second) which concerts have
/// tickets waiting: it skips through the index of waiting tickets a concert
/// at a time. Reading every waiting ticket cost 7–29 ms a round once a line
/// was 9,000 long.
#[tokio::test]
async fn the_scheduler_finds_the_concerts_waiting_without_reading_their_lines() {
    let pool = fresh_database().await;
    let concert = |n: u32| Uuid::from_u128(0x4000_8000_0000_0000_0000 + u128::from(n));
    sqlx::query(
        "insert into queue_tickets (ticket_id, concert_id, user_id, entry_no, status, entered_at, expires_at)
         select gen_random_uuid(), c.concert_id, gen_random_uuid(), n, c.status, now(),
                case when c.status = 'waiting' then null else now() end
         from (values ($1::uuid, 'waiting', 30000), ($2, 'waiting', 30000), ($3, 'waiting', 30000),
                      ($1, 'active', 5), ($3, 'active', 2), ($4, 'expired', 50)) as c(concert_id, status, count),
              generate_series(1, c.count) as n",
    )
    .bind(concert(1))
    .bind(concert(2))
    .bind(concert(3))
    .bind(concert(4))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("analyze queue_tickets")
        .execute(&pool)
        .await
        .unwrap();

    let mut waiting = concert::projections::queue_tickets::concerts_waiting(&pool)
        .await
        .unwrap();
    waiting.sort();
    assert_eq!(waiting, [(concert(1), 5), (concert(2), 0), (concert(3), 2)]);

    let mut conn = pool.acquire().await.unwrap();
    let touched = pages_touched(
        &mut conn,
        concert::projections::queue_tickets::CONCERTS_WAITING,
        "",
        "",
    )
    .await;
    // Reading the 90,000 waiting tickets touches more than a thousand pages.
    for (mode, pages) in touched {
        assert!(pages < 200, "{mode}: {pages} pages");
    }
}

/// No statement of the service is JIT-compiled: the once-a-minute release of
/// abandoned queue numbers, whose plan is estimated high, spent 600 ms
/// compiling for 19 ms of work.
#[tokio::test]
async fn the_service_s_connections_never_compile_statements() {
    let pool = fresh_database().await;
    let service = concert::db::connect(&database_url_of(&pool), 2)
        .await
        .unwrap();
    let jit: String = sqlx::query_scalar("show jit")
        .fetch_one(&service)
        .await
        .unwrap();
    assert_eq!(jit, "off");
    let generic = concert::db::generic_plan_pool(&service, 1);
    let jit: String = sqlx::query_scalar("show jit")
        .fetch_one(&generic)
        .await
        .unwrap();
    assert_eq!(jit, "off");
}
