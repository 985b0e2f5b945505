//! Flags of the alias operations: create-alias, update-alias, delete-alias, list-aliases.

use clap::Args;

use kmsim_proto::kms::v1::{
    CreateAliasRequest, DeleteAliasRequest, ListAliasesRequest, UpdateAliasRequest,
};

use super::params;
use super::set;

/// Creates a friendly name (alias/NAME) for a KMS key.
#[derive(Args)]
pub struct CreateAliasArgs {
    /// The alias to create: alias/NAME (letters, digits, /_-; not alias/aws/…).
    #[arg(long, value_name = "ALIAS", required_unless_present = "cli_input_json")]
    alias_name: Option<String>,
    /// The key the alias points to: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    target_key_id: Option<String>,
    /// The whole request as AWS JSON ({"AliasName":"alias/a","TargetKeyId":"…"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<CreateAliasRequest>)]
    cli_input_json: Option<CreateAliasRequest>,
}

impl CreateAliasArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> CreateAliasRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.alias_name, self.alias_name);
        set(&mut r.target_key_id, self.target_key_id);
        r
    }
}

/// Associates an existing alias with a different KMS key.
#[derive(Args)]
pub struct UpdateAliasArgs {
    /// The alias to change: alias/NAME.
    #[arg(long, value_name = "ALIAS", required_unless_present = "cli_input_json")]
    alias_name: Option<String>,
    /// The key the alias will point to: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    target_key_id: Option<String>,
    /// The whole request as AWS JSON ({"AliasName":"alias/a","TargetKeyId":"…"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<UpdateAliasRequest>)]
    cli_input_json: Option<UpdateAliasRequest>,
}

impl UpdateAliasArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> UpdateAliasRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.alias_name, self.alias_name);
        set(&mut r.target_key_id, self.target_key_id);
        r
    }
}

/// Deletes the specified alias; the key it pointed to is not affected.
#[derive(Args)]
pub struct DeleteAliasArgs {
    /// The alias to delete: alias/NAME.
    #[arg(long, value_name = "ALIAS", required_unless_present = "cli_input_json")]
    alias_name: Option<String>,
    /// The whole request as AWS JSON ({"AliasName":"alias/a"}), literal or file://PATH; flags
    /// given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DeleteAliasRequest>)]
    cli_input_json: Option<DeleteAliasRequest>,
}

impl DeleteAliasArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DeleteAliasRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.alias_name, self.alias_name);
        r
    }
}

/// Gets a list of aliases in the account and Region, or of one KMS key.
///
/// Follows NextMarker and prints every alias, like the AWS CLI, unless --limit, --marker or
/// --no-paginate asks for one page.
#[derive(Args)]
pub struct ListAliasesArgs {
    /// Only the aliases of this key: key ID or key ARN.
    #[arg(long, value_name = "KEY")]
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
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListAliasesRequest>)]
    cli_input_json: Option<ListAliasesRequest>,
}

impl ListAliasesArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListAliasesRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.limit, self.limit);
        set(&mut r.marker, self.marker);
        r
    }
}

flags_of! {
    CreateAliasRequest => CreateAliasArgs;
    UpdateAliasRequest => UpdateAliasArgs;
    DeleteAliasRequest => DeleteAliasArgs;
    ListAliasesRequest => ListAliasesArgs, pages: "Aliases";
}
