//! Applying grant commands, and reading grants.

use crate::error::KmsError;
use crate::grant::GrantRecord;
use crate::ids::KeyId;
use crate::key_state::{check, Operation};

use super::records::{prefix_end, successor};
use super::{
    grant_record_key, grants_prefix, page, CommandOutput, CommandResult, KmsState, RecordChange,
    GRANT_PREFIX,
};

impl KmsState {
    /// The grants of one key, in grant-ID order.
    pub fn grants_of(&self, key_id: &KeyId) -> Vec<GrantRecord> {
        let prefix = grants_prefix(key_id);
        let mut grants = Vec::new();
        self.decode_range(&prefix, &prefix_end(&prefix), "grant", |g| {
            grants.push(g);
            true
        });
        grants
    }

    /// One grant.
    pub fn grant(&self, key_id: &KeyId, grant_id: &str) -> Option<GrantRecord> {
        self.records
            .get_as(&grant_record_key(key_id, grant_id), "grant")
    }

    /// A page of one key's grants after grant ID `after`, filtered.
    pub fn list_grants(
        &self,
        key_id: &KeyId,
        grant_id: Option<&str>,
        grantee: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<GrantRecord>, Option<String>) {
        let iter = self
            .grants_of(key_id)
            .into_iter()
            .filter(|g| after.is_none_or(|a| g.grant_id.as_str() > a))
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee == p));
        page(iter, limit, |g| g.grant_id.clone())
    }

    /// A page of the Region's grants that `retiring` may retire, after (key, grant) `after`.
    pub fn list_retirable_grants(
        &self,
        retiring: &str,
        after: Option<(KeyId, String)>,
        limit: usize,
    ) -> (Vec<GrantRecord>, Option<(KeyId, String)>) {
        let from = match &after {
            Some((key_id, grant_id)) => successor(&grant_record_key(key_id, grant_id)),
            None => GRANT_PREFIX.to_vec(),
        };
        let mut grants = Vec::new();
        self.decode_range(
            &from,
            &prefix_end(GRANT_PREFIX),
            "grant",
            |g: GrantRecord| {
                if g.retiring.as_deref() == Some(retiring) {
                    grants.push(g);
                }
                grants.len() <= limit
            },
        );
        let iter = grants.into_iter();
        page(iter, limit, |g| (g.key_id.clone(), g.grant_id.clone()))
    }

    pub(super) fn create_grant(
        &mut self,
        grant: &GrantRecord,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        let key = self.existing(&grant.key_id)?;
        let arn = self.scope.key_arn(&grant.key_id);
        check(
            Operation::CreateGrant,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;
        if grant.name.is_some() {
            if let Some(same) = self
                .grants_of(&grant.key_id)
                .into_iter()
                .find(|g| g.same_request(grant))
            {
                // CreateGrant retried with the same Name and parameters: the same grant.
                return Ok(CommandOutput::Grant(same.grant_id.clone()));
            }
        }
        if let Some(existing) = self.grant(&grant.key_id, &grant.grant_id) {
            // The very same command applied again (a retried forward).
            if existing == *grant {
                return Ok(CommandOutput::Grant(grant.grant_id.clone()));
            }
            return Err(KmsError::AlreadyExists(format!(
                "Grant {} already exists on {arn}",
                grant.grant_id
            )));
        }
        let quota = self.quotas.grants_per_key;
        if self.grants_of(&grant.key_id).len() >= quota {
            return Err(KmsError::LimitExceeded(format!(
                "The key {arn} already has {quota} grants"
            )));
        }
        self.records.put_encoded(
            grant_record_key(&grant.key_id, &grant.grant_id),
            grant,
            changes,
        );
        Ok(CommandOutput::Grant(grant.grant_id.clone()))
    }

    pub(super) fn delete_grant(
        &mut self,
        key_id: &KeyId,
        grant_id: &str,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        self.existing(key_id)?;
        if self.grant(key_id, grant_id).is_none() {
            return Err(KmsError::NotFound(format!(
                "Grant ID {grant_id} not found for key {}",
                self.scope.key_arn(key_id)
            )));
        }
        self.records
            .delete(grant_record_key(key_id, grant_id), changes);
        Ok(CommandOutput::Done)
    }
}
