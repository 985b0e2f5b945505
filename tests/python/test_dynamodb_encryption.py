"""The DynamoDB Encryption Client for Python (dynamodb-encryption-sdk) with a multi-Region key:
its KMS materials provider seals an item in memory in one Region and the replica opens it in
the other. No DynamoDB is involved: the item encryptor works on Python dictionaries.

The provider picks a KMS client by the Region of its key ARN, from `regional_clients` (given
here, built by the suite's fixture) or made from its botocore session (the environment that
`kmsim up` prints). It calls GenerateDataKey to seal and Decrypt, without a KeyId, to open; the
KMS encryption context holds the table name and the item's key attributes."""

import re
from decimal import Decimal

import botocore.exceptions
import pytest
from boto3.dynamodb.types import Binary
from dynamodb_encryption_sdk.encrypted import CryptoConfig
from dynamodb_encryption_sdk.encrypted.item import decrypt_python_item, encrypt_python_item
from dynamodb_encryption_sdk.exceptions import SignatureVerificationError, UnwrappingError
from dynamodb_encryption_sdk.identifiers import CryptoAction
from dynamodb_encryption_sdk.internal.formatting.material_description import deserialize
from dynamodb_encryption_sdk.material_providers.aws_kms import AwsKmsCryptographicMaterialsProvider
from dynamodb_encryption_sdk.structures import AttributeActions, EncryptionContext
from dynamodb_encryption_sdk.transform import dict_to_ddb

from conftest import REGIONS, replicated_key

PRIMARY, REPLICA = REGIONS
TABLE = "orders"
DESCRIPTION = "*amzn-ddb-map-desc*"
SIGNATURE = "*amzn-ddb-map-sig*"
ENCRYPTED = ("card", "amount", "photo", "labels", "shipped")
CLEAR = ("customer", "order", "note")


def plaintext_item():
    return {
        "customer": "c-0042",  # partition key: signed, in the KMS encryption context
        "order": Decimal(7),  # sort key: the same
        "card": "4111 1111 1111 1111",
        "amount": Decimal("129.95"),
        "photo": Binary(b"\x89PNG\r\n\x1a\n\x00\x01"),
        "labels": {"gift", "express"},
        "shipped": True,
        "note": "left in the clear, unsigned",
    }


def crypto_config(provider, item):
    """The configuration of one item of TABLE: every attribute encrypted and signed except the
    key attributes (signed only) and `note` (left alone)."""
    actions = AttributeActions(default_action=CryptoAction.ENCRYPT_AND_SIGN,
                               attribute_actions={"note": CryptoAction.DO_NOTHING})
    actions.set_index_keys("customer", "order")
    context = EncryptionContext(table_name=TABLE, partition_key_name="customer", sort_key_name="order",
                                attributes=dict_to_ddb(item))
    return CryptoConfig(materials_provider=provider, encryption_context=context, attribute_actions=actions)


def provider(key_arn, client):
    """A KMS materials provider for `key_arn` whose only client is `client`, of the key's Region."""
    region = key_arn.split(":")[3]
    return AwsKmsCryptographicMaterialsProvider(key_id=key_arn, regional_clients={region: client})


def encrypt(item, key_arn, client):
    return encrypt_python_item(item, crypto_config(provider(key_arn, client), item))


def decrypt(item, key_arn, client):
    return decrypt_python_item(item, crypto_config(provider(key_arn, client), item))


class KmsCalls:
    """What boto3 KMS clients send (operation, URL, Region in the SigV4 scope) and which key
    each answer names."""

    def __init__(self, *clients):
        self.sent, self.answered = [], []
        for c in clients:
            c.meta.events.register("before-send.kms", self._sent)
            c.meta.events.register("after-call.kms", self._answered)

    def _sent(self, request, event_name, **_):
        auth = request.headers["Authorization"]
        auth = auth.decode() if isinstance(auth, bytes) else auth
        scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/kms/aws4_request", auth)
        assert scope, auth
        self.sent.append((event_name.rsplit(".", 1)[1], request.url.rstrip("/"), scope.group(1)))

    def _answered(self, parsed, event_name, **_):
        self.answered.append((event_name.rsplit(".", 1)[1], parsed.get("KeyId")))


def kms_error(excinfo):
    """The AWS error code behind the library's error (it raises while handling botocore's)."""
    cause = excinfo.value.__context__
    assert isinstance(cause, botocore.exceptions.ClientError), repr(cause)
    return cause.response["Error"]["Code"]


def test_item_sealed_in_one_region_opens_with_the_replica_in_the_other(cluster):
    primary_arn, replica_arn = replicated_key(cluster)
    home, away = cluster.client(PRIMARY), cluster.client(REPLICA)
    calls = KmsCalls(home, away)
    item = plaintext_item()

    encrypted = encrypt(item, primary_arn, home)
    assert calls.sent == [("GenerateDataKey", cluster.endpoint, PRIMARY)]
    assert calls.answered == [("GenerateDataKey", primary_arn)]
    assert set(encrypted) == set(item) | {DESCRIPTION, SIGNATURE}
    for name in ENCRYPTED:
        assert isinstance(encrypted[name], Binary), name
    assert b"4111" not in encrypted["card"].value and b"129.95" not in encrypted["amount"].value
    assert item["photo"].value not in encrypted["photo"].value
    for name in CLEAR:
        assert encrypted[name] == item[name], name
    assert len(encrypted[SIGNATURE].value) == 32  # HmacSHA256
    description = deserialize({"B": encrypted[DESCRIPTION].value})
    assert description["amzn-ddb-wrap-alg"] == "kms"
    assert description["amzn-ddb-env-alg"] == "AES/256" and description["amzn-ddb-sig-alg"] == "HmacSHA256/256"
    assert description["amzn-ddb-env-key"]

    # The replica's ARN sends Decrypt to the other Region, which opens the data key itself.
    assert decrypt(encrypted, replica_arn, away) == item
    assert calls.sent[1:] == [("Decrypt", cluster.endpoint, REPLICA)]
    assert calls.answered[1:] == [("Decrypt", replica_arn)]

    # A provider with no clients builds its own from the environment `kmsim up` prints.
    config = crypto_config(AwsKmsCryptographicMaterialsProvider(key_id=replica_arn), encrypted)
    assert decrypt_python_item(encrypted, config) == item


def test_a_tampered_item_does_not_open(cluster):
    primary_arn, replica_arn = replicated_key(cluster)
    home, away = cluster.client(PRIMARY), cluster.client(REPLICA)
    encrypted = encrypt(plaintext_item(), primary_arn, home)
    assert decrypt(encrypted, replica_arn, away) == plaintext_item()

    # One bit of an encrypted attribute: KMS opens the data key, the item's HMAC does not verify.
    flipped = bytearray(encrypted["amount"].value)
    flipped[-1] ^= 0x01
    with pytest.raises(SignatureVerificationError):
        decrypt({**encrypted, "amount": Binary(bytes(flipped))}, replica_arn, away)

    # Another sort key: the KMS encryption context differs, so the replica refuses the data key.
    with pytest.raises(UnwrappingError) as excinfo:
        decrypt({**encrypted, "order": Decimal(8)}, replica_arn, away)
    assert kms_error(excinfo) == "InvalidCiphertextException"


def test_an_item_under_an_unrelated_key_does_not_open_with_the_replica(cluster):
    _, replica_arn = replicated_key(cluster)
    home, away = cluster.client(PRIMARY), cluster.client(REPLICA)
    unrelated = home.create_key(Description="single-Region, no relative")["KeyMetadata"]["Arn"]
    encrypted = encrypt(plaintext_item(), unrelated, home)
    assert decrypt(encrypted, unrelated, home) == plaintext_item()

    # The replica's Region holds no key related to the one that sealed the data key.
    with pytest.raises(UnwrappingError) as excinfo:
        decrypt(encrypted, replica_arn, away)
    assert kms_error(excinfo) == "AccessDeniedException"
