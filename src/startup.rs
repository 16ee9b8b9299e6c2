//! What `main` checks and takes before a database starts: a command that
//! would fail anyway is refused before a private server is started (or
//! created where none was meant to be), and `serve`'s port is taken first;
//! and a backup's or a restore's private server, unless a signal comes first.

use clap::parser::ValueSource;
use clap::ArgMatches;

use crate::config::{Command, Config};
use crate::private_postgres::PrivatePostgres;

/// Refuses what would fail anyway, before a private server is started (or
/// created, for a mistyped `CONCERT_DATA_DIR`).
pub fn check_before_starting(command: &Command, config: &Config) -> Result<(), String> {
    // sqlx reads any scheme as PostgreSQL's; the URL is not echoed (a password).
    if let Some(url) = &config.database_url {
        let scheme = url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return Err(
                "DATABASE_URL is not a PostgreSQL URL: it must start with postgres:// or postgresql://"
                    .into(),
            );
        }
    }
    match command {
        Command::Backup { file } if file.is_dir() => {
            return Err(format!(
                "{} is a folder; name the backup file",
                file.display()
            ));
        }
        Command::Restore { file } if file.is_dir() => {
            return Err(format!(
                "{} is a folder; name the backup file",
                file.display()
            ));
        }
        Command::Restore { file } if !file.is_file() => {
            let why = match (std::fs::metadata(file), std::fs::symlink_metadata(file)) {
                (Ok(_), _) => "not a regular file (a FIFO or device), not a backup file",
                (Err(_), Ok(_)) => "a link to nothing, not a backup file",
                (Err(_), Err(_)) => "no such backup file",
            };
            return Err(format!("{}: {why}", file.display()));
        }
        _ => {}
    }
    // A serve's identity provider: a missing or unreadable JWKS file stopped
    // the start only once the store was made and migrated.
    if let (Command::Serve { .. }, Some(path)) = (command, &config.auth_jwks_file) {
        crate::identity::JwksFile::open(path.clone(), &config.identity())
            .map_err(|error| error.to_string())?;
    }
    // These read a store that must already exist; the others may create it.
    let reads_a_store = matches!(
        command,
        Command::Events { .. }
            | Command::Replay
            | Command::Audit { .. }
            | Command::Backup { .. }
            // A token signed by a fresh store's new key opens nothing.
            | Command::UserToken { .. }
    );
    if reads_a_store
        && config.database_url.is_none()
        && !PrivatePostgres::holds_a_cluster(&config.data_dir)
    {
        return Err(no_store_under(&config.data_dir));
    }
    Ok(())
}

/// Why no store was found under `data_dir`: none is there, or this user may
/// not look (a store of PostgreSQL's user's, mode 0700, was called absent,
/// with the advice to make one).
fn no_store_under(data_dir: &std::path::Path) -> String {
    let version = data_dir.join("pgdata").join("PG_VERSION");
    match std::fs::metadata(&version) {
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "cannot look for a store under {} (CONCERT_DATA_DIR): {error}; run this as root or \
             as the user who owns it",
            data_dir.display()
        ),
        _ => format!(
            "no store under {} (CONCERT_DATA_DIR): run `concert serve` there first, or set DATABASE_URL",
            data_dir.display()
        ),
    }
}

/// The service's listening socket, taken before the database starts, so a
/// port in use is reported at once. It reuses the address as tokio's own
/// `bind` does, so a restart is not refused while the last run's
/// connections linger in TIME_WAIT.
pub fn listen(address: std::net::SocketAddr) -> Result<std::net::TcpListener, String> {
    use socket2::{Domain, Socket, Type};
    let cannot = |error: std::io::Error| {
        format!("cannot listen on {address} (--bind / CONCERT_BIND): {error}")
    };
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None).map_err(cannot)?;
    socket.set_reuse_address(true).map_err(cannot)?;
    socket.bind(&address.into()).map_err(cannot)?;
    socket.listen(1024).map_err(cannot)?;
    // Tokio takes it over inside the runtime (`run`), non-blocking.
    socket.set_nonblocking(true).map_err(cannot)?;
    Ok(socket.into())
}

/// A failure to reach the database, saying which one (never its password).
pub fn database_error(config: &Config, url: &str, error: sqlx::Error) -> String {
    if config.database_url.is_none() {
        return format!("the private PostgreSQL server: {error}");
    }
    let options = url.parse::<sqlx::postgres::PgConnectOptions>();
    match options {
        Ok(options) => {
            let database = options.get_database().unwrap_or("postgres");
            // A `host=/dir` parameter is a Unix socket there, whatever the host says.
            let place = match options.get_socket() {
                Some(folder) => format!("the socket folder {}", folder.display()),
                None => format!("{}:{}", options.get_host(), options.get_port()),
            };
            format!("DATABASE_URL (database {database} at {place}): {error}")
        }
        Err(_) => format!("DATABASE_URL is not a PostgreSQL URL: {error}"),
    }
}

/// Whether a setting was given (flag or environment), not left to its default.
pub fn given(matches: &ArgMatches, id: &str) -> bool {
    let given_in = |matches: &ArgMatches| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    // A global flag may follow the subcommand.
    given_in(matches) || matches.subcommand().is_some_and(|(_, sub)| given_in(sub))
}

/// The private server for a backup or a restore, attached or started, unless
/// SIGINT or SIGTERM comes first: those end either with a word and exit 1
/// (README), and one that came while a frozen server kept the tool waiting
/// here, before its runtime listened, killed it without one (exit 143).
pub fn attach_or_start_unless_stopped(
    data_dir: &std::path::Path,
) -> Result<PrivatePostgres, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let data_dir = data_dir.to_path_buf();
    let reached = runtime.block_on(async {
        tokio::select! {
            reached = tokio::task::spawn_blocking(move || PrivatePostgres::attach_or_start(&data_dir)) => {
                reached.map_err(|panic| panic.to_string())?.map_err(|error| error.to_string())
            }
            signal = crate::server::stop_requested() => {
                Err(format!("stopped by {signal} while waiting for the database; nothing was written"))
            }
        }
    });
    // The attach may still be waiting on the frozen server: not for it.
    runtime.shutdown_background();
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> Result<(), String> {
        let config = Config {
            database_url: Some(url.to_string()),
            ..Config::defaults()
        };
        check_before_starting(&Command::Serve { demo: false }, &config)
    }

    #[test]
    fn a_database_url_of_another_kind_is_refused_without_echoing_it() {
        let refusal = with_url("mysql://app:s3cret@db/concert").unwrap_err();
        assert!(refusal.contains("not a PostgreSQL URL"), "{refusal}");
        assert!(!refusal.contains("s3cret"), "{refusal}");
        assert!(with_url("app:s3cret@db/concert").is_err());
        assert!(with_url("postgres://app@db/concert").is_ok());
        assert!(with_url("PostgreSQL://app@db/concert?host=/run/pg").is_ok());
    }
}
