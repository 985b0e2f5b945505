//! Flags of the key lifecycle operations: create-key, describe-key, list-keys, enable-key,
//! disable-key, update-key-description, schedule-key-deletion, cancel-key-deletion.

use clap::Args;

use kmsim_proto::kms::v1::{
    CancelKeyDeletionRequest, CreateKeyRequest, DescribeKeyRequest, DisableKeyRequest,
    EnableKeyRequest, ListKeysRequest, ScheduleKeyDeletionRequest, UpdateKeyDescriptionRequest,
};

use super::params::{self, Tags};
use super::{bool_flag, set, set_list};

/// Creates a unique customer managed KMS key in the account and Region.
///
/// Without flags it creates a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT);
/// --multi-region makes it the primary key of a multi-Region key set.
#[derive(Args)]
pub struct CreateKeyArgs {
    /// Key policy document (JSON), literal or file://PATH; default: the default key policy.
    #[arg(long, value_name = "JSON", value_parser = params::text)]
    policy: Option<String>,
    /// Description of the key (0..8192 characters), literal or file://PATH.
    #[arg(long, value_parser = params::text)]
    description: Option<String>,
    /// Key usage: ENCRYPT_DECRYPT (default for symmetric keys), SIGN_VERIFY, GENERATE_VERIFY_MAC
    /// or KEY_AGREEMENT.
    #[arg(long, value_name = "USAGE")]
    key_usage: Option<String>,
    /// Deprecated alias of --key-spec.
    #[arg(long, value_name = "SPEC")]
    customer_master_key_spec: Option<String>,
    /// Key spec, e.g. SYMMETRIC_DEFAULT (default), RSA_2048, ECC_NIST_P256, HMAC_256.
    #[arg(long, value_name = "SPEC")]
    key_spec: Option<String>,
    /// Source of the key material: AWS_KMS (default), EXTERNAL, AWS_CLOUDHSM or
    /// EXTERNAL_KEY_STORE.
    #[arg(long)]
    origin: Option<String>,
    /// Custom key store to create the key in.
    #[arg(long, value_name = "ID")]
    custom_key_store_id: Option<String>,
    /// Skip the check that the caller can still manage the key under --policy.
    #[arg(long, overrides_with = "no_bypass_policy_lockout_safety_check")]
    bypass_policy_lockout_safety_check: bool,
    /// Keep the policy lockout safety check (the default).
    #[arg(long, overrides_with = "bypass_policy_lockout_safety_check")]
    no_bypass_policy_lockout_safety_check: bool,
    /// Tags for the key: TagKey=KEY,TagValue=VALUE per argument, or a JSON list of
    /// {"TagKey":…,"TagValue":…}, literal or file://PATH.
    #[arg(long, value_name = "TAG", num_args = 1.., value_parser = params::tags)]
    tags: Option<Vec<Tags>>,
    /// Create a multi-Region primary key (ID mrk-…), which can be replicated to other Regions.
    #[arg(long, overrides_with = "no_multi_region")]
    multi_region: bool,
    /// Create a single-Region key (the default).
    #[arg(long, overrides_with = "multi_region")]
    no_multi_region: bool,
    /// ID of the external key backing the key (external key stores only).
    #[arg(long, value_name = "ID")]
    xks_key_id: Option<String>,
    /// The whole request as AWS JSON (e.g. {"Description":"d","MultiRegion":true}), literal
    /// or file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<CreateKeyRequest>)]
    cli_input_json: Option<CreateKeyRequest>,
}

impl CreateKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> CreateKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.policy, self.policy);
        set(&mut r.description, self.description);
        set(&mut r.key_usage, self.key_usage);
        set(
            &mut r.customer_master_key_spec,
            self.customer_master_key_spec,
        );
        set(&mut r.key_spec, self.key_spec);
        set(&mut r.origin, self.origin);
        set(&mut r.custom_key_store_id, self.custom_key_store_id);
        set(
            &mut r.bypass_policy_lockout_safety_check,
            bool_flag(
                self.bypass_policy_lockout_safety_check,
                self.no_bypass_policy_lockout_safety_check,
            ),
        );
        set_list(
            &mut r.tags,
            self.tags
                .map(|t| t.into_iter().flat_map(|Tags(t)| t).collect()),
        );
        set(
            &mut r.multi_region,
            bool_flag(self.multi_region, self.no_multi_region),
        );
        set(&mut r.xks_key_id, self.xks_key_id);
        r
    }
}

/// Returns detailed information about a KMS key.
#[derive(Args)]
pub struct DescribeKeyArgs {
    /// The key: key ID, key ARN, alias name (alias/NAME) or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DescribeKeyRequest>)]
    cli_input_json: Option<DescribeKeyRequest>,
}

impl DescribeKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DescribeKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        r
    }
}

/// Gets a list of all KMS keys in the account and Region.
///
/// Follows NextMarker and prints every key, like the AWS CLI, unless --limit, --marker or
/// --no-paginate asks for one page.
#[derive(Args)]
pub struct ListKeysArgs {
    /// Page size (1..1000, default 100); only that one page is printed, with NextMarker and
    /// Truncated.
    #[arg(long, value_name = "N")]
    limit: Option<i32>,
    /// NextMarker of the previous page; only that one page is printed.
    #[arg(long)]
    marker: Option<String>,
    /// The whole request as AWS JSON ({"Limit":10}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListKeysRequest>)]
    cli_input_json: Option<ListKeysRequest>,
}

impl ListKeysArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListKeysRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.limit, self.limit);
        set(&mut r.marker, self.marker);
        r
    }
}

/// Sets the key state of a KMS key to enabled, allowing its use in cryptographic operations.
#[derive(Args)]
pub struct EnableKeyArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<EnableKeyRequest>)]
    cli_input_json: Option<EnableKeyRequest>,
}

impl EnableKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> EnableKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

/// Sets the state of a KMS key to disabled, preventing its use in cryptographic operations.
#[derive(Args)]
pub struct DisableKeyArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DisableKeyRequest>)]
    cli_input_json: Option<DisableKeyRequest>,
}

impl DisableKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DisableKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

/// Updates the description of a KMS key.
#[derive(Args)]
pub struct UpdateKeyDescriptionArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// New description (0..8192 characters), literal or file://PATH.
    #[arg(long, value_parser = params::text, required_unless_present = "cli_input_json")]
    description: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…","Description":"…"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<UpdateKeyDescriptionRequest>)]
    cli_input_json: Option<UpdateKeyDescriptionRequest>,
}

impl UpdateKeyDescriptionArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> UpdateKeyDescriptionRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.description, self.description);
        r
    }
}

/// Schedules the deletion of a KMS key after a waiting period of 7 to 30 days.
#[derive(Args)]
pub struct ScheduleKeyDeletionArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Waiting period in days before the key is deleted (7..30, default 30).
    #[arg(long, value_name = "DAYS")]
    pending_window_in_days: Option<i32>,
    /// The whole request as AWS JSON ({"KeyId":"…","PendingWindowInDays":7}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ScheduleKeyDeletionRequest>)]
    cli_input_json: Option<ScheduleKeyDeletionRequest>,
}

impl ScheduleKeyDeletionArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ScheduleKeyDeletionRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.pending_window_in_days, self.pending_window_in_days);
        r
    }
}

/// Cancels the deletion of a KMS key; the key is then disabled.
#[derive(Args)]
pub struct CancelKeyDeletionArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<CancelKeyDeletionRequest>)]
    cli_input_json: Option<CancelKeyDeletionRequest>,
}

impl CancelKeyDeletionArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> CancelKeyDeletionRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        r
    }
}

flags_of! {
    CreateKeyRequest => CreateKeyArgs;
    DescribeKeyRequest => DescribeKeyArgs;
    ListKeysRequest => ListKeysArgs, pages: "Keys";
    EnableKeyRequest => EnableKeyArgs;
    DisableKeyRequest => DisableKeyArgs;
    UpdateKeyDescriptionRequest => UpdateKeyDescriptionArgs;
    ScheduleKeyDeletionRequest => ScheduleKeyDeletionArgs;
    CancelKeyDeletionRequest => CancelKeyDeletionArgs;
}
