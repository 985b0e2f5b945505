//! The subcommands.

pub mod bench;
pub mod chaos;
pub mod kms;
pub mod node;
pub mod status;
pub mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::process::stop_node;

/// `--data-dir`
#[derive(Args, Debug, Clone)]
pub struct DataDirArg {
    /// The cluster's data directory (topology, keys, node data, logs, PID files).
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

/// A multi-threaded tokio runtime for commands that talk to nodes.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `kmsim down`
pub fn down(a: DataDirArg) -> anyhow::Result<ExitCode> {
    let dir = ClusterDir::new(&a.data_dir);
    let mut stopped = 0;
    for (name, _) in dir.nodes()? {
        if stop_node(&dir, &name)? {
            println!("stopped {name}");
            stopped += 1;
        }
    }
    println!(
        "{stopped} node(s) stopped; data kept in {}",
        a.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
