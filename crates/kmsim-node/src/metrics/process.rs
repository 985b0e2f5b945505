//! The process's own figures, read at scrape time under the names every Prometheus client
//! library uses (`process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, `process_max_fds`). Linux only: a figure that cannot be read is left
//! out of the scrape. Nodes that share a process (tests) report the same figures.

use std::fmt;

use nix::sys::resource::{getrlimit, getrusage, Resource, UsageWho};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::encode_gauge;

/// The figures of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessFigures {
    /// Resident set size in bytes (`VmRSS` of `/proc/self/status`).
    pub resident_bytes: Option<u64>,
    /// User and system CPU time in seconds (`getrusage`).
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors (`RLIMIT_NOFILE`).
    pub max_fds: Option<u64>,
}

impl ProcessFigures {
    /// Reads them now.
    pub fn read() -> ProcessFigures {
        let cpu_seconds = getrusage(UsageWho::RUSAGE_SELF).ok().map(|u| {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            secs(u.user_time()) + secs(u.system_time())
        });
        ProcessFigures {
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| vm_rss_bytes(&s)),
            cpu_seconds,
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
            max_fds: getrlimit(Resource::RLIMIT_NOFILE)
                .ok()
                .map(|(soft, _)| soft),
        }
    }
}

/// The `VmRSS:` line of `/proc/self/status` (in kB there), in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kb: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kb.saturating_mul(1024))
}

/// The registry's collector of [`ProcessFigures`].
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let f = ProcessFigures::read();
        let gauge = |e: &mut DescriptorEncoder, name: &str, help: &str, v: Option<u64>| match v {
            Some(v) => encode_gauge(e, name, help, v),
            None => Ok(()),
        };
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            f.resident_bytes,
        )?;
        if let Some(secs) = f.cpu_seconds {
            // Registered without `_total`: the counter's encoding adds it.
            ConstCounter::new(secs).encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?)?;
        }
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            f.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors",
            f.max_fds,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resident_size_is_read_in_bytes_from_the_vmrss_line() {
        let status = "Name:\tkmsim\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(1234 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tkmsim\n"), None);
        assert_eq!(
            vm_rss_bytes("VmRSS:\t12 MB\n"),
            None,
            "an unknown unit is not guessed"
        );
    }

    #[test]
    fn this_process_has_memory_cpu_time_and_open_files() {
        let f = ProcessFigures::read();
        assert!(f.resident_bytes.is_some_and(|b| b > 0), "{f:?}");
        assert!(f.cpu_seconds.is_some_and(|s| s > 0.0), "{f:?}");
        assert!(f.open_fds.is_some_and(|n| n >= 3), "{f:?}");
        assert!(f.max_fds >= f.open_fds, "{f:?}");
    }
}
