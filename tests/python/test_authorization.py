"""Authorization with boto3 and two principals of the topology's `[iam]`: a cluster of its own
(one Region, one node) whose topology gets two users, their access keys and a role the reader
may assume (STS `AssumeRole` on the same endpoint) before it starts. The refusals below exist
only because kmsim evaluates policies: the test fails without them."""

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
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Encryptor"

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

# The reader may assume Encryptor (its trust policy names the reader); its sessions may encrypt.
[[iam.roles]]
arn = "{ROLE}"
trust_policy = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "{READER}"}}, "Action": "sts:AssumeRole"}}]}}'
[[iam.roles.policies]]
name = "encrypt"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"}}]}}'
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


def sts_client(endpoint, key, secret, token=None):
    return boto3.client(
        "sts", region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token,
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


def test_a_role_session_from_sts_assume_role_acts_as_the_role(endpoint):
    writer = client(endpoint, "AKIAWRITER", "writer-secret")
    key = writer.create_key(Description="role session")["KeyMetadata"]["KeyId"]
    arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}"
    reader_sts = sts_client(endpoint, "AKIAREADER", "reader-secret")
    assert reader_sts.get_caller_identity()["Arn"] == READER

    out = reader_sts.assume_role(RoleArn=ROLE, RoleSessionName="py-session", DurationSeconds=900)
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/Encryptor/py-session"
    assert out["AssumedRoleUser"]["Arn"] == session_arn
    assert out["AssumedRoleUser"]["AssumedRoleId"].endswith(":py-session")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    assert creds["Expiration"].tzinfo is not None
    session = boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"], region_name=REGION)
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1})
    identity = session.client("sts", endpoint_url=endpoint, config=config).get_caller_identity()
    assert identity["Arn"] == session_arn
    assert identity["Account"] == ACCOUNT
    assert identity["UserId"].startswith("AROA") and identity["UserId"].endswith(":py-session")

    # The session may do what the role's policy allows, and nothing its user could.
    kms = session.client("kms", endpoint_url=endpoint, config=config)
    blob = kms.encrypt(KeyId=key, Plaintext=b"through a role")["CiphertextBlob"]
    message = denied(lambda: kms.decrypt(CiphertextBlob=blob))
    assert message == (f"User: {session_arn} is not authorized to perform: kms:Decrypt on resource: {arn} "
                       "because no identity-based policy allows the kms:Decrypt action")

    # A forged token is refused as AWS refuses one.
    token = creds["SessionToken"]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    forged_kms = boto3.client(
        "kms", region_name=REGION, endpoint_url=endpoint, config=config,
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=forged)
    with pytest.raises(ClientError) as e:
        forged_kms.encrypt(KeyId=key, Plaintext=b"x")
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert e.value.response["Error"]["Message"] == "The security token included in the request is invalid."

    # The trust policy names the reader only: the writer, and the root user, are refused.
    writer_sts = sts_client(endpoint, "AKIAWRITER", "writer-secret")
    with pytest.raises(ClientError) as e:
        writer_sts.assume_role(RoleArn=ROLE, RoleSessionName="nope")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["Error"]["Message"].startswith(
        f"User: {WRITER} is not authorized to perform: sts:AssumeRole on resource: {ROLE}")
    with pytest.raises(ClientError) as e:
        sts_client(endpoint, "test", "test").assume_role(RoleArn=ROLE, RoleSessionName="root")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert e.value.response["Error"]["Message"] == "Roles may not be assumed by root accounts."
