//! One-line console messages, prefixed so the host's console log can be searched.
//!
//! Every line dinv-guest writes to the console (its own messages and the
//! services' output it relays) goes through [`line`], which stamps it with
//! the guest's monotonic time, kernel-style: `[    4.210] dinv-guest: init starting`.
//! The launcher reads these stamps to time the boot phases.

use std::fmt::Display;
use std::io::Write;

use dinv_contract::console;

/// Prefix of every message this binary prints about itself.
pub const PREFIX: &str = console::markers::GUEST_PREFIX;

/// Prints `[time] dinv-guest: <msg>` on stdout (the console for PID 1 and OpenRC services).
pub fn say(msg: impl Display) {
    line(format_args!("{PREFIX}{msg}"));
}

/// Prints one whole line, time-stamped; write errors are ignored because a closed console must not kill PID 1.
pub fn line(text: impl Display) {
    let text = console::stamped(text);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
