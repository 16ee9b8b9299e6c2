//! What a replay keeps of the live read-model tables besides their rows.

use concert::replay::{replay, ReplayError, READ_MODEL_TABLES};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::spawn_app;

/// Everything of each read-model table that is not a row: its indexes with
/// their definitions, constraints, storage options, owner, privileges
/// (sorted: their order is not a setting) and comment.
async fn table_settings(pool: &PgPool) -> Vec<(&'static str, Value)> {
    let mut settings = Vec::new();
    for table in READ_MODEL_TABLES {
        let of_table: Value = sqlx::query_scalar(
            "select jsonb_build_object(
                 'indexes', (select jsonb_agg(jsonb_build_array(ix.relname, pg_get_indexdef(ix.oid))
                                              order by ix.relname)
                             from pg_index join pg_class ix on ix.oid = pg_index.indexrelid
                             where pg_index.indrelid = t.oid),
                 'constraints', (select jsonb_agg(conname order by conname)
                                 from pg_constraint where conrelid = t.oid),
                 'options', t.reloptions,
                 'toast_options', (select reloptions from pg_class where oid = t.reltoastrelid),
                 'owner', t.relowner::regrole::text,
                 'acl', (select jsonb_agg(item::text order by item::text) from unnest(t.relacl) item),
                 'column_acls', (select jsonb_agg(jsonb_build_array(attname, (select jsonb_agg(item::text order by item::text)
                                                                              from unnest(attacl) item))
                                                  order by attname)
                                 from pg_attribute where attrelid = t.oid and attacl is not null),
                 'comment', obj_description(t.oid, 'pg_class'))
             from pg_class t where t.oid = format('public.%I', $1::text)::regclass",
        )
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap();
        settings.push((table, of_table));
    }
    settings
}

/// Runs `statements` in order.
async fn run(pool: &PgPool, statements: &[String]) {
    for statement in statements {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

/// A role of this test alone (roles are the whole server's), dropped with
/// what it was granted or given.
async fn drop_role(pool: &PgPool, role: &str) {
    run(
        pool,
        &[
            format!("reassign owned by {role} to current_user"),
            format!("drop owned by {role}"),
            format!("drop role {role}"),
        ],
    )
    .await;
}

/// The database of `pool`, as `role`.
async fn connect_as(pool: &PgPool, role: &str) -> PgPool {
    let options = pool.connect_options().as_ref().clone();
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.username(role))
        .await
        .unwrap()
}

/// A role that may log in, read and write every table and create schemas,
/// as a replay needs, but is no superuser.
fn create_replayer(replayer: &str, database: &str) -> [String; 3] {
    [
        format!("create role {replayer} login in role pg_read_all_data, pg_write_all_data"),
        format!("grant create on database {database} to {replayer}"),
        format!("grant create on schema public to {replayer}"),
    ]
}

/// The name of the database `pool` connects to.
async fn current_database(pool: &PgPool) -> String {
    sqlx::query_scalar("select current_database()::text")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Index names from the migrations or an operator (a constraint's too),
/// storage options, an owner, privileges (of a table and of a column) and a
/// comment are the live tables' after a replay as they were before.
#[tokio::test]
async fn a_replay_keeps_the_tables_index_names_options_owner_privileges_and_comments() {
    // given
    let app = spawn_app().await;
    assert_eq!(app.charge(Uuid::new_v4(), 100).await.status, 200);
    let role = format!("replay_reader_{}", Uuid::new_v4().simple());
    run(
        &app.pool,
        &[
            format!("create role {role}"),
            format!("grant select on seats to {role} with grant option"),
            format!("grant select, update (status) on reservations to {role}"),
            format!("grant select on all tables in schema public to {role}"),
            "revoke truncate on payments from current_user".into(),
            format!("alter table balances owner to {role}"),
            "alter table seats set (fillfactor = 80, autovacuum_enabled = false)".into(),
            "alter table queue_tickets set (toast.autovacuum_enabled = false)".into(),
            "alter index seats_free_by_date set (fillfactor = 70)".into(),
            // Names PostgreSQL would choose for each other's definition.
            "create index seats_price_idx on seats (seat_no)".into(),
            "create index seats_seat_no_idx on seats (price)".into(),
            "create index seats_by_price_too on seats (price)".into(),
            "alter table seats rename constraint seats_pkey to seats_by_id".into(),
            "comment on table payments is 'the payments'' process, by ''payment_id'''".into(),
        ],
    )
    .await;
    let before = table_settings(&app.pool).await;

    // when
    replay(&app.pool, &mut |_, _| {}).await.unwrap();

    // then
    let after = table_settings(&app.pool).await;
    drop_role(&app.pool, &role).await;
    assert_eq!(before, after);
}

/// A live table owned by a role the replay's role may not hand a table to:
/// the replay fails before the swap, saying so, and the live tables stay.
#[tokio::test]
async fn a_replay_that_may_not_give_a_table_its_owner_fails_before_the_swap() {
    // given
    let app = spawn_app().await;
    let replayer = format!("replayer_{}", Uuid::new_v4().simple());
    let database = current_database(&app.pool).await;
    run(&app.pool, &create_replayer(&replayer, &database)).await;
    let before = table_settings(&app.pool).await;
    let as_replayer = connect_as(&app.pool, &replayer).await;

    // when
    let replayed = replay(&as_replayer, &mut |_, _| {}).await;

    // then
    as_replayer.close().await;
    let after = table_settings(&app.pool).await;
    let build_schema_left: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_namespace where nspname = 'concert_replay')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    drop_role(&app.pool, &replayer).await;
    match replayed {
        Err(ReplayError::Owner { table, .. }) => assert_eq!(table, READ_MODEL_TABLES[0]),
        other => panic!("expected the owner refused, got {other:?}"),
    }
    assert_eq!(before, after);
    assert!(!build_schema_left);
}

/// The tables owned by a role the service runs as, the replay run by another
/// role that is no superuser but a member of it: the rebuilt tables are the
/// owner's too, and the settings are kept as by a superuser.
#[tokio::test]
async fn a_replay_by_a_member_of_the_tables_owner_keeps_that_owner() {
    // given
    let app = spawn_app().await;
    assert_eq!(app.charge(Uuid::new_v4(), 100).await.status, 200);
    let suffix = Uuid::new_v4().simple();
    let (owner, replayer) = (
        format!("replay_owner_{suffix}"),
        format!("replayer_{suffix}"),
    );
    let mut setup = vec![format!("create role {owner}")];
    setup.extend(create_replayer(
        &replayer,
        &current_database(&app.pool).await,
    ));
    setup.push(format!("grant {owner} to {replayer}"));
    setup.extend(READ_MODEL_TABLES.map(|table| format!("alter table {table} owner to {owner}")));
    setup.push("alter table seats set (fillfactor = 80)".into());
    run(&app.pool, &setup).await;
    let before = table_settings(&app.pool).await;
    let as_replayer = connect_as(&app.pool, &replayer).await;

    // when
    let replayed = replay(&as_replayer, &mut |_, _| {}).await;

    // then
    as_replayer.close().await;
    let after = table_settings(&app.pool).await;
    drop_role(&app.pool, &replayer).await;
    drop_role(&app.pool, &owner).await;
    replayed.unwrap();
    assert_eq!(before, after);
}
