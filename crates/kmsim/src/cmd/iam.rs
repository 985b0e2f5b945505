//! `kmsim iam`: IAM of a running cluster. `kmsim iam simulate` asks a node of a Region to
//! judge a request's authorization (admin `SimulateAuthorization`) as the operation would, and
//! prints the decision and what decided it; the run-time changes (`create-user` …) and
//! `get`/`list` are in [`super::iam_change`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use kmsim_proto::admin::v1::{SimulateAuthorizationRequest, SimulateAuthorizationResponse};
use kmsim_sim::cluster::ClusterDir;

/// IAM of a running cluster: judge a request (simulate), change principals, policies and
/// access keys at run time, and show the IAM version of every node.
///
/// IAM starts as the topology's [iam] (version 0). Every change is committed in the IAM home
/// Region ([iam] home_region, default the first Region) as a new version of the whole IAM
/// document, then sent by that Region's synchronizer to every other Region, which applies it
/// through its own Raft: eventually consistent, as IAM is in AWS (--wait returns once every
/// Region holds the new version). Errors carry IAM's codes: NoSuchEntity, EntityAlreadyExists,
/// MalformedPolicyDocument, DeleteConflict, LimitExceeded, ValidationError.
#[derive(Args)]
pub struct IamArgs {
    #[command(subcommand)]
    command: IamCommand,
}

#[derive(Subcommand)]
enum IamCommand {
    // No doc comment here: a variant's would replace SimulateArgs' (its first paragraph is the
    // line in `kmsim iam --help`, the whole of it `kmsim iam simulate --help`).
    Simulate(SimulateArgs),
    #[command(flatten)]
    Change(super::iam_change::ChangeCommand),
    /// Shows the IAM version every node holds (naming the nodes that do not answer) and the
    /// home Region's IAM document (principals, policies, tags, trust policies, access key IDs;
    /// never a secret). Fails when no node of some Region answers.
    Get(super::iam_change::GetArgs),
    /// Shows the IAM version every node holds (naming the nodes that do not answer) and the
    /// principals of the home Region's IAM.
    List(super::iam_change::GetArgs),
}

/// Judges whether a principal may perform a KMS action on a key in a Region, as the KMS
/// operation itself would: the same evaluation (the key's policy and grants in that Region,
/// the principal's identity policies from the topology's `[iam]`, the condition keys the
/// operation supplies), on the Region's committed state. Nothing is run or recorded.
///
/// Prints the decision (`allowed`, `explicitDeny` or `implicitDeny`, as IAM's policy
/// simulator names them), the statement that decided (its policy, `default` being the key
/// policy, and its Sid or index) or the grant, the reason, and AWS's `AccessDeniedException`
/// message when refused. Operations that need several decisions (ReEncrypt, aliases,
/// ReplicateKey) print each. Exit status: 0 when allowed, 1 when refused or on error.
#[derive(Args)]
pub struct SimulateArgs {
    /// The caller: an account root, IAM user, role or assumed-role session ARN (e.g.
    /// arn:aws:iam::111122223333:user/alice).
    #[arg(long)]
    principal: String,
    /// The action, kms:<Operation> (e.g. kms:Decrypt; kms:ReEncryptFrom, kms:ReEncryptTo).
    #[arg(long)]
    action: String,
    /// The key: key ID, key ARN, alias name or alias ARN (omit for actions on no key, such as
    /// kms:CreateKey).
    #[arg(long, default_value = "")]
    key_id: String,
    /// The Region whose node judges, with that Region's key policy and grants [default: the
    /// topology's first].
    #[arg(long)]
    region: Option<String>,
    /// A condition key set for the request, KEY=VALUE (repeatable), e.g. aws:SourceIp=10.0.0.1
    /// or aws:RequestedRegion=eu-west-1; applied after the keys the request supplies.
    #[arg(long = "context", value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// A pair of the request's encryption context, KEY=VALUE (repeatable).
    #[arg(long = "encryption-context", value_parser = parse_pair)]
    encryption_context: Vec<(String, String)>,
    /// A grant token the request carries (repeatable).
    #[arg(long = "grant-token")]
    grant_tokens: Vec<String>,
    /// Further request members, a JSON object in the operation's AWS JSON shape (e.g.
    /// '{"ReplicaRegion":"eu-west-1"}' for kms:ReplicateKey).
    #[arg(long)]
    request_json: Option<String>,
    /// Print the answer as one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

pub(crate) fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))
}

/// `kmsim iam`
pub fn run(a: IamArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        IamCommand::Simulate(s) => simulate(s),
        IamCommand::Change(c) => super::iam_change::change(c),
        IamCommand::Get(g) => super::iam_change::get(g, true),
        IamCommand::List(g) => super::iam_change::get(g, false),
    }
}

fn simulate(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::relayed(&a.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&a.data_dir);
    let dialer = dir.operator_dialer()?;
    let topo = dir.topology()?;
    let region = a
        .region
        .clone()
        .unwrap_or_else(|| topo.regions[0].name.clone());
    let req = SimulateAuthorizationRequest {
        principal_arn: a.principal.clone(),
        action: a.action.clone(),
        key_id: a.key_id.clone(),
        encryption_context: a
            .encryption_context
            .iter()
            .cloned()
            .collect::<HashMap<_, _>>(),
        grant_tokens: a.grant_tokens.clone(),
        context: a.context.iter().cloned().collect::<HashMap<_, _>>(),
        request_json: a.request_json.clone().unwrap_or_default(),
    };
    let rt = super::runtime()?;
    // A node's refusal (a key that does not exist, a bad action) is the answer, not a reason
    // to ask another node.
    let answer = rt.block_on(super::iam_change::on_region(
        &topo,
        &dialer,
        &region,
        |mut c| {
            let req = req.clone();
            async move { c.simulate_authorization(req).await }
        },
    ))?;
    if a.json {
        outln!("{}", to_json(&answer, &a.principal, &region));
    } else {
        print_text(&answer, &a.principal, &region);
    }
    Ok(if answer.decision == "allowed" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn to_json(r: &SimulateAuthorizationResponse, principal: &str, region: &str) -> serde_json::Value {
    serde_json::json!({
        "principal": principal,
        "region": region,
        "decision": r.decision,
        "checks": r.checks.iter().map(|c| serde_json::json!({
            "action": c.action,
            "resource": c.resource,
            "decision": c.decision,
            "statements": c.statements.iter().map(|s| serde_json::json!({
                "policyType": s.policy_type,
                "policy": s.policy,
                "index": s.index,
                "sid": (!s.sid.is_empty()).then_some(&s.sid),
            })).collect::<Vec<_>>(),
            "grantId": (!c.grant_id.is_empty()).then_some(&c.grant_id),
            "reason": c.reason,
            "message": (!c.message.is_empty()).then_some(&c.message),
        })).collect::<Vec<_>>(),
    })
}

fn print_text(r: &SimulateAuthorizationResponse, principal: &str, region: &str) {
    outln!("principal: {principal}");
    outln!("region:    {region}");
    outln!("decision:  {}", r.decision);
    for c in &r.checks {
        outln!("");
        outln!("{} on {}", c.action, c.resource);
        outln!("  decision:  {}", c.decision);
        for s in &c.statements {
            let which = if s.sid.is_empty() {
                format!("statement #{}", s.index)
            } else {
                format!("statement \"{}\" (#{})", s.sid, s.index)
            };
            let policy = if s.policy_type == "key" {
                format!("key policy {}", s.policy)
            } else {
                format!("identity policy {}", s.policy)
            };
            outln!("  statement: {policy}, {which}");
        }
        if !c.grant_id.is_empty() {
            outln!("  grant:     {}", c.grant_id);
        }
        outln!("  reason:    {}", c.reason);
        if !c.message.is_empty() {
            outln!("  message:   {}", c.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_key_equals_value() {
        assert_eq!(
            parse_pair("aws:SourceIp=10.0.0.1"),
            Ok(("aws:SourceIp".into(), "10.0.0.1".into()))
        );
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=v").is_err());
    }
}
