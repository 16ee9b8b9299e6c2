//! The `concert` binary: reads the command line, provides a database (a
//! private one when `DATABASE_URL` is unset, supervised while serving) and
//! runs the subcommand.

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use concert::config::{Cli, Command, Config};
use concert::private_postgres::{supervise, PrivatePostgres, Supervised};
use concert::progress::Progress;
use concert::startup;
use concert::terminal::printable;
use tokio::sync::watch;

/// The database a command runs against, and who looks after it.
enum Database {
    /// Someone else's (`DATABASE_URL`).
    External(String),
    /// Our private server, for a one-off command (or another `concert`'s, attached).
    Private(Box<PrivatePostgres>),
    /// Our private server while serving: restarted when it dies.
    Supervised(Supervised),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // An empty DATABASE_URL (`DATABASE_URL=` in a compose file) is unset, as
    // an empty admin token is: the private server.
    cli.config.database_url = cli.config.database_url.filter(|url| !url.trim().is_empty());
    // Otherwise the audit takes the limit the service last ran with.
    let limit_given = startup::given(&matches, "queue_active_max");
    concert::telemetry::init_logging(cli.config.log_format);
    // `serve` is the default command, so `concert --demo` is `concert serve --demo`.
    let command = match (cli.command, cli.demo) {
        (None, demo) => Command::Serve { demo },
        (Some(Command::Serve { demo }), also) => Command::Serve { demo: demo || also },
        (Some(command), false) => command,
        // A usage error, exit 2 as clap's own are.
        (Some(_), true) => Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--demo goes with serve, the default command",
            )
            .exit(),
    };
    // `concert audit` exits 1 for a violation and 2 when it could not check
    // at all, so that a monitor tells a tampered log from a database down.
    let could_not_run = match command {
        Command::Audit { .. } => ExitCode::from(2),
        _ => ExitCode::FAILURE,
    };
    let fail = |error: &dyn std::fmt::Display| {
        fail(error);
        could_not_run
    };
    // What can be checked without a database is checked before one starts.
    if let Err(refusal) = startup::check_before_starting(&command, &cli.config) {
        return fail(&refusal);
    }
    let listener = match &command {
        Command::Serve { .. } => match startup::listen(cli.config.bind) {
            Ok(listener) => Some(listener),
            Err(error) => return fail(&error),
        },
        _ => None,
    };
    // The private server starts before the async runtime: its start-up is blocking.
    let database = match &cli.config.database_url {
        Some(url) => Database::External(url.clone()),
        None if matches!(command, Command::Serve { .. }) => {
            // The supervisor counts restarts: the metrics recorder comes first.
            let _ = concert::telemetry::metrics_handle();
            match PrivatePostgres::start(&cli.config.data_dir) {
                Ok(server) => Database::Supervised(supervise(server)),
                Err(error) => return fail(&error),
            }
        }
        // Tools reach the server of a `concert serve` running on the same folder.
        None if matches!(command, Command::Backup { .. } | Command::Restore { .. }) => {
            match startup::attach_or_start_unless_stopped(&cli.config.data_dir) {
                Ok(server) => Database::Private(Box::new(server)),
                Err(error) => return fail(&error),
            }
        }
        None => match PrivatePostgres::attach_or_start(&cli.config.data_dir) {
            Ok(server) => Database::Private(Box::new(server)),
            Err(error) => return fail(&error),
        },
    };
    let (url, gave_up) = match &database {
        Database::External(url) => (url.clone(), None),
        Database::Private(server) => (server.database_url(), None),
        Database::Supervised(supervised) => (supervised.database_url(), Some(supervised.gave_up())),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(run(
        command,
        cli.config,
        url,
        listener,
        gave_up,
        limit_given,
    ));
    drop(runtime);
    // A server that had to be killed is no clean stop: a supervisor of this
    // process is told so (it exited 0).
    let stopped = match database {
        Database::External(_) => Ok(()),
        Database::Private(server) => server.stop().map_err(|killed| killed.to_string()),
        Database::Supervised(supervised) => {
            supervised.stop().map_err(|unclean| unclean.to_string())
        }
    };
    if let Err(unclean) = stopped {
        return fail(&unclean);
    }
    match outcome {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<std::io::Error>()
        .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe)
}

fn fail(error: impl std::fmt::Display) -> ExitCode {
    concert::say_to_stderr!("concert: {error}");
    ExitCode::FAILURE
}

async fn run(
    command: Command,
    config: Config,
    url: String,
    listener: Option<std::net::TcpListener>,
    gave_up: Option<watch::Receiver<bool>>,
    limit_given: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // These two manage their own connections (a snapshot; an empty store).
    match &command {
        Command::Backup { file } => {
            let report = concert::backup::backup(&url, file).await?;
            concert::say!(
                "backup written to {}: {} bytes ({:.1} MiB) in {:.1} s",
                report.file.display(),
                report.bytes,
                report.bytes as f64 / (1024.0 * 1024.0),
                report.seconds
            );
            concert::say!(
                "last log position: {} ({} more events committed without a position yet; positioned on restore)",
                report.last_position, report.unpositioned
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Restore { file } => {
            let report = concert::backup::restore(&url, file, &config).await?;
            concert::say!(
                "restored {} events in {:.1} s; last log position: {} ({} positioned now)",
                report.events,
                report.seconds,
                report.last_position,
                report.positioned
            );
            concert::say!(
                "{} payments the copy caught half-way were finished or refunded",
                report.payments_settled
            );
            concert::say!(
                "{} queue entry numbers the copy caught without their ticket were released",
                report.entry_numbers_released
            );
            concert::say!("check it with `concert audit`");
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let pool = concert::db::connect(&url, config.db_max_connections)
        .await
        .map_err(|error| startup::database_error(&config, &url, error))?;
    // The commands that only read refuse a database without a store, which a
    // mistyped DATABASE_URL names: an audit would pass on nothing there. The
    // others make the store, as `serve` does: a user token minted before the
    // first serve of a new database is that store's.
    let only_reads = matches!(command, Command::Events { .. } | Command::Audit { .. });
    if only_reads && !concert::db::holds_a_store(&pool).await? {
        return Err(concert::db::NO_STORE.into());
    }
    match command {
        Command::Serve { demo } => {
            let mut app = concert::server::prepare(pool, config).await?;
            concert::server::record_settings(&app).await?;
            app.set_demo(demo);
            if demo {
                if let Some(concert_id) = concert::demo::seed_if_empty(&app).await? {
                    tracing::info!(%concert_id, "demo concert scheduled: POST /api/v1/queue/tokens with this concert_id to start");
                }
                match concert::demo::sample_user_token(&app) {
                    Some(minted) => tracing::info!(
                        user_id = %minted.user_id,
                        user_token = %minted.token,
                        expires_at = %minted.expires_at,
                        "demo user signed in: send this user token as Authorization: Bearer"
                    ),
                    None => tracing::info!(
                        "user tokens come from the identity provider (CONCERT_AUTH_JWKS_FILE)"
                    ),
                }
            }
            let listener = listener.ok_or("serve listens before the database starts")?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(address = %listener.local_addr()?, "serving; API docs at /docs");
            let drain = Duration::from_secs(app.config.shutdown_drain_secs);
            let stop = concert::server::stop_signal(gave_up, drain, app.draining.clone());
            concert::server::serve(listener, app, stop).await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            concert::db::migrate(&pool).await?;
            concert::say!("database migrated");
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            stream,
            after,
            json,
        } => {
            let mut out = std::io::stdout().lock();
            let page = concert::history::PAGE;
            match concert::history::print_events(
                &pool,
                stream.as_deref(),
                after,
                json,
                page,
                &mut out,
            )
            .await
            {
                Ok(_) => Ok(ExitCode::SUCCESS),
                // The reader stopped reading (`concert events | head`): done, as for any Unix tool.
                Err(error) if is_broken_pipe(error.as_ref()) => Ok(ExitCode::SUCCESS),
                Err(error) => Err(error),
            }
        }
        Command::Replay => {
            concert::db::migrate(&pool).await?;
            let mut progress = Progress::new("replay");
            let report =
                concert::replay::replay(&pool, &mut |done, total| progress.update(done, total))
                    .await
                    .map_err(|error| {
                        // A bare "Broken pipe" left the operator to wonder
                        // what state the store was left in.
                        format!(
                            "{error}\nreplay did not finish: the read models in use are whole (the rebuilt \
                             ones take their place in one transaction); running `concert replay` again is safe"
                        )
                    })?;
            progress.finish(report.events);
            concert::say!(
                "read models rebuilt from {} events ({} streams caught up after the rebuild, {} of them under the swap's locks); {} snapshots dropped",
                report.events, report.caught_up_streams, report.caught_up_under_locks, report.snapshots_dropped
            );
            if let Some(first) = report.first_chain_break {
                concert::say!(
                    "WARNING: {} events do not match their stored hashes (the first at position {first}): the log was \
                     changed behind the service's back, and the read models now show it as it is. `concert audit` names each",
                    report.chain_breaks
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::UserToken { user_id, ttl_secs } => {
            concert::db::migrate(&pool).await?;
            let users =
                concert::identity::UserTokens::from_settings(&config.identity(), &pool).await?;
            let minted = users
                .mint(
                    concert::ids::UserId(user_id),
                    std::time::Duration::from_secs(ttl_secs),
                )
                .ok_or(
                    "an identity provider is configured (--auth-jwks-file / CONCERT_AUTH_JWKS_FILE): user tokens come from it",
                )?;
            // The token is the command's whole result: one that cannot be
            // written is a failure, not a report lost (a script reading
            // `$(concert user-token …)` would go on with nothing).
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", minted.token)
                .and_then(|()| stdout.flush())
                .map_err(|error| format!("writing the token: {error}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { checkpoint } => {
            concert::db::migrate(&pool).await?;
            let recorded = concert::served_settings::served_limits(&pool).await?;
            let (limits, whence) = match recorded {
                Some(recorded) if !limit_given => (recorded, "as the service ran with it"),
                _ if limit_given => (config.queue_active_max.into(), "given"),
                _ => (
                    config.queue_active_max.into(),
                    "the default: no serve of this release has recorded one here; \
                     give the limit the store was served with, as a store an older release served has none",
                ),
            };
            concert::say!(
                "admissions checked against CONCERT_QUEUE_ACTIVE_MAX={limits} ({whence})"
            );
            let mut progress = Progress::new("audit");
            let report = concert::audit::audit(&pool, limits, checkpoint, &mut |done, total| {
                progress.update(done, total)
            })
            .await?;
            progress.finish(report.events);
            for violation in &report.violations {
                let detail = printable(&violation.detail);
                concert::say!("VIOLATION [{}] {detail}", violation.rule);
                for event in &violation.events {
                    concert::say!("    {}", printable(event));
                }
            }
            if let Some(checkpoint) = checkpoint {
                let position = checkpoint.position;
                if concert::audit::holds_checkpoint(&report.violations, position) {
                    concert::say!("the log up to position {position} is the one checkpointed");
                } else {
                    concert::say!("the log up to position {position} is NOT the one checkpointed (the violations above)");
                }
            }
            match &report.ttls {
                Some(ttls) => concert::say!("holds and admissions checked against the TTLs served: {ttls}"),
                None => concert::say!(
                    "holds and admissions not checked against a TTL: no serve of this release has recorded one here"
                ),
            }
            if report.violations.is_empty() {
                concert::say!(
                    "checkpoint {} (keep it outside the database: `--checkpoint` with it later proves the log up to here unchanged)",
                    report.checkpoint
                );
            } else {
                // Kept, it would anchor a log that breaks the rules.
                concert::say!(
                    "checkpoint {} (not one to keep: this log breaks the rules above)",
                    report.checkpoint
                );
            }
            if report.violations.is_empty() {
                concert::say!("audit passed: {} events, no violation", report.events);
                Ok(ExitCode::SUCCESS)
            } else {
                concert::say!(
                    "audit failed: {} violations in {} events",
                    report.violations.len(),
                    report.events
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Backup { .. } | Command::Restore { .. } => unreachable!("handled above"),
    }
}
