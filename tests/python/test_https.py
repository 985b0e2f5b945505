"""The AWS endpoints over HTTPS (`kmsim up --aws-tls`): boto3 and the AWS CLI with only the
lines `kmsim up` prints (AWS_CA_BUNDLE among them). A representative part of the suite runs
again on a second, smaller cluster (one node per Region), so the HTTPS run adds little time:
boto3's every-operation test in both Regions, the AWS CLI session, a multi-Region key whose
replica is created through the gateway, a node's own endpoint, and a client that does not
trust the cluster CA."""

import os

import boto3
import botocore.exceptions
import pytest

import test_awscli
import test_boto3
from conftest import REGIONS, replicated_key, running_cluster


@pytest.fixture(scope="module")
def https_cluster():
    with running_cluster("--aws-tls", nodes=1) as c:
        assert c.endpoint.startswith("https://") and c.ca_bundle
        yield c


@pytest.mark.parametrize("region", REGIONS)
def test_boto3_every_operation_over_https(https_cluster, region):
    test_boto3.test_every_operation_works_in_each_region(https_cluster, region)


def test_aws_cli_session_over_https(https_cluster, tmp_path):
    test_awscli.test_cli_session_create_encrypt_decrypt_describe_schedule_deletion(https_cluster, tmp_path)


def test_multi_region_key_over_https(https_cluster):
    primary, replica = replicated_key(https_cluster)
    home, other = REGIONS
    blob = https_cluster.client(home).encrypt(KeyId=primary, Plaintext=b"over tls")["CiphertextBlob"]
    assert https_cluster.client(other).decrypt(CiphertextBlob=blob, KeyId=replica)["Plaintext"] == b"over tls"


def test_a_node_endpoint_serves_https_with_the_cluster_ca(https_cluster):
    url = https_cluster.node_endpoints(REGIONS[1])[0]
    assert url.startswith("https://")
    kms = boto3.client("kms", region_name=REGIONS[1], endpoint_url=url)
    assert "Keys" in kms.list_keys()


def test_a_client_without_the_cluster_ca_refuses_the_endpoint(https_cluster):
    bundle = os.environ.pop("AWS_CA_BUNDLE")
    try:
        with pytest.raises(botocore.exceptions.SSLError):
            boto3.client("kms", region_name=REGIONS[0]).list_keys()
    finally:
        os.environ["AWS_CA_BUNDLE"] = bundle
