//! `concert-bench`: load generator and PostgreSQL ceiling for the concert
//! service. See BENCHMARKS.md for the commands and the figures of a run.
//!
//! - `flash-sale`: N users race for S seats end to end, then the invariants are
//!   checked through the API.
//! - `endpoint`: one endpoint in a closed loop at C concurrent clients.
//! - `ceiling`: pgbench with the scripts of `bench/` on a scratch table.
//! - `history`: a long wallet and a long queue against short ones.

mod api;
mod ceiling;
mod common;
mod endpoint;
mod flash_sale;
mod history;
mod machine;
mod profile;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Errors of the load generator: reported and the run fails.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Load generator for the concert booking service.
#[derive(Debug, Parser)]
#[command(name = "concert-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N users with funded wallets queue for S seats: hold a random free seat, pay; then check the invariants.
    FlashSale(flash_sale::FlashSaleArgs),
    /// One endpoint in a closed loop, after the setup it needs.
    Endpoint(endpoint::EndpointArgs),
    /// The PostgreSQL ceiling: pgbench with bench/append.sql and bench/es_command.sql.
    Ceiling(ceiling::CeilingArgs),
    /// Costs that must not grow with history: a long wallet, a long queue.
    History(history::HistoryArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::FlashSale(args) => flash_sale::run(args).await,
            Command::Endpoint(args) => endpoint::run(args).await,
            Command::Ceiling(args) => ceiling::run(args).await,
            Command::History(args) => history::run(args).await,
        }
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("concert-bench: {error}");
            ExitCode::from(2)
        }
    }
}
