//! Micro-benchmarks of the pure parts of a command: aggregate `handle` (which
//! also applies the new events, through cqrs-es's `EventSink`), rebuilding an
//! aggregate from its history, event (de)serialisation as postgres-es does it
//! (through `serde_json::Value`), and queue-token signing. No database.
//!
//! `cargo bench --bench aggregates` (about a minute); each bench is short
//! (20 samples, 1 s) because these costs are microseconds against the
//! milliseconds of a database round trip.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use concert::aggregates::{
    ExpiryReason, QueueTicket, QueueTicketCommand, QueueTicketEvent, Seat, SeatCommand, SeatEvent,
    Wallet, WalletCommand, WalletEvent,
};
use concert::ids::{
    ChargeId, ConcertId, DateId, PaymentId, ReservationId, SeatId, TicketId, UserId,
};
use concert::money::Won;
use concert::tokens::TokenSigner;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use futures::executor::block_on;

/// Decides `command` on `aggregate` as cqrs-es does: `handle` writes the new
/// events into a sink, which applies each to the aggregate.
fn decide<A: Aggregate<Services = ()>>(
    aggregate: &mut A,
    command: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    block_on(async {
        let sink = EventSink::default();
        aggregate.handle(command, &(), &sink).await?;
        Ok(sink.collect().await)
    })
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

fn hold(reservation_id: ReservationId) -> SeatCommand {
    SeatCommand::HoldSeat {
        reservation_id,
        user_id: UserId::new(),
        date_id: DateId::new(),
        seat_no: 1234,
        price: Won(150_000),
        now: at(0),
        until: at(300),
    }
}

fn held(reservation_id: ReservationId) -> SeatEvent {
    SeatEvent::SeatHeld {
        reservation_id,
        user_id: UserId::new(),
        date_id: DateId::new(),
        seat_no: 1234,
        price: Won(150_000),
        held_at: at(0),
        until: at(300),
    }
}

fn charged(amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::Charged {
        charge_id: ChargeId::new(),
        amount: Won(amount),
        balance: Won(balance),
    }
}

fn paid(balance: i64) -> WalletEvent {
    WalletEvent::Paid {
        payment_id: PaymentId::new(),
        reservation_id: ReservationId::new(),
        seat_id: SeatId::new(),
        amount: Won(100),
        balance: Won(balance),
        paid_at: at(0),
    }
}

fn seat(c: &mut Criterion) {
    let mut group = c.benchmark_group("seat");
    group.bench_function("hold a free seat", |b| {
        b.iter_batched(
            || (Seat::default(), hold(ReservationId::new())),
            |(mut seat, command)| decide(&mut seat, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("hold a held seat (refused)", |b| {
        b.iter_batched(
            || {
                let mut seat = Seat::default();
                seat.apply(held(ReservationId::new()));
                (seat, hold(ReservationId::new()))
            },
            |(mut seat, command)| decide(&mut seat, command).unwrap_err(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("confirm a held seat", |b| {
        b.iter_batched(
            || {
                let reservation_id = ReservationId::new();
                let mut seat = Seat::default();
                seat.apply(held(reservation_id));
                let command = SeatCommand::ConfirmSeat {
                    reservation_id,
                    payment_id: PaymentId::new(),
                    ticket_id: Some(TicketId::new()),
                    now: at(10),
                };
                (seat, command)
            },
            |(mut seat, command)| decide(&mut seat, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // A seat's history stays short by design (hold, then sold or expired), but
    // a seat held and expired many times replays every event.
    let history: Vec<SeatEvent> = (0..10_000)
        .map(|i| {
            let r = ReservationId::new();
            if i % 2 == 0 {
                held(r)
            } else {
                SeatEvent::HoldExpired {
                    reservation_id: r,
                    expired_at: at(300),
                }
            }
        })
        .collect();
    group.bench_function("rebuild from 10,000 events", |b| {
        b.iter_batched(
            || history.clone(),
            |events| {
                let mut seat = Seat::default();
                for event in events {
                    seat.apply(event);
                }
                seat
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn wallet(c: &mut Criterion) {
    let mut group = c.benchmark_group("wallet");
    group.bench_function("charge an empty wallet", |b| {
        b.iter_batched(
            || {
                (
                    Wallet::default(),
                    WalletCommand::Charge {
                        charge_id: ChargeId::new(),
                        amount: Won(100_000),
                    },
                )
            },
            |(mut wallet, command)| decide(&mut wallet, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // The wallet remembers its last 1,000 charge ids to recognise retries: a
    // charge scans them.
    let mut remembering = Wallet::default();
    for i in 1..=1_000 {
        remembering.apply(charged(1, i));
    }
    let remembering_json = serde_json::to_value(&remembering).unwrap();
    group.bench_function("charge a wallet remembering 1,000 charges", |b| {
        b.iter_batched(
            || {
                (
                    serde_json::from_value::<Wallet>(remembering_json.clone()).unwrap(),
                    WalletCommand::Charge {
                        charge_id: ChargeId::new(),
                        amount: Won(100_000),
                    },
                )
            },
            |(mut wallet, command)| decide(&mut wallet, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("pay from a funded wallet", |b| {
        b.iter_batched(
            || {
                let mut wallet = Wallet::default();
                wallet.apply(charged(200_000, 200_000));
                let command = WalletCommand::Pay {
                    payment_id: PaymentId::new(),
                    reservation_id: ReservationId::new(),
                    seat_id: SeatId::new(),
                    amount: Won(150_000),
                    now: at(0),
                };
                (wallet, command)
            },
            |(mut wallet, command)| decide(&mut wallet, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // Paying scans every earlier payment for the same reservation.
    let mut busy = Wallet::default();
    busy.apply(charged(1_000_000_000, 1_000_000_000));
    for i in 0..1_000 {
        busy.apply(paid(1_000_000_000 - 100 * (i + 1)));
    }
    let busy_json = serde_json::to_value(&busy).unwrap();
    group.bench_function("pay from a wallet with 1,000 payments", |b| {
        b.iter_batched(
            || {
                let wallet = serde_json::from_value::<Wallet>(busy_json.clone()).unwrap();
                let command = WalletCommand::Pay {
                    payment_id: PaymentId::new(),
                    reservation_id: ReservationId::new(),
                    seat_id: SeatId::new(),
                    amount: Won(100),
                    now: at(0),
                };
                (wallet, command)
            },
            |(mut wallet, command)| decide(&mut wallet, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let history: Vec<WalletEvent> = (1..=10_000).map(|i| charged(1, i)).collect();
    group.bench_function("rebuild from 10,000 events", |b| {
        b.iter_batched(
            || history.clone(),
            |events| {
                let mut wallet = Wallet::default();
                for event in events {
                    wallet.apply(event);
                }
                wallet
            },
            BatchSize::LargeInput,
        )
    });
    // What postgres-es stores every 100 wallet events and loads instead of the history.
    group.bench_function("snapshot round trip, 1,000 remembered charges", |b| {
        b.iter(|| {
            let value = serde_json::to_value(black_box(&remembering)).unwrap();
            serde_json::from_value::<Wallet>(value).unwrap()
        })
    });
    group.bench_function("snapshot round trip, 1,000 payments", |b| {
        b.iter(|| {
            let value = serde_json::to_value(black_box(&busy)).unwrap();
            serde_json::from_value::<Wallet>(value).unwrap()
        })
    });
    group.finish();
}

fn queue_ticket(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue ticket");
    group.bench_function("enter", |b| {
        b.iter_batched(
            || {
                (
                    QueueTicket::default(),
                    QueueTicketCommand::EnterQueue {
                        concert_id: ConcertId::new(),
                        user_id: UserId::new(),
                        entry_no: 42,
                        now: at(0),
                    },
                )
            },
            |(mut ticket, command)| decide(&mut ticket, command).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("admit, then expire as paid", |b| {
        b.iter_batched(
            || {
                let mut ticket = QueueTicket::default();
                ticket.apply(QueueTicketEvent::QueueEntered {
                    concert_id: ConcertId::new(),
                    user_id: UserId::new(),
                    entry_no: 42,
                    entered_at: at(0),
                });
                ticket
            },
            |mut ticket| {
                decide(
                    &mut ticket,
                    QueueTicketCommand::Admit {
                        now: at(1),
                        until: at(601),
                    },
                )
                .unwrap();
                decide(
                    &mut ticket,
                    QueueTicketCommand::Expire {
                        reason: ExpiryReason::Paid,
                        now: at(2),
                    },
                )
                .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn serialisation(c: &mut Criterion) {
    let mut group = c.benchmark_group("event serde");
    let seat_held = held(ReservationId::new());
    let seat_json = serde_json::to_value(&seat_held).unwrap();
    let wallet_paid = paid(50_000);
    let wallet_json = serde_json::to_value(&wallet_paid).unwrap();
    let seat_text = seat_json.to_string();
    // postgres-es: event -> serde_json::Value -> JSON text sent to PostgreSQL.
    group.bench_function("SeatHeld to JSON text (via Value)", |b| {
        b.iter(|| {
            serde_json::to_value(black_box(&seat_held))
                .unwrap()
                .to_string()
        })
    });
    // postgres-es: JSON text -> serde_json::Value (sqlx) -> event.
    group.bench_function("SeatHeld from JSON text (via Value)", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_str(black_box(&seat_text)).unwrap();
            serde_json::from_value::<SeatEvent>(value).unwrap()
        })
    });
    group.bench_function("SeatHeld to JSON text (direct)", |b| {
        b.iter(|| serde_json::to_string(black_box(&seat_held)).unwrap())
    });
    group.bench_function("SeatHeld from JSON text (direct)", |b| {
        b.iter(|| serde_json::from_str::<SeatEvent>(black_box(&seat_text)).unwrap())
    });
    group.bench_function("Paid to Value", |b| {
        b.iter(|| serde_json::to_value(black_box(&wallet_paid)).unwrap())
    });
    group.bench_function("Paid from Value", |b| {
        b.iter(|| serde_json::from_value::<WalletEvent>(black_box(wallet_json.clone())).unwrap())
    });
    group.finish();
}

fn tokens(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue token");
    let signer = TokenSigner::new(vec![7; 32]);
    let ticket = TicketId::new();
    let token = signer.issue(ticket);
    group.bench_function("issue", |b| b.iter(|| signer.issue(black_box(ticket))));
    group.bench_function("verify", |b| b.iter(|| signer.verify(black_box(&token))));
    group.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = quick();
    targets = seat, wallet, queue_ticket, serialisation, tokens
}
criterion_main!(benches);
