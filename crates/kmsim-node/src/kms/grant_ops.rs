//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, and the
//! check of the `GrantTokens` member every key operation takes. Grants are per Regional key
//! and never cross Regions; what they allow is enforced by authorization, not here.

use kmsim_core::grant::{
    is_grant_id, validate_constraints, validate_grant_name, validate_principal, GrantConstraints,
    GrantRecord,
};
use kmsim_core::ids::{KeyId, RefForms};
use kmsim_core::key::{GrantOperation, KeySpec};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::state::{Command, CommandOutput};
use kmsim_core::KmsError;
use kmsim_crypto::random_hex64;
use kmsim_proto::kms::v1 as pb;

use super::convert::secs;
use super::tokens::{grant_token, open_grant_token};
use super::validate::{limit, required, str_len};
use super::{KmsApi, RequestContext};

fn invalid_grant_id(id: &str) -> KmsError {
    KmsError::InvalidGrantId(format!("Invalid grant ID '{id}'"))
}

fn constraints_from(c: Option<pb::GrantConstraints>) -> Option<GrantConstraints> {
    let c = c?;
    let constraints = GrantConstraints {
        subset: c.encryption_context_subset.into_iter().collect(),
        equals: c.encryption_context_equals.into_iter().collect(),
    };
    (!constraints.is_empty()).then_some(constraints)
}

fn constraints_to(c: &GrantConstraints) -> pb::GrantConstraints {
    pb::GrantConstraints {
        encryption_context_subset: c.subset.clone().into_iter().collect(),
        encryption_context_equals: c.equals.clone().into_iter().collect(),
    }
}

impl KmsApi {
    /// Checks `GrantTokens`: at most 10, each a token this Region issued.
    pub fn check_grant_tokens(&self, tokens: &[String]) -> Result<(), KmsError> {
        super::validate::grant_tokens(tokens)?;
        for t in tokens {
            open_grant_token(&self.materials, t)?;
        }
        Ok(())
    }

    fn grant_entry(&self, g: &GrantRecord) -> pb::GrantListEntry {
        pb::GrantListEntry {
            key_id: Some(self.scope.key_arn(&g.key_id)),
            grant_id: Some(g.grant_id.clone()),
            name: g.name.clone(),
            creation_date: Some(secs(g.creation_ms)),
            grantee_principal: Some(g.grantee.clone()),
            retiring_principal: g.retiring.clone(),
            issuing_account: Some(g.issuing_account.clone()),
            operations: g
                .operations
                .iter()
                .map(|o| o.as_str().to_string())
                .collect(),
            constraints: g.constraints.as_ref().map(constraints_to),
        }
    }

    /// CreateGrant.
    pub async fn create_grant(
        &self,
        _ctx: &RequestContext,
        req: pb::CreateGrantRequest,
    ) -> Result<pb::CreateGrantResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let grantee = required(req.grantee_principal, "granteePrincipal")?;
        validate_principal(&grantee, "granteePrincipal")?;
        if let Some(r) = req.retiring_principal.as_deref() {
            validate_principal(r, "retiringPrincipal")?;
        }
        if let Some(n) = req.name.as_deref() {
            validate_grant_name(n)?;
        }
        self.check_grant_tokens(&req.grant_tokens)?;
        if req.operations.is_empty() {
            return Err(KmsError::Validation(
                "1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        let mut operations: Vec<GrantOperation> = Vec::new();
        for o in &req.operations {
            let op = GrantOperation::parse(o)?;
            if !operations.contains(&op) {
                operations.push(op);
            }
        }
        let (spec, usage) = (key.shared.key_spec, key.shared.key_usage);
        let invalid: Vec<&str> = operations
            .iter()
            .filter(|o| !o.valid_for(spec, usage))
            .map(|o| o.as_str())
            .collect();
        if !invalid.is_empty() {
            return Err(KmsError::Validation(format!(
                "Grant operations [{}] are not valid for {} (key spec {spec}, key usage {usage}).",
                invalid.join(", "),
                self.arn(&key)
            )));
        }
        let constraints = constraints_from(req.constraints);
        if let Some(c) = &constraints {
            validate_constraints(c)?;
            if spec != KeySpec::SymmetricDefault {
                return Err(KmsError::Validation(format!(
                    "Encryption context grant constraints are valid only for symmetric encryption keys, not for {spec}."
                )));
            }
        }
        let arn = self.arn(&key);
        check(
            Operation::CreateGrant,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let grant = GrantRecord {
            grant_id: random_hex64(&mut self.entropy.rng()),
            key_id: key.key_id.clone(),
            name: req.name,
            creation_ms: self.clock.now_ms(),
            grantee,
            retiring: req.retiring_principal,
            issuing_account: self.scope.account_root_arn(),
            operations,
            constraints,
        };
        let grant_id = match self
            .proposer
            .propose(&Command::CreateGrant { grant })
            .await?
        {
            CommandOutput::Grant(id) => id,
            other => {
                return Err(KmsError::Internal(format!(
                    "unexpected command output {other:?}"
                )))
            }
        };
        Ok(pb::CreateGrantResponse {
            grant_token: Some(grant_token(
                &self.materials,
                &key.key_id,
                &grant_id,
                &self.entropy,
            )),
            grant_id: Some(grant_id),
        })
    }

    /// ListGrants.
    pub async fn list_grants(
        &self,
        _ctx: &RequestContext,
        req: pb::ListGrantsRequest,
    ) -> Result<pb::ListGrantsResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let limit = limit(req.limit, 50, 100)?;
        if let Some(id) = req.grant_id.as_deref() {
            str_len(id, "grantId", 1, 128)?;
            if !is_grant_id(id) {
                return Err(invalid_grant_id(id));
            }
        }
        if let Some(p) = req.grantee_principal.as_deref() {
            validate_principal(p, "granteePrincipal")?;
        }
        if let Some(m) = req.marker.as_deref() {
            if !is_grant_id(m) {
                return Err(KmsError::InvalidMarker("Invalid marker".into()));
            }
        }
        let (grants, next) = self.read(|s| {
            s.list_grants(
                &key.key_id,
                req.grant_id.as_deref(),
                req.grantee_principal.as_deref(),
                req.marker.as_deref(),
                limit,
            )
        })?;
        Ok(pb::ListGrantsResponse {
            grants: grants.iter().map(|g| self.grant_entry(g)).collect(),
            truncated: Some(next.is_some()),
            next_marker: next,
        })
    }

    /// ListRetirableGrants: the Region's grants this principal may retire.
    pub async fn list_retirable_grants(
        &self,
        _ctx: &RequestContext,
        req: pb::ListRetirableGrantsRequest,
    ) -> Result<pb::ListGrantsResponse, KmsError> {
        let retiring = required(req.retiring_principal, "retiringPrincipal")?;
        validate_principal(&retiring, "retiringPrincipal")?;
        let limit = limit(req.limit, 50, 100)?;
        let after = match req.marker.as_deref() {
            None => None,
            Some(m) => {
                let parsed = m
                    .split_once(' ')
                    .and_then(|(k, g)| Some((KeyId::parse(k)?, g.to_string())))
                    .filter(|(_, g)| is_grant_id(g));
                Some(parsed.ok_or_else(|| KmsError::InvalidMarker("Invalid marker".into()))?)
            }
        };
        let (grants, next) = self.read(|s| s.list_retirable_grants(&retiring, after, limit))?;
        Ok(pb::ListGrantsResponse {
            grants: grants.iter().map(|g| self.grant_entry(g)).collect(),
            truncated: Some(next.is_some()),
            next_marker: next.map(|(k, g)| format!("{k} {g}")),
        })
    }

    /// The grant a RetireGrant or RevokeGrant names by key and grant ID.
    fn grant_by_id(&self, key_id: String, grant_id: String) -> Result<(KeyId, String), KmsError> {
        let key = self.resolve(&key_id, RefForms::KeyOnly)?;
        str_len(&grant_id, "grantId", 1, 128)?;
        if !is_grant_id(&grant_id) {
            return Err(invalid_grant_id(&grant_id));
        }
        Ok((key.key_id.clone(), grant_id))
    }

    async fn delete_grant(
        &self,
        key_id: KeyId,
        grant_id: String,
        dry_run: Option<bool>,
    ) -> Result<(), KmsError> {
        let key = self.read(|s| s.key(&key_id))?.ok_or_else(|| {
            KmsError::NotFound(format!(
                "Key '{}' does not exist",
                self.scope.key_arn(&key_id)
            ))
        })?;
        let op = Operation::RetireGrant;
        check(op, key.regional.state, key.shared.origin, &self.arn(&key))?;
        if dry_run == Some(true) {
            // Only a dry run answers from this node's view; a real retire lets the leader's
            // apply decide, so a grant just created through another node is found.
            if self.read(|s| s.grant(&key_id, &grant_id).is_none())? {
                return Err(KmsError::NotFound(format!(
                    "Grant ID {grant_id} not found for key {}",
                    self.arn(&key)
                )));
            }
            return Err(KmsError::dry_run());
        }
        self.propose_done(Command::DeleteGrant { key_id, grant_id })
            .await
    }

    /// RetireGrant: by grant token, or by key and grant ID.
    pub async fn retire_grant(
        &self,
        _ctx: &RequestContext,
        req: pb::RetireGrantRequest,
    ) -> Result<pb::RetireGrantResponse, KmsError> {
        let (key_id, grant_id) = match (req.grant_token, req.key_id, req.grant_id) {
            (Some(token), _, _) => {
                str_len(&token, "grantToken", 1, 8192)?;
                open_grant_token(&self.materials, &token)?
            }
            (None, Some(k), Some(g)) => self.grant_by_id(k, g)?,
            _ => {
                return Err(KmsError::Validation(
                    "RetireGrant needs either a GrantToken, or a KeyId and a GrantId.".into(),
                ))
            }
        };
        self.delete_grant(key_id, grant_id, req.dry_run).await?;
        Ok(pb::RetireGrantResponse {})
    }

    /// RevokeGrant.
    pub async fn revoke_grant(
        &self,
        _ctx: &RequestContext,
        req: pb::RevokeGrantRequest,
    ) -> Result<pb::RevokeGrantResponse, KmsError> {
        let (key_id, grant_id) = self.grant_by_id(
            required(req.key_id, "keyId")?,
            required(req.grant_id, "grantId")?,
        )?;
        self.delete_grant(key_id, grant_id, req.dry_run).await?;
        Ok(pb::RevokeGrantResponse {})
    }
}
