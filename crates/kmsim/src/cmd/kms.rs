//! `kmsim kms <operation>` (being written).

use std::process::ExitCode;

use clap::Args;

/// Calls the KMS API of a cluster like `aws kms` does.
#[derive(Args)]
pub struct KmsArgs {}

/// `kmsim kms …`
pub fn run(_a: KmsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
