"""The AWS Encryption SDK for Python (4.x) encrypting and decrypting messages with kmsim keys:
the legacy master key provider and the Material Providers Library keyring."""

import aws_encryption_sdk
import boto3
import pytest
from aws_encryption_sdk import CommitmentPolicy

from conftest import REGIONS

MESSAGE = b"a message under a kmsim key " * 100


@pytest.mark.parametrize("region", REGIONS)
def test_strict_master_key_provider_round_trip(cluster, region):
    arn = cluster.client(region).create_key(Description="esdk mkp")["KeyMetadata"]["Arn"]
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
    ciphertext, header = client.encrypt(source=MESSAGE, key_provider=provider, encryption_context={"app": "kmsim"})
    assert ciphertext != MESSAGE
    assert [k.key_provider.key_info for k in header.encrypted_data_keys] == [arn.encode()]
    plaintext, dheader = client.decrypt(source=ciphertext, key_provider=aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn]))
    assert plaintext == MESSAGE
    assert dheader.encryption_context["app"] == "kmsim"
    # Another key cannot open it.
    other = cluster.client(region).create_key()["KeyMetadata"]["Arn"]
    with pytest.raises(Exception):
        client.decrypt(source=ciphertext, key_provider=aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[other]))


def test_mpl_kms_keyring_round_trip(cluster):
    from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
    from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
    from aws_cryptographic_material_providers.mpl.models import CreateAwsKmsKeyringInput

    region = "eu-west-1"
    arn = cluster.client(region).create_key(Description="esdk keyring")["KeyMetadata"]["Arn"]
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    keyring = mpl.create_aws_kms_keyring(
        input=CreateAwsKmsKeyringInput(kms_key_id=arn, kms_client=boto3.client("kms", region_name=region))
    )
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    ciphertext, _ = client.encrypt(source=MESSAGE, keyring=keyring, encryption_context={"purpose": "keyring"})
    plaintext, header = client.decrypt(source=ciphertext, keyring=keyring)
    assert plaintext == MESSAGE
    assert header.encryption_context["purpose"] == "keyring"
