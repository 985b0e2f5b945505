//! Grants: create (idempotent by name), list, retire by token or by ID, revoke, and the
//! grant tokens every key operation accepts.

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";
const APP: &str = "arn:aws:iam::111122223333:role/app";
const OPS: &str = "arn:aws:iam::111122223333:role/ops";

fn grant_request(key_id: &str, name: Option<&str>, ops: &[&str]) -> pb::CreateGrantRequest {
    pb::CreateGrantRequest {
        key_id: Some(key_id.into()),
        grantee_principal: Some(APP.into()),
        retiring_principal: Some(OPS.into()),
        operations: ops.iter().map(|o| o.to_string()).collect(),
        name: name.map(str::to_string),
        constraints: Some(pb::GrantConstraints {
            encryption_context_subset: [("tenant".to_string(), "a".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_created_listed_retired_and_revoked_through_any_node() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "granted").await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();

    let g1 = ok(c
        .kms(R, 2)
        .create_grant(grant_request(&key_id, Some("app"), &["Encrypt", "Decrypt"]))
        .await);
    let id1 = g1.grant_id.clone().unwrap();
    let token1 = g1.grant_token.clone().unwrap();
    assert_eq!(id1.len(), 64);
    // Same name, same parameters, another node: the same grant, a fresh token.
    let again = ok(c
        .kms(R, 3)
        .create_grant(grant_request(&key_id, Some("app"), &["Decrypt", "Encrypt"]))
        .await);
    assert_eq!(again.grant_id.as_deref(), Some(id1.as_str()));
    assert_ne!(again.grant_token.as_deref(), Some(token1.as_str()));
    let g2 = ok(c
        .kms(R, 1)
        .create_grant(grant_request(&key_id, None, &["GenerateDataKey"]))
        .await);
    let g3 = ok(c
        .kms(R, 1)
        .create_grant(grant_request(
            &key_id,
            None,
            &["ReEncryptFrom", "DescribeKey"],
        ))
        .await);
    c.settle(R).await;

    // Grant tokens work at once, on any node, in GrantTokens; a forged one is refused.
    for n in c.ids(R) {
        ok(c.kms(R, n)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(b"x".to_vec()),
                encryption_context: [("tenant".to_string(), "a".to_string())].into(),
                grant_tokens: vec![token1.clone()],
                ..Default::default()
            })
            .await);
    }
    let mut forged = token1.clone();
    forged.pop();
    forged.push(if token1.ends_with('A') { 'B' } else { 'A' });
    let e = kms_err(
        c.kms(R, 1)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key_id.clone()),
                grant_tokens: vec![forged.clone()],
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidGrantTokenException");

    // ListGrants, paginated, with filters; entries as AWS shapes them.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = ok(c
            .kms(R, 3)
            .list_grants(pb::ListGrantsRequest {
                key_id: Some(key_id.clone()),
                limit: Some(2),
                marker: marker.clone(),
                ..Default::default()
            })
            .await);
        seen.extend(page.grants);
        if page.truncated != Some(true) {
            break;
        }
        marker = page.next_marker;
    }
    assert_eq!(seen.len(), 3);
    let first = seen
        .iter()
        .find(|g| g.grant_id.as_deref() == Some(id1.as_str()))
        .unwrap();
    assert_eq!(first.key_id.as_deref(), Some(arn.as_str()));
    assert_eq!(first.name.as_deref(), Some("app"));
    assert_eq!(first.grantee_principal.as_deref(), Some(APP));
    assert_eq!(
        first.issuing_account.as_deref(),
        Some("arn:aws:iam::111122223333:root")
    );
    assert_eq!(
        first.operations,
        vec!["Encrypt".to_string(), "Decrypt".to_string()]
    );
    assert_eq!(
        first
            .constraints
            .as_ref()
            .unwrap()
            .encryption_context_subset
            .get("tenant")
            .map(String::as_str),
        Some("a")
    );
    let only = ok(c
        .kms(R, 1)
        .list_grants(pb::ListGrantsRequest {
            key_id: Some(key_id.clone()),
            grant_id: g2.grant_id.clone(),
            ..Default::default()
        })
        .await);
    assert_eq!(only.grants.len(), 1);
    let retirable = ok(c
        .kms(R, 2)
        .list_retirable_grants(pb::ListRetirableGrantsRequest {
            retiring_principal: Some(OPS.into()),
            ..Default::default()
        })
        .await);
    assert_eq!(retirable.grants.len(), 3);

    // Retire by token, by key + ID; revoke; each removes exactly one grant, everywhere.
    ok(c.kms(R, 1)
        .retire_grant(pb::RetireGrantRequest {
            grant_token: Some(token1.clone()),
            ..Default::default()
        })
        .await);
    ok(c.kms(R, 2)
        .retire_grant(pb::RetireGrantRequest {
            key_id: Some(arn.clone()),
            grant_id: g2.grant_id.clone(),
            ..Default::default()
        })
        .await);
    let e = kms_err(
        c.kms(R, 3)
            .revoke_grant(pb::RevokeGrantRequest {
                key_id: Some(key_id.clone()),
                grant_id: g3.grant_id.clone(),
                dry_run: Some(true),
            })
            .await,
    );
    assert_eq!(e.code(), "DryRunOperationException");
    ok(c.kms(R, 3)
        .revoke_grant(pb::RevokeGrantRequest {
            key_id: Some(key_id.clone()),
            grant_id: g3.grant_id.clone(),
            dry_run: None,
        })
        .await);
    c.settle(R).await;
    for n in c.ids(R) {
        let left = ok(c
            .kms(R, n)
            .list_grants(pb::ListGrantsRequest {
                key_id: Some(key_id.clone()),
                ..Default::default()
            })
            .await);
        assert!(left.grants.is_empty(), "node {n}: {:?}", left.grants);
    }
    let e = kms_err(
        c.kms(R, 1)
            .retire_grant(pb::RetireGrantRequest {
                key_id: Some(key_id.clone()),
                grant_id: Some(id1.clone()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "NotFoundException");
    let e = kms_err(
        c.kms(R, 1)
            .revoke_grant(pb::RevokeGrantRequest {
                key_id: Some(key_id.clone()),
                grant_id: Some("not-a-grant".into()),
                dry_run: None,
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidGrantIdException");
    let e = kms_err(
        c.kms(R, 1)
            .retire_grant(pb::RetireGrantRequest {
                grant_token: Some(forged),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidGrantTokenException");
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_are_checked_against_the_key_type_and_state() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let md = create_key(&c, 1, "symmetric").await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();
    let e = kms_err(
        c.kms(R, 1)
            .create_grant(grant_request(&key_id, None, &["Sign"]))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let e = kms_err(
        c.kms(R, 1)
            .create_grant(grant_request(&key_id, None, &["Fly"]))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert!(e.message().contains("at 'operations'"), "{e}");
    let mut bad_principal = grant_request(&key_id, None, &["Encrypt"]);
    bad_principal.grantee_principal = Some("has spaces".into());
    let e = kms_err(c.kms(R, 1).create_grant(bad_principal).await);
    assert!(e.message().contains("at 'granteePrincipal'"), "{e}");
    let signing = crate::t25_key_types::create(&c, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let e = kms_err(
        c.kms(R, 1)
            .create_grant(grant_request(
                signing.key_id.as_deref().unwrap(),
                None,
                &["Sign"],
            ))
            .await,
    );
    assert_eq!(
        e.code(),
        "ValidationException",
        "no encryption context constraints on asymmetric keys"
    );
    let mut plain = grant_request(
        signing.key_id.as_deref().unwrap(),
        None,
        &["Sign", "Verify", "GetPublicKey"],
    );
    plain.constraints = None;
    ok(c.kms(R, 1).create_grant(plain).await);

    ok(c.kms(R, 2)
        .disable_key(pb::DisableKeyRequest {
            key_id: Some(key_id.clone()),
        })
        .await);
    c.settle(R).await;
    let e = kms_err(
        c.kms(R, 3)
            .create_grant(grant_request(&key_id, None, &["Encrypt"]))
            .await,
    );
    assert_eq!(e.code(), "DisabledException");
    assert_eq!(e.message(), format!("{arn} is disabled."));
    let mut dry = grant_request(&key_id, None, &["Encrypt"]);
    dry.dry_run = Some(true);
    assert_eq!(
        kms_err(c.kms(R, 3).create_grant(dry).await).code(),
        "DisabledException"
    );
}
