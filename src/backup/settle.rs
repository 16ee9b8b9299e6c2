//! Payments a copy caught half-way: the snapshot may hold a payment debited
//! from its wallet whose seat was not sold yet (a payment is several
//! commands). In the live store the scheduler's payment recovery finishes or
//! refunds it; in a restored copy no process is paying any more, so the
//! restore runs that same recovery at once, and the copy passes the audit.

use sqlx::PgPool;

use super::BackupError;
use crate::booking::payment;
use crate::commands::CommandContext;
use crate::config::Config;
use crate::projections::payments;

/// Most unfinished payments read at once.
const BATCH: i64 = 1000;

/// Finishes (sells the seat) or refunds every payment the copy holds
/// debited but unfinished; returns how many.
pub(super) async fn settle_payments(pool: PgPool, config: &Config) -> Result<usize, BackupError> {
    let mut config = config.clone();
    // Not serving: no admin token to generate and announce (nor one short
    // enough to warn of).
    config
        .admin_token
        .get_or_insert_with(|| hex::encode(rand::random::<[u8; 24]>()));
    let app = crate::server::prepare(pool, config)
        .await
        .map_err(|e| BackupError::Settle(e.to_string()))?;
    let context = CommandContext::scheduler();
    let mut settled = 0;
    loop {
        let unfinished =
            payments::unfinished_payments(&app.pool, crate::clock::now(), BATCH).await?;
        if unfinished.is_empty() {
            break;
        }
        for half_done in &unfinished {
            payment::finish(&app, half_done, &context)
                .await
                .map_err(|e| BackupError::Settle(e.to_string()))?;
            settled += 1;
        }
    }
    crate::event_log::assign_positions(&app.pool).await?;
    Ok(settled)
}
