"""Session fixture of the Python suite: one real kmsim cluster (two Regions of three nodes,
started with the real binary by `kmsim up`, stopped by `kmsim down`), and the environment that
points every AWS client at its single endpoint; and the helpers tests share (`wait_for`, a
condition poll, and `replicated_key`, a multi-Region key with an Enabled replica).

The binary is $KMSIM_BIN, else $CARGO_TARGET_DIR/release/kmsim, else target/release/kmsim.
"""

import contextlib
import os
import pathlib
import subprocess
import tempfile
import time
import tomllib

import boto3
import botocore.config
import pytest

REGIONS = ("us-east-1", "eu-west-1")
ROOT = pathlib.Path(__file__).resolve().parents[2]


def kmsim_bin() -> str:
    if os.environ.get("KMSIM_BIN"):
        return os.environ["KMSIM_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return str(pathlib.Path(target) / "release" / "kmsim")


class KmsimCluster:
    """A running cluster: its data dir, topology, endpoint and clients."""

    def __init__(self, data_dir: pathlib.Path):
        self.data_dir = data_dir
        self.topology = tomllib.loads((data_dir / "topology.toml").read_text())
        tls = self.topology.get("tls", {})
        self.scheme = "https" if tls.get("aws_https") else "http"
        self.endpoint = f"{self.scheme}://" + self.topology["endpoint"]["listen"]
        # The CA that signed the endpoints' certificates, for AWS_CA_BUNDLE (HTTPS only).
        self.ca_bundle = str(data_dir / tls["dir"] / "ca.crt") if tls.get("aws_https") else None
        cred = self.topology["credentials"][0]
        self.access_key_id = cred["access_key_id"]
        self.secret_access_key = cred["secret_access_key"]
        self.account = self.topology.get("account", "111122223333")

    def node_endpoints(self, region: str) -> list[str]:
        for r in self.topology["regions"]:
            if r["name"] == region:
                return [f"{self.scheme}://" + n["aws_listen"] for n in r["nodes"]]
        raise KeyError(region)

    def client(self, region: str, **config):
        """A boto3 KMS client for `region`; the endpoint comes from AWS_ENDPOINT_URL_KMS."""
        return boto3.client(
            "kms",
            region_name=region,
            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 2}, **config),
        )


def wait_for(what, probe, timeout=30.0):
    """Polls `probe` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def state(region, key_id):
    """The key's metadata in `region` (DescribeKey through the single endpoint)."""
    return boto3.client("kms", region_name=region).describe_key(KeyId=key_id)["KeyMetadata"]


def replicated_key(cluster):
    """A multi-Region primary in the first Region with an Enabled replica in the second:
    (primary ARN, replica ARN). Waits, by polling DescribeKey, until the replica is Enabled."""
    home, other = REGIONS
    kms = cluster.client(home)
    md = kms.create_key(Description="mrk primary", MultiRegion=True)["KeyMetadata"]
    assert md["KeyId"].startswith("mrk-") and md["MultiRegion"] is True
    out = kms.replicate_key(KeyId=md["KeyId"], ReplicaRegion=other, Description="mrk replica")
    replica = out["ReplicaKeyMetadata"]
    assert replica["Arn"] == md["Arn"].replace(home, other)
    assert replica["KeyState"] == "Creating" and replica["Description"] == "mrk replica"
    # The replica's Region holds it as soon as ReplicateKey answers (AWS's procedure: poll
    # DescribeKey there until Enabled), never NotFoundException.
    assert state(other, md["KeyId"])["KeyState"] in ("Creating", "Enabled")
    wait_for("the replica to be Enabled", lambda: state(other, md["KeyId"])["KeyState"] == "Enabled")
    return md["Arn"], replica["Arn"]


@contextlib.contextmanager
def running_cluster(*extra_args, nodes=3):
    """Starts a cluster with `kmsim up` (plus `extra_args`), points the environment at it with
    exactly the lines `kmsim up` prints, and stops it and restores the environment after."""
    exe = kmsim_bin()
    assert os.path.exists(exe), f"kmsim binary not found at {exe}: build it or set KMSIM_BIN"
    tmp = tempfile.TemporaryDirectory(prefix="kmsim-py-")
    data = pathlib.Path(tmp.name) / "cluster"
    up = subprocess.run(
        [exe, "up", "--base-port", "0", "--aws-port", "0", "--detach", "--data-dir", str(data),
         "--regions", ",".join(REGIONS), "--nodes", str(nodes), "--timeout", "90", *extra_args],
        capture_output=True, text=True, timeout=180,
    )
    assert up.returncode == 0, f"kmsim up failed:\n{up.stdout}\n{up.stderr}"
    c = KmsimCluster(data)
    line = f"export AWS_ENDPOINT_URL_KMS={c.endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1"
    if c.ca_bundle:
        line += f" AWS_CA_BUNDLE={c.ca_bundle}"
    assert line in up.stdout, up.stdout
    saved = dict(os.environ)
    # Exactly the lines `kmsim up` tells users to paste; nothing else of the host's AWS setup.
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update({
        "AWS_ENDPOINT_URL_KMS": c.endpoint,
        "AWS_ACCESS_KEY_ID": c.access_key_id,
        "AWS_SECRET_ACCESS_KEY": c.secret_access_key,
        "AWS_DEFAULT_REGION": REGIONS[0],
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    if c.ca_bundle:
        os.environ["AWS_CA_BUNDLE"] = c.ca_bundle
    try:
        yield c
    finally:
        os.environ.clear()
        os.environ.update(saved)
        down = subprocess.run([exe, "down", "--data-dir", str(data)], capture_output=True, text=True, timeout=120)
        tmp.cleanup()
        assert down.returncode == 0, down.stderr


@pytest.fixture(scope="session")
def cluster():
    with running_cluster() as c:
        yield c
