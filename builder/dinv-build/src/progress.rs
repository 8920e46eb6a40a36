//! Progress on a terminal, silence elsewhere: a cargo-style status line
//! when each stage starts (`   Resolving …`, `    Fetching 184 packages
//! (212 MB)`), bars with bytes and ETA where the work is measurable, and
//! spinners where it is not.

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

    /// True when this display draws.
    pub fn is_live(&self) -> bool {
        self.multi.is_some()
    }

    /// Prints a status line: `verb` right-aligned in bold green (plain with
    /// `NO_COLOR`), then `message`, above any bars.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        let Some(m) = &self.multi else { return };
        let line = if std::env::var_os("NO_COLOR").is_some() {
            format!("{verb:>12} {message}")
        } else {
            format!("\x1b[1;32m{verb:>12}\x1b[0m {message}")
        };
        let _ = m.println(line);
    }

    /// A spinner with the elapsed time, for work that cannot be measured.
    pub fn spinner(&self, label: &str, message: impl Into<String>) -> ProgressBar {
        if self.multi.is_none() {
            return ProgressBar::hidden();
        }
        let bar = self.add(
            ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{prefix:>12.cyan} {spinner} {elapsed} {wide_msg}").expect("template")),
        );
        bar.set_prefix(label.to_string());
        bar.set_message(message.into());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
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
                ProgressStyle::with_template("{prefix:>12.cyan} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}")
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

/// Sizes for people, in the one convention of every command and status
/// line (binary units): `12 B`, `1.5 KiB`, `3.0 MiB`.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod human_tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
