//! Flags of the key rotation operations: enable-key-rotation, disable-key-rotation,
//! get-key-rotation-status, rotate-key-on-demand, list-key-rotations.

use clap::Args;

use kmsim_proto::kms::v1::{
    DisableKeyRotationRequest, EnableKeyRotationRequest, GetKeyRotationStatusRequest,
    ListKeyRotationsRequest, RotateKeyOnDemandRequest,
};

use super::flags::{ApplyTo, PageFlags};
use super::params;
use super::set;

/// Enables automatic rotation of the key material of the specified symmetric encryption KMS
/// key.
///
/// Example: kmsim kms enable-key-rotation --key-id KEY --rotation-period-in-days 180
#[derive(Args)]
pub struct EnableKeyRotationArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Days between automatic rotations (90..2560, default 365).
    #[arg(long, value_name = "DAYS")]
    rotation_period_in_days: Option<i32>,
    /// The whole request as AWS JSON ({"KeyId":"…","RotationPeriodInDays":180}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<EnableKeyRotationRequest>)]
    cli_input_json: Option<EnableKeyRotationRequest>,
}

impl EnableKeyRotationArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> EnableKeyRotationRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.rotation_period_in_days, self.rotation_period_in_days);
        r
    }
}

/// Disables automatic rotation of the key material of the specified symmetric encryption KMS
/// key.
///
/// Example: kmsim kms disable-key-rotation --key-id KEY
#[derive(Args)]
pub struct DisableKeyRotationArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DisableKeyRotationRequest>)]
    cli_input_json: Option<DisableKeyRotationRequest>,
}

impl DisableKeyRotationArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DisableKeyRotationRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

/// Provides detailed information about the rotation status for a KMS key: whether automatic
/// rotation is enabled, the rotation period and the next scheduled rotation date.
///
/// Example: kmsim kms get-key-rotation-status --key-id KEY
#[derive(Args)]
pub struct GetKeyRotationStatusArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GetKeyRotationStatusRequest>)]
    cli_input_json: Option<GetKeyRotationStatusRequest>,
}

impl GetKeyRotationStatusArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GetKeyRotationStatusRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

/// Immediately initiates rotation of the key material of the specified symmetric encryption
/// KMS key.
///
/// Example: kmsim kms rotate-key-on-demand --key-id KEY
#[derive(Args)]
pub struct RotateKeyOnDemandArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<RotateKeyOnDemandRequest>)]
    cli_input_json: Option<RotateKeyOnDemandRequest>,
}

impl RotateKeyOnDemandArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> RotateKeyOnDemandRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

/// Returns information about the key materials associated with the specified KMS key.
///
/// Example: kmsim kms list-key-rotations --key-id KEY --include-key-material ALL_KEY_MATERIAL
#[derive(Args)]
pub struct ListKeyRotationsArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Which materials: ROTATIONS_ONLY (default, the ones rotated in) or ALL_KEY_MATERIAL.
    #[arg(long, value_name = "WHICH")]
    include_key_material: Option<String>,
    #[command(flatten)]
    page: PageFlags,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListKeyRotationsRequest>)]
    cli_input_json: Option<ListKeyRotationsRequest>,
}

impl ListKeyRotationsArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListKeyRotationsRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.include_key_material, self.include_key_material);
        self.page.apply_to(&mut r);
        r
    }
}

flags_of! {
    EnableKeyRotationRequest => EnableKeyRotationArgs;
    DisableKeyRotationRequest => DisableKeyRotationArgs;
    GetKeyRotationStatusRequest => GetKeyRotationStatusArgs;
    RotateKeyOnDemandRequest => RotateKeyOnDemandArgs;
    ListKeyRotationsRequest => ListKeyRotationsArgs, pages: "Rotations";
}
