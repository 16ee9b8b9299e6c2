//! What a live read-model table carries besides its rows and columns, given
//! to its rebuilt copy: `create table ... (like ... including all)` leaves
//! behind the indexes' names, the storage options, the owner, the privileges
//! and the table's comment, and a replayed store would differ from a migrated
//! one (a later migration naming an index would fail on it) and from what its
//! operator set (a service granted its access would lose it).
//!
//! PostgreSQL writes each statement (its `format` quotes the names and
//! values). They run on the copy in the build schema, before and after it
//! is filled, so none of this work is done under the swap's locks.

use sqlx::PgConnection;

use super::{ReplayError, BUILD_SCHEMA};

/// Gives the rebuilt `table` in the build schema, before it is filled, the
/// live one's storage options (a fillfactor only applies to the rows
/// written after it is set) and owner.
pub(super) async fn carry_over_before_fill(
    tx: &mut PgConnection,
    table: &str,
) -> Result<(), ReplayError> {
    run_generated(tx, table, STORAGE_OPTIONS).await?;
    give_the_live_owner(tx, table).await
}

/// Gives the filled copy of `table` the live one's privileges, comment and
/// index names. The privileges come after the fill: the live ones may take
/// a right to write from the owner the replay writes as.
pub(super) async fn carry_over_after_fill(
    tx: &mut PgConnection,
    table: &str,
) -> Result<(), ReplayError> {
    run_generated(tx, table, PRIVILEGES).await?;
    run_generated(tx, table, COMMENT).await?;
    name_indexes_as_live(tx, table).await
}

/// The live table (`$1`) as `live`, its copy in the build schema (`$2`) as `fresh`.
const LIVE_AND_FRESH: &str = "
    from pg_class live, pg_class fresh
    where live.oid = format('public.%I', $1::text)::regclass
      and fresh.oid = format('%I.%I', $2::text, $1::text)::regclass";

/// `alter table ... set (...)` for the table's and its TOAST table's options.
const STORAGE_OPTIONS: &str = "
    select format('alter table %I.%I set (%s)', $2::text, $1::text,
                  string_agg(format('%s%s = %L', prefix, option_name, option_value), ', '))
    from (select '' as prefix, options.*
          from pg_class live, pg_options_to_table(live.reloptions) options
          where live.oid = format('public.%I', $1::text)::regclass
          union all
          select 'toast.', options.*
          from pg_class live
               join pg_class toast on toast.oid = live.reltoastrelid,
               pg_options_to_table(toast.reloptions) options
          where live.oid = format('public.%I', $1::text)::regclass) options
    having count(*) > 0";

/// The live table's and columns' ACLs, granted again on the copy. The owner's
/// default privileges are revoked first, so that only the live ones remain
/// (a `revoke` may have taken some from the owner). Each grant's grantor is
/// the owner, as on the live table unless a grantee passed a privilege on.
const PRIVILEGES: &str = "
    with granted as (
        select null::name as column_name, acl.*
        from pg_class live, aclexplode(live.relacl) acl
        where live.oid = format('public.%I', $1::text)::regclass
        union all
        select attname, acl.*
        from pg_attribute col, aclexplode(col.attacl) acl
        where col.attrelid = format('public.%I', $1::text)::regclass
          and col.attnum > 0 and not col.attisdropped
    )
    select statement from (
        select 1 as step,
               format('revoke all on %I.%I from %s', $2::text, $1::text, live.relowner::regrole)
                   as statement
        from pg_class live
        where live.oid = format('public.%I', $1::text)::regclass and live.relacl is not null
        union all
        select 2,
               format('grant %s on %I.%I to %s%s',
                      string_agg(privilege_type || case when column_name is null then ''
                                                        else format(' (%I)', column_name) end,
                                 ', '),
                      $2::text, $1::text,
                      case grantee when 0 then 'public' else grantee::regrole::text end,
                      case when is_grantable then ' with grant option' else '' end)
        from granted
        group by grantee, is_grantable
    ) statements
    order by step";

/// `comment on table` with the live table's comment, if it has one.
const COMMENT: &str = "
    select format('comment on table %I.%I is %L', $2::text, $1::text, description)
    from obj_description(format('public.%I', $1::text)::regclass, 'pg_class') description
    where description is not null";

/// Runs the statements `generate` writes for `table` (bound to `$1`).
async fn run_generated(
    tx: &mut PgConnection,
    table: &str,
    generate: &str,
) -> Result<(), ReplayError> {
    let statements: Vec<String> = sqlx::query_scalar(generate)
        .bind(table)
        .bind(BUILD_SCHEMA)
        .fetch_all(&mut *tx)
        .await?;
    for statement in statements {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Makes the live table's owner the copy's, when the replay's role is not
/// already: refused unless that role is a superuser or a member of the
/// owner, and then the replay fails here, long before the swap.
async fn give_the_live_owner(tx: &mut PgConnection, table: &str) -> Result<(), ReplayError> {
    let other_owner: Option<String> = sqlx::query_scalar(&format!(
        "select live.relowner::regrole::text {LIVE_AND_FRESH} and live.relowner <> fresh.relowner"
    ))
    .bind(table)
    .bind(BUILD_SCHEMA)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(owner) = other_owner else {
        return Ok(());
    };
    // A new owner needs CREATE on the table's schema; the build schema is
    // dropped with its grants once the replay is done.
    let statements = [
        format!("grant create on schema {BUILD_SCHEMA} to {owner}"),
        format!("alter table {BUILD_SCHEMA}.{table} owner to {owner}"),
    ];
    for statement in statements {
        if let Err(source) = sqlx::query(&statement).execute(&mut *tx).await {
            return Err(ReplayError::Owner {
                table: table.to_string(),
                owner,
                source,
            });
        }
    }
    Ok(())
}

/// For each of the copy's indexes named otherwise than the live one of the
/// same definition (the name and table taken out; duplicates paired in name
/// order), the renames to a passing name and from it to the live name.
const INDEX_RENAMES: &str = "
    with indexes as (
        select ns.nspname as schema, ix.relname as name,
               replace(pg_get_indexdef(ix.oid),
                       format(' %I ON %I.%I ', ix.relname, ns.nspname, $1::text),
                       ' ON ') as definition
        from pg_index
             join pg_class ix on ix.oid = pg_index.indexrelid
             join pg_class tbl on tbl.oid = pg_index.indrelid
             join pg_namespace ns on ns.oid = tbl.relnamespace
        where tbl.relname = $1 and ns.nspname in ('public', $2)
    ), numbered as (
        select *, row_number() over (partition by schema, definition order by name) as nth
        from indexes
    )
    select format('alter index %I.%I rename to %I', $2::text, fresh, passing),
           format('alter index %I.%I rename to %I', $2::text, passing, live)
    from (select fresh.name as fresh, live.name as live,
                 format('%s_%s_%s', $2::text, $1::text, row_number() over ()) as passing
          from numbered fresh join numbered live using (definition, nth)
          where fresh.schema = $2 and live.schema = 'public' and fresh.name <> live.name) renames";

/// Gives the copy's indexes the live ones' names (`like` lets PostgreSQL
/// choose them) while they are in the build schema, as names are unique per
/// schema: moved to `public` after the live table is dropped, they take the
/// names along, and the swap's locks wait for no rename. A constraint's
/// index too: renaming it renames the constraint.
async fn name_indexes_as_live(tx: &mut PgConnection, table: &str) -> Result<(), ReplayError> {
    let renames: Vec<(String, String)> = sqlx::query_as(INDEX_RENAMES)
        .bind(table)
        .bind(BUILD_SCHEMA)
        .fetch_all(&mut *tx)
        .await?;
    // Through a passing name first: a live name may be one PostgreSQL chose
    // for another of the copy's indexes.
    let (to_passing, to_live): (Vec<String>, Vec<String>) = renames.into_iter().unzip();
    for statement in to_passing.iter().chain(&to_live) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    Ok(())
}
