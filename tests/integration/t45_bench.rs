//! `kmsim bench` against a real Region, over both protocols: every workload is really run
//! (none skipped) and every measured call succeeds; against a real HTTP server that closes every
//! connection (as moto's does): the generator reconnects, and tells a lost answer
//! from a request that never went out; the open loop (`--rate`) makes the calls it schedules.
//! Short and bounded by call count; the figures themselves are for the benchmark program, not
//! for assertions.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::harness::{kmsim, kmsim_exe, Cluster};

const R: &str = "us-east-1";

/// Runs a short `kmsim bench --workload all --json` with `extra` flags and checks each run.
fn bench_all(c: &Cluster, extra: &[&str]) -> Vec<Value> {
    let data = c.data_dir();
    let mut args = vec![
        "bench",
        "--data-dir",
        &data,
        "--workload",
        "all",
        "--concurrency",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--max-ops",
        "200",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = kmsim(&args);
    let runs: Vec<Value> = serde_json::from_str(&out).unwrap();
    for r in &runs {
        assert!(r["skipped"].is_null(), "run skipped: {r}");
        assert!(r["ops"].as_u64().unwrap() > 0, "no call completed: {r}");
        assert_eq!(r["errors"].as_u64(), Some(0), "calls failed: {r}");
        // kmsim keeps connections alive: nothing to reopen.
        assert_eq!(r["reconnections"].as_u64(), Some(0), "{r}");
        assert_histogram_counts_every_call(r);
    }
    runs
}

#[test]
fn bench_runs_every_workload_over_grpc_and_aws_json() {
    let c = Cluster::start(&[R], 3);
    let names = |runs: &[Value]| -> Vec<String> {
        runs.iter()
            .map(|r| r["workload"].as_str().unwrap().to_string())
            .collect()
    };
    let grpc = bench_all(&c, &[]);
    assert_eq!(
        names(&grpc),
        [
            "encrypt",
            "decrypt",
            "generate-data-key",
            "sign",
            "generate-mac",
            "create-key"
        ]
    );
    let aws = bench_all(&c, &["--protocol", "aws-json"]);
    assert_eq!(
        names(&aws),
        [
            "encrypt",
            "decrypt",
            "generate-data-key",
            "sign",
            "generate-mac"
        ]
    );
}

/// The figures every result must hold together: its histogram decodes (HdrHistogram V2
/// compressed, base64) and counts every measured call, successes and errors alike.
fn assert_histogram_counts_every_call(r: &Value) {
    let calls = r["ops"].as_u64().unwrap() + r["errors"].as_u64().unwrap();
    for h in [&r["histogram"], &r["open_loop"]["service_histogram"]] {
        if h.is_null() {
            continue;
        }
        let bytes = B64
            .decode(h["hdr_v2_compressed_base64"].as_str().unwrap())
            .expect("base64");
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .expect("an HdrHistogram");
        assert_eq!(decoded.len(), calls, "{r}");
        assert_eq!(h["count"].as_u64(), Some(calls), "{r}");
        assert_eq!(h["unit"], "us");
        let p = &h["percentiles_us"];
        assert_eq!(p["max"].as_u64(), Some(decoded.max()), "{r}");
        for (lower, upper) in [
            ("p50", "p90"),
            ("p90", "p99"),
            ("p99", "p99.9"),
            ("p99.9", "p99.99"),
            ("p99.99", "max"),
        ] {
            assert!(
                p[lower].as_u64().unwrap() <= p[upper].as_u64().unwrap(),
                "{r}"
            );
        }
    }
}

/// What the [`CloseServer`] saw.
#[derive(Default)]
struct Seen {
    /// Encrypt requests read in full, the setup's included.
    encrypts: AtomicU64,
    /// Encrypt requests read and then left unanswered (the connection closed instead).
    dropped: AtomicU64,
}

/// A small HTTP/1.1 server on 127.0.0.1 (port picked by the OS) that answers the KMS calls of
/// `kmsim bench --protocol aws-json` with valid AWS JSON and closes every connection after one
/// answer, saying so (`Connection: close`), as moto's server does. With
/// `drop_every` n > 0 it reads every nth Encrypt after the first in full and closes the
/// connection without answering: a call whose answer is lost.
struct CloseServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl CloseServer {
    fn start(drop_every: u64) -> CloseServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || answer_once(conn, &s, drop_every));
            }
        });
        CloseServer {
            addr,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for CloseServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request from `conn`, answers it (or not, see [`CloseServer`]) and closes.
fn answer_once(mut conn: TcpStream, seen: &Seen, drop_every: u64) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    let length: usize = header("content-length:").parse().unwrap_or(0);
    while buf.len() < head_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let metadata = json!({"KeyMetadata": {"Arn": arn, "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "Enabled": true, "KeyState": "Enabled"}});
    let body = match header("x-amz-target:").as_str() {
        "trentservice.createkey" | "trentservice.describekey" => metadata,
        "trentservice.encrypt" => {
            let n = seen.encrypts.fetch_add(1, Ordering::SeqCst);
            if drop_every > 0 && n > 0 && n.is_multiple_of(drop_every) {
                seen.dropped.fetch_add(1, Ordering::SeqCst);
                return;
            }
            json!({"CiphertextBlob": B64.encode([7u8; 64]), "KeyId": arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"})
        }
        _ => json!({}),
    }
    .to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// Runs `kmsim bench --protocol aws-json --workload encrypt --json` against `url` with `extra`
/// flags; returns its one result and whether it exited 0.
fn bench_endpoint(url: &str, extra: &[&str]) -> (Value, bool) {
    let mut args = vec![
        "bench",
        "--protocol",
        "aws-json",
        "--endpoint",
        url,
        "--workload",
        "encrypt",
        "--warmup",
        "0s",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(kmsim_exe())
        .args(&args)
        .output()
        .expect("run kmsim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "kmsim {args:?}: {e}\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(runs.len(), 1, "{stdout}");
    let run = runs.into_iter().next().unwrap();
    assert_histogram_counts_every_call(&run);
    (run, out.status.success())
}

#[test]
fn bench_reconnects_to_an_endpoint_that_closes_every_connection() {
    let server = CloseServer::start(0);
    let (r, ok) = bench_endpoint(
        &server.url(),
        &["--concurrency", "2", "--duration", "2s", "--max-ops", "300"],
    );
    assert!(ok, "{r}");
    assert_eq!(r["errors"].as_u64(), Some(0), "{r}");
    assert_eq!(r["error_codes"], json!({}), "{r}");
    let ops = r["ops"].as_u64().unwrap();
    // Every measured call reached the server exactly once (the setup made one more Encrypt).
    assert_eq!(ops + 1, server.seen.encrypts.load(Ordering::SeqCst), "{r}");
    // Each task's calls after its first needed a new connection.
    assert!(ops > 2, "{r}");
    assert_eq!(r["reconnections"].as_u64(), Some(ops - 2), "{r}");
}

#[test]
fn bench_counts_a_lost_answer_as_an_error_and_never_resends_it() {
    let server = CloseServer::start(7);
    let (r, ok) = bench_endpoint(
        &server.url(),
        &["--concurrency", "2", "--duration", "2s", "--max-ops", "300"],
    );
    assert!(!ok, "a run with failed calls exits 1: {r}");
    let dropped = server.seen.dropped.load(Ordering::SeqCst);
    assert!(dropped > 0, "{r}");
    assert_eq!(r["error_codes"], json!({"TransportError": dropped}), "{r}");
    // No request was sent twice: the server read one Encrypt per measured call, plus the setup's.
    let calls = r["ops"].as_u64().unwrap() + r["errors"].as_u64().unwrap();
    assert_eq!(
        calls + 1,
        server.seen.encrypts.load(Ordering::SeqCst),
        "{r}"
    );
    assert!(r["reconnections"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn bench_open_loop_makes_the_calls_its_rate_schedules() {
    let c = Cluster::start(&[R], 1);
    // 200 calls per second for 2 s: 400 calls due, at most 4 in flight.
    let (r, ok) = bench_endpoint(
        &c.gateway_url(),
        &["--concurrency", "4", "--duration", "2s", "--rate", "200"],
    );
    assert!(ok, "{r}");
    let open = &r["open_loop"];
    assert_eq!(open["rate"].as_u64(), Some(200), "{r}");
    let calls = r["ops"].as_u64().unwrap() + r["errors"].as_u64().unwrap();
    let backlog = open["backlog"].as_u64().unwrap();
    // Every call due was made or is in the backlog; on a loaded machine some may be, but most
    // calls are made.
    assert_eq!(calls + backlog, 400, "{r}");
    assert!(calls >= 200, "{r}");
    assert!(open["late"].as_u64().unwrap() <= calls, "{r}");
    assert!(r["calls_per_s"].as_f64().unwrap() > 0.0, "{r}");
    // Latency counted from when each call was due is never below its service time.
    let (due, service) = (
        &r["histogram"]["percentiles_us"],
        &open["service_histogram"]["percentiles_us"],
    );
    for p in ["p50", "p90", "p99", "max"] {
        assert!(due[p].as_u64() >= service[p].as_u64(), "{p}: {r}");
    }
    // A closed-loop run has no open-loop figures.
    let (closed, _) = bench_endpoint(
        &c.gateway_url(),
        &[
            "--concurrency",
            "2",
            "--duration",
            "300ms",
            "--max-ops",
            "100",
        ],
    );
    assert!(closed["open_loop"].is_null(), "{closed}");
}
