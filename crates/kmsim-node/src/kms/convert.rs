//! From stored records to the `kmsim.kms.v1` response shapes (AWS member semantics).

use kmsim_core::ids::{Region, Scope};
use kmsim_core::key::{KeyRecord, KeySpec, KeyState, MultiRegion, Origin};
use kmsim_core::state::AliasRecord;
use kmsim_proto::kms::v1 as pb;

/// Milliseconds to AWS epoch seconds.
pub fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The wire names of a list of enum values.
pub fn names<T: std::fmt::Display>(values: &[T]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// `KeyMetadata` of a key as this Region sees it.
pub fn key_metadata(scope: &Scope, k: &KeyRecord) -> pb::KeyMetadata {
    let shared = &k.shared;
    let regional = &k.regional;
    let (spec, usage) = (shared.key_spec, shared.key_usage);
    let arn = scope.key_arn(&k.key_id);
    // AWS reports CurrentKeyMaterialId for symmetric encryption keys once they have material,
    // and keeps it after imported material is deleted or expires (recorded).
    let current_material = match regional.state {
        KeyState::Creating => None,
        _ if spec == KeySpec::SymmetricDefault => {
            shared.current_material().map(|m| m.key_material_id.clone())
        }
        _ => None,
    };
    // ExpirationModel and ValidTo describe the import of the current material (EXTERNAL only).
    let import = (shared.origin == Origin::External)
        .then(|| k.current_material().and_then(|(_, m)| m.import.clone()))
        .flatten();
    pb::KeyMetadata {
        aws_account_id: Some(scope.account.to_string()),
        key_id: Some(k.key_id.to_string()),
        arn: Some(arn.clone()),
        creation_date: Some(secs(regional.creation_ms)),
        enabled: Some(k.enabled()),
        description: Some(regional.description.clone()),
        key_usage: Some(usage.as_str().to_string()),
        key_state: Some(regional.state.as_str().to_string()),
        deletion_date: match regional.state {
            KeyState::PendingDeletion => regional.deletion_ms.map(secs),
            _ => None,
        },
        valid_to: import.as_ref().and_then(|i| i.valid_to_ms).map(secs),
        expiration_model: import
            .as_ref()
            .map(|i| i.expiration_model.as_str().to_string()),
        origin: Some(shared.origin.as_str().to_string()),
        key_manager: Some("CUSTOMER".to_string()),
        customer_master_key_spec: Some(spec.as_str().to_string()),
        key_spec: Some(spec.as_str().to_string()),
        encryption_algorithms: names(spec.encryption_algorithms(usage)),
        signing_algorithms: names(spec.signing_algorithms(usage)),
        key_agreement_algorithms: names(spec.key_agreement_algorithms(usage)),
        mac_algorithms: names(spec.mac_algorithms(usage)),
        multi_region: Some(shared.is_multi_region()),
        multi_region_configuration: shared.mrk.as_ref().map(|m| mrk_configuration(scope, k, m)),
        pending_deletion_window_in_days: match regional.state {
            KeyState::PendingReplicaDeletion => regional.pending_window_days.map(|d| d as i32),
            _ => None,
        },
        current_key_material_id: current_material,
        ..Default::default()
    }
}

/// `MultiRegionConfiguration`: the same set view in every Region that holds a related key,
/// but for `MultiRegionKeyType`.
pub fn mrk_configuration(
    scope: &Scope,
    k: &KeyRecord,
    m: &MultiRegion,
) -> pb::MultiRegionConfiguration {
    let key = |region: &Region| pb::MultiRegionKey {
        arn: Some(scope.key_arn_in(region, &k.key_id)),
        region: Some(region.to_string()),
    };
    pb::MultiRegionConfiguration {
        multi_region_key_type: Some(
            if m.primary == scope.region {
                "PRIMARY"
            } else {
                "REPLICA"
            }
            .to_string(),
        ),
        primary_key: Some(key(&m.primary)),
        replica_keys: m.replicas.iter().map(key).collect(),
    }
}

/// `AliasListEntry`.
pub fn alias_entry(scope: &Scope, a: &AliasRecord) -> pb::AliasListEntry {
    pb::AliasListEntry {
        alias_name: Some(a.name.to_string()),
        alias_arn: Some(scope.alias_arn(&a.name)),
        target_key_id: Some(a.target.to_string()),
        creation_date: Some(secs(a.creation_ms)),
        last_updated_date: Some(secs(a.last_updated_ms)),
    }
}
