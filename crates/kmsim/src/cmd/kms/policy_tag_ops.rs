//! Flags of the tag and key policy operations: tag-resource, untag-resource,
//! list-resource-tags, put-key-policy, get-key-policy, list-key-policies.

use clap::Args;

use kmsim_proto::kms::v1::{
    GetKeyPolicyRequest, ListKeyPoliciesRequest, ListResourceTagsRequest, PutKeyPolicyRequest,
    TagResourceRequest, UntagResourceRequest,
};

use super::params::{self, Tags};
use super::{bool_flag, set, set_list};

/// Adds or edits tags on a customer managed key.
///
/// Example: kmsim kms tag-resource --key-id KEY --tags TagKey=team,TagValue=a
/// TagKey=env,TagValue=dev
#[derive(Args)]
pub struct TagResourceArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Tags to add or overwrite: TagKey=KEY,TagValue=VALUE per argument, or a JSON list of
    /// {"TagKey":…,"TagValue":…}, literal or file://PATH.
    #[arg(long, value_name = "TAG", num_args = 1.., value_parser = params::tags, required_unless_present = "cli_input_json")]
    tags: Option<Vec<Tags>>,
    /// The whole request as AWS JSON ({"KeyId":"…","Tags":[{"TagKey":"k","TagValue":"v"}]}),
    /// literal or file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<TagResourceRequest>)]
    cli_input_json: Option<TagResourceRequest>,
}

impl TagResourceArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> TagResourceRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set_list(
            &mut r.tags,
            self.tags
                .map(|t| t.into_iter().flat_map(|Tags(t)| t).collect()),
        );
        r
    }
}

/// Deletes tags from a customer managed key.
#[derive(Args)]
pub struct UntagResourceArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The keys of the tags to remove.
    #[arg(long, value_name = "TAG_KEY", num_args = 1.., required_unless_present = "cli_input_json")]
    tag_keys: Option<Vec<String>>,
    /// The whole request as AWS JSON ({"KeyId":"…","TagKeys":["k"]}), literal or file://PATH;
    /// flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<UntagResourceRequest>)]
    cli_input_json: Option<UntagResourceRequest>,
}

impl UntagResourceArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> UntagResourceRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set_list(&mut r.tag_keys, self.tag_keys);
        r
    }
}

/// Returns all tags on the specified KMS key.
///
/// Follows NextMarker and prints every tag, like the AWS CLI, unless --limit, --marker or
/// --no-paginate asks for one page.
#[derive(Args)]
pub struct ListResourceTagsArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Page size (1..1000, default 50); only that one page is printed, with NextMarker and
    /// Truncated.
    #[arg(long, value_name = "N")]
    limit: Option<i32>,
    /// NextMarker of the previous page; only that one page is printed.
    #[arg(long)]
    marker: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListResourceTagsRequest>)]
    cli_input_json: Option<ListResourceTagsRequest>,
}

impl ListResourceTagsArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListResourceTagsRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.limit, self.limit);
        set(&mut r.marker, self.marker);
        r
    }
}

/// Attaches a key policy to the specified KMS key, replacing the current one.
///
/// Example: kmsim kms put-key-policy --key-id KEY --policy file://policy.json
#[derive(Args)]
pub struct PutKeyPolicyArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The policy name; only "default" is valid (and the default).
    #[arg(long, value_name = "NAME")]
    policy_name: Option<String>,
    /// The key policy document (JSON), literal or file://PATH.
    #[arg(long, value_name = "JSON", value_parser = params::text, required_unless_present = "cli_input_json")]
    policy: Option<String>,
    /// Skip the check that the caller can still manage the key under the new policy.
    #[arg(long, overrides_with = "no_bypass_policy_lockout_safety_check")]
    bypass_policy_lockout_safety_check: bool,
    /// Keep the policy lockout safety check (the default).
    #[arg(long, overrides_with = "bypass_policy_lockout_safety_check")]
    no_bypass_policy_lockout_safety_check: bool,
    /// The whole request as AWS JSON ({"KeyId":"…","Policy":"…"}), literal or file://PATH;
    /// flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<PutKeyPolicyRequest>)]
    cli_input_json: Option<PutKeyPolicyRequest>,
}

impl PutKeyPolicyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> PutKeyPolicyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.policy_name, self.policy_name);
        set(&mut r.policy, self.policy);
        set(
            &mut r.bypass_policy_lockout_safety_check,
            bool_flag(
                self.bypass_policy_lockout_safety_check,
                self.no_bypass_policy_lockout_safety_check,
            ),
        );
        r
    }
}

/// Gets the key policy of the specified KMS key.
///
/// Tip: … | jq -r .Policy prints the document itself.
#[derive(Args)]
pub struct GetKeyPolicyArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The policy name; only "default" is valid (and the default).
    #[arg(long, value_name = "NAME")]
    policy_name: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GetKeyPolicyRequest>)]
    cli_input_json: Option<GetKeyPolicyRequest>,
}

impl GetKeyPolicyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GetKeyPolicyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.policy_name, self.policy_name);
        r
    }
}

/// Gets the names of the key policies attached to a KMS key (always just "default").
#[derive(Args)]
pub struct ListKeyPoliciesArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Page size (1..1000, default 100); only that one page is printed, with NextMarker and
    /// Truncated.
    #[arg(long, value_name = "N")]
    limit: Option<i32>,
    /// NextMarker of the previous page; only that one page is printed.
    #[arg(long)]
    marker: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListKeyPoliciesRequest>)]
    cli_input_json: Option<ListKeyPoliciesRequest>,
}

impl ListKeyPoliciesArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListKeyPoliciesRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.limit, self.limit);
        set(&mut r.marker, self.marker);
        r
    }
}

flags_of! {
    TagResourceRequest => TagResourceArgs;
    UntagResourceRequest => UntagResourceArgs;
    ListResourceTagsRequest => ListResourceTagsArgs, pages: "Tags";
    PutKeyPolicyRequest => PutKeyPolicyArgs;
    GetKeyPolicyRequest => GetKeyPolicyArgs;
    ListKeyPoliciesRequest => ListKeyPoliciesArgs, pages: "PolicyNames";
}
