//! Booting a kernel + initramfs + ext4 root under QEMU microvm, for the
//! boot test and the boot-time example.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds (once per process) the static dinv-init, or takes `DINV_INIT_BIN`.
pub fn dinv_init_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("DINV_INIT_BIN") {
            return PathBuf::from(p);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap();
        // A separate target dir: the static RUSTFLAGS must not force a
        // rebuild of everyone's host build.
        let target_dir = workspace.join("target/static");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "dinv-init", "--bin", "dinv-init", "--target", "x86_64-unknown-linux-gnu"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(&workspace)
            .status()
            .expect("cannot run cargo to build dinv-init");
        assert!(st.success(), "building the static dinv-init failed (set DINV_INIT_BIN to use a prebuilt one)");
        let bin = target_dir.join("x86_64-unknown-linux-gnu/debug/dinv-init");
        assert!(is_static_elf(&std::fs::read(&bin).unwrap()), "{bin:?} is not a static executable");
        bin
    })
    .clone()
}

/// True for an ELF64 executable without a PT_INTERP program header.
pub fn is_static_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([b[0x38], b[0x39]]) as usize;
    (0..phnum).all(|i| b.get(phoff + i * 56..phoff + i * 56 + 4).is_some_and(|t| t != 3u32.to_le_bytes()))
}

/// A tiny static x86-64 program: writes `marker` and a newline to fd 1
/// (the console dinv-init hands over), syncs, and powers the machine off.
pub fn marker_init(marker: &str) -> Vec<u8> {
    let msg = format!("{marker}\n");
    let mut code: Vec<u8> = Vec::new();
    code.extend([0xb8, 1, 0, 0, 0]); // mov eax, 1 (write)
    code.extend([0xbf, 1, 0, 0, 0]); // mov edi, 1
    let lea_at = code.len();
    code.extend([0x48, 0x8d, 0x35, 0, 0, 0, 0]); // lea rsi, [rip + msg]
    code.push(0xba); // mov edx, len
    code.extend((msg.len() as u32).to_le_bytes());
    code.extend([0x0f, 0x05]); // syscall
    code.extend([0xb8, 162, 0, 0, 0]); // mov eax, 162 (sync)
    code.extend([0x0f, 0x05]); // syscall
    code.extend([0xb8, 169, 0, 0, 0]); // mov eax, 169 (reboot)
    code.push(0xbf); // mov edi, LINUX_REBOOT_MAGIC1
    code.extend(0xfee1_deadu32.to_le_bytes());
    code.push(0xbe); // mov esi, LINUX_REBOOT_MAGIC2
    code.extend(0x2812_1969u32.to_le_bytes());
    code.push(0xba); // mov edx, LINUX_REBOOT_CMD_POWER_OFF
    code.extend(0x4321_fedcu32.to_le_bytes());
    code.extend([0x0f, 0x05]); // syscall
    code.extend([0xeb, 0xfe]); // jmp . (if poweroff failed)
    let disp = (code.len() - (lea_at + 7)) as i32;
    code[lea_at + 3..lea_at + 7].copy_from_slice(&disp.to_le_bytes());
    code.extend(msg.as_bytes());

    elf_exec(&code)
}

/// An ext4 image with `/sbin/init` = `init` and empty `/dev`, `/proc`,
/// `/sys` (mount points dinv-init moves its mounts to).
pub fn make_rootfs(dir: &Path, init: &[u8]) -> PathBuf {
    let src = dir.join("rootfs");
    for d in ["sbin", "dev", "proc", "sys"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    std::fs::write(src.join("sbin/init"), init).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("sbin/init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let img = dir.join("root.ext4");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "dinv-test", "-d"])
        .arg(&src)
        .arg(&img)
        .arg("16M")
        .output()
        .expect("mke2fs (e2fsprogs) is needed: apt-get install -y e2fsprogs");
    assert!(out.status.success(), "mke2fs: {}", String::from_utf8_lossy(&out.stderr));
    img
}

/// `kvm` when KVM actually runs a guest here, else `tcg`; overridable
/// with `DINV_TEST_ACCEL`. Opening /dev/kvm is not enough: under some
/// nested setups QEMU opens it and then fails on MSRs or spins forever, so
/// the probe boots `kernel` and waits for its first message.
pub fn accel(kernel: &Path) -> &'static str {
    static A: OnceLock<&'static str> = OnceLock::new();
    A.get_or_init(|| {
        if let Ok(a) = std::env::var("DINV_TEST_ACCEL") {
            return if a == "kvm" { "kvm" } else { "tcg" };
        }
        if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
            return "tcg";
        }
        let mut c = Command::new("qemu-system-x86_64");
        c.args(["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "128M", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
        c.args(["-serial", "stdio", "-append", "console=ttyS0 panic=-1"]).arg("-kernel").arg(kernel);
        let r = boot(c, "Linux version", Duration::from_secs(10));
        if r.to_marker.is_some() {
            "kvm"
        } else {
            eprintln!("/dev/kvm is present but a KVM guest does not start here; using TCG");
            "tcg"
        }
    })
}

/// The host TSC rate in kHz (from /proc/cpuinfo). Under TCG the guest
/// reads the host TSC, but microvm's hardware-reduced ACPI hides the PIT
/// the kernel would calibrate it against, and the kernel hangs without
/// `tsc_early_khz=`.
pub fn host_tsc_khz() -> u64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("cpu MHz")).and_then(|l| l.split(':').nth(1)).and_then(|v| v.trim().parse::<f64>().ok()))
        .map(|mhz| (mhz * 1000.0) as u64)
        .unwrap_or(2_000_000)
}

/// The QEMU microvm command line; under TCG `tsc_early_khz=` is appended.
pub fn qemu_command(kernel: &Path, initrd: &Path, rootfs: &Path, append: &str) -> Command {
    which("qemu-system-x86_64").expect("qemu-system-x86_64 is needed for the boot test: apt-get install -y qemu-system-x86");
    let accel = accel(kernel);
    let mut c = Command::new("qemu-system-x86_64");
    c.args(["-M", "microvm", "-accel", accel, "-cpu", if accel == "kvm" { "host" } else { "max" }, "-m", "256M", "-smp", "1"]);
    c.args(["-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio"]);
    let append = if accel == "tcg" { format!("{append} tsc_early_khz={}", host_tsc_khz()) } else { append.to_string() };
    c.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd).arg("-append").arg(append);
    c.arg("-drive").arg(format!("id=root,file={},format=raw,if=none", rootfs.display()));
    c.args(["-device", "virtio-blk-device,drive=root"]);
    c
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(tool)).find(|f| f.is_file()))
}

/// What a boot produced.
pub struct BootResult {
    /// The serial console, `\r` removed.
    pub console: String,
    /// QEMU's exit status (`None` if it was killed at the timeout).
    pub status: Option<ExitStatus>,
    /// From QEMU's start to the marker line on the console.
    pub to_marker: Option<Duration>,
    /// From QEMU's start to its exit.
    pub total: Duration,
}

/// Runs QEMU, timestamps console lines, kills it after `timeout`.
pub fn boot(mut cmd: Command, marker: &str, timeout: Duration) -> BootResult {
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("cannot start qemu");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        while r.read_until(b'\n', &mut buf).map(|n| n > 0).unwrap_or(false) {
            let line = String::from_utf8_lossy(&buf).trim_end_matches(['\r', '\n']).to_string();
            let _ = tx.send((Instant::now(), line));
            buf.clear();
        }
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let total = start.elapsed();
    reader.join().unwrap();
    let mut console = String::new();
    let mut to_marker = None;
    for (at, line) in rx.try_iter() {
        if to_marker.is_none() && line.contains(marker) {
            to_marker = Some(at - start);
        }
        console.push_str(&line);
        console.push('\n');
    }
    BootResult { console, status, to_marker, total }
}

/// Wraps position-independent code in a one-segment static ELF64 executable.
pub fn elf_exec(code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let hdr = 64 + 56u64;
    let total = hdr + code.len() as u64;
    let mut f = Vec::new();
    f.extend(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    f.extend(2u16.to_le_bytes()); // ET_EXEC
    f.extend(0x3eu16.to_le_bytes()); // x86-64
    f.extend(1u32.to_le_bytes());
    f.extend((BASE + hdr).to_le_bytes()); // entry
    f.extend(64u64.to_le_bytes()); // phoff
    f.extend(0u64.to_le_bytes()); // shoff
    f.extend(0u32.to_le_bytes()); // flags
    f.extend(64u16.to_le_bytes());
    f.extend(56u16.to_le_bytes());
    f.extend(1u16.to_le_bytes());
    f.extend([0u8; 6]);
    f.extend(1u32.to_le_bytes()); // PT_LOAD
    f.extend(5u32.to_le_bytes()); // R+X
    f.extend(0u64.to_le_bytes());
    f.extend(BASE.to_le_bytes());
    f.extend(BASE.to_le_bytes());
    f.extend(total.to_le_bytes());
    f.extend(total.to_le_bytes());
    f.extend(0x1000u64.to_le_bytes());
    f.extend(code);
    f
}
