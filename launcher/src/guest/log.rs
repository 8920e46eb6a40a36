//! One-line console messages, prefixed so the host's console log can be searched.

use std::fmt::Display;
use std::io::Write;

/// Prefix of every message this binary prints about itself.
pub const PREFIX: &str = "dinv-guest: ";

/// Prints `dinv-guest: <msg>` on stdout (the console for PID 1 and OpenRC services).
pub fn say(msg: impl Display) {
    line(format_args!("{PREFIX}{msg}"));
}

/// Prints one whole line; write errors are ignored because a closed console must not kill PID 1.
pub fn line(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
