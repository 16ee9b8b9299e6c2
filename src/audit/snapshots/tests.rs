use super::*;
use crate::audit::fixtures::{logged, rules};
use crate::ids::ChargeId;
use crate::money::Won;
use cqrs_es::DomainEvent;

#[test]
fn a_snapshot_the_service_took_after_a_hundred_charges_has_no_violation() {
    let charges = charges(101);
    let snapshot = wallet_payload(&charges[..100]);

    let (folded, found) = run(vec![wallet_snapshot("w", 100, &snapshot)], charges);

    assert!(found.is_empty(), "{found:?}");
    // Compared, the wallet's fold is dropped.
    assert!(folded.is_empty(), "{folded:?}");
}

#[test]
fn a_snapshot_with_another_balance_is_named_with_its_stream_and_event() {
    let charges = charges(3);
    let mut snapshot: Value = serde_json::from_str(&wallet_payload(&charges[..2])).unwrap();
    snapshot["balance"] = 0.into();

    let (_, found) = run(
        vec![wallet_snapshot("w", 2, &snapshot.to_string())],
        charges,
    );

    assert_eq!(rules(&found), [RULE]);
    assert_eq!(found[0].events, ["Wallet/w", "#2 Wallet/w seq 2 Charged"]);
    assert_eq!(
        found[0].detail,
        "the snapshot at sequence 2: balance differ from the wallet its events fold to"
    );
}

#[test]
fn a_snapshot_whose_payload_does_not_parse_is_named() {
    let (_, found) = run(
        vec![wallet_snapshot("w", 1, "{\"balance\": 1e400}")],
        charges(1),
    );

    assert_eq!(rules(&found), [RULE]);
    assert!(
        found[0].detail.contains("its payload does not parse"),
        "{}",
        found[0].detail
    );
}

/// Snapshots taken before the wallet kept its recent charges' amounts list
/// only their ids. The service cannot read them and folds such a wallet
/// from its events, so an upgraded store passes (it was named as forged).
#[test]
fn a_snapshot_the_service_cannot_read_as_a_wallet_is_passed_over_as_it_is() {
    let charges = charges(3);
    let mut snapshot: Value = serde_json::from_str(&wallet_payload(&charges[..2])).unwrap();
    snapshot["recent_charges"] = serde_json::json!([
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002"
    ]);
    assert!(serde_json::from_value::<Wallet>(snapshot.clone()).is_err());

    let (_, found) = run(
        vec![wallet_snapshot("w", 2, &snapshot.to_string())],
        charges,
    );

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_snapshot_past_the_end_of_its_stream_is_named_at_the_end() {
    let charges = charges(2);
    let snapshot = wallet_payload(&charges);

    let (_, found) = run(vec![wallet_snapshot("w", 3, &snapshot)], charges);

    assert_eq!(rules(&found), [RULE]);
    assert_eq!(found[0].events, ["Wallet/w"]);
    assert_eq!(
        found[0].detail,
        "a snapshot at sequence 3, past the stream's last event"
    );
}

#[test]
fn a_snapshot_of_a_seat_is_named_by_its_stream() {
    let seat = StoredSnapshot {
        aggregate_type: "Seat".to_string(),
        aggregate_id: "s".to_string(),
        last_sequence: 1,
        payload: "{}".to_string(),
    };

    let (_, found) = run(vec![seat], Vec::new());

    assert_eq!(rules(&found), [RULE]);
    assert_eq!(found[0].events, ["Seat/s"]);
}

#[test]
fn a_wallet_without_a_snapshot_is_not_folded() {
    let (folded, found) = run(vec![wallet_snapshot("other", 5, "{}")], charges(3));

    assert_eq!(folded, ["other"]);
    assert_eq!(rules(&found), [RULE]);
    assert_eq!(found[0].events, ["Wallet/other"]);
}

/// Feeds `events` to wallet `w`, one position each, then ends the log;
/// answers the wallets still folded at the end too.
fn run(snapshots: Vec<StoredSnapshot>, events: Vec<WalletEvent>) -> (Vec<String>, Vec<Violation>) {
    let mut check = SnapshotCheck::of(snapshots);
    let mut found = Vec::new();
    for (position, event) in (1..).zip(events) {
        let row = logged(position, "Wallet/w", &event.event_type());
        check.apply(&row, &event, &mut found);
    }
    let folded = check.wallets.keys().cloned().collect();
    check.finish(&mut found);
    (folded, found)
}

fn wallet_snapshot(id: &str, last_sequence: i64, payload: &str) -> StoredSnapshot {
    StoredSnapshot {
        aggregate_type: "Wallet".to_string(),
        aggregate_id: id.to_string(),
        last_sequence,
        payload: payload.to_string(),
    }
}

/// The payload the service stores for the wallet after `events`.
fn wallet_payload(events: &[WalletEvent]) -> String {
    let mut wallet = Wallet::default();
    for event in events {
        wallet.apply(event.clone());
    }
    serde_json::to_string(&wallet).unwrap()
}

/// `count` charges of 10 won, each with its own id.
fn charges(count: u128) -> Vec<WalletEvent> {
    (1..=count)
        .map(|n| WalletEvent::Charged {
            charge_id: ChargeId(uuid::Uuid::from_u128(n)),
            amount: Won(10),
            balance: Won(10 * n as i64),
        })
        .collect()
}
