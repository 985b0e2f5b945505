"""Request quotas seen by boto3's retry logic: `kmsim chaos throttle` refuses Encrypt in one
Region with `ThrottlingException` (`Rate exceeded`, HTTP 400, as AWS answers), which boto3's
standard retry mode retries with backoff: every attempt is counted through botocore's event
hooks. The other Region, and Decrypt, are untouched. Without request quotas the first attempt
would succeed and the test fails."""

import subprocess

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import REGIONS, kmsim_bin


def chaos_throttle(cluster, *args):
    out = subprocess.run(
        [kmsim_bin(), "chaos", "throttle", "--data-dir", str(cluster.data_dir), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, f"chaos throttle failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def counting_client(region, attempts):
    """A boto3 client in standard retry mode whose every attempt is counted, by operation, in
    `attempts`: botocore emits `before-send.kms.<Operation>` once per request it sends."""
    kms = boto3.client(
        "kms", region_name=region,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3}),
    )

    def count(event_name, **_):
        op = event_name.rsplit(".", 1)[-1]
        attempts[op] = attempts.get(op, 0) + 1

    kms.meta.events.register("before-send.kms", count)
    return kms


def test_throttling_is_retried_by_boto3_standard_mode_and_stays_in_its_region(cluster):
    home, other = REGIONS
    key = boto3.client("kms", region_name=home).create_key(Description="throttled")["KeyMetadata"]["KeyId"]
    blob = boto3.client("kms", region_name=home).encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    other_key = boto3.client("kms", region_name=other).create_key()["KeyMetadata"]["KeyId"]
    attempts = {}
    kms = counting_client(home, attempts)
    out = chaos_throttle(cluster, "--region", home, "--operation", "Encrypt", "--rate", "0")
    assert "Encrypt 0/s" in out, out
    try:
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key, Plaintext=b"hello")
        err = e.value.response
        assert err["Error"]["Code"] == "ThrottlingException", err
        assert err["Error"]["Message"] == "Rate exceeded", err
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, err
        # Standard mode: the first attempt and two retries, each one a request sent.
        assert attempts.get("Encrypt") == 3, attempts
        assert err["ResponseMetadata"]["RetryAttempts"] == 2, err
        # Decrypt has its own accounting; the other Region has its own quotas.
        attempts.clear()
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
        assert attempts.get("Decrypt") == 1, attempts
        boto3.client("kms", region_name=other).encrypt(KeyId=other_key, Plaintext=b"y")
    finally:
        chaos_throttle(cluster, "--region", home, "--operation", "Encrypt", "--rate", "off")
    attempts.clear()
    kms.encrypt(KeyId=key, Plaintext=b"hello")
    assert attempts.get("Encrypt") == 1, attempts
