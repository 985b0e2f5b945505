"""boto3 against kmsim's single endpoint: every implemented operation in two Regions, pagination,
AWS error codes and messages, and the server's own validation (parameter_validation=False)."""

import uuid

import botocore.exceptions
import pytest

from conftest import REGIONS


def error(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["Error"]["Message"]


@pytest.mark.parametrize("region", REGIONS)
def test_every_operation_works_in_each_region(cluster, region):
    kms = cluster.client(region)
    out = kms.create_key(Description="boto3", Tags=[{"TagKey": "team", "TagValue": "kms"}])
    assert uuid.UUID(out["ResponseMetadata"]["RequestId"])
    md = out["KeyMetadata"]
    key, arn = md["KeyId"], md["Arn"]
    assert arn == f"arn:aws:kms:{region}:{cluster.account}:key/{key}"
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT" and md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == "boto3"

    ctx = {"purpose": "test", "aws-crypto-public-key": "AAEC/w=="}
    enc = kms.encrypt(KeyId=key, Plaintext=b"\x00secret\xff", EncryptionContext=ctx)
    assert enc["KeyId"] == arn and enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == b"\x00secret\xff" and dec["KeyId"] == arn
    other = kms.create_key(Description="target")["KeyMetadata"]
    re = kms.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx,
                        DestinationKeyId=other["KeyId"])
    assert re["KeyId"] == other["Arn"] and re["SourceKeyId"] == arn
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"\x00secret\xff"

    dk = kms.generate_data_key(KeyId=arn, KeySpec="AES_256")
    assert len(dk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    dk = kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=64)
    assert "Plaintext" not in dk
    assert len(kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"]) == 64
    assert len(kms.generate_random(NumberOfBytes=100)["Plaintext"]) == 100

    kms.disable_key(KeyId=key)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert error(ei) == ("DisabledException", f"{arn} is disabled.")
    kms.enable_key(KeyId=key)
    kms.update_key_description(KeyId=key, Description="renamed")
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "renamed"

    for i in range(3):
        kms.create_alias(AliasName=f"alias/py-{region}-{i}", TargetKeyId=key)
    kms.update_alias(AliasName=f"alias/py-{region}-2", TargetKeyId=other["KeyId"])
    assert kms.encrypt(KeyId=f"alias/py-{region}-2", Plaintext=b"x")["KeyId"] == other["Arn"]
    pages = list(kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) >= 3
    names = [a["AliasName"] for p in pages for a in p["Aliases"]]
    assert {f"alias/py-{region}-{i}" for i in range(3)} <= set(names)
    kms.delete_alias(AliasName=f"alias/py-{region}-0")
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]] == [f"alias/py-{region}-1"]

    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": ""}])
    kms.untag_resource(KeyId=key, TagKeys=["a"])
    tags = [t for p in kms.get_paginator("list_resource_tags").paginate(KeyId=key, PaginationConfig={"PageSize": 1})
            for t in p["Tags"]]
    assert tags == [{"TagKey": "team", "TagValue": "kms"}, {"TagKey": "b", "TagValue": ""}]

    policy = kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=policy.replace("Enable IAM User Permissions", "Root"))
    assert '"Root"' in kms.get_key_policy(KeyId=key)["Policy"]
    assert kms.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]

    s = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert s["KeyState"] == "PendingDeletion" and s["PendingWindowInDays"] == 7 and s["KeyId"] == arn
    assert kms.cancel_key_deletion(KeyId=key)["KeyId"] == arn
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"

    keys = [k for p in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1}) for k in p["Keys"]]
    assert {key, other["KeyId"]} <= {k["KeyId"] for k in keys}
    assert all(f":{region}:" in k["KeyArn"] for k in keys)


def test_regions_are_separate_behind_the_one_endpoint(cluster):
    us, eu = cluster.client("us-east-1"), cluster.client("eu-west-1")
    key = eu.create_key(Description="eu only")["KeyMetadata"]["KeyId"]
    assert eu.describe_key(KeyId=key)["KeyMetadata"]["Arn"].startswith("arn:aws:kms:eu-west-1:")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        us.describe_key(KeyId=key)
    assert error(ei) == ("NotFoundException", f"Key 'arn:aws:kms:us-east-1:{cluster.account}:key/{key}' does not exist")


def test_errors_have_aws_codes_and_messages(cluster):
    kms = cluster.client("us-east-1")
    with pytest.raises(kms.exceptions.NotFoundException) as ei:
        kms.describe_key(KeyId="fake-key-id")
    assert error(ei) == ("NotFoundException", "Invalid keyId 'fake-key-id'")
    with pytest.raises(kms.exceptions.InvalidCiphertextException) as ei:
        kms.decrypt(CiphertextBlob=b"\x01\x02\x03")
    assert error(ei) == ("InvalidCiphertextException", "")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(kms.exceptions.DryRunOperationException) as ei:
        kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=True)
    assert error(ei)[1] == "The request would have succeeded, but the DryRun option is set."
    kms.create_alias(AliasName="alias/dup", TargetKeyId=key)
    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName="alias/dup", TargetKeyId=key)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        kms.create_alias(AliasName="noprefix", TargetKeyId=key)
    assert error(ei)[0] == "ValidationException"
    assert error(ei)[1].startswith('Alias must start with the prefix "alias/"')


def test_the_server_validates_what_botocore_does_not(cluster):
    raw = cluster.client("us-east-1", parameter_validation=False)
    cases = [
        (lambda: raw.generate_random(NumberOfBytes=0),
         "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        (lambda: raw.generate_random(NumberOfBytes=5000),
         "1 validation error detected: Value '5000' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
        (lambda: raw.create_key(KeySpec="BOGUS"),
         "1 validation error detected: Value 'BOGUS' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["),
        (lambda: raw.create_key(Description="d" * 8193), "1 validation error detected: Value '"),
        (lambda: raw.encrypt(KeyId="alias/x", Plaintext=b"x" * 4097),
         "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"),
        (lambda: raw.list_keys(Limit=0),
         "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    ]
    for call, prefix in cases:
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            call()
        code, message = error(ei)
        assert code == "ValidationException", message
        assert message.startswith(prefix), message
    key = raw.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        raw.schedule_key_deletion(KeyId=key, PendingWindowInDays=400)
    assert error(ei)[0] == "ValidationException"
    assert raw.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_a_wrong_secret_is_refused(cluster):
    import boto3
    bad = boto3.client("kms", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        bad.list_keys()
    assert error(ei)[0] == "InvalidSignatureException"
    unknown = boto3.client("kms", region_name="us-east-1", aws_access_key_id="nobody", aws_secret_access_key="x")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        unknown.list_keys()
    assert error(ei) == ("UnrecognizedClientException", "The security token included in the request is invalid.")


@pytest.mark.parametrize("region", REGIONS)
def test_every_node_endpoint_serves_and_forwards(cluster, region):
    import boto3
    other = [r for r in REGIONS if r != region][0]
    for url in cluster.node_endpoints(region):
        # Signed for the node's own Region, and for the other one (forwarded).
        for r in (region, other):
            kms = boto3.client("kms", region_name=r, endpoint_url=url)
            key = kms.create_key(Description=f"via {url}")["KeyMetadata"]
            assert key["Arn"].startswith(f"arn:aws:kms:{r}:")
            assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyId"] == key["KeyId"]
