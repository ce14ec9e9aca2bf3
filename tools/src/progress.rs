//! Progress of a long run (rebuild, republish, redrive, load, soak) on stderr: a live line
//! (`indicatif`) on a terminal, plain lines when stderr is not one (CI logs, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A run's progress: [`Progress::update`] as it goes, [`Progress::finish`] at the end. Clones
/// draw the same line.
#[derive(Debug, Clone)]
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

    /// How often a run should say where it stands: every second live, `plain` in a log.
    pub fn every(&self, plain: Duration) -> Duration {
        if self.is_live() {
            Duration::from_secs(1)
        } else {
            plain
        }
    }

    /// Where the run stands now.
    pub fn update(&self, line: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_string()),
            None => eprintln!("  {line}"),
        }
    }

    /// The run ended: the live line goes (the command prints its result on stdout); a log keeps
    /// its lines.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_gets_a_line_now_and_then_a_terminal_a_live_one() {
        let plain = Progress::new(false);
        assert!(!plain.is_live());
        assert_eq!(
            plain.every(Duration::from_secs(15)),
            Duration::from_secs(15)
        );
        let live = Progress::new(true);
        assert!(live.is_live());
        assert_eq!(live.every(Duration::from_secs(15)), Duration::from_secs(1));
        live.finish();
    }
}
