//! Trace context across processes and Regions: the W3C Trace Context `traceparent`
//! (<https://www.w3.org/TR/trace-context/>), carried
//! - in the `traceparent` header of AWS JSON requests (from the client, through the gateway and
//!   a relay to another Region: the header is passed on as it came, or added when it was absent);
//! - in the `traceparent` metadata of gRPC calls (the KMS face, and a write a follower forwards
//!   to its leader);
//! - in a synchronization from a primary's Region ([`kmsim_core::sync::ChangeOrigin`]), from the
//!   commit of the change on the primary's leader to its apply in the replica's Region.
//!
//! Each process handling a traced request runs it in [`scope`]: a `trace` span whose `trace_id`
//! field every log line of the request carries, and a task-local context naming that span (what
//! the next hop is sent as its parent). Each hop also logs one line at `debug` on the target
//! [`HOP_TARGET`] (`KMSIM_LOG=info,kmsim::hop=debug` shows them), so one trace ID finds the
//! request in the logs of the node that received it, the leader that committed it and the Region
//! it was synchronized to.
//!
//! When the process exports spans over OTLP (the `tracing-opentelemetry` layer is installed,
//! `kmsim node --otlp-endpoint`), the `trace` span is also an OpenTelemetry span: named after
//! the hop, a child of the caller's span, and its own span ID is what the next hop receives, so
//! a collector assembles the hops of all processes and Regions into one tree. Without the layer
//! the span ID sent on is a fresh random one, as the specification allows.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (AWS JSON) and metadata key (gRPC) that carry the context.
pub const TRACEPARENT: &str = "traceparent";

/// The log target of the one line each hop writes (at `debug`).
pub const HOP_TARGET: &str = "kmsim::hop";

/// One position in a trace: the trace, the span that called us, and the sampled flag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace ID (never all zeros).
    pub trace_id: [u8; 16],
    /// The caller's span ID (never all zeros).
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// A new trace, started here (sampled).
    pub fn new_root() -> TraceContext {
        let mut trace_id: [u8; 16] = rand::random();
        trace_id[0] |= 1;
        TraceContext {
            trace_id,
            span_id: new_span_id(),
            flags: 1,
        }
    }

    /// The context to send to the next hop: the same trace, a new span of ours.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parses a `traceparent` value. Versions above `00` are read by their first four fields,
    /// as the specification asks; version `ff`, wrong lengths, upper-case or non-hex digits and
    /// all-zero IDs are refused (`None`: the receiver starts a new trace).
    pub fn parse(value: &[u8]) -> Option<TraceContext> {
        let s = std::str::from_utf8(value).ok()?;
        let version = s.get(0..2)?;
        let rest = s.get(2..)?;
        let v = hex_bytes::<1>(version)?[0];
        if v == 0xff {
            return None;
        }
        // Version 00 is exactly 55 characters; a later version may append `-` and more.
        if (v == 0 && s.len() != 55) || s.len() < 55 || (s.len() > 55 && s.as_bytes()[55] != b'-') {
            return None;
        }
        let mut fields = rest.get(..53)?.split('-');
        if !fields.next()?.is_empty() {
            return None;
        }
        let trace_id = hex_bytes::<16>(fields.next()?)?;
        let span_id = hex_bytes::<8>(fields.next()?)?;
        let flags = hex_bytes::<1>(fields.next()?)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The trace ID as 32 lower-case hex digits (what the logs show).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The `traceparent` value (version 00).
    pub fn header(&self) -> String {
        String::from_utf8_lossy(&self.header_bytes()).into_owned()
    }

    /// The `traceparent` value as an HTTP header value, made without allocating on the way.
    pub fn header_value(&self) -> http::HeaderValue {
        http::HeaderValue::from_bytes(&self.header_bytes())
            .expect("invariant: a traceparent is visible ASCII")
    }

    /// `00-<trace id>-<span id>-<flags>`, lower-case hex, 55 bytes.
    fn header_bytes(&self) -> [u8; 55] {
        let mut out = [b'-'; 55];
        out[..2].copy_from_slice(b"00");
        hex::encode_to_slice(self.trace_id, &mut out[3..35])
            .expect("invariant: 16 bytes are 32 hex digits");
        hex::encode_to_slice(self.span_id, &mut out[36..52])
            .expect("invariant: 8 bytes are 16 hex digits");
        hex::encode_to_slice([self.flags], &mut out[53..55])
            .expect("invariant: 1 byte is 2 hex digits");
        out
    }

    /// The context a request came with (`traceparent` header or metadata value); `None` when
    /// it had none or an invalid one (the request then starts a new trace in [`scope`]).
    pub fn from_header(value: Option<&[u8]>) -> Option<TraceContext> {
        value.and_then(TraceContext::parse)
    }

    /// This context as OpenTelemetry's, received from another process.
    fn remote(&self) -> opentelemetry::Context {
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::default(),
        ))
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

fn new_span_id() -> [u8; 8] {
    let mut id: [u8; 8] = rand::random();
    id[0] |= 1;
    id
}

/// Exactly `2 * N` lower-case hex digits.
fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// The context of the request this task is handling, if it is handling one.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// The trace ID written as 32 hex digits into a log line, without an intermediate `String`.
struct TraceIdHex([u8; 16]);

impl fmt::Display for TraceIdHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

/// Set once the process exports spans (the `tracing-opentelemetry` layer is installed).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Tells [`scope`] that spans are exported, so it makes each hop's span an OpenTelemetry span
/// (named, parented, its ID sent on). The binary calls it when it installs the OTLP layer;
/// without it, a hop's span only carries the trace ID for the logs.
pub fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// Whether this process traces and counts every request: true unless the environment sets
/// `KMSIM_REQUEST_TELEMETRY=off`, which `scripts/telemetry-cost.sh` uses to measure what the
/// per-request work of traces and API metrics costs (docs/PERFORMANCE.md). Read once.
pub fn request_telemetry() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KMSIM_REQUEST_TELEMETRY").as_deref() != Ok("off"))
}

/// Runs `fut` as one hop of trace `parent` (a new trace when `None`): [`current`] returns this
/// hop's context, and every log line inside carries `trace_id` (the `trace` span). `hop` names
/// this hop, in its `debug` line on [`HOP_TARGET`] (with `detail`) and as the span's name when
/// spans are exported. Without [`request_telemetry`], only runs `fut`.
pub async fn scope<F: Future>(
    parent: Option<TraceContext>,
    hop: &'static str,
    detail: &str,
    fut: F,
) -> F::Output {
    if !request_telemetry() {
        return fut.await;
    }
    if !EXPORTING.load(Ordering::Relaxed) {
        // The span only carries the trace ID into the log lines: its fields are written once,
        // at creation, and the span ID sent on is a fresh one.
        let ctx = match parent {
            Some(p) => p.child(),
            None => TraceContext::new_root(),
        };
        let span = tracing::info_span!("trace", trace_id = %TraceIdHex(ctx.trace_id));
        span.in_scope(|| tracing::debug!(target: HOP_TARGET, hop, detail, "hop"));
        return CURRENT.scope(ctx, fut.instrument(span)).await;
    }
    let span = tracing::info_span!(
        "trace",
        trace_id = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        kmsim.detail = tracing::field::Empty,
    );
    let ctx = own_context(&span, parent, hop, detail);
    span.record(
        "trace_id",
        tracing::field::display(TraceIdHex(ctx.trace_id)),
    );
    span.in_scope(|| tracing::debug!(target: HOP_TARGET, hop, detail, "hop"));
    CURRENT.scope(ctx, fut.instrument(span)).await
}

/// The context of this hop's `span`: the OpenTelemetry span's when spans are exported (made a
/// child of `parent`, named `hop`), else `parent`'s trace with a fresh span ID.
fn own_context(
    span: &tracing::Span,
    parent: Option<TraceContext>,
    hop: &'static str,
    detail: &str,
) -> TraceContext {
    let exported = match parent {
        Some(p) => span.set_parent(p.remote()).is_ok(),
        None => span.set_parent(opentelemetry::Context::new()).is_ok(),
    };
    if exported {
        span.record("otel.name", hop);
        span.record("otel.kind", "server");
        span.record("kmsim.detail", detail);
        let otel = span.context();
        let sc = otel.span().span_context().clone();
        if sc.is_valid() {
            return TraceContext {
                trace_id: sc.trace_id().to_bytes(),
                span_id: sc.span_id().to_bytes(),
                flags: sc.trace_flags().to_u8(),
            };
        }
    }
    match parent {
        Some(p) => p.child(),
        None => TraceContext::new_root(),
    }
}

/// Logs one more step of the current trace's hop on [`HOP_TARGET`] (e.g. the leader's
/// commit), inside the span [`scope`] opened.
pub fn step(hop: &'static str, detail: &str) {
    tracing::debug!(target: HOP_TARGET, hop, detail, "hop");
}

/// Adds the current context (this hop's span, the next hop's parent) to outgoing gRPC
/// metadata.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    if let Some(ctx) = current() {
        if let Ok(v) = ctx.header().parse() {
            metadata.insert(TRACEPARENT, v);
        }
    }
}

/// The context of an incoming gRPC call (`traceparent` metadata), if it carried a valid one.
pub fn extract(metadata: &tonic::metadata::MetadataMap) -> Option<TraceContext> {
    TraceContext::from_header(metadata.get(TRACEPARENT).map(|v| v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specification_example_round_trips() {
        let ctx = TraceContext::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(ctx.span_id), "00f067aa0ba902b7");
        assert_eq!(ctx.flags, 1);
        assert_eq!(ctx.header(), EXAMPLE);
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ] {
            assert_eq!(TraceContext::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let ctx = TraceContext::parse(later.as_bytes()).unwrap();
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
        assert_eq!(TraceContext::parse(child.header().as_bytes()), Some(child));
    }

    #[tokio::test]
    async fn the_scope_is_what_current_returns() {
        assert_eq!(current(), None);
        let parent = TraceContext::new_root();
        let seen = scope(Some(parent), "test", "", async { current() })
            .await
            .unwrap();
        assert_eq!(seen.trace_id, parent.trace_id);
        assert_ne!(
            seen.span_id, parent.span_id,
            "this hop has a span of its own"
        );
        let mut md = tonic::metadata::MetadataMap::new();
        let ours = scope(Some(parent), "test", "", async {
            inject(&mut md);
            current()
        })
        .await;
        assert_eq!(extract(&md), ours, "the next hop's parent is this hop");
        let root = scope(None, "test", "", async { current() }).await.unwrap();
        assert_ne!(root.trace_id, parent.trace_id, "no parent: a new trace");
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = TraceContext::parse(&bytes);
        }

        #[test]
        fn every_valid_context_round_trips(t in any::<[u8; 16]>(), s in any::<[u8; 8]>(), f in any::<u8>()) {
            prop_assume!(t != [0; 16] && s != [0; 8]);
            let ctx = TraceContext { trace_id: t, span_id: s, flags: f };
            prop_assert_eq!(TraceContext::parse(ctx.header().as_bytes()), Some(ctx));
            let expected = format!("00-{}-{}-{:02x}", hex::encode(t), hex::encode(s), f);
            prop_assert_eq!(ctx.header(), expected.clone());
            let value = ctx.header_value();
            prop_assert_eq!(value.as_bytes(), expected.as_bytes());
            prop_assert_eq!(TraceIdHex(t).to_string(), hex::encode(t));
        }

        #[test]
        fn near_misses_of_a_valid_value_are_refused_or_read_exactly(i in 0usize..55, c in any::<u8>()) {
            let mut v = EXAMPLE.as_bytes().to_vec();
            v[i] = c;
            if let Some(ctx) = TraceContext::parse(&v) {
                // Only a change that is still a valid value is accepted, and read as written
                // (a version other than 00 is written back as 00).
                let header = ctx.header();
                prop_assert_eq!(&header.as_bytes()[2..], &v[2..]);
            }
        }
    }
}
