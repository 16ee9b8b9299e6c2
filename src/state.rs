//! `AppState`: what every request handler and the scheduler share.

use std::sync::Arc;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, CqrsFramework};
use sqlx::PgPool;

use crate::aggregates::{Concert, QueueTicket, Seat, Wallet};
use crate::config::Config;
use crate::event_store::{Cqrs, ProjectingRepository, ProjectionError, Projector};
use crate::identity::UserTokens;
use crate::projections::{
    available_dates::AvailableDates, available_seats::AvailableSeats, balances::Balances,
    payments::Payments, queue_tickets::QueueTickets, reservations::Reservations,
};
use crate::tokens::TokenSigner;

/// Wallets keep a snapshot every this many events, so a long history loads fast.
const WALLET_SNAPSHOT_EVERY: usize = 100;

/// The command side (one cqrs framework per aggregate), the read side (the
/// pool the projections' tables are read through) and the settings.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub admin_token: Arc<str>,
    /// Queue tokens.
    pub tokens: TokenSigner,
    /// User tokens: who the caller is.
    pub users: UserTokens,
    pub concerts: Arc<Cqrs<Concert>>,
    pub seats: Arc<Cqrs<Seat>>,
    pub wallets: Arc<Cqrs<Wallet>>,
    pub tickets: Arc<Cqrs<QueueTicket>>,
    pub projectors: Arc<Projectors>,
    /// This instance's live feed: what the Server-Sent Event streams watch.
    pub live: crate::live::Feed,
    /// `serve --demo`: the booking page may mint tokens for new sample users.
    pub demo: bool,
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
    /// `catch_up` inside the caller's transaction.
    pub async fn catch_up_in(&self, tx: &mut sqlx::PgConnection) -> Result<u64, ProjectionError> {
        Ok(self.concerts.catch_up_in(tx).await?
            + self.wallets.catch_up_in(tx).await?
            + self.seats.catch_up_in(tx).await?
            + self.tickets.catch_up_in(tx).await?)
    }
}

impl AppState {
    /// Wires the frameworks and projectors onto one pool.
    pub fn new(
        pool: PgPool,
        config: Config,
        admin_token: String,
        tokens: TokenSigner,
        users: UserTokens,
    ) -> Self {
        let projectors = Projectors::new(&pool);
        Self {
            concerts: Arc::new(framework(&pool, &projectors.concerts, None)),
            seats: Arc::new(framework(&pool, &projectors.seats, None)),
            wallets: Arc::new(framework(
                &pool,
                &projectors.wallets,
                Some(WALLET_SNAPSHOT_EVERY),
            )),
            tickets: Arc::new(framework(&pool, &projectors.tickets, None)),
            projectors: Arc::new(projectors),
            live: crate::live::Feed::new(),
            demo: false,
            pool,
            config: Arc::new(config),
            admin_token: admin_token.into(),
            tokens,
            users,
        }
    }
}

/// cqrs-es for `A` on the event store, writing `projector`'s read models with
/// every append; with `snapshot_every`, a snapshot is kept every that many events.
fn framework<A: Aggregate<Services = ()> + 'static>(
    pool: &PgPool,
    projector: &Arc<Projector<A>>,
    snapshot_every: Option<usize>,
) -> Cqrs<A> {
    let repository = ProjectingRepository::new(pool.clone(), projector.clone());
    let store = match snapshot_every {
        Some(every) => PersistedEventStore::new_snapshot_store(repository, every),
        None => PersistedEventStore::new_event_store(repository),
    };
    CqrsFramework::new(store, vec![], ())
}
