//! Applying grant commands, and reading grants.

use std::ops::Bound;

use crate::error::KmsError;
use crate::grant::{GrantRecord, MAX_GRANTS_PER_KEY};
use crate::ids::KeyId;
use crate::key_state::{check, Operation};

use super::{encode, grant_record_key, page, CommandOutput, CommandResult, KmsState, RecordChange};

impl KmsState {
    /// The grants of one key, in grant-ID order.
    pub fn grants_of<'a>(&'a self, key_id: &'a KeyId) -> impl Iterator<Item = &'a GrantRecord> {
        self.grants
            .range((key_id.clone(), String::new())..)
            .take_while(move |((k, _), _)| k == key_id)
            .map(|(_, g)| g)
    }

    /// One grant.
    pub fn grant(&self, key_id: &KeyId, grant_id: &str) -> Option<&GrantRecord> {
        self.grants.get(&(key_id.clone(), grant_id.to_string()))
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
            .filter(|g| after.is_none_or(|a| g.grant_id.as_str() > a))
            .filter(|g| grant_id.is_none_or(|id| g.grant_id == id))
            .filter(|g| grantee.is_none_or(|p| g.grantee == p))
            .cloned();
        page(iter, limit, |g| g.grant_id.clone())
    }

    /// A page of the Region's grants that `retiring` may retire, after (key, grant) `after`.
    pub fn list_retirable_grants(
        &self,
        retiring: &str,
        after: Option<(KeyId, String)>,
        limit: usize,
    ) -> (Vec<GrantRecord>, Option<(KeyId, String)>) {
        let lower = match &after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        let iter = self
            .grants
            .range::<(KeyId, String), _>((lower, Bound::Unbounded))
            .map(|(_, g)| g)
            .filter(|g| g.retiring.as_deref() == Some(retiring))
            .cloned();
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
                .find(|g| g.same_request(grant))
            {
                // CreateGrant retried with the same Name and parameters: the same grant.
                return Ok(CommandOutput::Grant(same.grant_id.clone()));
            }
        }
        if let Some(existing) = self.grant(&grant.key_id, &grant.grant_id) {
            // The very same command applied again (a retried forward).
            if existing == grant {
                return Ok(CommandOutput::Grant(grant.grant_id.clone()));
            }
            return Err(KmsError::AlreadyExists(format!(
                "Grant {} already exists on {arn}",
                grant.grant_id
            )));
        }
        if self.grants_of(&grant.key_id).count() >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::LimitExceeded(format!(
                "The key {arn} already has {MAX_GRANTS_PER_KEY} grants"
            )));
        }
        changes.push(RecordChange::Put {
            key: grant_record_key(&grant.key_id, &grant.grant_id),
            value: encode(grant),
        });
        self.grants.insert(
            (grant.key_id.clone(), grant.grant_id.clone()),
            grant.clone(),
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
        if self
            .grants
            .remove(&(key_id.clone(), grant_id.to_string()))
            .is_none()
        {
            return Err(KmsError::NotFound(format!(
                "Grant ID {grant_id} not found for key {}",
                self.scope.key_arn(key_id)
            )));
        }
        changes.push(RecordChange::Delete {
            key: grant_record_key(key_id, grant_id),
        });
        Ok(CommandOutput::Done)
    }
}
