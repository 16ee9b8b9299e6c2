//! A full disk, told apart from other start-up failures: PostgreSQL's own
//! message for it ("could not write ... No space left on device") sits deep in
//! its log, and an operator should read "the disk is full" first.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::error::{PrivatePostgresError, Result};

/// Least free space to start with: one WAL segment. Below it PostgreSQL could
/// not even finish crash recovery, so we say so before trying.
const MIN_FREE_BYTES: u64 = 16 * 1024 * 1024;

/// Bytes free for unprivileged users on the file system holding `path`.
pub(super) fn free_bytes(path: &Path) -> Option<u64> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<nix::libc::statvfs>::uninit();
    // SAFETY: a valid NUL-terminated path and a buffer of the right type;
    // statvfs fills it completely when it returns 0.
    let stat = unsafe {
        if nix::libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Refuses to start when the disk holding `data_dir` is (nearly) full.
pub(super) fn ensure_room(data_dir: &Path) -> Result<()> {
    match free_bytes(data_dir) {
        Some(free) if free < MIN_FREE_BYTES => Err(PrivatePostgresError::DiskFull {
            path: data_dir.to_path_buf(),
            free,
            detail: format!(
                "PostgreSQL needs at least {} MiB to start",
                MIN_FREE_BYTES / (1024 * 1024)
            ),
        }),
        _ => Ok(()),
    }
}

/// `error` as [`PrivatePostgresError::DiskFull`] when a full disk caused it.
pub(super) fn explain(error: PrivatePostgresError, data_dir: &Path) -> PrivatePostgresError {
    let text = error.to_string();
    if !text.contains("No space left on device") {
        return error;
    }
    let detail = text
        .lines()
        .find(|line| line.contains("No space left on device"))
        .unwrap_or_default()
        .trim()
        .to_string();
    PrivatePostgresError::DiskFull {
        path: data_dir.to_path_buf(),
        free: free_bytes(data_dir).unwrap_or(0),
        detail,
    }
}
