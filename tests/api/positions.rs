//! The store's shape: positions handed out by whole transactions, and the
//! tables a migrated store holds.

use sqlx::PgPool;

use crate::helpers::fresh_database;

/// Appends `events` events to a stream of its own in one transaction.
async fn append_in_one_transaction(pool: &PgPool, stream: &str, events: i64) {
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Wallet', $1, n, 'Charged', '1.0', '{}', '{}' from generate_series(1, $2) as n",
    )
    .bind(stream)
    .bind(events)
    .execute(pool)
    .await
    .unwrap();
}

/// A batch of positions that would end inside a transaction takes the whole
/// transaction: an auditor stopping at the last position never sees half of
/// one (a payment's sale without its debit).
#[tokio::test]
async fn a_batch_of_positions_never_ends_inside_a_transaction() {
    let pool = fresh_database().await;
    let batch = concert::event_log::POSITION_BATCH;
    append_in_one_transaction(&pool, "first", batch - 1).await;
    append_in_one_transaction(&pool, "second", 3).await;
    append_in_one_transaction(&pool, "third", 2).await;

    let positioned: Vec<(i64,)> =
        concert::event_log::position_next(&pool, "select count(*) from positioned")
            .await
            .unwrap();
    assert_eq!(positioned[0].0, batch + 2);
    let unpositioned: Vec<(String, i64)> = sqlx::query_as(
        "select aggregate_id, count(*) from events where position is null group by 1 order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(unpositioned, vec![("third".to_string(), 2)]);
    let last = concert::event_log::last_position(&pool).await.unwrap();
    assert_eq!(last, batch + 2);

    assert_eq!(
        concert::event_log::assign_positions(&pool).await.unwrap(),
        2
    );
    assert_eq!(
        concert::event_log::last_position(&pool).await.unwrap(),
        batch + 4
    );
}

/// A restore sets a migrated store's schema aside whole only when it holds
/// nothing but a store's tables and functions; the lists it checks against
/// are what the migrations make.
#[tokio::test]
async fn a_migrated_store_has_exactly_the_tables_a_restore_knows() {
    let pool = fresh_database().await;
    let mut tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
         order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    tables.sort();
    let functions: Vec<String> = sqlx::query_scalar(
        "select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(functions, concert::backup::STORE_FUNCTIONS);
    let mut known: Vec<String> = concert::backup::STORE_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    known.sort();
    assert_eq!(tables, known);
}

/// The log's end (what the feed and a seat map's first load ask) is read
/// from the position index, however long the log: a form that filtered
/// `position > $1` was planned, once its plan turned generic, as a scan of
/// the whole log.
#[tokio::test]
async fn the_log_s_end_is_one_probe_of_the_position_index() {
    let pool = fresh_database().await;
    sqlx::raw_sql(
        "alter table events disable trigger events_chain_hash;
         insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, position)
         select 'Wallet', (n % 1000)::text, n, 'Charged', '1.0', '{}', '{}', n from generate_series(1, 100000) as n;
         alter table events enable trigger events_chain_hash;
         analyze events;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar(&format!("explain {}", concert::event_log::LAST_POSITION))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("events_by_position"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    assert_eq!(
        concert::event_log::last_position(&pool).await.unwrap(),
        100_000
    );
}

/// A seat map's first read takes one date's seats, in seat order, through
/// an index: with only the free seats' index by date, it scanned every seat
/// of every concert (5 s for the first dates listing of a 100-date concert
/// beside a million seats).
#[tokio::test]
async fn a_date_s_seats_are_read_through_an_index() {
    let pool = fresh_database().await;
    sqlx::raw_sql(
        "insert into seats (seat_id, date_id, seat_no, price, status)
         select gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad((n % 40)::text, 12, '0'))::uuid,
                n / 40 + 1, 1000, case when n % 3 = 0 then 'sold' else 'free' end
         from generate_series(0, 199999) as n;
         analyze seats;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("set plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("prepare one_date(uuid) as select seat_id, status from seats where date_id = $1 order by seat_no")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar("explain execute one_date('00000000-0000-4000-8000-000000000007')")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("seats_by_date"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}
