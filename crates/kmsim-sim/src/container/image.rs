//! The image `kmsim:<version>`, built `FROM scratch` with no registry: the legacy builder
//! (`DOCKER_BUILDKIT=0`; BuildKit needs buildx, and a `# syntax=` line would pull a frontend)
//! on a context holding only the release binary and, for a dynamically linked binary, the
//! shared libraries `ldd` lists at the paths the dynamic loader looks for them. A fully static
//! binary is copied alone. The image's health check is the binary itself (`kmsim health`):
//! a scratch image has no shell and no curl.
//!
//! The image is labelled with the SHA-256 of the binary it holds, so building again with the
//! same binary reuses the image instead of making a new one.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::docker::Docker;
use super::ContainerError;
use crate::cluster::io;

/// The label holding the SHA-256 of the image's binary.
pub const BINARY_LABEL: &str = "io.kmsim.binary-sha256";

/// Where the binary sits in the image.
pub const IMAGE_BINARY: &str = "/kmsim";

/// Where a container finds its cluster's files (`topology.toml`, `keys/`, and its node's data
/// under `nodes/<region>/<id>`, a volume).
pub const CLUSTER_DIR: &str = "/cluster";

/// The image tag for this version: `kmsim:<version>`.
pub fn default_tag() -> String {
    format!("kmsim:{}", env!("CARGO_PKG_VERSION"))
}

/// An image that exists.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its tag.
    pub tag: String,
    /// Its id (`sha256:…`).
    pub id: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether an image of the same binary was found and reused.
    pub reused: bool,
    /// Whether the binary is fully static (else the libraries went in beside it).
    pub static_binary: bool,
}

/// Builds `tag` from `binary` (reusing an image of the same binary under that tag).
pub fn build(docker: &Docker, binary: &Path, tag: &str) -> Result<Image, ContainerError> {
    let digest = sha256_file(binary)?;
    let libs = shared_libraries(binary)?;
    if let Some(mut found) = inspect(docker, tag)? {
        if found.1 == digest {
            found.0.reused = true;
            found.0.static_binary = libs.is_empty();
            return Ok(found.0);
        }
    }
    let ctx = tempfile::Builder::new()
        .prefix("kmsim-image-")
        .tempdir()
        .map_err(io("create the build context"))?;
    let rootfs = ctx.path().join("rootfs");
    for d in ["tmp", CLUSTER_DIR.trim_start_matches('/')] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(io("create the image's directories"))?;
    }
    copy_stripped(binary, &rootfs.join(IMAGE_BINARY.trim_start_matches('/')))?;
    for lib in &libs {
        let rel = lib.strip_prefix("/").unwrap_or(lib);
        copy(lib, &rootfs.join(rel))?;
    }
    let dockerfile = dockerfile(&digest);
    std::fs::write(ctx.path().join("Dockerfile"), dockerfile)
        .map_err(io("write the Dockerfile"))?;
    docker.run_in(
        ctx.path(),
        &[("DOCKER_BUILDKIT", "0")],
        &["build", "--quiet", "--tag", tag, "."],
    )?;
    let (mut image, _) = inspect(docker, tag)?.ok_or_else(|| {
        ContainerError::Invalid(format!("the image {tag} is missing right after its build"))
    })?;
    image.static_binary = libs.is_empty();
    Ok(image)
}

/// The Dockerfile: everything in `rootfs/`, the binary as entry point, its own health check.
fn dockerfile(digest: &str) -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        "FROM scratch\n\
         COPY rootfs/ /\n\
         ENV KMSIM_HEALTH_URL=http://127.0.0.1:4599/healthz\n\
         LABEL org.opencontainers.image.title=\"kmsim\" \\\n\
         \x20     org.opencontainers.image.description=\"AWS KMS multi-Region simulator\" \\\n\
         \x20     org.opencontainers.image.version=\"{version}\" \\\n\
         \x20     {BINARY_LABEL}=\"{digest}\"\n\
         HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
         CMD [\"{IMAGE_BINARY}\", \"health\"]\n\
         ENTRYPOINT [\"{IMAGE_BINARY}\"]\n\
         CMD [\"--help\"]\n"
    )
}

/// The image `tag` and the digest of its binary, if it exists.
fn inspect(docker: &Docker, tag: &str) -> Result<Option<(Image, String)>, ContainerError> {
    let format =
        format!("{{{{.Id}}}} {{{{.Size}}}} {{{{index .Config.Labels \"{BINARY_LABEL}\"}}}}");
    let out = match docker.run(&["image", "inspect", "--format", &format, tag]) {
        Ok(out) => out,
        Err(ContainerError::Command { stderr, .. }) if stderr.contains("No such image") => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut fields = out.split_whitespace();
    let (Some(id), Some(size)) = (fields.next(), fields.next()) else {
        return Err(ContainerError::Invalid(format!(
            "unexpected `docker image inspect` output: {out}"
        )));
    };
    let size = size
        .parse()
        .map_err(|_| ContainerError::Invalid(format!("unexpected image size: {size}")))?;
    let digest = fields.next().unwrap_or_default().to_string();
    Ok(Some((
        Image {
            tag: tag.to_string(),
            id: id.to_string(),
            size,
            reused: false,
            static_binary: false,
        },
        digest,
    )))
}

/// The shared libraries a dynamic binary loads (the loader included), from `ldd`; empty for a
/// static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ContainerError> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(io("run ldd (needed to build an image of a dynamic binary)"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    parse_ldd(&text).map_err(|line| {
        ContainerError::Invalid(format!(
            "ldd {}: a library cannot be found: {line}",
            binary.display()
        ))
    })
}

/// The library paths of `ldd` output (`Err` names a line with a library not found).
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("=> not found") {
            return Err(line.to_string());
        }
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, or the loader itself
        // `/lib64/ld-linux-x86-64.so.2 (0x…)`; `linux-vdso.so.1 (0x…)` is no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Copies the binary without its debug information (`strip --strip-debug`: the release profile
/// keeps debug info for backtraces and profiles, about four fifths of the file), or as it is
/// where `strip` is missing or fails.
fn copy_stripped(from: &Path, to: &Path) -> Result<(), ContainerError> {
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(to)
        .arg(from)
        .output()
        .is_ok_and(|o| o.status.success());
    if stripped {
        return Ok(());
    }
    copy(from, to)
}

/// Copies `from` (following symbolic links) to `to`, making its directory.
fn copy(from: &Path, to: &Path) -> Result<(), ContainerError> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    }
    std::fs::copy(from, to).map_err(io(format!("copy {}", from.display())))?;
    Ok(())
}

/// The SHA-256 of a file, hex.
fn sha256_file(path: &Path) -> Result<String, ContainerError> {
    let mut f = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(io(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_every_library_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                    \tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                    \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libstdc++.so.6"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn a_static_binary_needs_no_library_and_a_missing_one_is_an_error() {
        assert!(parse_ldd("\tnot a dynamic executable\n")
            .unwrap()
            .is_empty());
        assert!(parse_ldd("\tstatically linked\n").unwrap().is_empty());
        assert!(parse_ldd("\tlibfoo.so.1 => not found\n").is_err());
    }

    #[test]
    fn the_dockerfile_pulls_nothing_and_checks_health_without_a_shell() {
        let d = dockerfile("abc");
        assert!(d.starts_with("FROM scratch\n"), "{d}");
        assert!(!d.contains("# syntax"), "{d}");
        assert!(d.contains("HEALTHCHECK") && d.contains("CMD [\"/kmsim\", \"health\"]"));
        assert!(d.contains(&format!("{BINARY_LABEL}=\"abc\"")), "{d}");
    }
}
