//! Progress of a long run (rebuild, republish, redrive, load, soak) on stderr: a live line
//! (`indicatif`) on a terminal, plain lines when stderr is not one (CI logs, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A run's progress: [`Progress::update`] as it goes, [`Progress::finish`] at the end.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Progress on stderr: a spinner with the latest line on a terminal, else plain lines.
    pub fn stderr() -> Self {
        Self::new(std::io::stderr().is_terminal())
    }

    /// Progress drawn live (`live`) or as plain lines.
    pub fn new(live: bool) -> Self {
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self { bar }
    }

    /// Whether the progress is drawn live.
    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    /// Where the run stands now.
    pub fn update(&self, line: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None => eprintln!("  {line}"),
        }
    }

    /// The run ended: the last line stays.
    pub fn finish(&self, line: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(line.to_string()),
            None => eprintln!("{line}"),
        }
    }
}
