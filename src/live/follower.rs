//! The feed's task: wait for a commit anywhere (a NOTIFY on a dedicated
//! connection, or a short fallback timer for a notification lost while the
//! listener reconnected), position what is new, have it back from that
//! statement (reading only what others positioned) and publish it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use super::{changes, Feed};
use crate::event_log;
use crate::event_store::COMMITS_CHANNEL;
use crate::projections::queue_entries::LINES_CHANNEL;

/// Longest wait between two reads when no notification comes.
const FALLBACK: Duration = Duration::from_secs(1);
/// Least time between two reads: commits arriving meanwhile are read
/// together, so the feed's cost to the database stays bounded under load
/// (at most 40 reads a second per instance) for at most this much latency.
const SETTLE: Duration = Duration::from_millis(25);
/// How long one catch-up may take before it is given up and begun again
/// (what it published stays published: `position` moves only past that).
/// Reached only when the database stops answering on a connection without
/// closing it; the feed, and the sweeps of memory nobody holds, would
/// otherwise stop for good.
const READ_DEADLINE: Duration = Duration::from_secs(60);
/// Most events read per query.
const READ_BATCH: i64 = 5_000;
/// How often the watches and maps nobody holds are looked for: each look
/// visits every one, and after every read it made each hold and payment
/// wait behind it once 15,000 dates' maps were held.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Follows the log into `feed` until `shutdown` turns true, then closes the
/// feed so every live stream ends.
pub async fn follow(pool: PgPool, feed: Feed, mut shutdown: watch::Receiver<bool>) {
    let woken = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(pool.clone(), woken.clone(), feed.clone()));
    // Streams start from the read models, so the feed starts at the log's end;
    // nothing is in memory yet, so it is current from then on.
    let began = Instant::now();
    let mut after = loop {
        match event_log::last_position(&pool).await {
            Ok(position) => break Some(position),
            Err(error) => tracing::warn!(%error, "live feed: reading the log's end failed"),
        }
        tokio::select! {
            _ = shutdown.wait_for(|stopped| *stopped) => break None,
            _ = tokio::time::sleep(FALLBACK) => {}
        }
    };
    if let Some(start) = after {
        feed.start_at(start);
        feed.caught_up(began);
    }
    let mut swept = Instant::now();
    while let Some(position) = after.as_mut() {
        tokio::select! {
            _ = shutdown.wait_for(|stopped| *stopped) => break,
            _ = woken.notified() => {}
            _ = tokio::time::sleep(FALLBACK) => {}
        }
        let reading = Instant::now();
        let read = tokio::select! {
            read = tokio::time::timeout(READ_DEADLINE, catch_up(&pool, &feed, position)) => read,
            _ = shutdown.wait_for(|stopped| *stopped) => break,
        };
        match read {
            Ok(Ok(())) => metrics::histogram!("concert_live_feed_read_seconds")
                .record(reading.elapsed().as_secs_f64()),
            Ok(Err(error)) => tracing::warn!(%error, "live feed: reading new events failed"),
            Err(_) => tracing::warn!(
                deadline_secs = READ_DEADLINE.as_secs(),
                "live feed: a read given up at its deadline"
            ),
        }
        if swept.elapsed() >= SWEEP_EVERY {
            feed.standings().sweep();
            feed.seat_maps().sweep();
            let (_, subscribers) = feed.seat_maps().watched();
            metrics::gauge!("concert_live_seat_subscribers").set(subscribers as f64);
            swept = Instant::now();
        }
        tokio::time::sleep(SETTLE).await;
    }
    listener.abort();
    feed.close();
    tracing::info!("live feed stopped");
}

/// Positions committed events and publishes every one after `position`.
/// What this instance positions comes back from the positioning statement
/// itself; only what other instances positioned is read from the log.
async fn catch_up(pool: &PgPool, feed: &Feed, position: &mut i64) -> sqlx::Result<()> {
    // Every event committed before this moment is positioned below, and read.
    let began = Instant::now();
    loop {
        let positioned = changes::position_and_read(pool).await?;
        // Everything below the first one positioned here was positioned by
        // another instance (or by an earlier statement of this one). With
        // nothing positioned here, the log's end says whether others did: an
        // index probe, where an open-ended read was planned as a parallel
        // scan (12 ms, most often to find nothing).
        let others_upto = match positioned.first() {
            Some(first) => first.position - 1,
            None => event_log::last_position(pool).await?,
        };
        read_upto(pool, feed, position, others_upto).await?;
        if let Some(last) = positioned.last() {
            *position = last.position;
            feed.publish(&positioned);
        }
        if (positioned.len() as i64) < event_log::POSITION_BATCH {
            feed.caught_up(began);
            return Ok(());
        }
    }
}

/// Reads and publishes the positioned events after `position` and up to `upto`.
async fn read_upto(pool: &PgPool, feed: &Feed, position: &mut i64, upto: i64) -> sqlx::Result<()> {
    while *position < upto {
        let read = changes::read(pool, *position, upto, READ_BATCH).await?;
        if let Some(last) = read.last() {
            *position = last.position;
            feed.publish(&read);
        }
        if (read.len() as i64) < READ_BATCH {
            return Ok(());
        }
    }
    Ok(())
}

/// Wakes the follower on each notification of commits, and has the
/// standing streams of a concert whose line moved without an event read it
/// again; reconnects (after a pause) when the connection is lost, or when
/// after [`LISTENER_SILENCE`] it does not answer within [`LISTENER_ANSWER`].
/// Runs until aborted.
async fn listen(pool: PgPool, woken: Arc<Notify>, feed: Feed) {
    loop {
        // A pool of its own: a listener given up on a path that stopped
        // answering is dropped with its UNLISTEN still waiting for an
        // answer, and would hold one of the shared pool's places for good.
        let own = pool
            .options()
            .clone()
            .max_connections(1)
            .connect_lazy_with((*pool.connect_options()).clone());
        match PgListener::connect_with(&own).await {
            Ok(mut listener) => {
                if let Err(error) = listener.listen_all([COMMITS_CHANNEL, LINES_CHANNEL]).await {
                    tracing::warn!(%error, "live feed: LISTEN failed");
                } else {
                    // A reconnect may have missed notifications: read anyway.
                    woken.notify_one();
                    let missed = feed.clone();
                    tokio::spawn(async move { missed.standings().every_line_changed().await });
                    hear(&mut listener, &woken, &feed).await;
                }
            }
            Err(error) => tracing::warn!(%error, "live feed: cannot connect the listener"),
        }
        tokio::time::sleep(FALLBACK).await;
    }
}

/// How long the listener may hear nothing before it asks its connection
/// whether it still answers: a network path that stops answering without
/// closing leaves it waiting for good, deaf to every commit and line move.
const LISTENER_SILENCE: Duration = Duration::from_secs(10);
/// How long that question may go unanswered before the listener reconnects.
const LISTENER_ANSWER: Duration = Duration::from_secs(5);

/// Passes on the notifications `listener` hears until its connection is
/// lost or stops answering.
async fn hear(listener: &mut PgListener, woken: &Notify, feed: &Feed) {
    loop {
        let heard = match tokio::time::timeout(LISTENER_SILENCE, listener.recv()).await {
            Ok(heard) => heard,
            Err(_) => {
                let asked = sqlx::query("select 1").execute(&mut *listener);
                match tokio::time::timeout(LISTENER_ANSWER, asked).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(error)) => tracing::warn!(%error, "live feed: listener connection lost"),
                    Err(_) => tracing::warn!("live feed: listener connection stopped answering"),
                }
                return;
            }
        };
        match heard {
            Ok(note) if note.channel() == LINES_CHANNEL => {
                // Not waited on: it waits for a read of the line under way.
                if let Ok(concert_id) = note.payload().parse() {
                    let feed = feed.clone();
                    tokio::spawn(async move {
                        feed.standings().line_changed(concert_id).await;
                    });
                }
            }
            Ok(_) => woken.notify_one(),
            Err(error) => {
                tracing::warn!(%error, "live feed: listener connection lost");
                return;
            }
        }
    }
}
