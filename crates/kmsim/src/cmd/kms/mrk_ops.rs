//! Flags of the multi-Region operations: replicate-key, update-primary-region.

use clap::Args;

use kmsim_proto::kms::v1::{ReplicateKeyRequest, UpdatePrimaryRegionRequest};

use super::params::{self, Tags};
use super::{bool_flag, set, set_list};

/// Replicates a multi-Region primary key into another Region; the replica is Creating until
/// its Region has created it.
///
/// Example: kmsim kms replicate-key --key-id mrk-… --replica-region eu-west-1 --description copy
#[derive(Args)]
pub struct ReplicateKeyArgs {
    /// The multi-Region primary key: key ID or key ARN (of the Region called).
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The Region of the new replica, e.g. eu-west-1.
    #[arg(
        long,
        value_name = "REGION",
        required_unless_present = "cli_input_json"
    )]
    replica_region: Option<String>,
    /// Key policy of the replica (JSON, literal or file://PATH); default: the default policy.
    #[arg(long, value_name = "POLICY", value_parser = params::text)]
    policy: Option<String>,
    /// Skip the policy lockout safety check.
    #[arg(long, overrides_with = "no_bypass_policy_lockout_safety_check")]
    bypass_policy_lockout_safety_check: bool,
    /// Do the policy lockout safety check (the default).
    #[arg(long, overrides_with = "bypass_policy_lockout_safety_check")]
    no_bypass_policy_lockout_safety_check: bool,
    /// Description of the replica (never copied from the primary).
    #[arg(long)]
    description: Option<String>,
    /// Tags of the replica: TagKey=k,TagValue=v … or a JSON list.
    #[arg(long, value_name = "TAGS", num_args = 1.., value_parser = params::tags)]
    tags: Option<Vec<Tags>>,
    /// The whole request as AWS JSON ({"KeyId":"…","ReplicaRegion":"…"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ReplicateKeyRequest>)]
    cli_input_json: Option<ReplicateKeyRequest>,
}

impl ReplicateKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ReplicateKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.replica_region, self.replica_region);
        set(&mut r.policy, self.policy);
        set(
            &mut r.bypass_policy_lockout_safety_check,
            bool_flag(
                self.bypass_policy_lockout_safety_check,
                self.no_bypass_policy_lockout_safety_check,
            ),
        );
        set(&mut r.description, self.description);
        set_list(
            &mut r.tags,
            self.tags
                .map(|all| all.into_iter().flat_map(|Tags(t)| t).collect()),
        );
        r
    }
}

/// Makes the replica in another Region the primary key of its multi-Region set.
///
/// Example: kmsim kms update-primary-region --key-id mrk-… --primary-region eu-west-1
#[derive(Args)]
pub struct UpdatePrimaryRegionArgs {
    /// The current primary key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The Region of the replica to promote.
    #[arg(
        long,
        value_name = "REGION",
        required_unless_present = "cli_input_json"
    )]
    primary_region: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…","PrimaryRegion":"…"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<UpdatePrimaryRegionRequest>)]
    cli_input_json: Option<UpdatePrimaryRegionRequest>,
}

impl UpdatePrimaryRegionArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> UpdatePrimaryRegionRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.primary_region, self.primary_region);
        r
    }
}

flags_of! {
    ReplicateKeyRequest => ReplicateKeyArgs;
    UpdatePrimaryRegionRequest => UpdatePrimaryRegionArgs;
}
