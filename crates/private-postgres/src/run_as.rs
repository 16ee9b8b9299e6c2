//! Whom initdb and postgres run as, and the folders and files they own.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User};

use super::error::{io_err, PrivatePostgresError, Result};

/// Whom initdb and postgres run as.
pub(super) struct RunAs {
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) name: String,
    /// Whether we are root and must switch to `uid`/`gid`.
    pub(super) switch: bool,
}

impl RunAs {
    pub(super) fn decide() -> Result<Self> {
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            let name = User::from_uid(euid)
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| euid.to_string());
            return Ok(RunAs {
                uid: euid,
                gid: nix::unistd::getegid(),
                name,
                switch: false,
            });
        }
        let user = ["postgres", "nobody"]
            .into_iter()
            .find_map(|name| User::from_name(name).ok().flatten())
            .filter(|u| !u.uid.is_root())
            .ok_or(PrivatePostgresError::NoUser)?;
        Ok(RunAs {
            uid: user.uid,
            gid: user.gid,
            name: user.name,
            switch: true,
        })
    }

    pub(super) fn apply(&self, cmd: &mut Command) {
        if self.switch {
            // std also drops root's supplementary groups (setgroups(0)).
            cmd.uid(self.uid.as_raw()).gid(self.gid.as_raw());
        }
    }

    pub(super) fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw())).map_err(
            io_err(format!("handing {} to user {}", path.display(), self.name)),
        )
    }

    /// Whether this user may enter a folder with this metadata.
    pub(super) fn can_enter(&self, meta: &fs::Metadata) -> bool {
        let mode = meta.mode();
        if meta.uid() == self.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == self.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    }
}

/// Creates the data folder (mode 0700 if new), returns its canonical path, and
/// when we are root, hands it to the server's user and checks that user can reach it.
pub(super) fn prepare_data_dir(data_dir: &Path, run_as: &RunAs) -> Result<PathBuf> {
    let abs = std::path::absolute(data_dir)
        .map_err(io_err(format!("resolving {}", data_dir.display())))?;
    if abs.exists() && !abs.is_dir() {
        let error = io::Error::new(io::ErrorKind::NotADirectory, "it is a file, not a folder");
        return Err(io_err(format!(
            "using {} as the data folder",
            abs.display()
        ))(error));
    }
    let existed = abs.is_dir();
    // The highest folder this call makes, taken away again when refused.
    let first_made = (!existed).then(|| highest_missing(&abs));
    if !existed {
        if let Some(parent) = abs.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(&abs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && abs.is_dir() => {}
            Err(e) => return Err(io_err(format!("creating {}", abs.display()))(e)),
        }
    }
    let dir = fs::canonicalize(&abs).map_err(io_err(format!("resolving {}", abs.display())))?;
    if run_as.switch {
        for ancestor in dir.ancestors().skip(1) {
            let meta = fs::metadata(ancestor)
                .map_err(io_err(format!("inspecting {}", ancestor.display())))?;
            if !run_as.can_enter(&meta) {
                if let Some(first_made) = &first_made {
                    remove_made(&abs, first_made);
                }
                return Err(PrivatePostgresError::Untraversable {
                    dir: ancestor.to_path_buf(),
                    mode: meta.mode() & 0o7777,
                    user: run_as.name.clone(),
                    data_dir: dir,
                });
            }
        }
        let inspect =
            || fs::metadata(&dir).map_err(io_err(format!("inspecting {}", dir.display())));
        let mut meta = inspect()?;
        if meta.uid() != run_as.uid.as_raw() {
            if existed {
                refuse_another_users(&dir, run_as)?;
            }
            run_as.chown(&dir)?;
            // Private to PostgreSQL's user, as a folder concert makes is:
            // root's at 0777 let anyone remove the server's socket or plant
            // files beside it; at 0000 the server could not start in it.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                .map_err(io_err(format!("making {} private", dir.display())))?;
            meta = inspect()?;
        }
        // PostgreSQL's user must enter it and write in it: without, its
        // start failed as "starting …/postgres: Permission denied".
        let mode = meta.mode() & 0o7777;
        if mode & 0o700 != 0o700 {
            return Err(PrivatePostgresError::WrongOwner {
                path: dir,
                owner: user_named(meta.uid()),
                mode,
                user: run_as.name.clone(),
            });
        }
    }
    Ok(dir)
}

/// The highest of `path` and its ancestors that does not exist yet.
fn highest_missing(path: &Path) -> PathBuf {
    path.ancestors()
        .take_while(|ancestor| !ancestor.exists())
        .last()
        .unwrap_or(path)
        .to_path_buf()
}

/// Removes the empty folders from `path` up to `first_made`, which this run
/// made: a refused data folder left them behind, and an operator who fixed
/// the parent's permissions found an empty folder of root's.
fn remove_made(path: &Path, first_made: &Path) {
    for made in path.ancestors() {
        if fs::remove_dir(made).is_err() || made == first_made {
            return;
        }
    }
}

/// Refuses to hand an existing folder (the data folder, its cluster) to the
/// server's user unless it is the invoking user's (root's) or already
/// that user's: a mistyped `CONCERT_DATA_DIR` naming another user's folder
/// was handed over without a word, and another user's empty `pgdata`
/// replaced by a new cluster. Root's own is handed over, whatever it holds
/// (the operator's log beside the store).
pub(super) fn refuse_another_users(path: &Path, run_as: &RunAs) -> Result<()> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    if meta.uid() == nix::unistd::geteuid().as_raw() || meta.uid() == run_as.uid.as_raw() {
        return Ok(());
    }
    let names: Vec<String> = fs::read_dir(path)
        .map_err(io_err(format!("listing {}", path.display())))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    Err(PrivatePostgresError::ForeignDataDir {
        path: path.to_path_buf(),
        owner: user_named(meta.uid()),
        holds: in_a_few_names(names),
        user: run_as.name.clone(),
    })
}

/// What a folder holds, said in a few of its names.
fn in_a_few_names(mut names: Vec<String>) -> String {
    const NAMED: usize = 3;
    names.sort_unstable();
    match names.len() {
        0 => "nothing yet".to_string(),
        count if count > NAMED => {
            format!("{}, and {} more", names[..NAMED].join(", "), count - NAMED)
        }
        _ => names.join(", "),
    }
}

/// Refuses a cluster folder the server's user cannot use: PostgreSQL wants
/// it owned by that user with mode 0700 or 0750, and otherwise fails with a
/// bare "Permission denied" (or never gets as far as its log).
pub(super) fn check_cluster_access(pgdata: &Path, run_as: &RunAs) -> Result<()> {
    let meta = fs::metadata(pgdata).map_err(io_err(format!("inspecting {}", pgdata.display())))?;
    let mode = meta.mode() & 0o7777;
    if meta.uid() != run_as.uid.as_raw() || !matches!(mode, 0o700 | 0o750) {
        return Err(PrivatePostgresError::WrongOwner {
            path: pgdata.to_path_buf(),
            owner: user_named(meta.uid()),
            mode,
            user: run_as.name.clone(),
        });
    }
    Ok(())
}

/// Hands `path` and everything under it to the server's user, if `path`
/// isn't theirs yet; the caller has refused another user's
/// (`refuse_another_users`), so it is root's (copied, or made by hand).
pub(super) fn chown_tree_if_foreign(path: &Path, run_as: &RunAs) -> Result<()> {
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    if meta.uid() != run_as.uid.as_raw() {
        tracing::info!(path = %path.display(), user = %run_as.name, "handing the cluster to the server's user");
        chown_tree(path, run_as)?;
    }
    Ok(())
}

pub(super) fn chown_tree(path: &Path, run_as: &RunAs) -> Result<()> {
    run_as.chown(path)?;
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    if meta.is_dir() {
        let entries = fs::read_dir(path).map_err(io_err(format!("listing {}", path.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("listing {}", path.display())))?;
            chown_tree(&entry.path(), run_as)?;
        }
    }
    Ok(())
}

pub(super) fn open_log(path: &Path, run_as: &RunAs) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    if run_as.switch {
        run_as.chown(path)?;
    }
    Ok(file)
}

/// `name (uid N)`, or `uid N` for a uid without a user.
fn user_named(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// Gives `path` to user `nobody`, as another user's folder; returns them.
#[cfg(test)]
pub(super) fn hand_to_nobody(path: &Path) -> User {
    let nobody = User::from_name("nobody")
        .ok()
        .flatten()
        .expect("user nobody");
    std::os::unix::fs::chown(path, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw())).unwrap();
    nobody
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file where the folder should be was "creating …: File exists".
    #[test]
    fn a_file_given_as_the_data_folder_is_called_a_file() {
        let file =
            std::env::temp_dir().join(format!("concert-not-a-folder-{}", std::process::id()));
        fs::write(&file, b"").unwrap();
        let me = RunAs {
            uid: nix::unistd::geteuid(),
            gid: nix::unistd::getegid(),
            name: String::new(),
            switch: false,
        };
        let error = prepare_data_dir(&file, &me).unwrap_err().to_string();
        fs::remove_file(&file).unwrap();
        assert!(error.contains("it is a file, not a folder"), "{error}");
    }

    #[test]
    fn a_folder_is_told_by_a_few_of_its_names() {
        let names = |list: &[&str]| list.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(in_a_few_names(vec![]), "nothing yet");
        assert_eq!(in_a_few_names(names(&["notes.txt"])), "notes.txt");
        assert_eq!(in_a_few_names(names(&["b", "a"])), "a, b");
        assert_eq!(
            in_a_few_names(names(&["d", "c", "b", "a", "e"])),
            "a, b, c, and 2 more"
        );
    }

    /// As root: a mistyped data folder naming another user's folder was
    /// handed to PostgreSQL's user, files and all, with an INFO line.
    #[test]
    fn another_user_s_folder_is_refused_and_left_as_it_was() {
        let Ok(run_as) = RunAs::decide() else { return };
        if !run_as.switch {
            return; // not root: nothing is handed over
        }
        let dir = std::env::temp_dir().join(format!("concert-foreign-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        let nobody = hand_to_nobody(&dir);

        let error = prepare_data_dir(&dir, &run_as).unwrap_err().to_string();

        let owner = fs::metadata(&dir).unwrap().uid();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            error.contains("belongs to nobody") && error.contains("notes.txt"),
            "{error}"
        );
        assert_eq!(owner, nobody.uid.as_raw(), "the folder changed hands");
    }

    /// Root's folder is made private as it is handed over: at 0777 anyone
    /// could remove the server's socket; at 0000 the server failed to start
    /// as "starting …/postgres: Permission denied".
    #[test]
    fn root_s_folder_is_handed_over_private() {
        let Ok(run_as) = RunAs::decide() else { return };
        if !run_as.switch {
            return;
        }
        for mode in [0o777, 0o000] {
            let dir =
                std::env::temp_dir().join(format!("concert-loose-{}-{mode:o}", std::process::id()));
            fs::create_dir_all(dir.join("pgdata")).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();

            let prepared = prepare_data_dir(&dir, &run_as);

            let meta = fs::metadata(&dir).unwrap();
            fs::remove_dir_all(&dir).unwrap();
            prepared.unwrap();
            assert_eq!(
                (meta.uid(), meta.mode() & 0o7777),
                (run_as.uid.as_raw(), 0o700),
                "from mode {mode:o}"
            );
        }
    }

    /// A data folder refused for a parent PostgreSQL's user may not enter
    /// is not left behind, nor the folders made on the way to it.
    #[test]
    fn a_refused_data_folder_leaves_no_folder_behind() {
        let Ok(run_as) = RunAs::decide() else { return };
        if !run_as.switch {
            return;
        }
        let shut = std::env::temp_dir().join(format!("concert-shut-parent-{}", std::process::id()));
        fs::create_dir_all(&shut).unwrap();
        fs::set_permissions(&shut, fs::Permissions::from_mode(0o700)).unwrap();

        let error = prepare_data_dir(&shut.join("made/data"), &run_as)
            .unwrap_err()
            .to_string();

        let left: Vec<_> = fs::read_dir(&shut).unwrap().flatten().collect();
        fs::remove_dir_all(&shut).unwrap();
        assert!(error.contains("cannot enter"), "{error}");
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// A folder already PostgreSQL's user's that it may not enter is named
    /// with its owner and mode.
    #[test]
    fn a_data_folder_its_user_may_not_enter_is_named_with_its_mode() {
        let Ok(run_as) = RunAs::decide() else { return };
        if !run_as.switch {
            return;
        }
        let dir = std::env::temp_dir().join(format!("concert-shut-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        run_as.chown(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();

        let error = prepare_data_dir(&dir, &run_as).unwrap_err().to_string();

        fs::remove_dir_all(&dir).unwrap();
        assert!(
            error.contains(&format!("belongs to {}", run_as.name)),
            "{error}"
        );
        assert!(error.contains("with permissions 000"), "{error}");
    }

    /// Another user's cluster folder is named with its owner, unchanged:
    /// it was handed over first, and then refused as PostgreSQL's user's.
    #[test]
    fn another_user_s_cluster_is_refused_with_its_owner_named() {
        let Ok(run_as) = RunAs::decide() else { return };
        if !run_as.switch {
            return;
        }
        let pgdata =
            std::env::temp_dir().join(format!("concert-foreign-pgdata-{}", std::process::id()));
        fs::create_dir_all(&pgdata).unwrap();
        let nobody = hand_to_nobody(&pgdata);

        let error = refuse_another_users(&pgdata, &run_as)
            .unwrap_err()
            .to_string();

        let owner = fs::metadata(&pgdata).unwrap().uid();
        fs::remove_dir_all(&pgdata).unwrap();
        assert!(error.contains("belongs to nobody"), "{error}");
        assert_eq!(owner, nobody.uid.as_raw(), "the cluster changed hands");
    }
}
