//! Flags of the grant operations: create-grant, list-grants, list-retirable-grants,
//! retire-grant, revoke-grant.

use clap::Args;

use kmsim_proto::kms::v1::{
    CreateGrantRequest, GrantConstraints, ListGrantsRequest, ListRetirableGrantsRequest,
    RetireGrantRequest, RevokeGrantRequest,
};

use super::flags::{ApplyTo, PageFlags};
use super::params;
use super::{set, set_list, DryRunFlags};

/// Adds a grant to a KMS key.
///
/// Example: kmsim kms create-grant --key-id KEY --grantee-principal
/// arn:aws:iam::111122223333:role/app --operations Encrypt Decrypt --constraints
/// EncryptionContextSubset={tenant=a}
#[derive(Args)]
pub struct CreateGrantArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The principal that gets the permissions (an ARN).
    #[arg(
        long,
        value_name = "PRINCIPAL",
        required_unless_present = "cli_input_json"
    )]
    grantee_principal: Option<String>,
    /// The principal that may retire the grant (an ARN).
    #[arg(long, value_name = "PRINCIPAL")]
    retiring_principal: Option<String>,
    /// The operations the grant allows, e.g. Encrypt Decrypt GenerateDataKey DescribeKey.
    #[arg(long, value_name = "OPERATION", num_args = 1.., required_unless_present = "cli_input_json")]
    operations: Option<Vec<String>>,
    /// Encryption context the grant requires: EncryptionContextSubset={k=v,…} and/or
    /// EncryptionContextEquals={k=v,…}, or a JSON object of those, literal or file://PATH.
    #[arg(long, value_name = "CONSTRAINTS", value_parser = params::grant_constraints)]
    constraints: Option<GrantConstraints>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    /// Friendly name; creating a grant again with the same name and parameters returns the
    /// same grant.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON
    /// ({"KeyId":"…","GranteePrincipal":"…","Operations":["Encrypt"]}),
    /// literal or file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<CreateGrantRequest>)]
    cli_input_json: Option<CreateGrantRequest>,
}

impl CreateGrantArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> CreateGrantRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.grantee_principal, self.grantee_principal);
        set(&mut r.retiring_principal, self.retiring_principal);
        set_list(&mut r.operations, self.operations);
        set(&mut r.constraints, self.constraints);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.name, self.name);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

/// Gets a list of all grants for the specified KMS key.
///
/// Example: kmsim kms list-grants --key-id KEY
#[derive(Args)]
pub struct ListGrantsArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Only the grant with this ID.
    #[arg(long, value_name = "ID")]
    grant_id: Option<String>,
    /// Only the grants to this principal.
    #[arg(long, value_name = "PRINCIPAL")]
    grantee_principal: Option<String>,
    #[command(flatten)]
    page: PageFlags,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListGrantsRequest>)]
    cli_input_json: Option<ListGrantsRequest>,
}

impl ListGrantsArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListGrantsRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.grant_id, self.grant_id);
        set(&mut r.grantee_principal, self.grantee_principal);
        self.page.apply_to(&mut r);
        r
    }
}

/// Returns information about all grants in the account and Region that have the specified
/// retiring principal.
///
/// Example: kmsim kms list-retirable-grants --retiring-principal
/// arn:aws:iam::111122223333:role/ops
#[derive(Args)]
pub struct ListRetirableGrantsArgs {
    /// The retiring principal whose grants to list (an ARN).
    #[arg(
        long,
        value_name = "PRINCIPAL",
        required_unless_present = "cli_input_json"
    )]
    retiring_principal: Option<String>,
    #[command(flatten)]
    page: PageFlags,
    /// The whole request as AWS JSON ({"RetiringPrincipal":"…"}), literal or file://PATH; flags
    /// given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ListRetirableGrantsRequest>)]
    cli_input_json: Option<ListRetirableGrantsRequest>,
}

impl ListRetirableGrantsArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ListRetirableGrantsRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.retiring_principal, self.retiring_principal);
        self.page.apply_to(&mut r);
        r
    }
}

/// Deletes a grant, named by its grant token or by its key and grant ID.
///
/// Example: kmsim kms retire-grant --grant-token TOKEN
#[derive(Args)]
pub struct RetireGrantArgs {
    /// The grant's token (from create-grant); or give --key-id and --grant-id.
    #[arg(long, value_name = "TOKEN")]
    grant_token: Option<String>,
    /// The key ARN of the grant's key (with --grant-id).
    #[arg(long, value_name = "KEY")]
    key_id: Option<String>,
    /// The grant ID (with --key-id).
    #[arg(long, value_name = "ID")]
    grant_id: Option<String>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON ({"GrantToken":"…"}), literal or file://PATH; flags given
    /// as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<RetireGrantRequest>)]
    cli_input_json: Option<RetireGrantRequest>,
}

impl RetireGrantArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> RetireGrantRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.grant_token, self.grant_token);
        set(&mut r.key_id, self.key_id);
        set(&mut r.grant_id, self.grant_id);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

/// Deletes the specified grant.
///
/// Example: kmsim kms revoke-grant --key-id KEY --grant-id GRANT_ID
#[derive(Args)]
pub struct RevokeGrantArgs {
    /// The key: key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The grant ID (from create-grant or list-grants).
    #[arg(long, value_name = "ID", required_unless_present = "cli_input_json")]
    grant_id: Option<String>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","GrantId":"…"}), literal or file://PATH;
    /// flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<RevokeGrantRequest>)]
    cli_input_json: Option<RevokeGrantRequest>,
}

impl RevokeGrantArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> RevokeGrantRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.grant_id, self.grant_id);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

flags_of! {
    CreateGrantRequest => CreateGrantArgs;
    ListGrantsRequest => ListGrantsArgs, pages: "Grants";
    ListRetirableGrantsRequest => ListRetirableGrantsArgs, pages: "Grants";
    RetireGrantRequest => RetireGrantArgs;
    RevokeGrantRequest => RevokeGrantArgs;
}
