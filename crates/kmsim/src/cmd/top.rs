//! `kmsim top`: a live terminal view of a running cluster. The asking, the model and the
//! drawing are `kmsim_sim::top`'s; this file owns the terminal: raw mode and the alternate
//! screen while it runs, keys, and putting the terminal back however it ends.

use std::io::{IsTerminal, Stdout};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use tokio::sync::mpsc;

use kmsim_sim::bench::parse_duration;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::top::{render, render_text, ClusterSample, Model, Sampler};

/// Watch a running cluster live: every Region and node, request rates and p99 latencies, the
/// synchronizer's backlog and lag, injected faults (`q` quits; `--once` prints one frame).
///
/// Refreshed every interval until `q`, Esc or Ctrl-C (SIGTERM too); the terminal is put back
/// as it was on every way out.
///
/// Regions: leader, term, nodes answering, and the AWS JSON requests their nodes answered over
/// the last interval: per second, errors per second, p99 latency (the gateway on its own row).
///
/// Nodes: role (or down), term, the leader it follows, applied log index and how far behind
/// the most advanced node of its Region, requests per second, faulty outgoing links.
///
/// Synchronizer, per pair of Regions: deliveries pending, failed deliveries per second, p99
/// lag. Faults: the links `kmsim chaos` made faulty.
///
/// Read from every node's admin Status and GetLinkFaults and from the `GET /metrics` of every
/// node and of the gateway; rates come from two samples, so they appear from the second one on.
/// docs/OBSERVABILITY.md ("kmsim top") says where each column comes from.
///
/// With --once, or when standard output is not a terminal, it takes two samples one interval
/// apart and prints one frame as plain text (no colours, no terminal control codes), for
/// scripts and tests.
#[derive(Args)]
pub struct TopArgs {
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Time between samples (and the interval the rates are over), e.g. 1s, 500ms; at least
    /// 100ms. Each question to a node may take up to 80% of it (at most 2s).
    #[arg(long, value_parser = parse_interval, default_value = "1s")]
    interval: Duration,
    /// Print one plain-text frame (rates over one interval) and exit.
    #[arg(long)]
    once: bool,
}

/// The shortest interval: below it a round of questions to every node would not fit.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Width of a plain-text frame when standard output is not a terminal.
const TEXT_WIDTH: u16 = 100;

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err(format!("the interval must be at least {MIN_INTERVAL:?}"));
    }
    Ok(d)
}

/// `kmsim top`
pub fn run(a: TopArgs) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::relayed(&a.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&a.data_dir);
    // Fails here, before the terminal changes, when there is no cluster.
    dir.topology()?;
    let rt = super::runtime()?;
    let timeout = (a.interval * 4 / 5).min(Duration::from_secs(2));
    let sampler = rt.block_on(async { Sampler::new(&dir, timeout) })?;
    let watched = format!("kmsim top · {}", a.data_dir.display());
    let live = !a.once && std::io::stdout().is_terminal();
    if !live {
        let mut model = rt.block_on(once(&sampler, a.interval));
        model.title = format!("{watched} · once over {}", show_interval(a.interval));
        let width = match std::io::stdout().is_terminal() {
            true => terminal::size().map(|(w, _)| w).unwrap_or(TEXT_WIDTH),
            false => TEXT_WIDTH,
        };
        out!("{}", render_text(&model, width));
        return Ok(ExitCode::SUCCESS);
    }
    let title = format!("{watched} · every {} · q quits", show_interval(a.interval));
    watch(&rt, sampler, a.interval, title)?;
    Ok(ExitCode::SUCCESS)
}

/// Two samples one interval apart, and the model of the second.
async fn once(sampler: &Sampler, interval: Duration) -> Model {
    let started = Instant::now();
    let first = sampler.take().await;
    tokio::time::sleep(interval.saturating_sub(started.elapsed())).await;
    let second = sampler.take().await;
    Model::new(Some(&first), &second)
}

/// `1s`, `500ms`, `1.5s`.
fn show_interval(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// What the key reader tells the screen loop.
enum Input {
    /// `q`, Esc or Ctrl-C.
    Quit,
    /// The terminal changed size.
    Redraw,
    /// Reading the terminal failed.
    Failed(std::io::Error),
}

/// True for the keys that end `kmsim top`: `q`, `Q`, Esc and Ctrl-C (raw mode turns Ctrl-C
/// into a key, not a signal).
fn quits(key: &KeyEvent) -> bool {
    match key.code {
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc => true,
        KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
        _ => false,
    }
}

/// The live view: samples every `interval` on a task, redraws on every sample and resize,
/// ends on a quitting key or SIGTERM. The terminal is back as it was on every way out (see
/// [`Screen`]).
fn watch(
    rt: &tokio::runtime::Runtime,
    sampler: Sampler,
    interval: Duration,
    title: String,
) -> anyhow::Result<()> {
    let mut screen = Screen::enter()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (input_tx, mut input) = mpsc::channel(8);
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || read_keys(&input_tx, &stop))
    };
    let result = rt.block_on(async {
        let (samples_tx, mut samples) = mpsc::channel::<ClusterSample>(1);
        // Owned by this loop: aborted when it ends, so no question outlives the view.
        let sampling = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if samples_tx.send(sampler.take().await).await.is_err() {
                    break;
                }
            }
        });
        let outcome = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let mut previous: Option<ClusterSample> = None;
            let mut model = Model {
                title: title.clone(),
                ..Model::default()
            };
            screen.draw(&model)?;
            loop {
                tokio::select! {
                    sample = samples.recv() => {
                        let sample = sample.context("the sampling task stopped")?;
                        model = Model::new(previous.as_ref(), &sample);
                        model.title = title.clone();
                        previous = Some(sample);
                        screen.draw(&model)?;
                    }
                    key = input.recv() => match key {
                        Some(Input::Quit) | None => return anyhow::Ok(()),
                        Some(Input::Redraw) => screen.draw(&model)?,
                        Some(Input::Failed(e)) => {
                            return Err(anyhow::Error::new(e).context("reading the terminal"))
                        }
                    },
                    _ = term.recv() => return Ok(()),
                }
            }
        }
        .await;
        sampling.abort();
        outcome
    });
    stop.store(true, Ordering::Relaxed);
    // It checks `stop` at least every 100 ms.
    let _ = reader.join();
    screen.leave();
    result
}

/// Reads the terminal's events until told to stop or the loop has gone.
fn read_keys(input: &mpsc::Sender<Input>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let ready = match event::poll(Duration::from_millis(100)) {
            Ok(ready) => ready,
            Err(e) => {
                let _ = input.blocking_send(Input::Failed(e));
                return;
            }
        };
        if !ready {
            continue;
        }
        let told = match event::read() {
            Ok(Event::Key(k)) if k.kind == KeyEventKind::Press && quits(&k) => Input::Quit,
            Ok(Event::Resize(..)) => Input::Redraw,
            Ok(_) => continue,
            Err(e) => Input::Failed(e),
        };
        let last = !matches!(told, Input::Redraw);
        if input.blocking_send(told).is_err() || last {
            return;
        }
    }
}

/// Set while the terminal is in raw mode on the alternate screen: the panic hook restores it
/// then, and only then.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The terminal in raw mode on the alternate screen. Leaving it ([`Screen::leave`], or dropping
/// it on an early return or while a panic unwinds) puts the terminal back; a panic hook installed
/// on entering does the same before the panic message is printed, so the message is readable on
/// the normal screen.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> anyhow::Result<Screen> {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        ACTIVE.store(true, Ordering::SeqCst);
        // From here every way out restores: a failure below returns through `restore` too.
        let entered = terminal::enable_raw_mode()
            .and_then(|()| execute!(std::io::stdout(), terminal::EnterAlternateScreen))
            .and_then(|()| Terminal::new(CrosstermBackend::new(std::io::stdout())));
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(anyhow::Error::new(e).context("preparing the terminal"))
            }
        }
    }

    fn draw(&mut self, model: &Model) -> anyhow::Result<()> {
        self.terminal
            .draw(|frame| render(frame, model))
            .context("drawing")?;
        Ok(())
    }

    fn leave(self) {
        // Drop restores.
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back (cooked mode, the normal screen, a visible cursor) if it is not yet.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_quit_and_other_keys_do_not() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('Q'), KeyModifiers::SHIFT)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Enter, KeyModifiers::NONE)));
    }

    #[test]
    fn intervals_are_read_and_shown_in_their_unit() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("10ms").is_err());
        assert_eq!(show_interval(Duration::from_secs(2)), "2s");
        assert_eq!(show_interval(Duration::from_millis(500)), "500ms");
        assert_eq!(show_interval(Duration::from_millis(1500)), "1.5s");
    }
}
