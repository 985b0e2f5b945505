//! `kmsim kms <operation>`: the KMS API of a cluster, called like `aws kms` calls AWS.
//!
//! Same kebab-case operation names and flags as the AWS CLI, requests and responses in the AWS
//! JSON spelling (`kmsim_proto::json`), errors and exit codes as AWS CLI v2:
//! - 0 success; 2 bad flags or flag values (clap);
//! - 254 the service answered with an error:
//!   `An error occurred (NotFoundException) when calling the DescribeKey operation: …`;
//! - 255 no node could be reached: `Could not connect to the endpoint URL: …`;
//! - 1 anything else (no cluster in the data directory, unknown Region, unwritable
//!   `--output-blob` path).
//!
//! Modules: [`params`] parses flag values (`fileb://`, shorthand, timestamps, JSON), `*_ops`
//! hold each operation's flags and build its request, [`flags`] the flag groups several
//! operations share, [`connect`] picks the node, [`output`] prints.

// First: its `apply_to!` macro is used by the `*_ops` modules declared after it.
#[macro_use]
mod flags;

mod alias_ops;
mod connect;
mod crypto_ops;
mod grant_ops;
mod import_ops;
mod key_ops;
mod mrk_ops;
mod output;
mod params;
mod policy_tag_ops;
mod rotation_ops;
mod signing_ops;

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tonic::transport::Channel;
use tonic::Status;

use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;

use connect::ConnectError;
use flags::CliOperation;
use output::OutputFormat;
use params::{OutputBlob, StringMap};

/// AWS CLI v2's exit code when the service returned an error.
const EXIT_SERVICE_ERROR: u8 = 254;
/// AWS CLI v2's exit code for any other failure of the call, here: no node reachable.
const EXIT_CONNECT_ERROR: u8 = 255;
/// Most pages `list-*` follows before giving up (a guard against a server that never stops).
const MAX_PAGES: usize = 100_000;

/// The gRPC client every operation uses.
type Client = KmsServiceClient<Channel>;

/// Calls the KMS API of a cluster like `aws kms` does.
///
/// Output is the response as AWS JSON, indented like the AWS CLI's (blobs base64, timestamps
/// as epoch seconds). Blob inputs: fileb://PATH is a file's raw bytes; a literal or file://PATH
/// is base64 (AWS CLI v2). To get raw bytes out, use --output-blob MEMBER:PATH (PATH - is
/// standard output) or pipe through `jq -r .Plaintext | base64 -d`.
#[derive(Args)]
#[command(after_help = "Example:\n  kmsim kms create-key --description demo\n  \
                  kmsim kms encrypt --key-id KEY --plaintext fileb://secret.txt \
                  --output-blob CiphertextBlob:secret.enc\n  \
                  kmsim kms decrypt --ciphertext-blob fileb://secret.enc --output-blob Plaintext:-")]
pub struct KmsArgs {
    /// Boxed: the operations' flags (each with its whole `--cli-input-json` request) are large,
    /// and `KmsArgs` sits in the binary's top-level command enum.
    #[command(subcommand)]
    operation: Box<Operation>,
    #[command(flatten)]
    global: GlobalArgs,
}

/// Options of every operation (accepted before or after the operation name).
#[derive(Args)]
struct GlobalArgs {
    /// A node's gRPC address (HOST:PORT, http:// optional); without it, the nodes of --region
    /// in --data-dir are tried in order.
    #[arg(
        long,
        global = true,
        env = "KMSIM_ENDPOINT",
        value_name = "HOST:PORT",
        visible_alias = "endpoint-url"
    )]
    endpoint: Option<String>,
    /// The cluster's data directory; its topology lists the nodes to call.
    #[arg(long, global = true, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The Region to call; default: $AWS_REGION, else $AWS_DEFAULT_REGION, else the first
    /// Region of the topology.
    #[arg(long, global = true, env = "AWS_REGION")]
    region: Option<String>,
    /// Output format of the response.
    #[arg(long, global = true, value_enum, default_value_t)]
    output: OutputFormat,
    /// Write the response member MEMBER (a blob, e.g. Plaintext or CiphertextBlob) decoded to
    /// PATH (- for standard output, then nothing else is printed there) and leave it out of
    /// the printed response; repeatable. A file it creates is readable by its owner only (0600).
    #[arg(long, global = true, value_name = "MEMBER:PATH", value_parser = params::output_blob)]
    output_blob: Vec<OutputBlob>,
    /// Print only the first page of a list-* operation (list-keys, list-grants, …) instead of
    /// following NextMarker.
    #[arg(long, global = true)]
    no_paginate: bool,
}

/// Declares the operations from the node's operation list (`kmsim_node::for_each_kms_operation!`):
/// the clap subcommand enum (variant = AWS operation name, so clap's kebab-case is the AWS
/// CLI's), its AWS names, and the call of each. Each request's [`flags::CliOperation`] impl
/// names its flags and whether it is paginated.
macro_rules! cli_operations {
    ($( $variant:ident => $method:ident($req:ident) -> $resp:ident; )*) => {
        /// The KMS operations, named and flagged as in `aws kms`.
        #[derive(Subcommand)]
        enum Operation {
            $( $variant(<pb::$req as CliOperation>::Args), )*
        }

        impl Operation {
            /// The AWS name (`DescribeKey`), as AWS CLI error messages show it.
            fn aws_name(&self) -> &'static str {
                match self {
                    $( Operation::$variant(_) => stringify!($variant), )*
                }
            }

            /// Sends the request (every page of it, for a paginated operation with `paginate`)
            /// and returns the response as AWS JSON.
            async fn call(self, client: Client, paginate: bool) -> Result<Value, CallError> {
                match self {
                    $( Operation::$variant(a) => {
                        let list = <pb::$req as CliOperation>::PAGES;
                        exec(client, a.into_request(), list.filter(|_| paginate), |mut c, r| async move {
                            c.$method(r).await.map(tonic::Response::into_inner)
                        })
                        .await
                    } )*
                }
            }

            /// The request the flags would send, as AWS JSON.
            #[cfg(test)]
            fn request_json(self) -> Result<Value, serde_json::Error> {
                match self {
                    $( Operation::$variant(a) => serde_json::to_value(a.into_request()), )*
                }
            }
        }
    };
}

kmsim_node::for_each_kms_operation!(cli_operations);

/// Why a call produced no response.
#[derive(Debug)]
enum CallError {
    /// No node accepted a connection.
    Connect(ConnectError),
    /// The service (or the transport below it) answered with an error.
    Service(KmsError),
    /// Anything else (a response that does not convert to JSON, a server that paginates forever).
    Other(anyhow::Error),
}

impl From<serde_json::Error> for CallError {
    fn from(e: serde_json::Error) -> CallError {
        CallError::Other(e.into())
    }
}

impl From<Status> for CallError {
    fn from(s: Status) -> CallError {
        CallError::Service(kmsim_proto::error_from_status(&s))
    }
}

/// `kmsim kms …`
pub fn run(a: KmsArgs) -> anyhow::Result<ExitCode> {
    // Against the topology of a cluster in containers, from inside its networks; an explicit
    // --endpoint (the gateway the host reaches) is called from here.
    if a.global.endpoint.is_none() {
        if let Some(code) = super::relayed(&a.global.data_dir)? {
            return Ok(code);
        }
    }
    let g = a.global;
    let region = g.region.filter(|r| !r.is_empty()).or_else(|| {
        std::env::var("AWS_DEFAULT_REGION")
            .ok()
            .filter(|r| !r.is_empty())
    });
    let targets = connect::targets(g.endpoint.as_deref(), &g.data_dir, region.as_deref())?;
    let operation = *a.operation;
    let name = operation.aws_name();
    let dialer = connect::dialer(&g.data_dir)?;
    let result = super::runtime()?.block_on(async {
        let channel = connect::connect(&dialer, &targets.addrs)
            .await
            .map_err(CallError::Connect)?;
        operation
            .call(KmsServiceClient::new(channel), !g.no_paginate)
            .await
    });
    match result {
        Ok(mut response) => {
            let blobs_on_stdout = output::write_blobs(&mut response, &g.output_blob)?;
            if !blobs_on_stdout {
                out!("{}", output::render(&response, g.output)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Service(e)) => {
            eprintln!(
                "An error occurred ({}) when calling the {name} operation: {}",
                e.code(),
                e.message()
            );
            Ok(ExitCode::from(EXIT_SERVICE_ERROR))
        }
        Err(CallError::Connect(e)) => {
            eprintln!("{e}");
            Ok(ExitCode::from(EXIT_CONNECT_ERROR))
        }
        Err(CallError::Other(e)) => Err(e),
    }
}

/// Sends `request` with `call` and returns the response as AWS JSON. With `pages` (the list
/// member of a paginated operation) and neither `Limit` nor `Marker` in the request, follows
/// `NextMarker` until `Truncated` is false and returns `{pages: [every item]}`, as the AWS CLI
/// prints a paginated result.
async fn exec<Req, Resp, F, Fut>(
    client: Client,
    request: Req,
    pages: Option<&str>,
    call: F,
) -> Result<Value, CallError>
where
    Req: Serialize + DeserializeOwned,
    Resp: Serialize,
    F: Fn(Client, Req) -> Fut,
    Fut: Future<Output = Result<Resp, Status>>,
{
    let mut request_json = serde_json::to_value(&request)?;
    let one_page = request_json.get("Limit").is_some() || request_json.get("Marker").is_some();
    let Some(list) = pages.filter(|_| !one_page) else {
        return Ok(serde_json::to_value(call(client, request).await?)?);
    };
    let mut items = Vec::new();
    let mut request = request;
    for _ in 0..MAX_PAGES {
        let page = serde_json::to_value(call(client.clone(), request).await?)?;
        if let Some(Value::Array(page_items)) = page.get(list) {
            items.extend(page_items.iter().cloned());
        }
        let next = page.get("NextMarker").and_then(Value::as_str);
        let truncated = page.get("Truncated").and_then(Value::as_bool) == Some(true);
        match next.filter(|_| truncated) {
            Some(marker) => {
                if request_json.get("Marker").and_then(Value::as_str) == Some(marker) {
                    return Err(CallError::Other(anyhow::anyhow!(
                        "the server returned the same NextMarker twice ({marker}); stopping"
                    )));
                }
                request_json["Marker"] = Value::String(marker.to_string());
                request = serde_json::from_value(request_json.clone())?;
            }
            None => {
                let mut result = serde_json::Map::new();
                result.insert(list.to_string(), Value::Array(items));
                return Ok(Value::Object(result));
            }
        }
    }
    Err(CallError::Other(anyhow::anyhow!(
        "gave up after {MAX_PAGES} pages; use --limit and --marker to page by hand"
    )))
}

/// Overrides a request member with a flag's value, when the flag is given.
fn set<T>(member: &mut Option<T>, flag: Option<T>) {
    if flag.is_some() {
        *member = flag;
    }
}

/// Overrides a list member with a flag's values, when the flag is given.
fn set_list<T>(member: &mut Vec<T>, flag: Option<Vec<T>>) {
    if let Some(values) = flag {
        *member = values;
    }
}

/// Overrides a map member with a flag's value, when the flag is given.
fn set_map(member: &mut HashMap<String, String>, flag: Option<StringMap>) {
    if let Some(StringMap(map)) = flag {
        *member = map;
    }
}

/// `--dry-run` / `--no-dry-run`, as the AWS CLI spells them.
#[derive(clap::Args)]
pub struct DryRunFlags {
    /// Only check that the call would succeed; success is reported as DryRunOperationException.
    #[arg(long, overrides_with = "no_dry_run")]
    dry_run: bool,
    /// Perform the operation (the default).
    #[arg(long, overrides_with = "dry_run")]
    no_dry_run: bool,
}

impl DryRunFlags {
    /// The `DryRun` member: absent unless one of the flags was given.
    pub fn value(&self) -> Option<bool> {
        bool_flag(self.dry_run, self.no_dry_run)
    }
}

/// The value of a `--flag`/`--no-flag` pair (clap keeps only the last one given).
fn bool_flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A stand-in for the `kmsim` binary's top level.
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Subcommand)]
    enum Top {
        Kms(KmsArgs),
    }

    fn parse(args: &[&str]) -> Result<KmsArgs, clap::Error> {
        let argv = ["kmsim", "kms"].iter().chain(args);
        Cli::try_parse_from(argv).map(|c| match c.command {
            Top::Kms(k) => k,
        })
    }

    /// The request `args` would send, as AWS JSON.
    fn request_json(args: &[&str]) -> Value {
        let k = parse(args).expect("parses");
        k.operation.request_json().expect("serializes")
    }

    #[test]
    fn multi_region_flags_become_aws_members() {
        assert_eq!(
            request_json(&[
                "replicate-key",
                "--key-id",
                "mrk-1",
                "--replica-region",
                "eu-west-1",
                "--description",
                "d",
                "--tags",
                "TagKey=a,TagValue=1",
            ]),
            serde_json::json!({
                "KeyId": "mrk-1",
                "ReplicaRegion": "eu-west-1",
                "Description": "d",
                "Tags": [{"TagKey": "a", "TagValue": "1"}]
            })
        );
        assert_eq!(
            request_json(&[
                "update-primary-region",
                "--key-id",
                "mrk-1",
                "--primary-region",
                "eu-west-1"
            ]),
            serde_json::json!({"KeyId": "mrk-1", "PrimaryRegion": "eu-west-1"})
        );
    }

    /// `DescribeKey` → `describe-key`, as the AWS CLI names operations.
    fn kebab(aws_name: &str) -> String {
        let mut out = String::new();
        for (i, c) in aws_name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    #[test]
    fn operation_names_are_the_aws_cli_names() {
        use clap::CommandFactory;
        let names: Vec<String> = Cli::command()
            .find_subcommand("kms")
            .expect("kms")
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        let expected: Vec<String> = kmsim_node::aws::dispatch::OPERATIONS
            .iter()
            .map(|op| kebab(op))
            .collect();
        assert_eq!(names, expected);
        assert_eq!(
            kebab("GenerateDataKeyPairWithoutPlaintext"),
            "generate-data-key-pair-without-plaintext"
        );
        Cli::command().debug_assert();
    }

    #[test]
    fn every_operation_has_help_text() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let kms = cmd.find_subcommand("kms").expect("kms");
        for sub in kms.get_subcommands() {
            assert!(sub.get_about().is_some(), "{} has no about", sub.get_name());
            for arg in sub.get_arguments() {
                if arg.get_id() == "help" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some(),
                    "{} --{} has no help",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn flags_become_aws_members() {
        assert_eq!(
            request_json(&[
                "create-key",
                "--description",
                "d",
                "--multi-region",
                "--tags",
                "TagKey=a,TagValue=1",
                "TagKey=b,TagValue=2",
                "--key-spec",
                "SYMMETRIC_DEFAULT",
            ]),
            serde_json::json!({
                "Description": "d",
                "KeySpec": "SYMMETRIC_DEFAULT",
                "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}],
                "MultiRegion": true
            })
        );
        assert_eq!(
            request_json(&["create-key", "--multi-region", "--no-multi-region"]),
            serde_json::json!({"MultiRegion": false})
        );
        assert_eq!(
            request_json(&[
                "encrypt",
                "--key-id",
                "alias/a",
                "--plaintext",
                "aGVsbG8=",
                "--encryption-context",
                "purpose=test",
                "--grant-tokens",
                "t1",
                "t2",
                "--dry-run",
            ]),
            serde_json::json!({
                "KeyId": "alias/a",
                "Plaintext": "aGVsbG8=",
                "EncryptionContext": {"purpose": "test"},
                "GrantTokens": ["t1", "t2"],
                "DryRun": true
            })
        );
        assert_eq!(
            request_json(&[
                "re-encrypt",
                "--ciphertext-blob",
                "AQID",
                "--destination-key-id",
                "k2",
                "--source-encryption-context",
                r#"{"a":"b"}"#,
            ]),
            serde_json::json!({
                "CiphertextBlob": "AQID",
                "DestinationKeyId": "k2",
                "SourceEncryptionContext": {"a": "b"}
            })
        );
        assert_eq!(
            request_json(&["untag-resource", "--key-id", "k", "--tag-keys", "a", "b"]),
            serde_json::json!({"KeyId": "k", "TagKeys": ["a", "b"]})
        );
        assert_eq!(
            request_json(&[
                "schedule-key-deletion",
                "--key-id",
                "k",
                "--pending-window-in-days",
                "7"
            ]),
            serde_json::json!({"KeyId": "k", "PendingWindowInDays": 7})
        );
    }

    #[test]
    fn cli_input_json_is_the_base_and_flags_override_it() {
        assert_eq!(
            request_json(&[
                "encrypt",
                "--cli-input-json",
                r#"{"KeyId":"k","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#,
                "--key-id",
                "other",
            ]),
            serde_json::json!({
                "KeyId": "other",
                "Plaintext": "aGVsbG8=",
                "EncryptionContext": {"a": "b"}
            })
        );
        // Required flags are not required when the JSON may carry them.
        assert_eq!(
            request_json(&[
                "tag-resource",
                "--cli-input-json",
                r#"{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":""}]}"#
            ]),
            serde_json::json!({"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": ""}]})
        );
        assert_eq!(
            request_json(&[
                "decrypt",
                "--cli-input-json",
                r#"{"CiphertextBlob":"AQID","Unknown":1}"#
            ]),
            serde_json::json!({"CiphertextBlob": "AQID"})
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| parse(args).err().map(|e| e.kind());
        assert_eq!(
            kind(&["encrypt", "--key-id", "k"]),
            Some(ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            kind(&["encrypt", "--key-id", "k", "--plaintext", "hello"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["encrypt", "--cli-input-json", "{"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["tag-resource", "--key-id", "k", "--tags", "Key=a"]),
            Some(ErrorKind::ValueValidation)
        );
        assert_eq!(
            kind(&["describe-key", "--key-id", "k", "--bogus"]),
            Some(ErrorKind::UnknownArgument)
        );
        assert_eq!(
            kind(&["no-such-operation"]),
            Some(ErrorKind::InvalidSubcommand)
        );
        assert_eq!(parse(&["--help"]).err().map(|e| e.exit_code()), Some(0));
        assert_eq!(
            parse(&["describe-key"]).err().map(|e| e.exit_code()),
            Some(2)
        );
    }

    #[test]
    fn sign_and_verify_read_message_and_signature_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let msg = dir.path().join("msg");
        std::fs::write(&msg, [0u8, 1, 0xff]).expect("write");
        let sig = dir.path().join("sig.bin");
        std::fs::write(&sig, [0x30u8, 0x06]).expect("write");
        let msg = format!("fileb://{}", msg.display());
        let sig = format!("fileb://{}", sig.display());
        assert_eq!(
            request_json(&[
                "sign",
                "--key-id",
                "alias/signer",
                "--message",
                &msg,
                "--message-type",
                "DIGEST",
                "--signing-algorithm",
                "ECDSA_SHA_256",
                "--grant-tokens",
                "t1",
                "--dry-run",
            ]),
            serde_json::json!({
                "KeyId": "alias/signer",
                "Message": "AAH/",
                "MessageType": "DIGEST",
                "SigningAlgorithm": "ECDSA_SHA_256",
                "GrantTokens": ["t1"],
                "DryRun": true
            })
        );
        assert_eq!(
            request_json(&[
                "verify",
                "--key-id",
                "k",
                "--message",
                &msg,
                "--signature",
                &sig,
                "--signing-algorithm",
                "RSASSA_PSS_SHA_256",
                "--no-dry-run",
            ]),
            serde_json::json!({
                "KeyId": "k",
                "Message": "AAH/",
                "Signature": "MAY=",
                "SigningAlgorithm": "RSASSA_PSS_SHA_256",
                "DryRun": false
            })
        );
        // The flags of a shared group are optional under --cli-input-json too.
        assert_eq!(
            request_json(&[
                "verify",
                "--cli-input-json",
                r#"{"KeyId":"k","Message":"AQID","Signature":"MAY=","SigningAlgorithm":"ECDSA_SHA_256"}"#,
                "--message",
                "aGVsbG8=",
            ]),
            serde_json::json!({
                "KeyId": "k",
                "Message": "aGVsbG8=",
                "Signature": "MAY=",
                "SigningAlgorithm": "ECDSA_SHA_256"
            })
        );
    }

    #[test]
    fn create_grant_takes_operations_and_constraints_in_shorthand_or_json() {
        let base = [
            "create-grant",
            "--key-id",
            "k",
            "--grantee-principal",
            "arn:aws:iam::111122223333:role/app",
            "--operations",
            "Encrypt",
            "Decrypt",
        ];
        let with = |extra: &[&str]| request_json(&[&base[..], extra].concat());
        assert_eq!(
            with(&[
                "--constraints",
                "EncryptionContextSubset={tenant=a,dept=it}",
                "--retiring-principal",
                "arn:aws:iam::111122223333:role/ops",
                "--name",
                "app",
                "--grant-tokens",
                "t1",
                "--dry-run",
            ]),
            serde_json::json!({
                "KeyId": "k",
                "GranteePrincipal": "arn:aws:iam::111122223333:role/app",
                "RetiringPrincipal": "arn:aws:iam::111122223333:role/ops",
                "Operations": ["Encrypt", "Decrypt"],
                "Constraints": {"EncryptionContextSubset": {"tenant": "a", "dept": "it"}},
                "GrantTokens": ["t1"],
                "Name": "app",
                "DryRun": true
            })
        );
        assert_eq!(
            with(&[
                "--constraints",
                r#"{"EncryptionContextEquals":{"tenant":"a"}}"#
            ]),
            serde_json::json!({
                "KeyId": "k",
                "GranteePrincipal": "arn:aws:iam::111122223333:role/app",
                "Operations": ["Encrypt", "Decrypt"],
                "Constraints": {"EncryptionContextEquals": {"tenant": "a"}}
            })
        );
    }

    #[test]
    fn import_key_material_takes_valid_to_as_epoch_seconds_or_iso_8601() {
        let dir = tempfile::tempdir().expect("temp dir");
        let wrapped = dir.path().join("material.enc");
        std::fs::write(&wrapped, [9u8, 9, 9]).expect("write");
        let wrapped = format!("fileb://{}", wrapped.display());
        // The flags up to --encrypted-key-material's value, then `rest`.
        let import = |rest: &[&str]| {
            let base = [
                "import-key-material",
                "--key-id",
                "k",
                "--import-token",
                "AQID",
            ];
            request_json(&[&base[..], &["--encrypted-key-material"], rest].concat())
        };
        let expected = serde_json::json!({
            "KeyId": "k",
            "ImportToken": "AQID",
            "EncryptedKeyMaterial": "CQkJ",
            "ValidTo": 1_798_761_600.0
        });
        assert_eq!(
            import(&[&wrapped, "--valid-to", "2027-01-01T00:00:00Z"]),
            expected
        );
        assert_eq!(import(&[&wrapped, "--valid-to", "1798761600"]), expected);
        assert_eq!(
            import(&[
                "CQkJ",
                "--expiration-model",
                "KEY_MATERIAL_DOES_NOT_EXPIRE",
                "--import-type",
                "EXISTING_KEY_MATERIAL",
                "--key-material-description",
                "v1 from the HSM",
                "--key-material-id",
                "ab",
            ]),
            serde_json::json!({
                "KeyId": "k",
                "ImportToken": "AQID",
                "EncryptedKeyMaterial": "CQkJ",
                "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
                "ImportType": "EXISTING_KEY_MATERIAL",
                "KeyMaterialDescription": "v1 from the HSM",
                "KeyMaterialId": "ab"
            })
        );
    }

    #[test]
    fn list_key_rotations_pages_only_when_asked() {
        assert_eq!(
            request_json(&["list-key-rotations", "--key-id", "k"]),
            serde_json::json!({"KeyId": "k"})
        );
        assert_eq!(
            request_json(&[
                "list-key-rotations",
                "--key-id",
                "k",
                "--include-key-material",
                "ALL_KEY_MATERIAL",
                "--limit",
                "2",
                "--marker",
                "m",
            ]),
            serde_json::json!({
                "KeyId": "k",
                "IncludeKeyMaterial": "ALL_KEY_MATERIAL",
                "Limit": 2,
                "Marker": "m"
            })
        );
    }

    /// `line` split at spaces, as arguments (for values without spaces).
    fn words(line: &str) -> Vec<&str> {
        line.split(' ').collect()
    }

    #[test]
    fn the_other_new_operations_build_their_requests() {
        use serde_json::json;
        let cases = [
            (
                "generate-data-key-pair --key-id k --key-pair-spec ECC_NIST_P256 \
                 --encryption-context a=b --dry-run",
                json!({"KeyId": "k", "KeyPairSpec": "ECC_NIST_P256",
                       "EncryptionContext": {"a": "b"}, "DryRun": true}),
            ),
            (
                "generate-data-key-pair-without-plaintext --key-id k --key-pair-spec RSA_2048 \
                 --grant-tokens t1 t2",
                json!({"KeyId": "k", "KeyPairSpec": "RSA_2048", "GrantTokens": ["t1", "t2"]}),
            ),
            (
                "get-public-key --key-id k --grant-tokens t1",
                json!({"KeyId": "k", "GrantTokens": ["t1"]}),
            ),
            (
                "generate-mac --key-id k --message AQID --mac-algorithm HMAC_SHA_256",
                json!({"KeyId": "k", "Message": "AQID", "MacAlgorithm": "HMAC_SHA_256"}),
            ),
            (
                "verify-mac --key-id k --message AQID --mac-algorithm HMAC_SHA_384 --mac BAUG \
                 --dry-run",
                json!({"KeyId": "k", "Message": "AQID", "MacAlgorithm": "HMAC_SHA_384",
                       "Mac": "BAUG", "DryRun": true}),
            ),
            (
                "derive-shared-secret --key-id k --key-agreement-algorithm ECDH --public-key BAUG",
                json!({"KeyId": "k", "KeyAgreementAlgorithm": "ECDH", "PublicKey": "BAUG"}),
            ),
            (
                "enable-key-rotation --key-id k --rotation-period-in-days 180",
                json!({"KeyId": "k", "RotationPeriodInDays": 180}),
            ),
            ("disable-key-rotation --key-id k", json!({"KeyId": "k"})),
            ("get-key-rotation-status --key-id k", json!({"KeyId": "k"})),
            ("rotate-key-on-demand --key-id k", json!({"KeyId": "k"})),
            (
                "get-parameters-for-import --key-id k --wrapping-algorithm RSAES_OAEP_SHA_256 \
                 --wrapping-key-spec RSA_2048",
                json!({"KeyId": "k", "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                       "WrappingKeySpec": "RSA_2048"}),
            ),
            (
                "delete-imported-key-material --key-id k --key-material-id ab",
                json!({"KeyId": "k", "KeyMaterialId": "ab"}),
            ),
            (
                "list-grants --key-id k --grant-id g --grantee-principal p --limit 10",
                json!({"KeyId": "k", "GrantId": "g", "GranteePrincipal": "p", "Limit": 10}),
            ),
            (
                "list-retirable-grants --retiring-principal p --marker m",
                json!({"RetiringPrincipal": "p", "Marker": "m"}),
            ),
            ("retire-grant --grant-token t", json!({"GrantToken": "t"})),
            (
                "retire-grant --key-id arn --grant-id g --dry-run",
                json!({"KeyId": "arn", "GrantId": "g", "DryRun": true}),
            ),
            (
                "revoke-grant --key-id k --grant-id g --no-dry-run",
                json!({"KeyId": "k", "GrantId": "g", "DryRun": false}),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(request_json(&words(line)), expected, "{line}");
        }
    }

    #[test]
    fn bad_values_of_the_new_flags_are_usage_errors() {
        use clap::error::ErrorKind;
        let invalid = Some(ErrorKind::ValueValidation);
        let missing = Some(ErrorKind::MissingRequiredArgument);
        for (line, expected) in [
            (
                "sign --key-id k --signing-algorithm ECDSA_SHA_256 --message not-base64!",
                invalid,
            ),
            ("sign --key-id k --signing-algorithm ECDSA_SHA_256", missing),
            (
                "verify --key-id k --message AQID --signing-algorithm ECDSA_SHA_256",
                missing,
            ),
            (
                "verify-mac --key-id k --message AQID --mac-algorithm HMAC_SHA_256",
                missing,
            ),
            (
                "import-key-material --key-id k --import-token AQID --encrypted-key-material AQID \
                 --valid-to tomorrow",
                invalid,
            ),
            (
                "import-key-material --key-id k --import-token AQID --encrypted-key-material AQID \
                 --valid-to 2027-02-30T00:00:00Z",
                invalid,
            ),
            (
                "create-grant --key-id k --grantee-principal p --operations Encrypt \
                 --constraints Subset={a=b}",
                invalid,
            ),
            ("create-grant --key-id k --grantee-principal p", missing),
            (
                "enable-key-rotation --key-id k --rotation-period-in-days soon",
                invalid,
            ),
            ("list-grants --key-id k --limit many", invalid),
            ("list-retirable-grants --limit 5", missing),
        ] {
            assert_eq!(
                parse(&words(line)).err().map(|e| e.kind()),
                expected,
                "{line}"
            );
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_operation() {
        let k = parse(&[
            "--region",
            "eu-west-1",
            "list-keys",
            "--output",
            "text",
            "--endpoint",
            "h:1",
        ])
        .expect("parses");
        assert_eq!(k.global.region.as_deref(), Some("eu-west-1"));
        assert_eq!(k.global.output, OutputFormat::Text);
        assert_eq!(k.global.endpoint.as_deref(), Some("h:1"));
        let k = parse(&[
            "decrypt",
            "--ciphertext-blob",
            "AQID",
            "--output-blob",
            "Plaintext:-",
        ])
        .expect("parses");
        assert_eq!(k.global.output_blob.len(), 1);
    }

    #[test]
    fn list_operations_start_unpaged() {
        assert_eq!(request_json(&["list-keys"]), serde_json::json!({}));
        assert_eq!(
            request_json(&["list-keys", "--limit", "5", "--marker", "m"]),
            serde_json::json!({"Limit": 5, "Marker": "m"})
        );
    }

    #[test]
    fn put_key_policy_reads_the_policy_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("policy.json");
        std::fs::write(&p, r#"{"Version":"2012-10-17","Statement":[]}"#).expect("write");
        let path = format!("file://{}", p.display());
        assert_eq!(
            request_json(&["put-key-policy", "--key-id", "k", "--policy", &path]),
            serde_json::json!({"KeyId": "k", "Policy": r#"{"Version":"2012-10-17","Statement":[]}"#})
        );
    }
}
