//! The command line and its settings: every flag also reads the environment
//! variable of the same meaning, and `main` reads them once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod values;

use values::{admin_token, cors_origin, listen_address, whole_i64, whole_u32, whole_u64};

/// The `concert` command line.
#[derive(Debug, Parser)]
#[command(
    name = "concert",
    version,
    about = "Event-sourced concert seat booking"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// With no command: serves with a sample concert, as `serve --demo`.
    #[arg(long)]
    pub demo: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Runs the HTTP service and its scheduler.
    Serve {
        /// Creates a sample concert (3 dates x 50 seats) when the store is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Creates or updates the database schema, then exits.
    Migrate,
    /// Prints the event history.
    Events {
        /// Only this stream, as TYPE/ID (e.g. Seat/2f9c...).
        #[arg(long, value_parser = crate::history::stream_arg)]
        stream: Option<String>,
        /// Only events after this position.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true,
              value_parser = whole_i64::<0, { i64::MAX as u64 }>)]
        after: i64,
        /// One JSON object per line instead of readable text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuilds every read model from the event log.
    Replay,
    /// Checks the invariants over the whole history; exits non-zero on a
    /// violation. Prints the log's checkpoint at the end, to keep elsewhere.
    Audit {
        /// A checkpoint an earlier audit printed (POSITION:DIGEST): the log up
        /// to that position must still be the one it was taken of.
        #[arg(long, value_parser = crate::audit::Checkpoint::parse)]
        checkpoint: Option<crate::audit::Checkpoint>,
    },
    /// Writes a consistent copy of the whole store to FILE (pg_dump custom
    /// format) while the service may keep running.
    Backup {
        /// Where the copy goes (written as FILE.<pid>.partial, renamed when complete).
        file: PathBuf,
    },
    /// Restores a copy made by `concert backup` into an empty store.
    Restore {
        /// The copy to restore.
        file: PathBuf,
    },
    /// Prints a user token for USER_ID, signed with the service's own key
    /// (not available when CONCERT_AUTH_JWKS_FILE names an identity provider).
    UserToken {
        /// The user the token names.
        user_id: uuid::Uuid,
        /// How long the token is valid, in seconds.
        #[arg(long, default_value_t = crate::identity::DEFAULT_TTL_SECS,
              allow_negative_numbers = true,
              value_parser = whole_u64::<60, 86_400>)]
        ttl_secs: u64,
    },
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines for a terminal.
    Pretty,
    /// One JSON object per line for log collectors.
    Json,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL to use; unset starts a private server under the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the private PostgreSQL keeps its data.
    #[arg(
        long,
        env = "CONCERT_DATA_DIR",
        default_value = "./.concert",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Address the HTTP service listens on.
    #[arg(
        long,
        env = "CONCERT_BIND",
        default_value = "127.0.0.1:8080",
        global = true,
        value_parser = listen_address
    )]
    pub bind: SocketAddr,
    /// How long a seat stays held before the hold lapses, in seconds (the
    /// audit checks the hold times the serves recorded).
    #[arg(long, env = "CONCERT_HOLD_TTL_SECS", default_value_t = 300, global = true,
          allow_negative_numbers = true,
          value_parser = whole_u64::<1, 86_400>)]
    pub hold_ttl_secs: u64,
    /// Most active queue tokens per concert (the audit checks the limits the
    /// serves recorded unless this is given).
    #[arg(long, env = "CONCERT_QUEUE_ACTIVE_MAX", default_value_t = 100, global = true,
          allow_negative_numbers = true,
          value_parser = whole_u32::<1, 1_000_000>)]
    pub queue_active_max: u32,
    /// How long an admitted token stays active, in seconds.
    #[arg(long, env = "CONCERT_QUEUE_ACTIVE_TTL_SECS", default_value_t = 600, global = true,
          allow_negative_numbers = true,
          value_parser = whole_u64::<1, 86_400>)]
    pub queue_active_ttl_secs: u64,
    /// Token for the admin and audit endpoints; generated and logged once when unset.
    #[arg(
        long,
        env = "CONCERT_ADMIN_TOKEN",
        global = true,
        hide_env_values = true,
        value_parser = admin_token
    )]
    pub admin_token: Option<String>,
    /// JWKS file of the identity provider whose user tokens are trusted (RS256,
    /// ES256, EdDSA keys by kid; read again when it changes). Unset: the
    /// service is its own issuer, with a signing key kept in the database.
    #[arg(long, env = "CONCERT_AUTH_JWKS_FILE", global = true)]
    pub auth_jwks_file: Option<PathBuf>,
    /// `iss` every user token must carry (and the `iss` of tokens the service mints).
    #[arg(long, env = "CONCERT_AUTH_ISSUER", global = true)]
    pub auth_issuer: Option<String>,
    /// `aud` every user token must name (and the `aud` of tokens the service mints).
    #[arg(long, env = "CONCERT_AUTH_AUDIENCE", global = true)]
    pub auth_audience: Option<String>,
    /// Queue entries allowed per second from one client address, and from one
    /// user; 0 turns the limit off.
    #[arg(
        long,
        env = "CONCERT_QUEUE_ENTRY_RATE_PER_SEC",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = whole_u32::<0, { u32::MAX }>,
        global = true
    )]
    pub queue_entry_rate_per_sec: u32,
    /// Queue entries one client address (or user) may send at once before the rate applies.
    #[arg(long, env = "CONCERT_QUEUE_ENTRY_BURST", default_value_t = 20, global = true,
          allow_negative_numbers = true,
          value_parser = whole_u32::<1, {u32::MAX}>)]
    pub queue_entry_burst: u32,
    /// Most tokens waiting in one concert's queue; 0 for no limit.
    #[arg(
        long,
        env = "CONCERT_QUEUE_WAITING_MAX",
        default_value_t = 1_000_000,
        allow_negative_numbers = true,
        value_parser = whole_u64::<0, { u64::MAX }>,
        global = true
    )]
    pub queue_waiting_max: u64,
    /// Log line format.
    #[arg(
        long,
        env = "CONCERT_LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
    /// Largest number of database connections (default: four per CPU core,
    /// 8 to 64). At least 4: the scheduler holds one for its leadership while
    /// its commands need others, and the live feed reads with one more.
    #[arg(long, env = "CONCERT_DB_MAX_CONNECTIONS", default_value_t = default_pool_size(),
          allow_negative_numbers = true,
          value_parser = whole_u32::<4, 1_000>, global = true)]
    pub db_max_connections: u32,
    /// How often the scheduler looks for work, in milliseconds.
    #[arg(long, env = "CONCERT_SCHEDULER_INTERVAL_MS", default_value_t = 250,
          allow_negative_numbers = true,
          value_parser = whole_u64::<10, 86_400_000>, global = true)]
    pub scheduler_interval_ms: u64,
    /// How long a debited payment may stay unfinished before the scheduler finishes it, in seconds.
    #[arg(long, env = "CONCERT_PAYMENT_RECOVERY_SECS", default_value_t = 10,
          allow_negative_numbers = true,
          value_parser = whole_u64::<1, 86_400>, global = true)]
    pub payment_recovery_secs: u64,
    /// How long the answer to a request with an `Idempotency-Key` is kept, in
    /// seconds; a retry after that is still recognised by the aggregates.
    #[arg(long, env = "CONCERT_IDEMPOTENCY_KEY_TTL_SECS", default_value_t = 604_800,
          allow_negative_numbers = true,
          value_parser = whole_u64::<1, 31_536_000>, global = true)]
    pub idempotency_key_ttl_secs: u64,
    /// How long a stop signal is drained before the stop, in seconds: the
    /// instance serves on while `/readyz` answers 503 and every answer
    /// asks its client to close the connection (0: stop at once).
    #[arg(long, env = "CONCERT_SHUTDOWN_DRAIN_SECS", default_value_t = 0,
          allow_negative_numbers = true,
          value_parser = whole_u64::<0, 300>, global = true)]
    pub shutdown_drain_secs: u64,
    /// Longest time one request may take, in seconds.
    #[arg(long, env = "CONCERT_REQUEST_TIMEOUT_SECS", default_value_t = 30,
          allow_negative_numbers = true,
          value_parser = whole_u64::<1, 3_600>, global = true)]
    pub request_timeout_secs: u64,
    /// Most client connections served at once (event streams included); more
    /// wait to be accepted. Lowered to what the open-files limit leaves room for.
    #[arg(
        long,
        env = "CONCERT_MAX_CONNECTIONS",
        default_value_t = 20_000,
        allow_negative_numbers = true,
        value_parser = whole_u32::<1, {u32::MAX}>,
        global = true
    )]
    pub max_connections: u32,
    /// Origins allowed by CORS, comma-separated ("*" for any); none by default.
    #[arg(
        long,
        env = "CONCERT_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = cors_origin,
        global = true
    )]
    pub cors_origins: Vec<String>,
    /// Test hook: stop a payment right after the debit, as a crash would.
    #[arg(
        long,
        env = "CONCERT_FAULT_STOP_AFTER_DEBIT",
        hide = true,
        global = true
    )]
    pub fault_stop_after_debit: bool,
}

impl Config {
    /// The hold duration.
    pub fn hold_ttl(&self) -> Duration {
        Duration::from_secs(self.hold_ttl_secs)
    }

    /// The active-token duration.
    pub fn queue_active_ttl(&self) -> Duration {
        Duration::from_secs(self.queue_active_ttl_secs)
    }

    /// Where user tokens come from.
    pub fn identity(&self) -> crate::identity::IdentitySettings {
        crate::identity::IdentitySettings {
            jwks_file: self.auth_jwks_file.clone(),
            // Empty is unset, as for the admin token and `DATABASE_URL`: an
            // empty `iss` or `aud` to require refused every user token.
            issuer: set(&self.auth_issuer),
            audience: set(&self.auth_audience),
        }
    }

    /// Settings with every default, for tests and tools.
    pub fn defaults() -> Self {
        Cli::parse_from(["concert"]).config
    }
}

/// A setting given as nothing but spaces is not given.
fn set(value: &Option<String>) -> Option<String> {
    value.clone().filter(|value| !value.trim().is_empty())
}

/// Four connections per CPU core. PostgreSQL shares the cores with the
/// service, and more backends than that only take turns: on two cores, 8
/// connections answered a third more seat listings than 32 (BENCHMARKS.md).
fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    (4 * cores).clamp(8, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_issuer_or_audience_is_not_required_of_user_tokens() {
        let config = Cli::try_parse_from(["concert", "--auth-issuer", "", "--auth-audience", " "])
            .unwrap()
            .config;

        let identity = config.identity();

        assert_eq!((identity.issuer, identity.audience), (None, None));
    }

    #[test]
    fn cors_origins_are_trimmed_normalised_and_checked() {
        let origins = |value: &str| {
            Cli::try_parse_from(["concert", "--cors-origins", value])
                .map(|cli| cli.config.cors_origins)
                .map_err(|error| error.to_string())
        };
        assert_eq!(
            origins("https://a.example, HTTPS://B.example:443 ,http://localhost:3000").unwrap(),
            [
                "https://a.example",
                "https://b.example",
                "http://localhost:3000"
            ]
        );
        assert_eq!(origins(" *").unwrap(), ["*"]);
        assert_eq!(origins(" ").unwrap(), [""]);
        for bad in [
            "https://a.example/",
            "https://a.example/app",
            "a.example",
            "ftp://a.example",
            "https://user@a.example",
        ] {
            assert!(origins(bad).is_err(), "{bad}");
        }
    }

    fn refused(flag: &str, value: &str) -> bool {
        Cli::try_parse_from(["concert", flag, value]).is_err()
    }

    #[test]
    fn values_that_would_crash_or_silence_the_service_are_refused() {
        // A pool of none panicked, and one of 1 to 3 starved the scheduler
        // (its leadership holds one while its commands wait for another): 503
        // for 5 s on every request; a request timeout of 0 answered nothing,
        // and one near u64::MAX overflowed on every connection.
        for starved in ["0", "1", "3"] {
            assert!(refused("--db-max-connections", starved));
        }
        assert!(refused("--request-timeout-secs", "0"));
        assert!(refused("--request-timeout-secs", "18446744073709551615"));
        assert!(refused("--scheduler-interval-ms", "0"));
        assert!(refused("--payment-recovery-secs", "0"));
        assert!(refused("--hold-ttl-secs", "abc"));
        assert!(refused("--admin-token", "  s3cret "));
        assert!(!refused("--admin-token", "s3cret"));
        assert!(!refused("--request-timeout-secs", "3600"));
        assert!(!refused("--db-max-connections", "4"));
    }

    #[test]
    fn a_refused_number_is_told_its_range_whatever_is_wrong_with_it() {
        for value in ["abc", "-1", "1.5", "", "+5", " 5", "0", "86401"] {
            let error = Cli::try_parse_from(["concert", &format!("--hold-ttl-secs={value}")])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("--hold-ttl-secs") && error.contains("from 1 to 86400"),
                "{value:?}: {error}"
            );
        }
        let error = Cli::try_parse_from(["concert", "--queue-active-max=-1"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("from 1 to 1000000"), "{error}");
        assert!(!refused("--queue-waiting-max", "0"));
        assert!(!refused("--queue-entry-rate-per-sec", "0"));
    }

    /// A negative number as its own word (`--hold-ttl-secs -5`) is a value
    /// told its range too, not "unexpected argument '-5'" with nothing more.
    #[test]
    fn a_negative_number_after_a_space_is_told_its_range() {
        for args in [
            &["concert", "--hold-ttl-secs", "-5"][..],
            &["concert", "serve", "--queue-active-ttl-secs", "-1"],
            &[
                "concert",
                "user-token",
                "8f1c3a52-2b1e-4c7e-9d7a-3f5b6c8d9e0f",
                "--ttl-secs",
                "-5",
            ],
            &["concert", "events", "--after", "-1"],
        ] {
            let error = Cli::try_parse_from(args).unwrap_err().to_string();
            assert!(
                error.contains("expected a whole number from"),
                "{args:?}: {error}"
            );
        }
    }

    /// A malformed `--stream` is a usage error (clap exits 2), as a
    /// malformed number is; the command found it later and exited 1.
    #[test]
    fn a_malformed_stream_is_a_usage_error() {
        for stream in [
            "Concert",
            "Concert/notauuid",
            "/2f9c0e1a-0000-4000-8000-000000000000",
        ] {
            let error = Cli::try_parse_from(["concert", "events", "--stream", stream]).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{stream}: {error}");
        }
        let named = Cli::try_parse_from([
            "concert",
            "events",
            "--stream",
            "Seat/2F9C0E1A-0000-4000-8000-000000000000",
        ]);
        assert!(named.is_ok());
    }
}
