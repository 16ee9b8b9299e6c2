//! How many connections the process can hold open: each is a file
//! descriptor, and a process out of them can accept none (every client then
//! hangs, not only the one that took them all).

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Descriptors kept for everything but client connections: the database
/// pool, the listener, logs, the JWKS file, a backup's pipes.
const KEPT_FOR_THE_REST: u64 = 256;

/// The most client connections to serve at once: `wanted`, or fewer when
/// the open-files limit (raised to its hard limit first) leaves less room.
pub fn most_connections(wanted: u32, database_connections: u32) -> u32 {
    let soft = raise_open_files_limit();
    let room = soft.saturating_sub(KEPT_FOR_THE_REST + u64::from(database_connections));
    let most = u64::from(wanted).min(room).max(1);
    if most < u64::from(wanted) {
        tracing::warn!(
            wanted,
            most,
            open_files_limit = soft,
            "CONCERT_MAX_CONNECTIONS is above what the open-files limit allows; serving at most this many (raise `ulimit -n`)"
        );
    }
    most as u32
}

/// Raises the soft open-files limit to the hard one, as servers do (the
/// soft default, often 1,024, is for interactive programs); returns it.
fn raise_open_files_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_the_rest_of_the_process() {
        let most = most_connections(u32::MAX, 16);
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert!(u64::from(most) + KEPT_FOR_THE_REST + 16 <= soft.max(KEPT_FOR_THE_REST + 17));
        assert_eq!(most_connections(3, 16), 3);
    }
}
