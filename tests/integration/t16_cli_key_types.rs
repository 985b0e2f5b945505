//! `kmsim kms` beyond symmetric encryption, through the real binary and files, typed as a user
//! would: a signature that openssl verifies, HMACs, grants, rotation, imported material, and
//! the AWS CLI's error line and exit codes.

use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::harness::{kmsim_exe, Cluster};
use crate::openssl::{s, Openssl};

const R: &str = "us-east-1";
const APP: &str = "arn:aws:iam::111122223333:role/app";
const OPS: &str = "arn:aws:iam::111122223333:role/ops";

/// Runs `kmsim kms --data-dir <cluster> <line>`, the line split at spaces (no value in these
/// tests has one).
fn run(c: &Cluster, line: &str) -> Output {
    Command::new(kmsim_exe())
        .args(["kms", "--data-dir", &c.data_dir()])
        .args(line.split(' '))
        .output()
        .expect("run kmsim")
}

/// `kmsim kms <line>`, which must succeed: its JSON output (`null` for the empty output of an
/// operation without response members).
fn kms(c: &Cluster, line: &str) -> Value {
    let out = run(c, line);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kmsim kms {line}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("kmsim kms {line}: {e}: {stdout}"))
}

/// `kmsim kms <line>`, which must fail: its exit code and standard error.
fn kms_fails(c: &Cluster, line: &str) -> (Option<i32>, String) {
    let out = run(c, line);
    assert!(!out.status.success(), "kmsim kms {line} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

/// `openssl <line>` in the scratch directory, split at spaces; its standard output.
fn openssl(o: &Openssl, line: &str) -> Vec<u8> {
    o.ok(&line.split(' ').collect::<Vec<_>>())
}

/// The string member `key` of a response.
fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// Creates a key with the flags `flags`; returns its key ID.
fn create_key(c: &Cluster, flags: &str) -> String {
    let md = kms(c, &format!("create-key {flags}"));
    str_of(&md["KeyMetadata"], "KeyId").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_signs_macs_grants_rotates_and_imports_with_files() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    o.write("msg", b"the message kmsim signs\n");
    o.write("other", b"another message\n");
    // The scratch directory, where openssl runs and kmsim reads and writes files.
    let d = s(o.path("msg").parent().expect("scratch dir")).to_string();

    // Sign with an ECC key, the signature written raw to a file; verify it from that file.
    let key = create_key(&c, "--key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY");
    let signed = kms(
        &c,
        &format!(
            "sign --key-id {key} --message fileb://{d}/msg --signing-algorithm ECDSA_SHA_256 \
             --output-blob Signature:{d}/sig.bin"
        ),
    );
    assert_eq!(str_of(&signed, "SigningAlgorithm"), "ECDSA_SHA_256");
    assert!(signed.get("Signature").is_none(), "{signed}");
    let verify = |message: &str, extra: &str| {
        format!(
            "verify --key-id {key} --message fileb://{d}/{message} --signature \
             fileb://{d}/sig.bin --signing-algorithm ECDSA_SHA_256{extra}"
        )
    };
    let verified = kms(&c, &verify("msg", ""));
    assert_eq!(verified["SignatureValid"], true, "{verified}");

    // openssl verifies it with the public key from get-public-key.
    let public = kms(
        &c,
        &format!("get-public-key --key-id {key} --output-blob PublicKey:{d}/pub.der"),
    );
    assert_eq!(str_of(&public, "KeySpec"), "ECC_NIST_P256");
    assert_eq!(str_of(&public, "KeyUsage"), "SIGN_VERIFY");
    let out = openssl(
        &o,
        "dgst -sha256 -keyform DER -verify pub.der -signature sig.bin msg",
    );
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));

    // The digest openssl computes verifies the same signature with --message-type DIGEST.
    openssl(&o, "dgst -sha256 -binary -out digest.bin msg");
    let verified = kms(&c, &verify("digest.bin", " --message-type DIGEST"));
    assert_eq!(verified["SignatureValid"], true, "{verified}");

    // A signature over another message: the AWS CLI's error line and exit code 254.
    let (code, stderr) = kms_fails(&c, &verify("other", ""));
    assert_eq!(code, Some(254), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with(
            "An error occurred (KMSInvalidSignatureException) when calling the Verify operation: "
        )),
        "{stderr}"
    );
    // A message that is neither fileb:// nor base64 is a usage error: exit code 2.
    let (code, stderr) = kms_fails(
        &c,
        &format!("sign --key-id {key} --message not-base64! --signing-algorithm ECDSA_SHA_256"),
    );
    assert_eq!(code, Some(2), "{stderr}");

    // HMAC: generate-mac to a file, verify-mac from it; a wrong MAC is KMSInvalidMacException.
    let hmac = create_key(&c, "--key-spec HMAC_256 --key-usage GENERATE_VERIFY_MAC");
    let mac_flags =
        format!("--key-id {hmac} --message fileb://{d}/msg --mac-algorithm HMAC_SHA_256");
    let mac = kms(
        &c,
        &format!("generate-mac {mac_flags} --output-blob Mac:{d}/mac.bin"),
    );
    assert_eq!(str_of(&mac, "MacAlgorithm"), "HMAC_SHA_256");
    assert_eq!(o.read("mac.bin").len(), 32);
    let verified = kms(
        &c,
        &format!("verify-mac {mac_flags} --mac fileb://{d}/mac.bin"),
    );
    assert_eq!(verified["MacValid"], true, "{verified}");
    o.write("bad-mac.bin", &[0; 32]);
    let (code, stderr) = kms_fails(
        &c,
        &format!("verify-mac {mac_flags} --mac fileb://{d}/bad-mac.bin"),
    );
    assert_eq!(code, Some(254), "{stderr}");
    assert!(
        stderr.contains("An error occurred (KMSInvalidMacException) when calling the VerifyMac"),
        "{stderr}"
    );

    // Grants: create with constraints in shorthand, list, list by retiring principal, revoke;
    // retire another by its token.
    let key = create_key(&c, "--description granted");
    let grant = kms(
        &c,
        &format!(
            "create-grant --key-id {key} --grantee-principal {APP} --retiring-principal {OPS} \
             --operations Encrypt Decrypt --constraints EncryptionContextSubset={{tenant=a}} \
             --name app"
        ),
    );
    let grant_id = str_of(&grant, "GrantId").to_string();
    assert!(!str_of(&grant, "GrantToken").is_empty());
    let listed = kms(&c, &format!("list-grants --key-id {key}"));
    let grants = listed["Grants"].as_array().expect("Grants");
    assert_eq!(grants.len(), 1, "{listed}");
    assert_eq!(str_of(&grants[0], "GrantId"), grant_id);
    assert_eq!(str_of(&grants[0], "GranteePrincipal"), APP);
    assert_eq!(grants[0]["Operations"], json!(["Encrypt", "Decrypt"]));
    assert_eq!(
        grants[0]["Constraints"],
        json!({"EncryptionContextSubset": {"tenant": "a"}})
    );
    let retirable = kms(
        &c,
        &format!("list-retirable-grants --retiring-principal {OPS}"),
    );
    let retirable = retirable["Grants"].as_array().expect("Grants");
    assert!(retirable.iter().any(|g| g["GrantId"] == grant_id.as_str()));
    let revoked = kms(
        &c,
        &format!("revoke-grant --key-id {key} --grant-id {grant_id}"),
    );
    assert_eq!(revoked, Value::Null);
    assert_eq!(
        kms(&c, &format!("list-grants --key-id {key}"))["Grants"],
        json!([])
    );
    let other = kms(
        &c,
        &format!("create-grant --key-id {key} --grantee-principal {APP} --operations DescribeKey"),
    );
    let token = str_of(&other, "GrantToken");
    assert_eq!(
        kms(&c, &format!("retire-grant --grant-token {token}")),
        Value::Null
    );
    assert_eq!(
        kms(&c, &format!("list-grants --key-id {key}"))["Grants"],
        json!([])
    );

    // Rotation: enable with a period, status, on demand, list (every page, then one).
    let enabled = kms(
        &c,
        &format!("enable-key-rotation --key-id {key} --rotation-period-in-days 180"),
    );
    assert_eq!(enabled, Value::Null);
    let status = kms(&c, &format!("get-key-rotation-status --key-id {key}"));
    assert_eq!(status["KeyRotationEnabled"], true, "{status}");
    assert_eq!(status["RotationPeriodInDays"], 180, "{status}");
    assert!(status["NextRotationDate"].is_number(), "{status}");
    let rotated = kms(&c, &format!("rotate-key-on-demand --key-id {key}"));
    assert_eq!(str_of(&rotated, "KeyId"), key);
    let rotations = kms(&c, &format!("list-key-rotations --key-id {key}"));
    let list = rotations["Rotations"].as_array().expect("Rotations");
    assert_eq!(list.len(), 1, "{rotations}");
    assert_eq!(str_of(&list[0], "RotationType"), "ON_DEMAND");
    let all = format!("list-key-rotations --key-id {key} --include-key-material ALL_KEY_MATERIAL");
    let every = kms(&c, &all);
    assert_eq!(
        every["Rotations"].as_array().map(Vec::len),
        Some(2),
        "{every}"
    );
    let page = kms(&c, &format!("{all} --limit 1"));
    assert_eq!(
        page["Rotations"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );
    assert_eq!(page["Truncated"], true, "{page}");
    assert!(page["NextMarker"].is_string(), "{page}");
    kms(&c, &format!("disable-key-rotation --key-id {key}"));
    let status = kms(&c, &format!("get-key-rotation-status --key-id {key}"));
    assert_eq!(status["KeyRotationEnabled"], false, "{status}");

    // Imported material: parameters to files, the material wrapped by openssl and imported from
    // files; the key then encrypts and decrypts.
    let key = create_key(&c, "--origin EXTERNAL");
    let params = kms(
        &c,
        &format!(
            "get-parameters-for-import --key-id {key} --wrapping-algorithm RSAES_OAEP_SHA_256 \
             --wrapping-key-spec RSA_2048 --output-blob ImportToken:{d}/token.bin \
             --output-blob PublicKey:{d}/wrap.der"
        ),
    );
    assert!(params["ParametersValidTo"].is_number(), "{params}");
    openssl(&o, "rand -out key.bin 32");
    openssl(
        &o,
        "pkeyutl -encrypt -pubin -keyform DER -inkey wrap.der -pkeyopt rsa_padding_mode:oaep \
         -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in key.bin -out key.enc",
    );
    let imported = kms(
        &c,
        &format!(
            "import-key-material --key-id {key} --import-token fileb://{d}/token.bin \
             --encrypted-key-material fileb://{d}/key.enc \
             --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE"
        ),
    );
    assert_eq!(str_of(&imported, "KeyMaterialId").len(), 64, "{imported}");
    let md = kms(&c, &format!("describe-key --key-id {key}"));
    assert_eq!(str_of(&md["KeyMetadata"], "KeyState"), "Enabled", "{md}");
    kms(
        &c,
        &format!(
            "encrypt --key-id {key} --plaintext fileb://{d}/msg \
             --output-blob CiphertextBlob:{d}/msg.enc"
        ),
    );
    kms(
        &c,
        &format!(
            "decrypt --ciphertext-blob fileb://{d}/msg.enc --output-blob Plaintext:{d}/msg.dec"
        ),
    );
    assert_eq!(o.read("msg.dec"), o.read("msg"));
}
