//! The console line format shared by the three binaries: dinv-init and
//! dinv-guest stamp their lines with the guest's monotonic time, and the
//! launcher reads those stamps and the boot-phase markers back from the
//! console log to build the boot timeline.
//!
//! A stamped line looks like the kernel's own: `[    2.913] dinv-init: ...`,
//! with three decimals where the kernel prints six, so the launcher can tell
//! them apart. CLOCK_MONOTONIC is used because it counts from boot like the
//! kernel's printk clock (`[    0.000000] Linux version ...`), so kernel
//! lines and ours share one time axis. The kernel's earliest stamps are not
//! real time, though: until its TSC clock starts they stand still or crawl
//! (under TCG for most of a second), so the launcher anchors guest time on
//! our stamps, which only exist once userspace runs.

use std::time::Duration;

/// The marker texts: the launcher's parser and the programs that print them
/// use these same constants, so they cannot drift apart. Each is the text
/// after the program's `name: ` prefix.
pub mod markers {
    /// dinv-init's prefix.
    pub const INIT_PREFIX: &str = "dinv-init: ";
    /// dinv-init's first line, printed before anything else it does.
    pub const INIT_STARTING: &str = "starting";
    /// dinv-init's last line, printed just before it executes the guest init
    /// (`switched root; executing /sbin/init`).
    pub const INIT_EXECUTING: &str = "switched root; executing ";
    /// dinv-guest's prefix.
    pub const GUEST_PREFIX: &str = "dinv-guest: ";
    /// `dinv-guest init`'s first line (PID 1 on guests without OpenRC).
    pub const GUEST_INIT_STARTING: &str = "init starting";
    /// `dinv-guest setup`'s first line when run on its own (OpenRC's
    /// `dinv-setup` service); the first guest-side line we control there.
    pub const GUEST_SETUP_STARTING: &str = "setup starting";
    /// `dinv-guest init` spawning the dockerd service: `started dockerd (pid N)`.
    /// `dockerd` is the service name the builder gives it in services.json.
    pub const DOCKERD_SPAWNED: &str = "started dockerd (";
    /// `dinv-guest init` spawning containerd, which Debian guests start
    /// just before dockerd (their docker engine's first process).
    pub const CONTAINERD_SPAWNED: &str = "started containerd (";
    /// `dinv-guest post`'s first line. On OpenRC guests `dinv-post` runs
    /// right after the `docker` service started dockerd (it is ordered
    /// `after docker` and OpenRC starts services one by one), so this is the
    /// closest observable sign of dockerd starting there.
    pub const POST_WAITING: &str = "post: waiting for ";
}

/// The time since boot on CLOCK_MONOTONIC (the kernel's printk clock).
pub fn monotonic() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Decimals in our stamps (the kernel's have 6).
pub const STAMP_DECIMALS: usize = 3;

/// `[    2.913]`: seconds right-aligned in five columns, milliseconds.
pub fn stamp(t: Duration) -> String {
    format!("[{:5}.{:03}]", t.as_secs(), t.subsec_millis())
}

/// `text` prefixed with the current monotonic time stamp.
pub fn stamped(text: impl std::fmt::Display) -> String {
    format!("{} {text}", stamp(monotonic()))
}

/// A time stamp read back from a console line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stamp {
    /// Seconds since boot.
    pub secs: f64,
    /// Digits after the point: [`STAMP_DECIMALS`] for ours, 6 for the kernel's.
    pub decimals: usize,
}

impl Stamp {
    /// True for a stamp printed by [`stamp`] (dinv-init, dinv-guest).
    pub fn is_ours(&self) -> bool {
        self.decimals == STAMP_DECIMALS
    }
}

/// Splits a console line into its time stamp (ours or the kernel's) and
/// the rest. Lines without a stamp come back whole with `None`.
pub fn split_stamp(line: &str) -> (Option<Stamp>, &str) {
    let unstamped = (None, line);
    let Some(rest) = line.strip_prefix('[') else { return unstamped };
    let Some((inside, after)) = rest.split_once(']') else { return unstamped };
    let number = inside.trim_start();
    let (secs, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(secs) || !(frac.is_empty() || digits(frac)) {
        return unstamped;
    }
    match number.parse::<f64>() {
        Ok(secs) => (Some(Stamp { secs, decimals: frac.len() }), after.strip_prefix(' ').unwrap_or(after)),
        Err(_) => unstamped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_look_like_the_kernels() {
        assert_eq!(stamp(Duration::from_millis(2913)), "[    2.913]");
        assert_eq!(stamp(Duration::from_micros(123_456_789)), "[  123.456]");
        assert_eq!(stamp(Duration::ZERO), "[    0.000]");
        let line = stamped("dinv-init: starting");
        assert!(line.starts_with('[') && line.ends_with("] dinv-init: starting"), "{line}");
    }

    #[test]
    fn stamps_are_split_off() {
        let ours = |secs| Some(Stamp { secs, decimals: 3 });
        assert_eq!(split_stamp("[    2.913] dinv-init: starting"), (ours(2.913), "dinv-init: starting"));
        let (kernel, text) = split_stamp("[    0.000000] Linux version 6.1.0-28-amd64");
        assert_eq!((kernel, text), (Some(Stamp { secs: 0.0, decimals: 6 }), "Linux version 6.1.0-28-amd64"));
        assert!(!kernel.unwrap().is_ours() && ours(1.0).unwrap().is_ours());
        assert_eq!(split_stamp("[12345.5] x"), (Some(Stamp { secs: 12345.5, decimals: 1 }), "x"));
        assert_eq!(split_stamp("[dockerd] time=..."), (None, "[dockerd] time=..."));
        assert_eq!(split_stamp("[  1.2x] no"), (None, "[  1.2x] no"));
        assert_eq!(split_stamp("[   ] no"), (None, "[   ] no"));
        assert_eq!(split_stamp("plain"), (None, "plain"));
        // Our stamp in front of a service's prefixed output.
        assert_eq!(split_stamp("[    5.001] [dockerd] API listen"), (ours(5.001), "[dockerd] API listen"));
        // What we print reads back as ours.
        assert!(split_stamp(&stamped("x")).0.unwrap().is_ours());
    }

    #[test]
    fn monotonic_moves_forward() {
        let a = monotonic();
        let b = monotonic();
        assert!(b >= a && a > Duration::ZERO);
    }
}
