use super::date_map::tests::{change, loaded_map, seat_id, snapshot_of};
use super::*;

#[test]
fn a_map_nobody_watches_is_forgotten_after_a_while() {
    let maps = SeatMaps::default();
    let map = loaded_map("FF");
    lock(&maps.maps).dates.insert(Uuid::nil(), map.clone());
    let receiver = map.subscribe(0, None).receiver;

    maps.sweep();
    assert_eq!(maps.watched(), (1, 1));
    drop(receiver);
    maps.sweep();
    assert_eq!(maps.watched(), (1, 0), "kept for a reconnect");
    lock(&map.state).unwatched_since = Some(Instant::now() - KEEP_UNWATCHED);
    maps.sweep();
    assert_eq!(maps.watched(), (0, 0));
}

#[test]
fn a_map_left_unloaded_by_a_cancelled_load_is_forgotten_and_one_being_loaded_kept() {
    let maps = SeatMaps::default();
    let (loading, _) = maps.join(Uuid::from_u128(1));
    // A listing cancelled mid-load drops its map unloaded.
    let (cancelled, _) = maps.join(Uuid::from_u128(2));
    drop(cancelled);

    maps.sweep();
    assert_eq!(maps.watched(), (1, 0), "only the map being loaded is kept");
    drop(loading);
    maps.sweep();
    assert_eq!(maps.watched(), (0, 0));
}

#[test]
fn an_own_commit_shows_at_once_and_its_copy_from_the_log_changes_nothing() {
    let maps = SeatMaps::default();
    let map = loaded_map("FFF");
    lock(&maps.maps).dates.insert(Uuid::nil(), map.clone());

    maps.committed(None, seat_id(2), 3, SeatStatus::Held);
    assert_eq!(map.free_seats(0, 10).len(), 2);
    // A snapshot names the log's position 7: the hold is not there yet
    // (it comes to the subscriber as a change of its own position).
    assert!(snapshot_of(map.subscribe(7, None)).contains(r#""seats":"FFF""#));
    // The log then brings an older change of that seat, and this one.
    map.apply(8, vec![change(2, 2, SeatStatus::Free)]);
    map.apply(9, vec![change(2, 3, SeatStatus::Held)]);

    let free: Vec<i32> = map.free_seats(0, 10).iter().map(|s| s.seat_no).collect();
    assert_eq!(free, vec![1, 3]);
    assert!(snapshot_of(map.subscribe(9, None)).contains(r#""seats":"FHF""#));
}

#[test]
fn a_map_joining_after_changes_were_handed_out_is_read_as_of_them() {
    let maps = SeatMaps::default();
    let date_id = Uuid::from_u128(7);
    assert_eq!(maps.join(date_id).1, None, "before the feed starts");
    maps.start_at(10);
    assert_eq!(maps.join(date_id).1, Some(10));
    lock(&maps.maps).dates.clear();

    // Handed out while the date was not among the maps: its first read
    // holds this change and is not put back before it.
    maps.apply(&[LogChange {
        position: 12,
        kind: ChangeKind::Seat {
            date_id,
            seat_id: seat_id(1),
            seat_no: 1,
            sequence: 1,
            status: SeatStatus::Held,
        },
    }]);

    assert_eq!(maps.join(date_id).1, Some(12));
}

#[test]
fn a_seat_is_looked_for_among_its_concert_s_dates_only() {
    let maps = SeatMaps::default();
    let map = loaded_map("FH");
    let date_id = Uuid::from_u128(3);
    {
        let mut registry = lock(&maps.maps);
        registry.dates.insert(date_id, map.clone());
        registry.file(date_id, *map.info.get().unwrap());
    }
    let taken = |seat_no, concert_id| maps.taken(seat_id(seat_no), concert_id);

    assert_eq!(taken(2, Uuid::nil()), Some(true));
    assert_eq!(taken(1, Uuid::nil()), Some(false));
    assert_eq!(
        taken(2, Uuid::from_u128(9)),
        None,
        "not a seat of that concert"
    );

    lock(&map.state).unwatched_since = Some(Instant::now() - KEEP_UNWATCHED);
    maps.sweep();
    assert!(
        lock(&maps.maps).by_concert.is_empty(),
        "a forgotten map leaves its concert"
    );
    assert_eq!(taken(2, Uuid::nil()), None);
}

#[test]
fn a_listing_keeps_a_map_nobody_watches() {
    let maps = SeatMaps::default();
    let map = loaded_map("FF");
    lock(&maps.maps).dates.insert(Uuid::nil(), map.clone());
    lock(&map.state).unwatched_since = Some(Instant::now() - KEEP_UNWATCHED);

    map.free_seats(0, 1);
    maps.sweep();

    assert_eq!(maps.watched(), (1, 0));
}
