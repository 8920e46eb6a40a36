//! Progress bars on a terminal, silence elsewhere.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shared progress display. Hidden when stderr is not a terminal, with
/// `--quiet`, or with `--json`.
#[derive(Clone)]
pub struct Progress {
    multi: Option<Arc<MultiProgress>>,
}

impl Progress {
    /// A display that draws only when stderr is a terminal and `enabled`.
    pub fn new(enabled: bool) -> Self {
        if enabled && std::io::stderr().is_terminal() {
            Progress { multi: Some(Arc::new(MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))) }
        } else {
            Progress { multi: None }
        }
    }

    /// A display that never draws.
    pub fn hidden() -> Self {
        Progress { multi: None }
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        match &self.multi {
            Some(m) => m.add(bar),
            None => ProgressBar::hidden(),
        }
    }

    /// A byte counter (downloads, image writing).
    pub fn bytes(&self, label: &str, total: Option<u64>) -> ProgressBar {
        if self.multi.is_none() {
            return ProgressBar::hidden();
        }
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template("{prefix:>12.cyan} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
                    .expect("template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("{prefix:>12.cyan} {spinner} {bytes} {bytes_per_sec} {msg}").expect("template")),
        };
        let bar = self.add(bar);
        bar.set_prefix(label.to_string());
        bar
    }

    /// An item counter (packages fetched, unpacked).
    pub fn items(&self, label: &str, total: u64) -> ProgressBar {
        if self.multi.is_none() {
            return ProgressBar::hidden();
        }
        let bar = self.add(ProgressBar::new(total).with_style(
            ProgressStyle::with_template("{prefix:>12.cyan} [{bar:30}] {pos}/{len} {wide_msg}").expect("template").progress_chars("=> "),
        ));
        bar.set_prefix(label.to_string());
        bar
    }
}
