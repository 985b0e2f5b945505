//! Compiles every `.proto` under the workspace's `proto/` directory into Rust (messages, tonic
//! clients and servers), using the `protoc` shipped by `protoc-bin-vendored` so that no system
//! `protoc` is needed.
//!
//! The messages of `kmsim.kms.v1` also get serde derives that spell them exactly as the AWS JSON
//! 1.1 protocol does (see `src/json.rs`). The per-field attributes are chosen from the compiled
//! descriptors, not from a hand-kept list, so a field added to the proto is covered by the same
//! rules without touching this file.

use std::path::{Path, PathBuf};

/// The proto root, relative to this crate; also the only include path, so imports are written
/// as `kmsim/<service>/v1/<service>.proto`.
const PROTO_ROOT: &str = "../../proto";

/// The package whose messages mirror AWS shapes and so get AWS JSON serde attributes.
const KMS_PACKAGE: &str = "kmsim.kms.v1";

/// Members whose AWS name is not the PascalCase of their snake_case field name
/// (`(message.field, AWS member name)`). Checked against the AWS API Reference (docs/AWS-BEHAVIOUR.md §1); only
/// `KeyMetadata.AWSAccountId` keeps its acronym in capitals.
const AWS_NAME_EXCEPTIONS: &[(&str, &str)] = &[("KeyMetadata.aws_account_id", "AWSAccountId")];

/// Members that AWS always sends, even empty, so they must not be skipped when empty
/// (`MultiRegionConfiguration.ReplicaKeys` is `[]` for a primary without replicas).
const ALWAYS_SERIALIZED: &[&str] = &[
    "MultiRegionConfiguration.replica_keys",
    // AWS answers an empty page of a List operation with an empty list, not without the member.
    "ListKeysResponse.keys",
    "ListAliasesResponse.aliases",
    "ListResourceTagsResponse.tags",
    "ListKeyPoliciesResponse.policy_names",
    "ListKeyRotationsResponse.rotations",
    "ListGrantsResponse.grants",
];

// Values of `google.protobuf.FieldDescriptorProto` enums (descriptor.proto); `prost-types`, which
// names them, is not a direct dependency of this crate.
/// `Label::LABEL_REPEATED`
const LABEL_REPEATED: i32 = 3;
/// `Type::TYPE_MESSAGE`
const TYPE_MESSAGE: i32 = 11;
/// `Type::TYPE_BYTES`
const TYPE_BYTES: i32 = 12;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A directory makes cargo rerun when any file below it changes, including added files.
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    println!("cargo:rerun-if-changed=build.rs");

    let mut protos = Vec::new();
    collect_protos(Path::new(PROTO_ROOT), &mut protos)?;
    // Deterministic order: the generated code must not depend on directory iteration order.
    protos.sort();
    if protos.is_empty() {
        return Err(format!("no .proto files under {PROTO_ROOT}").into());
    }

    // Handing the path to prost-build directly is equivalent to setting `PROTOC`, without
    // mutating the process environment (`std::env::set_var` is `unsafe` from edition 2024 on,
    // and the workspace forbids `unsafe`).
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Relayed bodies are handed on, not inspected: `Bytes` lets them move without a copy.
    config.bytes([".kmsim.relay.v1"]);
    // Run protoc once, read the descriptors to choose the serde attributes, then generate from
    // the same descriptors.
    let fds = config.load_fds(&protos, &[PathBuf::from(PROTO_ROOT)])?;

    let mut builder = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Our own rerun-if-changed above covers the whole directory.
        .emit_rerun_if_changed(false)
        .type_attribute(
            format!(".{KMS_PACKAGE}"),
            "#[derive(serde::Serialize, serde::Deserialize)]",
        )
        // `default`: absent members are `None`/empty; unknown members are ignored, as AWS does.
        .type_attribute(
            format!(".{KMS_PACKAGE}"),
            r#"#[serde(rename_all = "PascalCase", default)]"#,
        );
    for (path, attribute) in kms_field_attributes(&fds)? {
        builder = builder.field_attribute(path, attribute);
    }
    builder.compile_fds_with_config(fds, config)?;
    Ok(())
}

/// The serde attributes of every field of every message of [`KMS_PACKAGE`], as
/// `(prost path, attribute)`.
fn kms_field_attributes(
    fds: &tonic_prost_build::FileDescriptorSet,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut renamed = Vec::new();
    for file in fds.file.iter().filter(|f| f.package() == KMS_PACKAGE) {
        for message in &file.message_type {
            // `map<K, V>` compiles to a nested map-entry message; anything else nested would
            // need its own attributes.
            if !message
                .nested_type
                .iter()
                .all(|n| n.options.as_ref().is_some_and(|o| o.map_entry()))
            {
                return Err(format!(
                    "{}: nested messages are not supported by the AWS JSON attributes",
                    message.name()
                ));
            }
            for field in &message.field {
                let short = format!("{}.{}", message.name(), field.name());
                let path = format!(".{KMS_PACKAGE}.{short}");
                let repeated = field.label == Some(LABEL_REPEATED);
                let bytes = field.r#type == Some(TYPE_BYTES);
                let map = repeated
                    && field.r#type == Some(TYPE_MESSAGE)
                    && message.nested_type.iter().any(|n| {
                        n.options.as_ref().is_some_and(|o| o.map_entry())
                            && field.type_name().ends_with(&format!(".{}", n.name()))
                    });
                let skip = if ALWAYS_SERIALIZED.contains(&short.as_str()) {
                    None
                } else if map {
                    Some("::std::collections::HashMap::is_empty")
                } else if repeated {
                    Some("::std::vec::Vec::is_empty")
                } else if field.proto3_optional() || field.r#type == Some(TYPE_MESSAGE) {
                    Some("::core::option::Option::is_none")
                } else {
                    return Err(format!(
                        "{short}: every singular field of {KMS_PACKAGE} must be `optional`"
                    ));
                };
                if let Some(skip) = skip {
                    out.push((
                        path.clone(),
                        format!(r#"#[serde(skip_serializing_if = "{skip}")]"#),
                    ));
                }
                if bytes {
                    if repeated {
                        return Err(format!("{short}: repeated bytes are not supported"));
                    }
                    out.push((
                        path.clone(),
                        r#"#[serde(with = "crate::json::b64_opt")]"#.to_string(),
                    ));
                }
                if let Some((_, aws)) = AWS_NAME_EXCEPTIONS.iter().find(|(f, _)| *f == short) {
                    out.push((path.clone(), format!(r#"#[serde(rename = "{aws}")]"#)));
                    renamed.push(short.clone());
                }
            }
        }
    }
    // A stale exception (field renamed or removed) would silently stop applying.
    for (field, _) in AWS_NAME_EXCEPTIONS {
        if !renamed.iter().any(|r| r == field) {
            return Err(format!(
                "AWS_NAME_EXCEPTIONS names {field}, which does not exist"
            ));
        }
    }
    Ok(out)
}

/// Appends every `*.proto` file below `dir` (recursively) to `out`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
