//! The `concert` binary: reads the command line, provides a database (a
//! private one when `DATABASE_URL` is unset) and runs the subcommand.

use std::process::ExitCode;

use clap::Parser;
use concert::config::{Cli, Command, Config};
use concert::private_postgres::PrivatePostgres;
use concert::progress::Progress;

fn main() -> ExitCode {
    let cli = Cli::parse();
    concert::telemetry::init_logging(cli.config.log_format);
    // The private server starts before the async runtime: its start-up is blocking.
    let private = match &cli.config.database_url {
        Some(_) => None,
        None => match PrivatePostgres::start(&cli.config.data_dir) {
            Ok(server) => Some(server),
            Err(error) => {
                eprintln!("concert: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let url = match (&cli.config.database_url, &private) {
        (Some(url), _) => url.clone(),
        (None, Some(server)) => server.database_url(),
        (None, None) => unreachable!("a private server was started above"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(run(
        cli.command.unwrap_or(Command::Serve { demo: false }),
        cli.config,
        url,
    ));
    drop(runtime);
    if let Some(server) = private {
        server.stop();
    }
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("concert: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    command: Command,
    config: Config,
    url: String,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let pool = concert::db::connect(&url, config.db_max_connections).await?;
    match command {
        Command::Serve { demo } => {
            let bind = config.bind;
            let app = concert::server::prepare(pool, config).await?;
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
            let listener = tokio::net::TcpListener::bind(bind).await?;
            tracing::info!(address = %listener.local_addr()?, "serving; API docs at /docs");
            concert::server::serve(listener, app, concert::server::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            concert::db::migrate(&pool).await?;
            println!("database migrated");
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            stream,
            after,
            json,
        } => {
            let mut out = std::io::stdout().lock();
            concert::history::print_events(&pool, stream.as_deref(), after, json, &mut out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay => {
            concert::db::migrate(&pool).await?;
            let mut progress = Progress::new("replay");
            let report =
                concert::replay::replay(&pool, &mut |done, total| progress.update(done, total))
                    .await?;
            progress.finish(report.events);
            println!(
                "read models rebuilt from {} events ({} streams caught up during the swap)",
                report.events, report.caught_up_streams
            );
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
                    "CONCERT_AUTH_JWKS_FILE is set: user tokens come from the identity provider",
                )?;
            println!("{}", minted.token);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit => {
            concert::db::migrate(&pool).await?;
            let mut progress = Progress::new("audit");
            let report =
                concert::audit::audit(&pool, config.queue_active_max, &mut |done, total| {
                    progress.update(done, total)
                })
                .await?;
            progress.finish(report.events);
            for violation in &report.violations {
                println!("VIOLATION [{}] {}", violation.rule, violation.detail);
                for event in &violation.events {
                    println!("    {event}");
                }
            }
            if report.violations.is_empty() {
                println!("audit passed: {} events, no violation", report.events);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "audit failed: {} violations in {} events",
                    report.violations.len(),
                    report.events
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}
