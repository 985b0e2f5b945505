//! Ports for a new local cluster when the user lets kmsim choose (`--base-port 0`,
//! `--aws-port 0`).
//!
//! A cluster keeps its ports for life: the topology names them, and a node that is killed and
//! started again must bind the same ones. Letting the OS choose (`bind(127.0.0.1:0)`) is not
//! enough for that: the OS hands out ports from its ephemeral range, so while a node is down
//! its port can be given to anyone else who binds port 0 (another cluster being created, a
//! test's server) and the node cannot come back. Ports are therefore taken *below* the
//! ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), where the OS never hands one out
//! by itself, and each is claimed with a marker file naming the cluster's directory
//! (`$TMPDIR/kmsim-ports/<port>`), which other kmsim clusters respect for as long as that
//! directory exists. A marker whose directory is gone (a removed cluster, a test's temporary
//! directory) is stale and the port is free again.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use rand::Rng;

/// The lowest port handed out.
const LOWEST: u16 = 10_000;

/// How many candidate ports are tried before giving up.
const TRIES: usize = 4096;

/// Where the markers live.
fn marker_dir() -> PathBuf {
    std::env::temp_dir().join("kmsim-ports")
}

/// The ports below the OS's ephemeral range: `[LOWEST, first ephemeral port)` (the Linux
/// default range starts at 32768).
fn range() -> (u16, u16) {
    let first_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    if first_ephemeral > LOWEST + 1024 {
        (LOWEST, first_ephemeral)
    } else {
        // An unusual range that leaves little below it: take ports above it instead.
        (u16::MAX - 16_384, u16::MAX)
    }
}

/// Whether a live cluster other than `owner` claims `port`.
fn claimed_by_other(port: u16, owner: &Path) -> bool {
    match std::fs::read_to_string(marker_dir().join(port.to_string())) {
        Ok(claimant) => {
            let claimant = Path::new(claimant.trim());
            claimant != owner && claimant.is_dir()
        }
        Err(_) => false,
    }
}

/// Picks loopback ports for the cluster in `owner` (its root directory, which must exist).
/// Each port is bound while the cluster is being made ([`PortClaims::take`] keeps the
/// listeners), so two clusters being made at once cannot get the same one.
pub struct PortClaims {
    owner: PathBuf,
    held: Vec<TcpListener>,
    range: (u16, u16),
}

impl PortClaims {
    /// Claims for the cluster whose root is `owner`.
    pub fn new(owner: &Path) -> PortClaims {
        PortClaims {
            owner: owner.canonicalize().unwrap_or_else(|_| owner.to_path_buf()),
            held: Vec::new(),
            range: range(),
        }
    }

    /// A free loopback port, claimed for the owner: bound until `self` is dropped, marked for
    /// as long as the owner's directory exists.
    pub fn take(&mut self) -> std::io::Result<SocketAddr> {
        std::fs::create_dir_all(marker_dir())?;
        let mut rng = rand::thread_rng();
        for _ in 0..TRIES {
            let port = rng.gen_range(self.range.0..self.range.1);
            if claimed_by_other(port, &self.owner) {
                continue;
            }
            let Ok(l) = TcpListener::bind(("127.0.0.1", port)) else {
                continue;
            };
            let addr = l.local_addr()?;
            std::fs::write(
                marker_dir().join(port.to_string()),
                self.owner.to_string_lossy().as_bytes(),
            )?;
            self.held.push(l);
            return Ok(addr);
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "no free port between {} and {} after {TRIES} tries",
                self.range.0, self.range.1
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_distinct_and_respected_by_other_clusters() {
        let a = tempfile::tempdir().expect("temp dir");
        let b = tempfile::tempdir().expect("temp dir");
        let mut claims = PortClaims::new(a.path());
        let ports: Vec<u16> = (0..8)
            .map(|_| claims.take().expect("a free port").port())
            .collect();
        let (lo, hi) = range();
        assert!(ports.iter().all(|p| (lo..hi).contains(p)), "{ports:?}");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        drop(claims);
        // Released but still claimed: another cluster never gets them while `a` exists.
        let owner_a = a.path().canonicalize().expect("exists");
        for p in &ports {
            assert!(claimed_by_other(*p, b.path()));
            assert!(!claimed_by_other(*p, &owner_a));
        }
        let path_a = a.path().to_path_buf();
        drop(a);
        assert!(!path_a.exists());
        for p in &ports {
            // (Unless a cluster being made meanwhile took it, the marker still names `a`.)
            let marker = std::fs::read_to_string(marker_dir().join(p.to_string()));
            if marker.is_ok_and(|m| Path::new(m.trim()) == owner_a) {
                assert!(
                    !claimed_by_other(*p, b.path()),
                    "a removed cluster's ports are free"
                );
            }
        }
    }
}
