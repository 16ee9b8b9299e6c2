//! Who keeps a replay's swap from its locks: the sessions holding a live read
//! model's table, or the backups' copy lock, named so that an operator can
//! look at them (a swap that failed for ten minutes said only "long reads").

use std::fmt;

use sqlx::PgConnection;

/// A session holding a lock the swap waits for, as `pg_stat_activity` sees it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TableHolder {
    pub pid: i32,
    /// `client backend`, `autovacuum worker`...
    pub backend_type: String,
    pub application_name: String,
    /// `active`, `idle in transaction`...
    pub state: String,
    /// How long its transaction has been open, in whole seconds.
    pub transaction_secs: Option<i64>,
    /// The start of its last statement.
    pub query: String,
}

impl TableHolder {
    /// PostgreSQL cancels an autovacuum that a lock request waits behind,
    /// but only once the request has waited `deadlock_timeout`.
    pub fn is_autovacuum(&self) -> bool {
        self.backend_type == "autovacuum worker"
    }
}

impl fmt::Display for TableHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} ({}", self.pid, self.backend_type)?;
        if !self.application_name.is_empty() {
            write!(f, " \"{}\"", self.application_name)?;
        }
        write!(f, ", {}", self.state)?;
        if let Some(secs) = self.transaction_secs {
            write!(f, ", its transaction open {secs} s")?;
        }
        if !self.query.is_empty() {
            write!(f, ", last statement: {}", self.query)?;
        }
        write!(f, ")")
    }
}

/// The longest part of a holder's last statement that is named.
const QUERY_CHARS: i32 = 120;

/// The other sessions holding a lock on one of `tables` (in the public
/// schema of this database) or the advisory lock `copy_lock`, oldest
/// transaction first; a transaction's age is counted to this moment, not
/// to the start of the caller's (a replay's is long).
pub async fn table_holders(
    connection: &mut PgConnection,
    tables: &[&str],
    copy_lock: i64,
) -> sqlx::Result<Vec<TableHolder>> {
    let tables: Vec<String> = tables.iter().map(|t| format!("public.{t}")).collect();
    sqlx::query_as(
        "select a.pid, coalesce(a.backend_type, '') as backend_type,
                coalesce(a.application_name, '') as application_name,
                coalesce(a.state, '') as state,
                extract(epoch from clock_timestamp() - a.xact_start)::int8 as transaction_secs,
                left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), $3) as query
         from pg_stat_activity a
         where a.pid <> pg_backend_pid()
           and exists (select 1 from pg_locks l
                       where l.pid = a.pid and l.granted
                         -- An idle session holds no table's lock (only a
                         -- session's advisory one, as a backup's): one seen
                         -- idle had let go since pg_locks was read.
                         and (a.state is distinct from 'idle' or l.locktype = 'advisory')
                         and l.database = (select oid from pg_database where datname = current_database())
                         and ((l.locktype = 'relation'
                               and l.relation = any(select to_regclass(t) from unnest($1::text[]) t))
                           or (l.locktype = 'advisory' and l.objsubid = 1
                               and (l.classid::int8 << 32 | l.objid::int8) = $2)))
         order by a.xact_start nulls last, a.pid",
    )
    .bind(&tables)
    .bind(copy_lock)
    .bind(QUERY_CHARS)
    .fetch_all(connection)
    .await
}

/// `holders` as one line: "pid 1 (...); pid 2 (...)", or "nobody now" when
/// the locks were free by the time they were looked up.
pub fn describe(holders: &[TableHolder]) -> String {
    if holders.is_empty() {
        return "nobody now".to_string();
    }
    holders
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(backend_type: &str, state: &str) -> TableHolder {
        TableHolder {
            pid: 42,
            backend_type: backend_type.to_string(),
            application_name: String::new(),
            state: state.to_string(),
            transaction_secs: Some(600),
            query: "select 1".to_string(),
        }
    }

    #[test]
    fn a_holder_is_named_by_pid_kind_state_age_and_statement() {
        let mut session = holder("client backend", "idle in transaction");
        session.application_name = "psql".to_string();
        assert_eq!(
            describe(&[session, holder("autovacuum worker", "active")]),
            "pid 42 (client backend \"psql\", idle in transaction, its transaction open 600 s, \
             last statement: select 1); pid 42 (autovacuum worker, active, its transaction \
             open 600 s, last statement: select 1)"
        );
        assert_eq!(describe(&[]), "nobody now");
    }

    #[test]
    fn only_an_autovacuum_worker_is_one() {
        assert!(holder("autovacuum worker", "active").is_autovacuum());
        assert!(!holder("client backend", "active").is_autovacuum());
    }
}
