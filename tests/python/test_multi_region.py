"""Multi-Region keys through the one endpoint with real clients: boto3 replicates a key and
moves its primary; the AWS Encryption SDK's MRK-aware providers and keyring encrypt in one
Region and decrypt with the related key of the other, with no cross-Region call."""

import aws_encryption_sdk
import boto3
import pytest
from aws_encryption_sdk import CommitmentPolicy

from conftest import REGIONS, replicated_key, state, wait_for

PRIMARY, REPLICA = REGIONS
MESSAGE = b"one message, two Regions " * 50


def test_replicate_key_and_update_primary_region_with_boto3(cluster):
    primary_arn, replica_arn = replicated_key(cluster)
    key_id = primary_arn.split("/")[-1]
    a, b = state(PRIMARY, key_id), state(REPLICA, key_id)
    for md, kind in ((a, "PRIMARY"), (b, "REPLICA")):
        cfg = md["MultiRegionConfiguration"]
        assert cfg["MultiRegionKeyType"] == kind
        assert cfg["PrimaryKey"] == {"Arn": primary_arn, "Region": PRIMARY}
        assert cfg["ReplicaKeys"] == [{"Arn": replica_arn, "Region": REPLICA}]
    assert b["Description"] == "mrk replica" and a["Description"] == "mrk primary"
    assert a["CurrentKeyMaterialId"] == b["CurrentKeyMaterialId"]

    # A ciphertext of either Region decrypts in the other; Decrypt names the serving Region's key.
    for src, dst, dst_arn in ((PRIMARY, REPLICA, replica_arn), (REPLICA, PRIMARY, primary_arn)):
        blob = cluster.client(src).encrypt(KeyId=key_id, Plaintext=b"cross")["CiphertextBlob"]
        out = cluster.client(dst).decrypt(CiphertextBlob=blob, KeyId=dst_arn)
        assert out["Plaintext"] == b"cross" and out["KeyId"] == dst_arn

    # A replica's shared properties belong to the primary.
    with pytest.raises(cluster.client(REPLICA).exceptions.UnsupportedOperationException):
        cluster.client(REPLICA).enable_key_rotation(KeyId=key_id)

    cluster.client(PRIMARY).update_primary_region(KeyId=key_id, PrimaryRegion=REPLICA)
    wait_for("the hand-over", lambda: (
        state(REPLICA, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
        and state(PRIMARY, key_id)["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
        and state(PRIMARY, key_id)["KeyState"] == "Enabled"
        and state(REPLICA, key_id)["KeyState"] == "Enabled"))
    # Now the old primary refuses shared-property changes and the new one accepts them.
    with pytest.raises(cluster.client(PRIMARY).exceptions.UnsupportedOperationException):
        cluster.client(PRIMARY).enable_key_rotation(KeyId=key_id)
    cluster.client(REPLICA).enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    wait_for("the rotation setting to reach the new replica", lambda: boto3.client(
        "kms", region_name=PRIMARY).get_key_rotation_status(KeyId=key_id).get("RotationPeriodInDays") == 90)


def test_encryption_sdk_mrk_aware_providers_decrypt_in_the_other_region(cluster):
    from aws_encryption_sdk.key_providers.kms import (
        DiscoveryFilter,
        MRKAwareDiscoveryAwsKmsMasterKeyProvider,
        MRKAwareStrictAwsKmsMasterKeyProvider,
    )

    primary_arn, replica_arn = replicated_key(cluster)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ciphertext, header = client.encrypt(
        source=MESSAGE, key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[primary_arn]))
    assert [k.key_provider.key_info for k in header.encrypted_data_keys] == [primary_arn.encode()]
    # Strict, configured with the replica: Decrypt is called in the replica's Region.
    plaintext, _ = client.decrypt(
        source=ciphertext, key_provider=MRKAwareStrictAwsKmsMasterKeyProvider(key_ids=[replica_arn]))
    assert plaintext == MESSAGE
    # Discovery in the replica's Region: the primary's ARN is rewritten to the local Region.
    discovery = MRKAwareDiscoveryAwsKmsMasterKeyProvider(
        discovery_region=REPLICA,
        discovery_filter=DiscoveryFilter(account_ids=[cluster.account], partition="aws"))
    plaintext, _ = client.decrypt(source=ciphertext, key_provider=discovery)
    assert plaintext == MESSAGE


def test_mpl_mrk_keyring_decrypts_with_the_replica(cluster):
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsMrkKeyringInput

    primary_arn, replica_arn = replicated_key(cluster)
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())

    def keyring(arn, region):
        return mpl.create_aws_kms_mrk_keyring(input=CreateAwsKmsMrkKeyringInput(
            kms_key_id=arn, kms_client=boto3.client("kms", region_name=region)))

    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ciphertext, _ = client.encrypt(source=MESSAGE, keyring=keyring(primary_arn, PRIMARY),
                                   encryption_context={"set": "mrk"})
    plaintext, header = client.decrypt(source=ciphertext, keyring=keyring(replica_arn, REPLICA))
    assert plaintext == MESSAGE and header.encryption_context["set"] == "mrk"
