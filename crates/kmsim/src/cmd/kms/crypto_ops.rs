//! Flags of the cryptographic operations: encrypt, decrypt, re-encrypt, generate-data-key,
//! generate-data-key-without-plaintext, generate-random, generate-data-key-pair,
//! generate-data-key-pair-without-plaintext.
//!
//! Blob flags read `fileb://PATH` as raw bytes; a literal value or `file://PATH` is base64, as in
//! AWS CLI v2 (`--plaintext aGVsbG8=` encrypts `hello`).

use clap::Args;

use kmsim_proto::kms::v1::{
    DecryptRequest, EncryptRequest, GenerateDataKeyPairRequest,
    GenerateDataKeyPairWithoutPlaintextRequest, GenerateDataKeyRequest,
    GenerateDataKeyWithoutPlaintextRequest, GenerateRandomRequest, ReEncryptRequest,
};

use super::flags::ApplyTo;
use super::params::{self, Blob, StringMap};
use super::{set, set_list, set_map, DryRunFlags};

/// Encrypts plaintext of up to 4,096 bytes using a KMS key.
///
/// Example: kmsim kms encrypt --key-id alias/app --plaintext fileb://secret.txt
/// --output-blob CiphertextBlob:secret.enc
#[derive(Args)]
pub struct EncryptArgs {
    /// The key to encrypt with: key ID, key ARN, alias name (alias/NAME) or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The data to encrypt (1..4096 bytes): fileb://PATH for a file's raw bytes, or base64
    /// (literal or file://PATH), as in AWS CLI v2.
    #[arg(long, value_name = "BLOB", value_parser = params::blob, required_unless_present = "cli_input_json")]
    plaintext: Option<Blob>,
    /// Encryption context (additional authenticated data, needed again to decrypt):
    /// KEY=VALUE,KEY2=VALUE2 or a JSON object, literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    encryption_context: Option<StringMap>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    /// Encryption algorithm: SYMMETRIC_DEFAULT (default), RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256
    /// or SM2PKE.
    #[arg(long, value_name = "ALGORITHM")]
    encryption_algorithm: Option<String>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","Plaintext":"<base64>"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<EncryptRequest>)]
    cli_input_json: Option<EncryptRequest>,
}

impl EncryptArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> EncryptRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.plaintext, self.plaintext.map(|Blob(b)| b));
        set_map(&mut r.encryption_context, self.encryption_context);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.encryption_algorithm, self.encryption_algorithm);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

/// Decrypts ciphertext that was encrypted by a KMS key using Encrypt, GenerateDataKey or
/// ReEncrypt.
///
/// Example: kmsim kms decrypt --ciphertext-blob fileb://secret.enc --output-blob Plaintext:-
/// (or: … | jq -r .Plaintext | base64 -d)
#[derive(Args)]
pub struct DecryptArgs {
    /// The ciphertext to decrypt: fileb://PATH for a file's raw bytes, or base64 (literal or
    /// file://PATH), as in AWS CLI v2.
    #[arg(long, value_name = "BLOB", value_parser = params::blob)]
    ciphertext_blob: Option<Blob>,
    /// The encryption context given when encrypting: KEY=VALUE,KEY2=VALUE2 or a JSON object,
    /// literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    encryption_context: Option<StringMap>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    /// The key expected to have encrypted the ciphertext (key ID, key ARN, alias name or alias
    /// ARN); the call fails with IncorrectKeyException if it is another.
    #[arg(long, value_name = "KEY")]
    key_id: Option<String>,
    /// Encryption algorithm used to encrypt: SYMMETRIC_DEFAULT (default), RSAES_OAEP_SHA_1,
    /// RSAES_OAEP_SHA_256 or SM2PKE.
    #[arg(long, value_name = "ALGORITHM")]
    encryption_algorithm: Option<String>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// Dry-run modifiers: IGNORE_CIPHERTEXT.
    #[arg(long, value_name = "MODIFIER", num_args = 1..)]
    dry_run_modifiers: Option<Vec<String>>,
    /// The whole request as AWS JSON ({"CiphertextBlob":"<base64>"}), literal or file://PATH;
    /// flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DecryptRequest>)]
    cli_input_json: Option<DecryptRequest>,
}

impl DecryptArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DecryptRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(
            &mut r.ciphertext_blob,
            self.ciphertext_blob.map(|Blob(b)| b),
        );
        set_map(&mut r.encryption_context, self.encryption_context);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.key_id, self.key_id);
        set(&mut r.encryption_algorithm, self.encryption_algorithm);
        set(&mut r.dry_run, self.dry_run.value());
        set_list(&mut r.dry_run_modifiers, self.dry_run_modifiers);
        r
    }
}

/// Decrypts ciphertext and then reencrypts it under another KMS key (or the same one), without
/// exposing the plaintext.
#[derive(Args)]
pub struct ReEncryptArgs {
    /// The ciphertext to re-encrypt: fileb://PATH for a file's raw bytes, or base64 (literal or
    /// file://PATH), as in AWS CLI v2.
    #[arg(long, value_name = "BLOB", value_parser = params::blob)]
    ciphertext_blob: Option<Blob>,
    /// The encryption context the ciphertext was made with: KEY=VALUE,… or a JSON object,
    /// literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    source_encryption_context: Option<StringMap>,
    /// The key expected to have encrypted the ciphertext (key ID, key ARN, alias name or alias
    /// ARN).
    #[arg(long, value_name = "KEY")]
    source_key_id: Option<String>,
    /// The key to encrypt under: key ID, key ARN, alias name (alias/NAME) or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    destination_key_id: Option<String>,
    /// The encryption context of the new ciphertext: KEY=VALUE,… or a JSON object, literal or
    /// file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    destination_encryption_context: Option<StringMap>,
    /// Algorithm the ciphertext was encrypted with (default SYMMETRIC_DEFAULT).
    #[arg(long, value_name = "ALGORITHM")]
    source_encryption_algorithm: Option<String>,
    /// Algorithm to encrypt with (default SYMMETRIC_DEFAULT).
    #[arg(long, value_name = "ALGORITHM")]
    destination_encryption_algorithm: Option<String>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// Dry-run modifiers: IGNORE_CIPHERTEXT.
    #[arg(long, value_name = "MODIFIER", num_args = 1..)]
    dry_run_modifiers: Option<Vec<String>>,
    /// The whole request as AWS JSON ({"CiphertextBlob":"<base64>","DestinationKeyId":"…"}),
    /// literal or file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ReEncryptRequest>)]
    cli_input_json: Option<ReEncryptRequest>,
}

impl ReEncryptArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ReEncryptRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(
            &mut r.ciphertext_blob,
            self.ciphertext_blob.map(|Blob(b)| b),
        );
        set_map(
            &mut r.source_encryption_context,
            self.source_encryption_context,
        );
        set(&mut r.source_key_id, self.source_key_id);
        set(&mut r.destination_key_id, self.destination_key_id);
        set_map(
            &mut r.destination_encryption_context,
            self.destination_encryption_context,
        );
        set(
            &mut r.source_encryption_algorithm,
            self.source_encryption_algorithm,
        );
        set(
            &mut r.destination_encryption_algorithm,
            self.destination_encryption_algorithm,
        );
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.dry_run, self.dry_run.value());
        set_list(&mut r.dry_run_modifiers, self.dry_run_modifiers);
        r
    }
}

/// Returns a unique symmetric data key for use outside of KMS: in plaintext, and encrypted under
/// a KMS key.
#[derive(Args)]
pub struct GenerateDataKeyArgs {
    /// The key to encrypt the data key under: key ID, key ARN, alias name or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Encryption context: KEY=VALUE,KEY2=VALUE2 or a JSON object, literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    encryption_context: Option<StringMap>,
    /// Length of the data key in bytes (1..1024); give this or --key-spec.
    #[arg(long, value_name = "N")]
    number_of_bytes: Option<i32>,
    /// Length of the data key: AES_256 or AES_128; give this or --number-of-bytes.
    #[arg(long, value_name = "SPEC")]
    key_spec: Option<String>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","KeySpec":"AES_256"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GenerateDataKeyRequest>)]
    cli_input_json: Option<GenerateDataKeyRequest>,
}

impl GenerateDataKeyArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GenerateDataKeyRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set_map(&mut r.encryption_context, self.encryption_context);
        set(&mut r.number_of_bytes, self.number_of_bytes);
        set(&mut r.key_spec, self.key_spec);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

/// Returns a unique symmetric data key encrypted under a KMS key, without its plaintext.
#[derive(Args)]
pub struct GenerateDataKeyWithoutPlaintextArgs {
    /// The key to encrypt the data key under: key ID, key ARN, alias name or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// Encryption context: KEY=VALUE,KEY2=VALUE2 or a JSON object, literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    encryption_context: Option<StringMap>,
    /// Length of the data key: AES_256 or AES_128; give this or --number-of-bytes.
    #[arg(long, value_name = "SPEC")]
    key_spec: Option<String>,
    /// Length of the data key in bytes (1..1024); give this or --key-spec.
    #[arg(long, value_name = "N")]
    number_of_bytes: Option<i32>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    #[command(flatten)]
    dry_run: DryRunFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","KeySpec":"AES_256"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GenerateDataKeyWithoutPlaintextRequest>)]
    cli_input_json: Option<GenerateDataKeyWithoutPlaintextRequest>,
}

impl GenerateDataKeyWithoutPlaintextArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GenerateDataKeyWithoutPlaintextRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set_map(&mut r.encryption_context, self.encryption_context);
        set(&mut r.key_spec, self.key_spec);
        set(&mut r.number_of_bytes, self.number_of_bytes);
        set_list(&mut r.grant_tokens, self.grant_tokens);
        set(&mut r.dry_run, self.dry_run.value());
        r
    }
}

/// Returns a random byte string that is cryptographically secure.
///
/// Example: kmsim kms generate-random --number-of-bytes 32 --output-blob Plaintext:key.bin
#[derive(Args)]
pub struct GenerateRandomArgs {
    /// Number of random bytes (1..1024).
    #[arg(long, value_name = "N")]
    number_of_bytes: Option<i32>,
    /// CloudHSM custom key store to generate the bytes in.
    #[arg(long, value_name = "ID")]
    custom_key_store_id: Option<String>,
    /// The whole request as AWS JSON ({"NumberOfBytes":32}), literal or file://PATH; flags given
    /// as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GenerateRandomRequest>)]
    cli_input_json: Option<GenerateRandomRequest>,
}

impl GenerateRandomArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GenerateRandomRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.number_of_bytes, self.number_of_bytes);
        set(&mut r.custom_key_store_id, self.custom_key_store_id);
        r
    }
}

/// The flags generate-data-key-pair and generate-data-key-pair-without-plaintext share (their
/// requests have the same members, less the Nitro Enclave recipient).
#[derive(Args)]
pub struct DataKeyPairFlags {
    /// The symmetric encryption key to encrypt the private key under: key ID, key ARN, alias
    /// name or alias ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The kind of pair: RSA_2048, RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384,
    /// ECC_NIST_P521, ECC_SECG_P256K1, SM2 or ECC_NIST_EDWARDS25519.
    #[arg(long, value_name = "SPEC", required_unless_present = "cli_input_json")]
    key_pair_spec: Option<String>,
    /// Encryption context: KEY=VALUE,KEY2=VALUE2 or a JSON object, literal or file://PATH.
    #[arg(long, value_name = "MAP", value_parser = params::string_map)]
    encryption_context: Option<StringMap>,
    /// Grant tokens (up to 10).
    #[arg(long, value_name = "TOKEN", num_args = 1..)]
    grant_tokens: Option<Vec<String>>,
    #[command(flatten)]
    dry_run: DryRunFlags,
}

apply_to! {
    DataKeyPairFlags => GenerateDataKeyPairRequest, GenerateDataKeyPairWithoutPlaintextRequest;
    |f, r| {
        set(&mut r.key_id, f.key_id);
        set(&mut r.key_pair_spec, f.key_pair_spec);
        set_map(&mut r.encryption_context, f.encryption_context);
        set_list(&mut r.grant_tokens, f.grant_tokens);
        set(&mut r.dry_run, f.dry_run.value());
    }
}

/// Returns a unique asymmetric data key pair for use outside of KMS.
///
/// Example: kmsim kms generate-data-key-pair --key-id alias/app --key-pair-spec ECC_NIST_P256
/// --output-blob PrivateKeyPlaintext:private.der --output-blob PublicKey:public.der
#[derive(Args)]
pub struct GenerateDataKeyPairArgs {
    #[command(flatten)]
    pair: DataKeyPairFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","KeyPairSpec":"ECC_NIST_P256"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GenerateDataKeyPairRequest>)]
    cli_input_json: Option<GenerateDataKeyPairRequest>,
}

impl GenerateDataKeyPairArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GenerateDataKeyPairRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        self.pair.apply_to(&mut r);
        r
    }
}

/// Returns a unique asymmetric data key pair for use outside of KMS, its private key only
/// encrypted under a KMS key.
///
/// Example: kmsim kms generate-data-key-pair-without-plaintext --key-id alias/app
/// --key-pair-spec RSA_2048 --output-blob PrivateKeyCiphertextBlob:private.enc
#[derive(Args)]
pub struct GenerateDataKeyPairWithoutPlaintextArgs {
    #[command(flatten)]
    pair: DataKeyPairFlags,
    /// The whole request as AWS JSON ({"KeyId":"…","KeyPairSpec":"RSA_2048"}), literal or
    /// file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GenerateDataKeyPairWithoutPlaintextRequest>)]
    cli_input_json: Option<GenerateDataKeyPairWithoutPlaintextRequest>,
}

impl GenerateDataKeyPairWithoutPlaintextArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GenerateDataKeyPairWithoutPlaintextRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        self.pair.apply_to(&mut r);
        r
    }
}

flags_of! {
    EncryptRequest => EncryptArgs;
    DecryptRequest => DecryptArgs;
    ReEncryptRequest => ReEncryptArgs;
    GenerateDataKeyRequest => GenerateDataKeyArgs;
    GenerateDataKeyWithoutPlaintextRequest => GenerateDataKeyWithoutPlaintextArgs;
    GenerateRandomRequest => GenerateRandomArgs;
    GenerateDataKeyPairRequest => GenerateDataKeyPairArgs;
    GenerateDataKeyPairWithoutPlaintextRequest => GenerateDataKeyPairWithoutPlaintextArgs;
}
