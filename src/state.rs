//! `AppState`: what every request handler and the scheduler share.

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::Aggregate;
use sqlx::PgPool;

use crate::aggregates::{Concert, QueueTicket, Seat, Wallet};
use crate::batching;
use crate::config::Config;
use crate::draining::Draining;
use crate::early_holds::EarlyHoldDeadlines;
use crate::entry_turns::EntryTurns;
use crate::event_store::{
    AfterCommit, CommitSignal, Lane, PaymentLanes, PaymentPipeline, Pipeline, Pipelined,
    ProjectionError, Projector,
};
use crate::identity::UserTokens;
use crate::live::Feed;
use crate::projection_lag::ProjectionLag;
use crate::projections::{
    available_dates::AvailableDates,
    available_seats::AvailableSeats,
    balances::Balances,
    command_reads::{ReservationsForTickets, SeatsForTickets},
    entry_plans::EntryPlans,
    gathered_reads::GatheredReads,
    payments::Payments,
    queue_pace::RATE_WINDOW_SECS,
    queue_tickets::QueueTickets,
    reservations::Reservations,
};
use crate::tokens::TokenSigner;

/// Wallets keep a snapshot every this many events, so a long history loads fast.
const WALLET_SNAPSHOT_EVERY: usize = 100;

/// What every request handler and the scheduler share (`Shared`), behind one
/// reference count: axum clones the state for each extractor and layer of a
/// request, and a clone of the fields one by one cost a dozen atomic updates
/// each time (3 % of the server's CPU under holds).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The command side (one pipeline per aggregate type), the read side (the
/// pool the projections' tables are read through) and the settings.
#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub admin_token: Arc<str>,
    /// Queue tokens.
    pub tokens: TokenSigner,
    /// User tokens: who the caller is.
    pub users: UserTokens,
    pub concerts: Arc<Pipeline<Concert>>,
    pub seats: Arc<Pipeline<Seat>>,
    pub wallets: Arc<Pipeline<Wallet>>,
    pub tickets: Arc<Pipeline<QueueTicket>>,
    /// Payments: a wallet's debit, a seat's sale and a ticket's expiry together.
    pub payments: Arc<PaymentPipeline>,
    /// Entries into queues, numbered together.
    pub entries: Arc<EntryPlans>,
    /// One entry at a time per user and concert here.
    pub entry_turns: Arc<EntryTurns>,
    /// What holds read before their command, gathered.
    pub hold_reads: Arc<GatheredReads<SeatsForTickets>>,
    /// What payments read before their command, gathered.
    pub payment_reads: Arc<GatheredReads<ReservationsForTickets>>,
    pub projectors: Arc<Projectors>,
    /// This instance's live feed: what the Server-Sent Event streams watch.
    pub live: Feed,
    /// `serve --demo`: the booking page may mint tokens for new sample users.
    pub demo: bool,
    /// How far the read models are behind the log (`/readyz`, `/metrics`).
    pub projection_lag: Arc<ProjectionLag>,
    /// Whether a stop was asked for and the instance drains before it.
    pub draining: Draining,
    /// Holds its date's start cuts short, which the scheduler wakes for.
    pub early_hold_deadlines: EarlyHoldDeadlines,
}

/// The projectors of each aggregate type, also used to catch up at start.
pub struct Projectors {
    pub concerts: Arc<Projector<Concert>>,
    pub seats: Arc<Projector<Seat>>,
    pub wallets: Arc<Projector<Wallet>>,
    pub tickets: Arc<Projector<QueueTicket>>,
}

impl Projectors {
    /// Projectors writing every read model through `pool`.
    pub fn new(pool: &PgPool) -> Self {
        let dates = Arc::new(AvailableDates);
        let seats = Arc::new(AvailableSeats);
        let payments = Arc::new(Payments);
        Self {
            concerts: Arc::new(Projector::new(pool.clone(), vec![dates, seats.clone()])),
            seats: Arc::new(Projector::new(
                pool.clone(),
                vec![seats, Arc::new(Reservations), payments.clone()],
            )),
            wallets: Arc::new(Projector::new(
                pool.clone(),
                vec![Arc::new(Balances), payments],
            )),
            tickets: Arc::new(Projector::new(pool.clone(), vec![Arc::new(QueueTickets)])),
        }
    }

    /// Applies every committed event the read models are missing. Wallets go
    /// before seats so a payment exists before the sale that completes it.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        Ok(self.concerts.catch_up().await?
            + self.wallets.catch_up().await?
            + self.seats.catch_up().await?
            + self.tickets.catch_up().await?)
    }
}

impl Projectors {
    /// `catch_up` inside the caller's transaction, of read models that hold
    /// every event up to `after_position` (`Projector::catch_up_in`). Gives
    /// the streams it caught up, by aggregate type and id.
    pub async fn catch_up_in(
        &self,
        tx: &mut sqlx::PgConnection,
        after_position: i64,
    ) -> Result<Vec<(&'static str, String)>, ProjectionError> {
        let mut caught_up = Vec::new();
        let mut of_type = |aggregate_type: &'static str, ids: Vec<String>| {
            caught_up.extend(ids.into_iter().map(|id| (aggregate_type, id)));
        };
        of_type(
            Concert::TYPE,
            self.concerts.catch_up_in(tx, after_position).await?,
        );
        of_type(
            Wallet::TYPE,
            self.wallets.catch_up_in(tx, after_position).await?,
        );
        of_type(
            Seat::TYPE,
            self.seats.catch_up_in(tx, after_position).await?,
        );
        of_type(
            QueueTicket::TYPE,
            self.tickets.catch_up_in(tx, after_position).await?,
        );
        Ok(caught_up)
    }
}

impl AppState {
    /// Wires the pipelines and projectors onto one pool; starts the
    /// pipelines' workers, so it runs inside the Tokio runtime.
    pub fn new(
        pool: PgPool,
        config: Config,
        admin_token: String,
        tokens: TokenSigner,
        users: UserTokens,
    ) -> Self {
        let projectors = Projectors::new(&pool);
        let live = Feed::new();
        // The feed's memory answers seat listings; it learns of this
        // instance's own seat and ticket commits before they are answered.
        let seats_seen: Arc<dyn AfterCommit<Seat>> = Arc::new(live.clone());
        let tickets_seen: Arc<dyn AfterCommit<QueueTicket>> = Arc::new(live.clone());
        // Every instance's feed (this one's too) learns of each commit.
        let signal = CommitSignal::start(pool.clone());
        let deadline = batching::batch_deadline(Duration::from_secs(config.request_timeout_secs));
        let payment_lanes = PaymentLanes {
            wallets: lane(
                &projectors.wallets,
                Some(WALLET_SNAPSHOT_EVERY),
                None,
                &signal,
            ),
            seats: lane(&projectors.seats, None, Some(seats_seen.clone()), &signal),
            tickets: lane(
                &projectors.tickets,
                None,
                Some(tickets_seen.clone()),
                &signal,
            ),
        };
        Self(Arc::new(Shared {
            concerts: Arc::new(Pipeline::start(
                pool.clone(),
                lane(&projectors.concerts, None, None, &signal),
                deadline,
            )),
            seats: Arc::new(Pipeline::start(
                pool.clone(),
                lane(&projectors.seats, None, Some(seats_seen), &signal),
                deadline,
            )),
            wallets: Arc::new(Pipeline::start(
                pool.clone(),
                lane(
                    &projectors.wallets,
                    Some(WALLET_SNAPSHOT_EVERY),
                    None,
                    &signal,
                ),
                deadline,
            )),
            // An entry took its number when it was planned: dropped, the
            // number would count as a waiting ticket for good. Its retry
            // finds the ticket, whose id comes from the user's entries.
            tickets: Arc::new(
                Pipeline::start(
                    pool.clone(),
                    lane(&projectors.tickets, None, Some(tickets_seen), &signal),
                    deadline,
                )
                .doing_abandoned_commands(),
            ),
            payments: Arc::new(PaymentPipeline::start(
                pool.clone(),
                payment_lanes,
                deadline,
            )),
            entries: Arc::new(EntryPlans::start(
                &pool,
                i64::try_from(config.queue_waiting_max).unwrap_or(i64::MAX),
                i64::from(config.queue_active_max),
                chrono::Duration::seconds(RATE_WINDOW_SECS),
                deadline,
            )),
            entry_turns: Arc::default(),
            hold_reads: Arc::new(GatheredReads::start(&pool, SeatsForTickets, deadline)),
            payment_reads: Arc::new(GatheredReads::start(
                &pool,
                ReservationsForTickets,
                deadline,
            )),
            projectors: Arc::new(projectors),
            live,
            demo: false,
            projection_lag: Arc::default(),
            draining: Draining::default(),
            early_hold_deadlines: EarlyHoldDeadlines::default(),
            pool,
            config: Arc::new(config),
            admin_token: admin_token.into(),
            tokens,
            users,
        }))
    }

    /// `serve --demo`: the booking page may mint tokens for sample users.
    pub fn set_demo(&mut self, demo: bool) {
        Arc::make_mut(&mut self.0).demo = demo;
    }
}

/// How `A`'s events are stored: `projector`'s read models, a snapshot every
/// `snapshot_every` events, `after_commit` told of each, `signal` raised
/// after each commit.
fn lane<A: Pipelined>(
    projector: &Arc<Projector<A>>,
    snapshot_every: Option<usize>,
    after_commit: Option<Arc<dyn AfterCommit<A>>>,
    signal: &CommitSignal,
) -> Lane<A> {
    Lane {
        projector: projector.clone(),
        snapshot_every,
        after_commit,
        signal: Some(signal.clone()),
    }
}
