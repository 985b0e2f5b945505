//! The `openssl` command line as the independent implementation that checks kmsim's
//! cryptography: it verifies kmsim's signatures, encrypts to kmsim's public keys, wraps
//! material for import and computes HMACs and ECDH secrets, exactly as a user would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory for openssl's input and output files.
pub struct Openssl {
    dir: tempfile::TempDir,
}

impl Openssl {
    /// A fresh scratch directory.
    pub fn new() -> Openssl {
        Openssl {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The path of a file in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write scratch file");
        p
    }

    /// Reads a file of the scratch directory.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read scratch file")
    }

    /// Runs `openssl <args>` in the scratch directory; returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, Vec<u8>, String) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl (install it: apt-get install openssl)");
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `openssl <args>` and panics with its stderr if it fails; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "openssl {args:?} failed: {stderr}");
        stdout
    }

    /// RSAES-OAEP with SHA-256 (and MGF1-SHA-256) of `plaintext` to a DER public key, as a
    /// user wraps material for ImportKeyMaterial or encrypts to an RSA KMS key.
    pub fn oaep_sha256(&self, public_der: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.write("oaep.pub.der", public_der);
        self.write("oaep.in", plaintext);
        self.ok(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            "oaep.pub.der",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-in",
            "oaep.in",
            "-out",
            "oaep.out",
        ]);
        self.read("oaep.out")
    }

    /// True when openssl verifies `signature` over `message` with the DER public key, for a
    /// digest (`sha256`…) and optional `-sigopt` settings (RSA-PSS).
    pub fn verifies(
        &self,
        public_der: &[u8],
        digest: &str,
        sigopts: &[&str],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        self.write("pub.der", public_der);
        self.write("msg.bin", message);
        self.write("sig.bin", signature);
        let digest = format!("-{digest}");
        let mut args = vec![
            "dgst",
            digest.as_str(),
            "-keyform",
            "DER",
            "-verify",
            "pub.der",
        ];
        for o in sigopts {
            args.push("-sigopt");
            args.push(o);
        }
        args.extend(["-signature", "sig.bin", "msg.bin"]);
        let (ok, stdout, _) = self.run(&args);
        ok && String::from_utf8_lossy(&stdout).contains("Verified OK")
    }
}

/// `Path` as `&str` for openssl arguments.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
