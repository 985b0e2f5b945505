//! `kmsim experiment`: declared experiments (docs/EXPERIMENTS.md).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};

use kmsim_experiment::check::{Status, Verdict};
use kmsim_experiment::report::{self, ReportInput};
use kmsim_experiment::Experiment;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::container::compose::{self, ComposeSpec};
use kmsim_sim::experiment::{DockerRuntime, ProcessRuntime, RunOptions, Runtime};

mod progress;

/// The experiments shipped with kmsim (`experiments/*.toml`), by name.
pub const LIBRARY: &[(&str, &str)] = &[
    (
        "region-outage",
        include_str!("../../../../experiments/region-outage.toml"),
    ),
    (
        "leader-churn",
        include_str!("../../../../experiments/leader-churn.toml"),
    ),
    (
        "gray-leader",
        include_str!("../../../../experiments/gray-leader.toml"),
    ),
    (
        "partition-during-rotation",
        include_str!("../../../../experiments/partition-during-rotation.toml"),
    ),
    (
        "aws-like-latency",
        include_str!("../../../../experiments/aws-like-latency.toml"),
    ),
    (
        "clock-skew-deletion",
        include_str!("../../../../experiments/clock-skew-deletion.toml"),
    ),
    (
        "throttling-retries",
        include_str!("../../../../experiments/throttling-retries.toml"),
    ),
    (
        "primary-handover-partition",
        include_str!("../../../../experiments/primary-handover-partition.toml"),
    ),
];

/// Runs declared experiments: a cluster, a workload, a seeded fault schedule, steady-state
/// probes, and checkers that read the recorded history afterwards (docs/EXPERIMENTS.md).
///
/// A run writes into its output directory `history.jsonl` (every call, fault and
/// observation), `results.json` and `report.html`, and exits 0 when every checker passed, 1
/// when one failed or a probe aborted the run.
#[derive(Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    action: ExperimentAction,
}

#[derive(Subcommand)]
enum ExperimentAction {
    /// Runs an experiment: FILE is a path to a .toml file or the name of one of the library's
    /// (`kmsim experiment list`).
    Run {
        /// The experiment file, or a library name.
        file: String,
        /// The seed of the workload's choices and the fault schedule (default: drawn, and
        /// printed, so the run can be replayed).
        #[arg(long)]
        seed: Option<u64>,
        /// The output directory (default: experiments-out/<name>-<seed>); must not exist or
        /// be empty.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run the file's [quick] variant: shorter, with the fault schedule scaled to it.
        #[arg(long)]
        quick: bool,
        /// Where the nodes run: `processes` (a new local cluster) or `docker` (a new cluster in
        /// containers, one per node, from the image `kmsim image build` makes, built or reused
        /// first; named kmsim-x<pid>). Either way the cluster's files are in <out>/cluster and
        /// it is removed at the end (with its volumes, for docker). The same experiment file
        /// runs on both; kill is SIGKILL or `docker kill`, pause SIGSTOP or `docker pause`.
        #[arg(long, default_value = "processes", value_parser = ["processes", "docker"])]
        runtime: String,
        /// Show the phase, elapsed time, ops/s, errors and active faults while it runs, on
        /// stderr: `auto` when stderr is a terminal (redrawn in place), `always` (a line every
        /// 5 s when not a terminal), or `never`.
        #[arg(long, value_enum, default_value = "auto")]
        progress: progress::When,
    },
    /// Judges a recorded run again: runs the checkers on DIR/history.jsonl with the
    /// experiment (DIR/experiment.toml) and the seed and variant it ran with (DIR/results.json);
    /// exits 0 when every checker passes.
    Check {
        /// A run's output directory.
        dir: PathBuf,
    },
    /// Lists the library's experiments with their descriptions.
    List,
}

/// `kmsim experiment …`
pub fn run(a: ExperimentArgs) -> anyhow::Result<ExitCode> {
    match a.action {
        ExperimentAction::List => {
            for (name, text) in LIBRARY {
                let e = Experiment::parse(text, false)
                    .with_context(|| format!("the library's {name}"))?;
                outln!("{name:<28} {}", first_sentence(&e.description));
            }
            Ok(ExitCode::SUCCESS)
        }
        ExperimentAction::Check { dir } => check_again(&dir),
        ExperimentAction::Run {
            file,
            seed,
            out,
            quick,
            runtime,
            progress,
        } => run_one(&file, seed, out, quick, runtime == "docker", progress),
    }
}

fn first_sentence(s: &str) -> &str {
    let s = s.trim();
    s.find(". ").map_or(s, |i| &s[..=i])
}

/// The text of an experiment named by path or library name.
fn load(file: &str) -> anyhow::Result<(String, String)> {
    if let Some((name, text)) = LIBRARY.iter().find(|(n, _)| *n == file) {
        return Ok((format!("library:{name}"), text.to_string()));
    }
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "read {file} (not a file, nor one of the library's: {})",
            LIBRARY
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok((file.to_string(), text))
}

/// The local cluster a run starts in `<out>/cluster`, stopped when dropped.
struct OwnCluster {
    exe: PathBuf,
    dir: PathBuf,
    /// In containers: remove the volumes too (the run's data is in its history).
    volumes: bool,
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.exe)
            .arg("down")
            .arg("--data-dir")
            .arg(&self.dir)
            .args(self.volumes.then_some("--volumes"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run_one(
    file: &str,
    seed: Option<u64>,
    out: Option<PathBuf>,
    quick: bool,
    docker: bool,
    when: progress::When,
) -> anyhow::Result<ExitCode> {
    let (source, text) = load(file)?;
    let e = Experiment::parse(&text, quick).with_context(|| source.clone())?;
    let seed = seed.unwrap_or_else(rand::random);
    let out = out.unwrap_or_else(|| kmsim_sim::experiment::runner::default_out(&e, seed));
    if out.exists()
        && std::fs::read_dir(&out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!(
            "{} exists and is not empty; give another --out (a run never overwrites one)",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    std::fs::write(out.join(EXPERIMENT_FILE), &text)
        .with_context(|| format!("write {}", out.join(EXPERIMENT_FILE).display()))?;
    let exe = std::env::current_exe()?;
    let mut command = format!("kmsim experiment run {file} --seed {seed}");
    if quick {
        command.push_str(" --quick");
    }
    if docker {
        command.push_str(" --runtime docker");
    }
    outln!(
        "experiment {} (seed {seed}), output in {}",
        e.name,
        out.display()
    );
    outln!("replay with: {command}");

    let cluster_dir = out.join("cluster");
    let dir = ClusterDir::new(&cluster_dir);
    let regions: Vec<(String, usize)> = e
        .cluster
        .regions
        .iter()
        .map(|r| (r.clone(), e.cluster.nodes as usize))
        .collect();
    // The cluster's files first, so that the run's seed and Raft timings are in its topology
    // before any node starts.
    let name = format!("kmsim-x{}", std::process::id());
    let mut topology = if docker {
        let spec = ComposeSpec {
            cluster: name.clone(),
            ..ComposeSpec::default_for_version()
        };
        compose::write_project(&cluster_dir, &regions, &spec)?.topology
    } else {
        dir.create(&regions, 0, 0, false, false)?
    };
    topology.fault_seed = seed;
    if let Some(t) = &e.cluster.raft {
        topology.raft.heartbeat_ms = t.heartbeat.as_millis() as u64;
        topology.raft.election_timeout_min_ms = t.election_timeout_min.as_millis() as u64;
        topology.raft.election_timeout_max_ms = t.election_timeout_max.as_millis() as u64;
    }
    std::fs::remove_file(dir.topology_path())?;
    dir.write_topology(&topology)?;
    let _cluster = OwnCluster {
        exe: exe.clone(),
        dir: cluster_dir.clone(),
        volumes: docker,
    };
    let up_log = out.join("up.log");
    let mut up = Command::new(&exe);
    up.arg("up")
        .arg("--data-dir")
        .arg(&cluster_dir)
        .arg("--detach");
    if docker {
        up.args(["--runtime", "docker", "--name", &name, "--aws-port", "0"])
            .arg("--regions")
            .arg(e.cluster.regions.join(","))
            .arg("--nodes")
            .arg(e.cluster.nodes.to_string());
    }
    let status = up
        .stdout(std::fs::File::create(&up_log)?)
        .stderr(Stdio::inherit())
        .status()?;
    anyhow::ensure!(
        status.success(),
        "the cluster did not start (see {})",
        up_log.display()
    );
    outln!(
        "cluster: {} × {} nodes {} in {}",
        e.cluster.regions.join(", "),
        e.cluster.nodes,
        if docker {
            "in containers"
        } else {
            "as processes"
        },
        cluster_dir.display()
    );
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let rt = super::runtime()?;
    let live = Arc::new(kmsim_sim::experiment::live::Live::default());
    let display = progress::Progress::start(when, live.clone());
    let opts = RunOptions {
        seed,
        out: out.clone(),
        progress: Box::new(display.printer()),
        live,
    };
    let (outcome, runtime_name) = if docker {
        let runtime = Arc::new(DockerRuntime::open(&dir).map_err(|m| anyhow::anyhow!(m))?);
        let name = runtime.name();
        (
            rt.block_on(kmsim_sim::experiment::run(&e, runtime, &opts)),
            name,
        )
    } else {
        let runtime = Arc::new(ProcessRuntime::open(dir, exe).map_err(|m| anyhow::anyhow!(m))?);
        let name = runtime.name();
        (
            rt.block_on(kmsim_sim::experiment::run(&e, runtime, &opts)),
            name,
        )
    };
    display.finish();
    let outcome = outcome.map_err(|m| anyhow::anyhow!(m))?;
    let input = ReportInput {
        experiment: &e,
        seed,
        command,
        schedule: &outcome.schedule,
        records: &outcome.records,
        verdicts: &outcome.verdicts,
        sync_lag: &outcome.sync_lag,
        started_at,
        runtime: runtime_name.into(),
        aborted: outcome.aborted.clone(),
    };
    report::write_all(&out, &input)
        .with_context(|| format!("write the report into {}", out.display()))?;
    print_verdicts(&outcome.verdicts);
    if let Some(why) = &outcome.aborted {
        outln!("ABORTED: {why}");
    }
    let passed = outcome.passed();
    outln!(
        "{}: see {}",
        if passed { "PASSED" } else { "FAILED" },
        out.join("report.html").display()
    );
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The copy of the experiment a run keeps in its output directory.
const EXPERIMENT_FILE: &str = "experiment.toml";

/// `kmsim experiment check DIR`
fn check_again(dir: &Path) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(dir.join(EXPERIMENT_FILE))
        .with_context(|| format!("read {}", dir.join(EXPERIMENT_FILE).display()))?;
    let results: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("results.json"))
            .with_context(|| format!("read {}", dir.join("results.json").display()))?,
    )
    .context("results.json is not JSON")?;
    let seed = results["seed"]
        .as_u64()
        .context("results.json has no seed")?;
    let quick = results["experiment"]["quick"].as_bool().unwrap_or(false);
    let e = Experiment::parse(&text, quick)?;
    let schedule = kmsim_experiment::schedule::Schedule::expand(&e, seed);
    let history = dir.join("history.jsonl");
    let file =
        std::fs::File::open(&history).with_context(|| format!("read {}", history.display()))?;
    let records = kmsim_experiment::history::read(std::io::BufReader::new(file))
        .map_err(|m| anyhow::anyhow!("{}: {m}", history.display()))?;
    let verdicts = kmsim_experiment::check::run_all(&kmsim_experiment::check::Input {
        experiment: &e,
        schedule: &schedule,
        records: &records,
    });
    print_verdicts(&verdicts);
    Ok(if report::passed(&verdicts, None) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_verdicts(verdicts: &[Verdict]) {
    for v in verdicts {
        let status = match v.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Unknown => "unknown",
        };
        outln!("{status:<8} {:<20} {}", v.checker, v.summary);
        if !v.ops.is_empty() {
            outln!("         ops: {:?}", v.ops);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_library_experiment_parses_in_full_and_quick() {
        for (name, text) in LIBRARY {
            let full = Experiment::parse(text, false).unwrap_or_else(|e| panic!("{name}: {e}"));
            let quick = Experiment::parse(text, true).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&full.name, name, "the file's name is its library name");
            assert!(
                full.workload.duration <= std::time::Duration::from_secs(120),
                "{name} runs at most 2 minutes by default"
            );
            assert!(quick.workload.duration < full.workload.duration);
        }
    }

    #[test]
    fn a_file_outside_the_library_is_read_by_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("x.toml");
        std::fs::write(&p, LIBRARY[0].1).expect("write");
        let (source, text) = load(p.to_str().expect("utf-8")).expect("read");
        assert_eq!(text, LIBRARY[0].1);
        assert!(source.ends_with("x.toml"));
        assert!(load("no-such-experiment").is_err());
    }
}
