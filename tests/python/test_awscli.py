"""The AWS CLI (awscli from PyPI) as a user runs it, with only the exported environment lines
`kmsim up` prints: create → encrypt → decrypt → describe → schedule deletion."""

import base64
import json
import os
import pathlib
import subprocess
import sys


def aws(*args: str) -> str:
    exe = pathlib.Path(sys.executable).parent / "aws"
    out = subprocess.run([str(exe), "kms", *args], capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert out.returncode == 0, f"aws kms {' '.join(args)} failed: {out.stderr}"
    return out.stdout


def test_cli_session_create_encrypt_decrypt_describe_schedule_deletion(cluster, tmp_path):
    created = json.loads(aws("create-key", "--description", "from the cli", "--output", "json"))
    key = created["KeyMetadata"]["KeyId"]
    arn = created["KeyMetadata"]["Arn"]
    assert arn.startswith("arn:aws:kms:us-east-1:")

    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"attack at dawn\n")
    blob_b64 = aws("encrypt", "--key-id", key, "--plaintext", f"fileb://{plain}",
                   "--encryption-context", "purpose=cli", "--output", "text", "--query", "CiphertextBlob").strip()
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(blob_b64))

    out_b64 = aws("decrypt", "--ciphertext-blob", f"fileb://{blob}", "--encryption-context", "purpose=cli",
                  "--output", "text", "--query", "Plaintext").strip()
    assert base64.b64decode(out_b64) == b"attack at dawn\n"

    described = json.loads(aws("describe-key", "--key-id", key, "--output", "json"))
    assert described["KeyMetadata"]["Description"] == "from the cli"
    assert described["KeyMetadata"]["KeyState"] == "Enabled"

    scheduled = json.loads(aws("schedule-key-deletion", "--key-id", key, "--pending-window-in-days", "7", "--output", "json"))
    assert scheduled["KeyId"] == arn and scheduled["KeyState"] == "PendingDeletion"
    described = json.loads(aws("describe-key", "--key-id", key, "--output", "json"))
    assert described["KeyMetadata"]["KeyState"] == "PendingDeletion"

    # The same CLI reaches the other Region through the same endpoint.
    eu = json.loads(aws("create-key", "--region", "eu-west-1", "--output", "json"))
    assert eu["KeyMetadata"]["Arn"].startswith("arn:aws:kms:eu-west-1:")
