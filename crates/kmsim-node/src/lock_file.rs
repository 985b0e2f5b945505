//! Waiting for another process to let go of a file's fcntl lock.
//!
//! RocksDB locks `<dir>/LOCK` with `fcntl(F_SETLK)` when it opens a database and fails at once
//! if another process holds it. A node restarted right after a SIGKILL can find its previous
//! process still exiting (threads in the middle of I/O hold the process's files, and so the
//! lock, until the last one is gone), so before opening its store a node waits, bounded, for
//! the lock to be free, and otherwise fails naming the file and the holder.
//!
//! Caution: POSIX record locks belong to a process, and closing *any* descriptor of a file
//! drops every lock the process holds on it. The check opens and closes the file, so it must
//! run before this process takes the lock (before the store is opened), never after.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

/// How often a waiting node looks at the lock again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockWaitError {
    /// Another process still held the lock when the wait ended.
    #[error("{} is still locked by {} after waiting {waited:?}; is another node running on this data directory?", path.display(), holder_name(*holder))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid (`None` for a lock that names no process: an open file
        /// description lock).
        holder: Option<u32>,
        /// How long we waited.
        waited: Duration,
    },
    /// The lock could not be examined.
    #[error("cannot examine the lock on {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn holder_name(holder: Option<u32>) -> String {
    match holder {
        Some(pid) => format!("process {pid}"),
        None => "another open file description (pid unknown)".to_string(),
    }
}

/// Who holds a lock on `path` that would keep this process from write-locking it: `Ok(None)`
/// when nobody does (or the file does not exist), else `Some(holder)` with the holder's pid when
/// the lock names one.
pub fn lock_holder(path: &Path) -> Result<Option<Option<u32>>, std::io::Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The question F_GETLK answers: could we write-lock the whole file now?
    let mut query = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file.as_raw_fd(), FcntlArg::F_GETLK(&mut query)).map_err(std::io::Error::from)?;
    if query.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(None);
    }
    // An open file description lock reports pid -1.
    Ok(Some(u32::try_from(query.l_pid).ok().filter(|p| *p > 0)))
}

/// Waits until no other process holds a lock on `path` (polling every `poll`), for at most
/// `wait`. Returns at once when the file is free or does not exist.
pub fn wait_for_lock(path: &Path, wait: Duration, poll: Duration) -> Result<(), LockWaitError> {
    let start = Instant::now();
    let mut logged = false;
    loop {
        let holder = lock_holder(path).map_err(|source| LockWaitError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let Some(holder) = holder else {
            if logged {
                tracing::info!(path = %path.display(), waited_ms = start.elapsed().as_millis() as u64, "lock released");
            }
            return Ok(());
        };
        let waited = start.elapsed();
        if waited >= wait {
            return Err(LockWaitError::Held {
                path: path.to_path_buf(),
                holder,
                waited,
            });
        }
        if !logged {
            logged = true;
            tracing::warn!(
                path = %path.display(),
                holder = %holder_name(holder),
                wait_ms = wait.as_millis() as u64,
                "lock held by another process, waiting"
            );
        }
        std::thread::sleep(poll.min(wait - waited));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write-locks the whole of `file` with an open file description lock: unlike a classic
    /// POSIX lock it conflicts with this same process's F_GETLK, which is what lets a test
    /// stand in for another process. Released when `file` is closed.
    fn ofd_lock(file: &File) {
        let lock = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&lock)).unwrap();
    }

    fn lock_file(dir: &tempfile::TempDir) -> (PathBuf, File) {
        let path = dir.path().join("LOCK");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn a_missing_or_unlocked_file_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("LOCK");
        assert_eq!(lock_holder(&missing).unwrap(), None);
        wait_for_lock(&missing, Duration::ZERO, POLL_INTERVAL).unwrap();
        let (path, _file) = lock_file(&dir);
        assert_eq!(lock_holder(&path).unwrap(), None);
        wait_for_lock(&path, Duration::ZERO, POLL_INTERVAL).unwrap();
    }

    #[test]
    fn a_held_lock_fails_the_wait_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = lock_file(&dir);
        ofd_lock(&file);
        assert_eq!(lock_holder(&path).unwrap(), Some(None));
        let err = wait_for_lock(&path, Duration::from_millis(100), Duration::from_millis(10))
            .unwrap_err();
        assert!(
            matches!(err, LockWaitError::Held { holder: None, .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("still locked"), "{message}");
    }

    #[test]
    fn the_wait_ends_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = lock_file(&dir);
        ofd_lock(&file);
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                wait_for_lock(&path, Duration::from_secs(60), Duration::from_millis(10))
            })
        };
        drop(file);
        waiter.join().unwrap().unwrap();
        assert_eq!(lock_holder(&path).unwrap(), None);
    }
}
