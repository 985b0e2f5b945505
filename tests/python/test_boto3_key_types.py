"""boto3 for the operations of the asymmetric and HMAC key types, rotation, imported material
and grants, with Python's `cryptography` as the independent implementation: it verifies
kmsim's signatures, encrypts to kmsim's RSA public keys, wraps material for import and
recomputes HMACs over imported material."""

import hashlib
import hmac
import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from conftest import REGIONS


def error(excinfo):
    e = excinfo.value.response
    return e["Error"]["Code"], e["Error"]["Message"]


def key(kms, spec, usage, **kw):
    return kms.create_key(KeySpec=spec, KeyUsage=usage, **kw)["KeyMetadata"]["Arn"]


@pytest.mark.parametrize("region", REGIONS)
def test_sign_verify_mac_and_key_agreement(cluster, region):
    kms = cluster.client(region)
    message = b"signed by kmsim, checked by cryptography"
    signer = key(kms, "ECC_NIST_P384", "SIGN_VERIFY")
    sig = kms.sign(KeyId=signer, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_384")
    assert sig["KeyId"] == signer and sig["SigningAlgorithm"] == "ECDSA_SHA_384"
    public = kms.get_public_key(KeyId=signer)
    assert public["KeySpec"] == "ECC_NIST_P384" and public["SigningAlgorithms"] == ["ECDSA_SHA_384"]
    serialization.load_der_public_key(public["PublicKey"]).verify(
        sig["Signature"], message, ec.ECDSA(hashes.SHA384()))
    assert kms.verify(KeyId=signer, Message=message, Signature=sig["Signature"],
                      SigningAlgorithm="ECDSA_SHA_384")["SignatureValid"] is True
    digest = hashlib.sha384(message).digest()
    assert kms.verify(KeyId=signer, Message=digest, MessageType="DIGEST", Signature=sig["Signature"],
                      SigningAlgorithm="ECDSA_SHA_384")["SignatureValid"] is True
    with pytest.raises(kms.exceptions.KMSInvalidSignatureException):
        kms.verify(KeyId=signer, Message=b"other", Signature=sig["Signature"], SigningAlgorithm="ECDSA_SHA_384")

    rsa_signer = key(kms, "RSA_2048", "SIGN_VERIFY")
    sig = kms.sign(KeyId=rsa_signer, Message=message, SigningAlgorithm="RSASSA_PSS_SHA_256")
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_signer)["PublicKey"])
    pub.verify(sig["Signature"], message,
               padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())

    mac_key = key(kms, "HMAC_384", "GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=mac_key, Message=message, MacAlgorithm="HMAC_SHA_384")["Mac"]
    assert len(mac) == 48
    assert kms.verify_mac(KeyId=mac_key, Message=message, Mac=mac, MacAlgorithm="HMAC_SHA_384")["MacValid"]
    with pytest.raises(kms.exceptions.KMSInvalidMacException):
        kms.verify_mac(KeyId=mac_key, Message=message + b"!", Mac=mac, MacAlgorithm="HMAC_SHA_384")

    # ECDH with a peer key made by cryptography equals cryptography's own ECDH.
    agree = key(kms, "ECC_NIST_P256", "KEY_AGREEMENT")
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=agree, KeyAgreementAlgorithm="ECDH", PublicKey=peer_der)
    kms_public = serialization.load_der_public_key(kms.get_public_key(KeyId=agree)["PublicKey"])
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_public)

    # RSA: cryptography encrypts to the public key, kmsim decrypts.
    rsa = key(kms, "RSA_3072", "ENCRYPT_DECRYPT")
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa)["PublicKey"])
    blob = pub.encrypt(b"to kmsim", padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                 algorithm=hashes.SHA256(), label=None))
    assert kms.decrypt(KeyId=rsa, CiphertextBlob=blob,
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"to kmsim"

    # Data key pairs: the private key decrypts from its blob and matches the public key.
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=sym, KeyPairSpec="ECC_NIST_P256")
    assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"] == pair["PrivateKeyPlaintext"]
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], password=None)
    assert private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo) == pair["PublicKey"]
    pair = kms.generate_data_key_pair_without_plaintext(KeyId=sym, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in pair and pair["KeyPairSpec"] == "RSA_2048"


def test_rotation_operations(cluster):
    kms = cluster.client(REGIONS[0])
    md = kms.create_key()["KeyMetadata"]
    key_id, first = md["KeyId"], md["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180
    assert "NextRotationDate" in status
    kms.rotate_key_on_demand(KeyId=key_id)
    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND"]
    now = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert now != first and rotations[0]["KeyMaterialId"] == now
    every = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert {r["KeyMaterialId"] for r in every} == {first, now}
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"before"
    unchecked = cluster.client(REGIONS[0], parameter_validation=False)
    with pytest.raises(unchecked.exceptions.ClientError) as ei:
        unchecked.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=10)
    assert error(ei)[0] == "ValidationException"
    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_imported_hmac_material_matches_an_independent_hmac(cluster):
    kms = cluster.client(REGIONS[1])
    md = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")["KeyMetadata"]
    assert md["KeyState"] == "PendingImport"
    params = kms.get_parameters_for_import(KeyId=md["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                           WrappingKeySpec="RSA_4096")
    material = os.urandom(32)
    wrapping = serialization.load_der_public_key(params["PublicKey"])
    wrapped = wrapping.encrypt(material, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                                      algorithm=hashes.SHA256(), label=None))
    kms.import_key_material(KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    message = b"MAC me"
    mac = kms.generate_mac(KeyId=md["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(material, message, hashlib.sha256).digest()
    # The token is for this key only.
    other = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")["KeyMetadata"]
    with pytest.raises(kms.exceptions.InvalidImportTokenException):
        kms.import_key_material(KeyId=other["KeyId"], ImportToken=params["ImportToken"],
                                EncryptedKeyMaterial=wrapped, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    kms.delete_imported_key_material(KeyId=md["KeyId"])
    assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.generate_mac(KeyId=md["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")


def test_grant_operations(cluster):
    kms = cluster.client(REGIONS[0])
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    role = f"arn:aws:iam::{cluster.account}:role/app"
    g = kms.create_grant(KeyId=key_id, GranteePrincipal=role, RetiringPrincipal=role, Name="app",
                         Operations=["Encrypt", "Decrypt"],
                         Constraints={"EncryptionContextSubset": {"tenant": "a"}})
    again = kms.create_grant(KeyId=key_id, GranteePrincipal=role, RetiringPrincipal=role, Name="app",
                             Operations=["Encrypt", "Decrypt"],
                             Constraints={"EncryptionContextSubset": {"tenant": "a"}})
    assert again["GrantId"] == g["GrantId"]
    grants = kms.list_grants(KeyId=key_id)["Grants"]
    assert [x["GrantId"] for x in grants] == [g["GrantId"]]
    assert grants[0]["Constraints"] == {"EncryptionContextSubset": {"tenant": "a"}}
    assert g["GrantId"] in [x["GrantId"] for x in kms.list_retirable_grants(RetiringPrincipal=role)["Grants"]]
    kms.retire_grant(GrantToken=g["GrantToken"])
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    g2 = kms.create_grant(KeyId=key_id, GranteePrincipal=role, Operations=["GenerateDataKey"])
    kms.revoke_grant(KeyId=key_id, GrantId=g2["GrantId"])
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.revoke_grant(KeyId=key_id, GrantId=g2["GrantId"])
