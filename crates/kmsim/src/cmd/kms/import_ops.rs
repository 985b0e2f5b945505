//! Flags of the imported key material operations: get-parameters-for-import,
//! import-key-material, delete-imported-key-material.

use clap::Args;

use kmsim_proto::kms::v1::{
    DeleteImportedKeyMaterialRequest, GetParametersForImportRequest, ImportKeyMaterialRequest,
};

use super::params::{self, Blob};
use super::set;

/// Returns the public key and an import token you need to import or reimport key material for
/// a KMS key.
///
/// Example: kmsim kms get-parameters-for-import --key-id KEY --wrapping-algorithm
/// RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048 --output-blob ImportToken:token.bin
/// --output-blob PublicKey:wrapping.der
#[derive(Args)]
pub struct GetParametersForImportArgs {
    /// The key (origin EXTERNAL): key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// How the material will be wrapped: RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256,
    /// RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.
    #[arg(
        long,
        value_name = "ALGORITHM",
        required_unless_present = "cli_input_json"
    )]
    wrapping_algorithm: Option<String>,
    /// The wrapping public key: RSA_2048, RSA_3072 or RSA_4096.
    #[arg(long, value_name = "SPEC", required_unless_present = "cli_input_json")]
    wrapping_key_spec: Option<String>,
    /// The whole request as AWS JSON
    /// ({"KeyId":"…","WrappingAlgorithm":"…","WrappingKeySpec":"RSA_2048"}),
    /// literal or file://PATH; flags given as well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<GetParametersForImportRequest>)]
    cli_input_json: Option<GetParametersForImportRequest>,
}

impl GetParametersForImportArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> GetParametersForImportRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.wrapping_algorithm, self.wrapping_algorithm);
        set(&mut r.wrapping_key_spec, self.wrapping_key_spec);
        r
    }
}

/// Imports or reimports key material into an existing KMS key that was created without key
/// material.
///
/// Example: kmsim kms import-key-material --key-id KEY --import-token fileb://token.bin
/// --encrypted-key-material fileb://material.enc --valid-to 2027-01-01T00:00:00Z
#[derive(Args)]
pub struct ImportKeyMaterialArgs {
    /// The key (origin EXTERNAL): key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// The ImportToken of get-parameters-for-import: fileb://PATH for a file's raw bytes, or
    /// base64 (literal or file://PATH), as in AWS CLI v2.
    #[arg(long, value_name = "BLOB", value_parser = params::blob, required_unless_present = "cli_input_json")]
    import_token: Option<Blob>,
    /// The key material wrapped with the PublicKey of get-parameters-for-import: fileb://PATH
    /// for a file's raw bytes, or base64 (literal or file://PATH), as in AWS CLI v2.
    #[arg(long, value_name = "BLOB", value_parser = params::blob, required_unless_present = "cli_input_json")]
    encrypted_key_material: Option<Blob>,
    /// When the material expires (at most 365 days ahead): epoch seconds, or ISO 8601 such as
    /// 2027-01-01T00:00:00Z; needed unless --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE.
    #[arg(long, value_name = "TIME", value_parser = params::timestamp)]
    valid_to: Option<f64>,
    /// KEY_MATERIAL_EXPIRES (default, with --valid-to) or KEY_MATERIAL_DOES_NOT_EXPIRE.
    #[arg(long, value_name = "MODEL")]
    expiration_model: Option<String>,
    /// NEW_KEY_MATERIAL (material not imported before) or EXISTING_KEY_MATERIAL (reimport).
    #[arg(long, value_name = "TYPE")]
    import_type: Option<String>,
    /// Description of the material (0..256 characters: letters, digits, spaces and :/_.-).
    #[arg(long, value_name = "TEXT")]
    key_material_description: Option<String>,
    /// ID of the material being reimported (64 hex digits, from list-key-rotations).
    #[arg(long, value_name = "ID")]
    key_material_id: Option<String>,
    /// The whole request as AWS JSON
    /// ({"KeyId":"…","ImportToken":"<base64>","EncryptedKeyMaterial":"<base64>"}),
    /// literal or file://PATH (ValidTo in epoch seconds); flags given as well override its
    /// members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<ImportKeyMaterialRequest>)]
    cli_input_json: Option<ImportKeyMaterialRequest>,
}

impl ImportKeyMaterialArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> ImportKeyMaterialRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.import_token, self.import_token.map(|Blob(b)| b));
        set(
            &mut r.encrypted_key_material,
            self.encrypted_key_material.map(|Blob(b)| b),
        );
        set(&mut r.valid_to, self.valid_to);
        set(&mut r.expiration_model, self.expiration_model);
        set(&mut r.import_type, self.import_type);
        set(
            &mut r.key_material_description,
            self.key_material_description,
        );
        set(&mut r.key_material_id, self.key_material_id);
        r
    }
}

/// Deletes key material that was previously imported.
///
/// Example: kmsim kms delete-imported-key-material --key-id KEY
#[derive(Args)]
pub struct DeleteImportedKeyMaterialArgs {
    /// The key (origin EXTERNAL): key ID or key ARN.
    #[arg(long, value_name = "KEY", required_unless_present = "cli_input_json")]
    key_id: Option<String>,
    /// ID of the material to delete (64 hex digits); default: the current one.
    #[arg(long, value_name = "ID")]
    key_material_id: Option<String>,
    /// The whole request as AWS JSON ({"KeyId":"…"}), literal or file://PATH; flags given as
    /// well override its members.
    #[arg(long, value_name = "JSON", value_parser = params::input_json::<DeleteImportedKeyMaterialRequest>)]
    cli_input_json: Option<DeleteImportedKeyMaterialRequest>,
}

impl DeleteImportedKeyMaterialArgs {
    /// The request: `--cli-input-json`, overridden by the flags given.
    pub fn into_request(self) -> DeleteImportedKeyMaterialRequest {
        let mut r = self.cli_input_json.unwrap_or_default();
        set(&mut r.key_id, self.key_id);
        set(&mut r.key_material_id, self.key_material_id);
        r
    }
}

flags_of! {
    GetParametersForImportRequest => GetParametersForImportArgs;
    ImportKeyMaterialRequest => ImportKeyMaterialArgs;
    DeleteImportedKeyMaterialRequest => DeleteImportedKeyMaterialArgs;
}
