"""Authorization with boto3 and two principals of the topology's `[iam]`: a cluster of its own
(one Region, one node) whose topology gets two users and their access keys before it starts.
The refusals below exist only because kmsim evaluates policies: the test fails without them."""

import json
import pathlib
import subprocess
import tempfile

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import kmsim_bin

REGION = "us-east-1"
ACCOUNT = "111122223333"
WRITER = f"arn:aws:iam::{ACCOUNT}:user/writer"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"

# The writer may create keys and encrypt; the reader may decrypt, only with its team's context.
IAM = f'''
[[credentials]]
access_key_id = "AKIAWRITER"
secret_access_key = "writer-secret"
principal_arn = "{WRITER}"

[[credentials]]
access_key_id = "AKIAREADER"
secret_access_key = "reader-secret"
principal_arn = "{READER}"

[[iam.users]]
arn = "{WRITER}"
[[iam.users.policies]]
name = "write"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["kms:CreateKey", "kms:Encrypt", "kms:DescribeKey", "kms:PutKeyPolicy"], "Resource": "*"}}]}}'

[[iam.users]]
arn = "{READER}"
tags = {{ team = "payroll" }}
[[iam.users.policies]]
name = "read-own-team"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {{"StringEquals": {{"kms:EncryptionContext:team": "${{aws:PrincipalTag/team}}"}}}}}}]}}'
'''


def run(*args):
    out = subprocess.run([kmsim_bin(), *args], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"kmsim {args[0]} failed:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def endpoint():
    with tempfile.TemporaryDirectory(prefix="kmsim-py-authz-") as tmp:
        data = pathlib.Path(tmp) / "cluster"
        # Create the cluster as `kmsim up` writes it, stop it, add the principals, start it again.
        run("up", "--base-port", "0", "--aws-port", "0", "--detach", "--data-dir", str(data),
            "--regions", REGION, "--nodes", "1", "--timeout", "90")
        run("down", "--data-dir", str(data))
        topology = data / "topology.toml"
        topology.write_text(topology.read_text() + IAM)
        run("up", "--detach", "--data-dir", str(data), "--timeout", "90")
        try:
            import tomllib
            listen = tomllib.loads(topology.read_text())["endpoint"]["listen"]
            yield f"http://{listen}"
        finally:
            run("down", "--data-dir", str(data))


def client(endpoint, key, secret):
    return boto3.client(
        "kms", region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def denied(call):
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException", e.value.response
    return e.value.response["Error"]["Message"]


def test_two_principals_get_what_their_policies_allow_and_nothing_more(endpoint):
    writer = client(endpoint, "AKIAWRITER", "writer-secret")
    reader = client(endpoint, "AKIAREADER", "reader-secret")
    root = client(endpoint, "test", "test")

    key = writer.create_key(Description="payroll")["KeyMetadata"]["KeyId"]
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"
    payroll = writer.encrypt(KeyId=key, Plaintext=b"salaries", EncryptionContext={"team": "payroll"})
    sales = writer.encrypt(KeyId=key, Plaintext=b"quotas", EncryptionContext={"team": "sales"})

    # The reader decrypts its team's data only; the writer cannot decrypt at all.
    out = reader.decrypt(CiphertextBlob=payroll["CiphertextBlob"], EncryptionContext={"team": "payroll"})
    assert out["Plaintext"] == b"salaries"
    denied(lambda: reader.decrypt(CiphertextBlob=sales["CiphertextBlob"], EncryptionContext={"team": "sales"}))
    message = denied(lambda: writer.decrypt(CiphertextBlob=payroll["CiphertextBlob"],
                                            EncryptionContext={"team": "payroll"}))
    assert message == (f"User: {WRITER} is not authorized to perform: kms:Decrypt on resource: {arn} "
                       "because no identity-based policy allows the kms:Decrypt action")
    denied(lambda: reader.encrypt(KeyId=key, Plaintext=b"x"))
    denied(lambda: reader.create_key())
    # The account root is governed by no identity policy: it still does anything.
    assert root.decrypt(CiphertextBlob=sales["CiphertextBlob"], EncryptionContext={"team": "sales"})["Plaintext"] == b"quotas"

    # A key policy that leaves the writer out is refused by the lockout check...
    readers_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": READER}, "Action": "kms:*", "Resource": "*"}]})
    with pytest.raises(ClientError) as e:
        writer.put_key_policy(KeyId=key, PolicyName="default", Policy=readers_only)
    assert e.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    # ...and, bypassed, takes the key away from the writer (and its account delegation).
    writer.put_key_policy(KeyId=key, PolicyName="default", Policy=readers_only,
                          BypassPolicyLockoutSafetyCheck=True)
    assert denied(lambda: writer.encrypt(KeyId=key, Plaintext=b"x")).endswith(
        "because no resource-based policy allows the kms:Encrypt action")
    assert reader.encrypt(KeyId=key, Plaintext=b"now mine")["KeyId"] == arn
