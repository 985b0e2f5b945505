//! `kmsim image build`: the container image, from the release binary, without a registry.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use kmsim_sim::container::docker::Docker;
use kmsim_sim::container::image;

/// Container images of kmsim.
#[derive(Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build the image `kmsim:<version>` FROM scratch (no registry, no base image) with the
    /// Docker CLI's legacy builder: the kmsim binary, and for a dynamically linked binary the
    /// shared libraries `ldd` lists, at the paths the loader reads them from. Its health check
    /// is `kmsim health` (no shell or curl in the image), its entry point the binary; labels
    /// carry the version and the binary's SHA-256, so building again with the same binary
    /// reuses the image. Prints the image's size and ID.
    Build(BuildArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// The binary to put in the image [default: this kmsim executable, or a static build in
    /// $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release when one exists].
    #[arg(long)]
    binary: Option<PathBuf>,
    /// The image's tag.
    #[arg(long, default_value_t = image::default_tag())]
    tag: String,
}

/// `kmsim image`
pub fn run(a: ImageArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        ImageCommand::Build(b) => build(b),
    }
}

fn build(a: BuildArgs) -> anyhow::Result<ExitCode> {
    let binary = match a.binary {
        Some(b) => b,
        None => default_binary()?,
    };
    let docker = Docker::connect()?;
    let started = std::time::Instant::now();
    let img = image::build(&docker, &binary, &a.tag)?;
    outln!(
        "{} {} ({} binary {}{})",
        if img.reused { "reused" } else { "built" },
        img.tag,
        if img.static_binary {
            "static"
        } else {
            "dynamic"
        },
        binary.display(),
        if img.static_binary {
            ""
        } else {
            " and its shared libraries"
        }
    );
    outln!("image id: {}", img.id);
    outln!(
        "image size: {} bytes ({:.1} MiB)",
        img.size,
        img.size as f64 / (1024.0 * 1024.0)
    );
    outln!("took {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// A static build when one exists beside the release build, else this executable.
fn default_binary() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let static_build = PathBuf::from(dir)
            .join("x86_64-unknown-linux-gnu")
            .join("release")
            .join("kmsim");
        if static_build.is_file() {
            return Ok(static_build);
        }
    }
    Ok(std::env::current_exe()?)
}
