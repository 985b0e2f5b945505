//! Arbitrary headers and bodies into the AWS JSON front, everything a node does before it runs
//! an operation: the envelope checks, the SigV4 parse, scope checks and verification, the
//! `Content-Type` check, and the decoding of the body as the operation's input. Nothing may
//! panic. The input is `name: value` header lines, an empty line, then the body.
#![no_main]

use std::sync::{Arc, OnceLock};

use http::{HeaderName, HeaderValue, Request};
use kmsim_node::aws::dispatch::Request as KmsRequest;
use kmsim_node::aws::{front, AwsFront};
use kmsim_node::config::Topology;
use kmsim_node::faults::FaultTable;
use kmsim_node::tls::Dialer;
use libfuzzer_sys::fuzz_target;

const TOPOLOGY: &str = r#"
version = 1
[endpoint]
listen = "127.0.0.1:4599"
[[credentials]]
access_key_id = "test"
secret_access_key = "test"
principal_arn = "arn:aws:iam::111122223333:root"
[[credentials]]
access_key_id = "ASIATEMP"
secret_access_key = "s"
principal_arn = "arn:aws:iam::111122223333:root"
session_token = "tok"
[[regions]]
name = "us-east-1"
domain_key_file = "unused"
[[regions.nodes]]
id = 1
listen = "127.0.0.1:4601"
aws_listen = "127.0.0.1:4701"
data_dir = "unused"
"#;

fn gateway() -> &'static AwsFront {
    static FRONT: OnceLock<AwsFront> = OnceLock::new();
    FRONT.get_or_init(|| {
        let topology = Topology::parse(TOPOLOGY).expect("valid topology");
        AwsFront::new(
            &topology,
            None,
            "gateway",
            Arc::new(FaultTable::new(0)),
            Dialer::plain(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let (head, body) = (&data[..split], data.get(split + 2..).unwrap_or_default());
    let mut builder = Request::builder().method("POST").uri("/");
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let Ok(req) = builder.body(()) else {
        return;
    };
    let (parts, ()) = req.into_parts();
    let front = gateway();
    let _ = front::check_envelope(&parts);
    let _ = front::check_content_type(&parts.headers);
    if let Ok(auth) = front.authenticate(&parts.headers) {
        let _ = front.verify_local(&parts, body, &auth);
        let _ = front::decode_verified(&parts, body);
    }
    let target = parts.headers.get("x-amz-target").map(|v| v.as_bytes());
    if let Ok(decoded) = KmsRequest::decode(target, body) {
        let _ = decoded.operation();
    }
});
