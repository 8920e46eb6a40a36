//! The boot timeline: where the time from starting QEMU to dockerd's first
//! `/_ping` answer goes, read from the guest's serial console.
//!
//! Markers on the console, first occurrence of each:
//! - kernel: `[    0.000000] Linux version ...` (not printed under `quiet`);
//! - initramfs: dinv-init's first line (`[    1.204] dinv-init: starting`);
//! - switch_root: `dinv-init: switched root; executing /sbin/init`, dinv-init's
//!   last line before it executes the guest init;
//! - guest init: `dinv-guest: init starting` (dinv-guest as PID 1), or on
//!   OpenRC guests `dinv-guest: setup starting` (the `dinv-setup` service);
//! - dockerd: `dinv-guest: started dockerd (pid N)` (dinv-guest init spawning
//!   it; `started containerd (pid N)` before it where containerd is a
//!   service of its own, so the phase is the whole docker engine's), or on
//!   OpenRC `dinv-guest: post: waiting for ...` (the `dinv-post` service,
//!   which OpenRC starts right after the docker service).
//!
//! Clocks. Lines carry the guest's time stamp (the kernel's printk clock, or
//! CLOCK_MONOTONIC for ours, which counts the same), and the launcher notes
//! when it read each line, in seconds since it started QEMU. Guest time 0
//! on the host's axis ("guest zero") is estimated as the smallest
//! `read time - stamp` over the lines with our stamps: a line is never read
//! before it is written, so every line gives an upper bound and the least
//! delayed line the best one. Kernel stamps are left out: until the kernel's
//! TSC clock starts they stand still or crawl (under TCG for most of a
//! second), so early kernel lines would place guest zero too early. A
//! marker's time is the earlier of its read time and `guest zero + its
//! stamp`, both being upper bounds (the read time wins for the kernel's
//! banner, stamped 0.000000, when an early console prints it at once).
//!
//! Phases, each shown only when both of its ends were seen:
//! - qemu: QEMU start (host clock) → the kernel's start: the kernel line's
//!   time or, without it (`quiet`), guest time 0. The clocks start counting
//!   a little after the kernel does (under TCG up to a second), so without
//!   the banner that earliest kernel time is counted as qemu;
//! - kernel: → dinv-init's first line (without an initramfs: → the guest
//!   init's start, as the kernel then mounts the root itself);
//! - initramfs: → switch_root;
//! - guest init: switch_root (without an initramfs: the guest init's first
//!   line) → dockerd started;
//! - dockerd: → the launcher's first successful `/_ping` (host clock).
//!
//! `<run_dir>/timeline.json` (written at readiness, removed when QEMU
//! starts) holds the same for benchmarks, all times in seconds since QEMU
//! started: `accel`, `ready_s`, `phases` (`[{"name", "seconds"}]` in boot
//! order), `markers` (`[{"marker", "at_s", "read_s", "guest_stamp_s",
//! "line"}]`) and `guest_zero_s`.

use serde_json::json;

use super::accel::Accel;
use dinv_contract::console::{self, markers as m};

/// A boot-phase marker on the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Kernel,
    Initramfs,
    SwitchRoot,
    GuestInit,
    Dockerd,
}

impl Marker {
    /// The marker's name in timeline.json.
    pub fn name(self) -> &'static str {
        match self {
            Marker::Kernel => "kernel",
            Marker::Initramfs => "initramfs",
            Marker::SwitchRoot => "switch_root",
            Marker::GuestInit => "guest_init",
            Marker::Dockerd => "dockerd",
        }
    }

    /// Which marker a console line is, given its text after the time stamp.
    pub fn of(text: &str) -> Option<Marker> {
        if text.starts_with("Linux version ") {
            return Some(Marker::Kernel);
        }
        if let Some(rest) = text.strip_prefix(m::INIT_PREFIX) {
            // Any dinv-init line marks the initramfs; the first one is
            // "starting", but older initramfs images begin with others.
            return Some(if rest.starts_with(m::INIT_EXECUTING) { Marker::SwitchRoot } else { Marker::Initramfs });
        }
        let rest = text.strip_prefix(m::GUEST_PREFIX)?;
        if rest == m::GUEST_INIT_STARTING || rest == m::GUEST_SETUP_STARTING {
            Some(Marker::GuestInit)
        } else if [m::CONTAINERD_SPAWNED, m::DOCKERD_SPAWNED, m::POST_WAITING].iter().any(|p| rest.starts_with(p)) {
            Some(Marker::Dockerd)
        } else {
            None
        }
    }
}

/// One marker line and when it happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    /// When the launcher read it, seconds since QEMU started.
    pub read: f64,
    /// The line's own guest time stamp, seconds.
    pub stamp: Option<f64>,
    pub line: String,
}

/// The markers seen so far and the guest clock's origin on the host axis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    seen: Vec<(Marker, Seen)>,
    guest_zero: Option<f64>,
    /// A time-stamped line (the kernel's printk or ours) was seen.
    stamped: bool,
}

/// A phase name and its length in seconds.
pub type Phase = (&'static str, f64);

impl Timeline {
    /// Takes one console line (without its newline), read `read` seconds
    /// after QEMU started.
    pub fn observe(&mut self, line: &str, read: f64) {
        let line = line.trim_end_matches('\r');
        let (stamp, text) = console::split_stamp(line);
        self.stamped |= stamp.is_some();
        // Only our stamps place guest zero (see the module notes). A zero
        // before QEMU started is impossible: skip such a stamp too.
        if let Some(zero) = stamp.filter(|s| s.is_ours()).map(|s| read - s.secs).filter(|z| *z >= 0.0) {
            self.guest_zero = Some(self.guest_zero.map_or(zero, |g| g.min(zero)));
        }
        if let Some(marker) = Marker::of(text) {
            if self.get(marker).is_none() {
                self.seen.push((marker, Seen { read, stamp: stamp.map(|s| s.secs), line: line.to_string() }));
            }
        }
    }

    /// Whether the guest's kernel is known to run: a marker or any
    /// time-stamped line was seen. Firmware and the kernel's real-mode
    /// setup (`Probing EDD ...`) print unstamped lines before it starts.
    pub fn kernel_running(&self) -> bool {
        self.stamped || !self.seen.is_empty()
    }

    /// The first line of `marker`, if seen.
    pub fn get(&self, marker: Marker) -> Option<&Seen> {
        self.seen.iter().find(|(m, _)| *m == marker).map(|(_, s)| s)
    }

    /// Guest time 0 in seconds since QEMU started, once a line with our stamp was seen.
    pub fn guest_zero(&self) -> Option<f64> {
        self.guest_zero
    }

    /// When `marker` happened, in seconds since QEMU started.
    pub fn at(&self, marker: Marker) -> Option<f64> {
        let seen = self.get(marker)?;
        Some(match (seen.stamp, self.guest_zero) {
            (Some(stamp), Some(zero)) => seen.read.min(zero + stamp),
            _ => seen.read,
        })
    }

    /// The phases, in boot order, given readiness `ready` seconds after QEMU
    /// started (see the module documentation for each phase's ends).
    pub fn phases(&self, ready: f64) -> Vec<Phase> {
        let kernel = self.at(Marker::Kernel).or(self.guest_zero);
        let initramfs = self.at(Marker::Initramfs);
        let guest = self.at(Marker::SwitchRoot).or_else(|| self.at(Marker::GuestInit));
        let dockerd = self.at(Marker::Dockerd);
        let spans = [
            ("qemu", Some(0.0), kernel),
            ("kernel", kernel, initramfs.or(guest)),
            ("initramfs", initramfs, guest),
            ("guest init", guest, dockerd),
            ("dockerd", dockerd, Some(ready)),
        ];
        spans.into_iter().filter_map(|(name, from, to)| Some((name, (to? - from?).max(0.0)))).collect()
    }

    /// timeline.json: the phases, the markers and the clocks, for benchmarks.
    pub fn to_json(&self, ready: f64, accel: Accel) -> serde_json::Value {
        let ms = |s: f64| (s * 1000.0).round() / 1000.0;
        let phases: Vec<_> = self.phases(ready).into_iter().map(|(name, s)| json!({"name": name, "seconds": ms(s)})).collect();
        let markers: Vec<_> = self
            .seen
            .iter()
            .map(|(marker, s)| {
                json!({"marker": marker.name(), "at_s": self.at(*marker).map(ms), "read_s": ms(s.read),
                       "guest_stamp_s": s.stamp, "line": s.line})
            })
            .collect();
        json!({
            "accel": accel.name(),
            "ready_s": ms(ready),
            "phases": phases,
            "markers": markers,
            "guest_zero_s": self.guest_zero.map(ms),
        })
    }
}

/// The phases before the QEMU that became ready: a failed KVM attempt
/// (`kvm attempt`), and the rest of the time since the launcher started
/// (`launcher`: disks, certificates, process start), when it shows.
pub fn before_qemu(before: f64, kvm_attempt: Option<f64>) -> Vec<Phase> {
    let mut out = Vec::new();
    let kvm = kvm_attempt.unwrap_or(0.0).min(before);
    if kvm_attempt.is_some() {
        out.push(("kvm attempt", kvm));
    }
    if before - kvm >= 0.05 {
        out.push(("launcher", before - kvm));
    }
    out
}

/// The line printed at readiness, counted from the launcher's start:
/// `ready in 35.2 s (kvm attempt 20.0, qemu 0.3, kernel 2.9, ...)`.
pub fn summary(ready: f64, phases: &[Phase]) -> String {
    let mut line = format!("ready in {ready:.1} s");
    if !phases.is_empty() {
        let parts: Vec<String> = phases.iter().map(|(name, s)| format!("{name} {s:.1}")).collect();
        line.push_str(&format!(" ({})", parts.join(", ")));
    }
    line
}

/// A restore's steps, in seconds since the launcher started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Restored {
    pub qemu_started: f64,
    /// QEMU has loaded the saved state.
    pub loaded: f64,
    /// `cont` returned: the guest runs.
    pub resumed: f64,
    /// The guest wrote it was done with the restore request.
    pub guest_done: f64,
    /// dockerd answered /_ping.
    pub ready: f64,
    pub kvm_attempt: Option<f64>,
    pub docker_disk_bytes: u64,
}

impl Restored {
    /// The phases: `load` (launcher start → state loaded: the docker disk,
    /// QEMU's start, the state), `resume`, `fixups` (the guest's restore
    /// request: clock, entropy, shares, TLS; then until dockerd answers).
    /// A failed KVM attempt before it comes first, as in a boot's line.
    pub fn phases(&self) -> Vec<Phase> {
        let kvm = self.kvm_attempt.unwrap_or(0.0).min(self.loaded);
        let mut out = Vec::new();
        if self.kvm_attempt.is_some() {
            out.push(("kvm attempt", kvm));
        }
        out.extend([("load", self.loaded - kvm), ("resume", self.resumed - self.loaded), ("fixups", self.ready - self.resumed)]);
        out
    }

    /// `restored in 0.9 s (load 0.5, resume 0.0, fixups 0.4)`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.phases().iter().map(|(name, s)| format!("{name} {s:.1}")).collect();
        format!("restored in {:.1} s ({})", self.ready, parts.join(", "))
    }

    /// timeline.json of a restore.
    pub fn to_json(&self) -> serde_json::Value {
        let ms = |s: f64| (s * 1000.0).round() / 1000.0;
        let phases: Vec<_> = self.phases().into_iter().map(|(name, s)| json!({"name": name, "seconds": ms(s)})).collect();
        json!({
            "start": "restore",
            "accel": "tcg",
            "since_start_s": ms(self.ready),
            "ready_s": ms(self.ready - self.qemu_started),
            "phases": phases,
            "steps": {
                "qemu_started_s": ms(self.qemu_started),
                "loaded_s": ms(self.loaded),
                "resumed_s": ms(self.resumed),
                "guest_restore_s": ms(self.guest_done),
                "ready_s": ms(self.ready),
            },
            "kvm_attempt_s": self.kvm_attempt.map(ms),
            "docker_disk_bytes": self.docker_disk_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian guest with our initramfs under TCG: kernel lines (not quiet),
    /// dinv-init's, dinv-guest init's and a service's, with the times the
    /// launcher read them (the first ones late, replayed when the console
    /// came up).
    const DEBIAN: &[(f64, &str)] = &[
        (0.95, "[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"),
        (0.95, "[    0.000000] Command line: console=ttyS0 root=SERIAL=dinv-root rw"),
        (0.96, "[    0.412345] printk: console [ttyS0] enabled"),
        (3.41, "[    3.101] dinv-init: starting"),
        (3.41, "[    3.104] dinv-init: loading virtio_blk"),
        (4.36, "[    4.050] dinv-init: mounting /dev/vda (ext4, rw) on /newroot"),
        (4.51, "[    4.210] dinv-init: switched root; executing /sbin/init"),
        (4.70, "[    4.390] dinv-guest: init starting"),
        (5.20, "[    4.880] dinv-guest: eth0 up: 10.0.2.15/24 via 10.0.2.2"),
        (5.35, "[    5.020] dinv-guest: started dockerd (pid 231)"),
        (9.00, "[    8.600] [dockerd] time=\"...\" level=info msg=\"API listen on [::]:2375\""),
    ];

    fn timeline(lines: &[(f64, &str)]) -> Timeline {
        let mut t = Timeline::default();
        for (read, line) in lines {
            t.observe(line, *read);
        }
        t
    }

    fn round(phases: Vec<Phase>) -> Vec<(&'static str, f64)> {
        phases.into_iter().map(|(n, s)| (n, (s * 1000.0).round() / 1000.0)).collect()
    }

    #[test]
    fn markers_are_recognised() {
        let of = |line: &str| Marker::of(console::split_stamp(line).1);
        assert_eq!(of("[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)"), Some(Marker::Kernel));
        assert_eq!(of("[    1.204] dinv-init: starting"), Some(Marker::Initramfs));
        assert_eq!(of("dinv-init: loading ext4"), Some(Marker::Initramfs));
        assert_eq!(of("[    2.913] dinv-init: switched root; executing /sbin/init"), Some(Marker::SwitchRoot));
        assert_eq!(of("[    3.000] dinv-guest: init starting"), Some(Marker::GuestInit));
        assert_eq!(of("[    6.500] dinv-guest: setup starting"), Some(Marker::GuestInit));
        assert_eq!(of("[    3.500] dinv-guest: started dockerd (pid 231)"), Some(Marker::Dockerd));
        assert_eq!(of("[    3.400] dinv-guest: started containerd (pid 229)"), Some(Marker::Dockerd));
        assert_eq!(of("[    7.100] dinv-guest: post: waiting for /var/run/docker.sock"), Some(Marker::Dockerd));
        for other in [
            "[    3.500] dinv-guest: started dockerd-helper (pid 2)",
            "[    3.500] dinv-guest: started qemu-ga (pid 230)",
            "[    3.500] [dockerd] started dockerd (",
            " * Starting docker ... [ ok ]",
            "[    0.100000] Kernel command line: Linux version",
        ] {
            assert_eq!(of(other), None, "{other}");
        }
    }

    #[test]
    fn the_guest_clock_is_placed_by_the_least_delayed_line() {
        let t = timeline(DEBIAN);
        // 4.51 - 4.210 = 0.30 is the smallest read - stamp.
        assert!((t.guest_zero().unwrap() - 0.30).abs() < 1e-9, "{:?}", t.guest_zero());
        assert!((t.at(Marker::Initramfs).unwrap() - 3.401).abs() < 1e-9);
        assert_eq!(t.get(Marker::Initramfs).unwrap().line, "[    3.101] dinv-init: starting", "the first dinv-init line counts");
        // A stamp that cannot be a boot clock does not move the origin.
        let mut t2 = t.clone();
        t2.observe("[2024] build log", 5.0);
        assert_eq!(t2.guest_zero(), t.guest_zero());
    }

    #[test]
    fn phases_of_a_full_boot_add_up_to_the_total() {
        let t = timeline(DEBIAN);
        let phases = round(t.phases(18.2));
        assert_eq!(phases, [("qemu", 0.3), ("kernel", 3.101), ("initramfs", 1.109), ("guest init", 0.81), ("dockerd", 12.88)]);
        let sum: f64 = phases.iter().map(|p| p.1).sum();
        assert!((sum - 18.2).abs() < 1e-6, "{sum}");
        assert_eq!(summary(18.2, &t.phases(18.2)), "ready in 18.2 s (qemu 0.3, kernel 3.1, initramfs 1.1, guest init 0.8, dockerd 12.9)");
    }

    #[test]
    fn an_early_console_banner_is_taken_at_its_read_time() {
        // `earlycon`: the banner is printed at once, stamped 0.000000 because
        // the kernel's clock only starts later (here 0.7 s on), so it says
        // nothing about where guest time 0 is, but it is the kernel's start.
        let t = timeline(&[
            (6.5, "[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)"),
            (6.6, "[    0.000000] tsc: Detected 2596.130 MHz processor"),
            // Before the TSC clock: 0.6 s of real time pass as 0.25 s.
            (6.8, "[    0.115500] clocksource: refined-jiffies: mask: 0xffffffff"),
            (7.6, "[    0.400000] clocksource: tsc-early: mask: 0xffffffffffffffff"),
            (9.6, "[    2.400] dinv-init: starting"),
        ]);
        assert!((t.guest_zero().unwrap() - 7.2).abs() < 1e-9, "{:?}", t.guest_zero());
        assert_eq!(t.at(Marker::Kernel), Some(6.5));
        assert_eq!(round(t.phases(10.0))[..2], [("qemu", 6.5), ("kernel", 3.1)]);
    }

    #[test]
    fn quiet_kernel_starts_at_guest_time_zero() {
        // `quiet`: no kernel lines at all; the kernel phase starts at guest 0.
        let quiet: Vec<_> = DEBIAN.iter().copied().filter(|(_, l)| !l.contains("000] ") && !l.contains("345] ")).collect();
        let t = timeline(&quiet);
        assert!(t.get(Marker::Kernel).is_none());
        assert_eq!(round(t.phases(18.2))[..2], [("qemu", 0.3), ("kernel", 3.101)]);
    }

    #[test]
    fn openrc_guest_without_initramfs() {
        // Alpine's own initramfs-less boot: the kernel mounts the root and
        // starts OpenRC; our lines come from dinv-setup and dinv-post.
        let t = timeline(&[
            (0.80, "[    0.000000] Linux version 6.6.58-0-virt (buildozer@build-3-20-x86_64)"),
            (2.90, "   OpenRC 0.54 is starting up Linux 6.6.58-0-virt (x86_64)"),
            (4.20, "[    3.900] dinv-guest: setup starting"),
            (4.30, "[    3.950] dinv-guest: mounting /dev/vdb on /var/lib/docker (ext4)"),
            (5.00, " * Starting Docker Daemon ... [ ok ]"),
            (5.10, "[    4.800] dinv-guest: post: waiting for /var/run/docker.sock"),
        ]);
        let phases = round(t.phases(9.0));
        // No initramfs: the kernel phase runs to the guest init's first line.
        assert_eq!(phases, [("qemu", 0.3), ("kernel", 3.9), ("guest init", 0.9), ("dockerd", 3.9)]);
        assert_eq!(summary(9.0, &t.phases(9.0)), "ready in 9.0 s (qemu 0.3, kernel 3.9, guest init 0.9, dockerd 3.9)");
    }

    #[test]
    fn missing_markers_leave_their_phases_out() {
        // No markers at all (an old guest): just the total.
        let t = timeline(&[(1.0, "Booting the guest"), (2.0, "login:")]);
        assert!(t.phases(5.0).is_empty());
        assert_eq!(summary(5.04, &t.phases(5.04)), "ready in 5.0 s");
        // Time before QEMU: a failed KVM attempt first, then the launcher's own.
        let mut phases = before_qemu(20.3, Some(20.0));
        phases.push(("dockerd", 3.0));
        assert_eq!(summary(23.3, &phases), "ready in 23.3 s (kvm attempt 20.0, launcher 0.3, dockerd 3.0)");
        assert!(before_qemu(0.01, None).is_empty());
        // No dockerd marker: guest init is left out, not stretched to readiness.
        let partial: Vec<_> = DEBIAN.iter().copied().filter(|(_, l)| !l.contains("started dockerd")).collect();
        let names: Vec<_> = timeline(&partial).phases(18.2).into_iter().map(|p| p.0).collect();
        assert_eq!(names, ["qemu", "kernel", "initramfs"]);
    }

    #[test]
    fn json_has_phases_markers_and_clocks() {
        let t = timeline(DEBIAN);
        let v = t.to_json(18.2, Accel::Tcg);
        assert_eq!(v["accel"], "tcg");
        assert_eq!(v["ready_s"], 18.2);
        assert_eq!(v["guest_zero_s"], 0.3);
        assert_eq!(v["phases"][0], json!({"name": "qemu", "seconds": 0.3}));
        assert_eq!(v["phases"][4]["name"], "dockerd");
        let markers = v["markers"].as_array().unwrap();
        let names: Vec<_> = markers.iter().map(|m| m["marker"].as_str().unwrap()).collect();
        assert_eq!(names, ["kernel", "initramfs", "switch_root", "guest_init", "dockerd"]);
        assert_eq!(markers[2]["at_s"], 4.51);
        assert_eq!(markers[2]["guest_stamp_s"], 4.21);
        assert_eq!(markers[2]["line"], "[    4.210] dinv-init: switched root; executing /sbin/init");
    }

    #[test]
    fn the_kernel_runs_from_its_first_stamped_line() {
        // What a guest hung in real-mode setup leaves on the console (the
        // bzImage hang seen under nested KVM), then what a running kernel
        // prints under `quiet`: a stamped warning, before any marker.
        let mut t = timeline(&[(0.2, "SeaBIOS (version 1.16.2-debian-1.16.2-1)"), (0.4, "Booting from ROM.."), (0.5, "Probing EDD (edd=off to disable)... ok")]);
        assert!(!t.kernel_running());
        t.observe("[    0.713201] x86/fpu: Supporting XSAVE feature 0x001: 'x87 floating point registers'", 1.1);
        assert!(t.kernel_running());
        // A marker alone counts too (a banner without its stamp).
        assert!(timeline(&[(0.3, "dinv-guest: init starting")]).kernel_running());
        assert!(timeline(&DEBIAN[..1]).kernel_running());
        assert!(!Timeline::default().kernel_running());
    }

    #[test]
    fn a_restore_summary() {
        let r = Restored { qemu_started: 0.12, loaded: 0.55, resumed: 0.56, guest_done: 0.71, ready: 0.83, kvm_attempt: None, docker_disk_bytes: 5 };
        assert_eq!(r.summary(), "restored in 0.8 s (load 0.6, resume 0.0, fixups 0.3)");
        let sum: f64 = r.phases().iter().map(|p| p.1).sum();
        assert!((sum - r.ready).abs() < 1e-9);
        let j = r.to_json();
        assert_eq!((j["start"].as_str(), j["ready_s"].as_f64(), j["steps"]["guest_restore_s"].as_f64()), (Some("restore"), Some(0.71), Some(0.71)));
        assert_eq!(j["phases"][2], json!({"name": "fixups", "seconds": 0.27}));
        let k = Restored { kvm_attempt: Some(20.0), loaded: 20.5, resumed: 20.5, ready: 21.0, ..r };
        assert_eq!(k.summary(), "restored in 21.0 s (kvm attempt 20.0, load 0.5, resume 0.0, fixups 0.5)");
    }
}
