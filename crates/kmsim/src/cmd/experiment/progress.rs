//! The progress of `kmsim experiment run` on stderr: on a terminal one line redrawn in place
//! (indicatif); with `--progress always` and no terminal, the same line every 5 s; otherwise
//! nothing (`--progress auto`, the default, when stderr is not a terminal: tests and CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kmsim_sim::experiment::live::{self, Live, Rate};

/// When to show the progress (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    /// Never.
    Never,
    /// When stderr is a terminal.
    Auto,
    /// Always: redrawn on a terminal, else a line every 5 s.
    Always,
}

/// A running progress display; stopped by [`Progress::finish`] or when dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often the terminal line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
/// How often a line is written when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Starts showing `live` as `when` says.
    pub fn start(when: When, live: Arc<Live>) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let (bar, every) = match (when, terminal) {
            (When::Never, _) | (When::Auto, false) => {
                return Progress {
                    bar: None,
                    stop,
                    thread: None,
                }
            }
            (_, true) => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(100));
                (Some(bar), REDRAW)
            }
            (When::Always, false) => (None, PLAIN_EVERY),
        };
        let (shown, halt) = (bar.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut rate = Rate::new(Duration::from_secs(2).max(every));
            let mut next = Instant::now();
            while !halt.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    let s = live.snapshot();
                    let ops = rate.sample(now, s.calls);
                    let text = live::line(&s, now, now - started, ops);
                    match &shown {
                        Some(bar) => bar.set_message(text),
                        None => {
                            let _ = writeln!(std::io::stderr(), "progress: {text}");
                        }
                    }
                    next = now + every;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Progress {
            bar,
            stop,
            thread: Some(thread),
        }
    }

    /// A handle that prints a line to stdout without tearing the progress line.
    pub fn printer(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let bar = self.bar.clone();
        move |line: &str| match &bar {
            Some(bar) => bar.suspend(|| outln!("{line}")),
            None => outln!("{line}"),
        }
    }

    /// Stops the display and clears the line.
    pub fn finish(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.halt();
    }
}
