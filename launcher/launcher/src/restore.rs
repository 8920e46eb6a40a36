//! Restoring the image's snapshot instead of booting (see `start.rs` for
//! when): the docker data disk written out from the snapshot's, QEMU
//! started with the snapshot VM's command line on the saved memory (mapped,
//! not read: see `snapshot_vm`) and device state, then, once QEMU has
//! loaded it, `cont`, and before the container's command runs, what a
//! restored guest needs, sent on the restore port to the `dinv-guest
//! restore --listen` saved waiting there: its clock set from the host's,
//! fresh entropy and a reseed, the 9p shares, the socket owner, dockerd's
//! shutdown timeout and TLS.

use std::fs;
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use dinv_contract::qcow2;
use dinv_contract::settings::PortForward;
use dinv_contract::snapshot::{self as snap, Manifest, RestoreRequest, Share, TlsServer};

use super::certs::{CertDir, Role};
use super::config::Paths;
use super::qmp::Qmp;
use super::ready::{self, Probe};
use super::settings::Settings;
use super::snapshot_vm::{self, DiskFile, HostSide, Memory};
use super::start::DataDisk;
use super::LauncherError;

/// How long QEMU may take to load the state.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the guest may take to apply the restore request.
const GUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The image's snapshot: where it is and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Reads `dir/snapshot.json`: Ok(None) when the image has no snapshot.
pub fn load(dir: &Path) -> Result<Option<Snapshot>, String> {
    let path = dir.join(snap::MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => Manifest::parse(&bytes).map(|manifest| Some(Snapshot { dir: dir.to_path_buf(), manifest })).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Whether the docker data disk at `path` holds anything: a disk the
/// launcher made and the guest never wrote is all holes.
pub fn data_disk(path: &Path) -> DataDisk {
    let Ok(f) = fs::File::open(path) else {
        return if path.exists() { DataDisk::HoldsData } else { DataDisk::Missing };
    };
    // SAFETY: lseek on an fd we own.
    let data = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_DATA) };
    let err = std::io::Error::last_os_error().raw_os_error();
    if data < 0 && err == Some(libc::ENXIO) {
        DataDisk::Blank
    } else {
        // Data, or a filesystem that cannot tell: never replace it.
        DataDisk::HoldsData
    }
}

/// The directory behind the 9p devices no share uses.
fn empty_share(paths: &Paths) -> PathBuf {
    paths.run_dir.join("empty-share")
}

/// QEMU's arguments for restoring `s` with `settings`: the snapshot VM's
/// command line with this run's files and forwards, then the state's fd.
pub fn qemu_args(s: &Snapshot, settings: &Settings, paths: &Paths) -> Vec<String> {
    let p = &s.manifest.profile;
    let mut shares: Vec<PathBuf> = settings.mounts.iter().map(PathBuf::from).collect();
    shares.resize(p.mount_slots as usize, empty_share(paths));
    let host = HostSide {
        kernel: paths.kernel.clone(),
        initrd: paths.initrd.clone(),
        // Guest writes go to a temporary overlay, as a boot's do.
        root: DiskFile { path: s.dir.join(snap::ROOT_OVERLAY), format: "qcow2", options: ",snapshot=on".into() },
        docker: DiskFile { path: paths.docker_disk.clone(), format: "raw", options: ",discard=unmap".into() },
        shares,
        // Added once the guest runs (see `HostSide::forwards`).
        forwards: Vec::new(),
        console_log: paths.console_log(),
        qga_socket: paths.qga_socket(),
        qmp_socket: paths.qmp_socket(),
        memory: Memory { path: s.dir.join(snap::MEMORY), saving: false },
        restore_socket: paths.restore_socket(),
    };
    let mut args = snapshot_vm::args(p, &host);
    // The capability that leaves the RAM to the memory file is set first.
    args.extend(["-incoming".to_string(), "defer".to_string()]);
    args
}

/// Before QEMU starts: the docker data disk written out from the
/// snapshot's (a blank one made earlier in this run is replaced), and the
/// empty directory for unused 9p devices. Returns the bytes written.
pub fn prepare(s: &Snapshot, paths: &Paths) -> Result<u64, LauncherError> {
    fs::create_dir_all(&paths.run_dir).map_err(LauncherError::io(&paths.run_dir, "creating the run directory"))?;
    let empty = empty_share(paths);
    fs::create_dir_all(&empty).map_err(LauncherError::io(&empty, "creating"))?;
    let disk = &paths.docker_disk;
    match data_disk(disk) {
        DataDisk::Missing => {}
        DataDisk::Blank => fs::remove_file(disk).map_err(LauncherError::io(disk, "replacing the blank docker disk"))?,
        DataDisk::HoldsData => return Err(LauncherError::Runtime(format!("{} holds data; it is never replaced by the snapshot's", disk.display()))),
    }
    if let Some(parent) = disk.parent() {
        fs::create_dir_all(parent).map_err(LauncherError::io(parent, "creating the disk's directory"))?;
    }
    for (name, what) in [(snap::MEMORY, "memory"), (snap::STATE, "device state")] {
        let p = s.dir.join(name);
        if !p.is_file() {
            return Err(LauncherError::Runtime(format!("{}: the snapshot's {what} is missing", p.display())));
        }
    }
    let src = s.dir.join(snap::DOCKER_DISK);
    qcow2::materialize(&src, disk).map_err(LauncherError::io(&src, "writing out the snapshot's docker disk"))
}

/// What the guest gets from `dinv-guest restore`.
pub fn request(settings: &Settings, entropy: &[u8]) -> Result<RestoreRequest, LauncherError> {
    let tls = match &settings.tls_certdir {
        None => None,
        Some(dir) => {
            let dir = CertDir(dir.clone());
            let read = |name: &str| {
                let p = dir.file(Role::Server, name);
                fs::read_to_string(&p).map_err(LauncherError::io(&p, "reading dockerd's TLS files"))
            };
            Some(TlsServer { ca: read("ca.pem")?, cert: read("cert.pem")?, key: read("key.pem")? })
        }
    };
    Ok(RestoreRequest {
        // Set again right before the request is sent.
        clock_ns: 0,
        entropy: entropy.iter().map(|b| format!("{b:02x}")).collect(),
        shares: settings.mounts.iter().enumerate().map(|(i, p)| Share { tag: crate::qemu::mount_tag(i), path: p.clone() }).collect(),
        sock_uid: settings.sock_uid,
        sock_gid: settings.sock_gid,
        shutdown_timeout: settings.shutdown_timeout as u64,
        tls,
    })
}

/// 64 bytes from the host's generator.
pub fn host_entropy() -> std::io::Result<[u8; 64]> {
    let mut b = [0u8; 64];
    fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// When each step of a restore ended.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    pub loaded: Instant,
    pub resumed: Instant,
    pub guest_done: Instant,
    pub ready: Instant,
}

fn log(msg: impl AsRef<str>) {
    eprintln!("dinv-launcher: {}", msg.as_ref());
}

/// After QEMU started: connects to the restore port (before the guest
/// runs, so it never sees the port without a host), waits for the state to
/// load, resumes the guest, sends `req` (with the clock as it is then) and
/// relays the guest's messages until its done line, then waits for
/// dockerd's answer. `gone` tells that QEMU exited.
pub fn resume(snapshot_dir: &Path, paths: &Paths, settings: &Settings, probe: &Probe, req: &RestoreRequest, gone: &dyn Fn() -> bool) -> Result<Steps, String> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let mut qmp = until_up(deadline, gone, || Qmp::connect(&paths.qmp_socket(), Duration::from_secs(5)))?;
    // QEMU made its sockets before it answered on QMP.
    let sock = paths.restore_socket();
    let channel = until_up(deadline, gone, || UnixStream::connect(&sock).map_err(|e| format!("{}: {e}", sock.display())))?;
    let failed = |e: String| if gone() { "QEMU could not load the snapshot (see its message above)".to_string() } else { e };
    snapshot_vm::leave_ram_to_the_file(&mut qmp).map_err(failed)?;
    qmp.execute_with("migrate-incoming", serde_json::json!({"uri": snapshot_vm::state_uri(&snapshot_dir.join(snap::STATE))?})).map_err(failed)?;
    loop {
        let st = qmp.execute("query-status").map_err(failed)?;
        match st["status"].as_str() {
            Some("inmigrate") if gone() => return Err("QEMU exited before it loaded the snapshot".into()),
            Some("inmigrate") if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Some("paused") | Some("prelaunch") => break,
            other => return Err(format!("QEMU is {} after loading the snapshot", other.unwrap_or("in an unknown state"))),
        }
    }
    let loaded = Instant::now();
    qmp.execute("cont")?;
    let resumed = Instant::now();
    let port = settings.docker_port();
    for rule in super::qemu::forwards(PortForward { host: port, guest: port }, &settings.tcp_ports, &settings.udp_ports) {
        // HMP's answer is empty when the rule was added.
        let said = qmp.execute_with("human-monitor-command", serde_json::json!({"command-line": format!("hostfwd_add net0 {rule}")}))?;
        if let Some(why) = said.as_str().map(str::trim).filter(|s| !s.is_empty()) {
            return Err(format!("the port forward {rule}: {why}"));
        }
    }
    drop(qmp);

    let mut req = req.clone();
    req.clock_ns = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_err(|e| e.to_string())?.as_nanos() as u64;
    let mut line = serde_json::to_vec(&req).expect("a request serialises");
    line.push(b'\n');
    // dockerd is asked at once, while the guest applies the request: each
    // waits on the guest's one vCPU now and then, and the other fills it.
    let guest = std::thread::spawn(move || (exchange(channel, &line, GUEST_TIMEOUT, &mut |l| log(format!("guest: {l}"))), Instant::now()));
    let pinged = ready::wait_ready(&settings.ping_addr, probe, settings.ready_timeout, gone);
    let (failed, guest_done) = guest.join().map_err(|_| "the restore request's thread panicked".to_string())?;
    match failed.map_err(|e| format!("the restore request ({}): {e}", sock.display()))? {
        0 => {}
        n => return Err(format!("{n} step(s) of the guest's restore failed (see its messages above)")),
    }
    pinged.map_err(|e| match e {
        ready::NotReady::Timeout { after, last } => format!("dockerd did not answer /_ping within {:.0} s after the restore (last: {last})", after.as_secs_f64()),
        ready::NotReady::Stopped => "QEMU exited".into(),
    })?;
    Ok(Steps { loaded, resumed, guest_done, ready: Instant::now() })
}

/// `connect` retried until it succeeds, QEMU exits (`gone`), or `deadline`.
fn until_up<T>(deadline: Instant, gone: &dyn Fn() -> bool, mut connect: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    loop {
        match connect() {
            Ok(t) => return Ok(t),
            Err(_) if gone() => return Err("QEMU exited before it loaded the snapshot".into()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Writes `request` on the restore channel and hands each line the guest
/// writes back to `message` until its done line; returns the number of
/// failed steps that line gives.
pub fn exchange(mut channel: UnixStream, request: &[u8], timeout: Duration, message: &mut dyn FnMut(&str)) -> Result<usize, String> {
    channel.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    channel.write_all(request).map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::new(channel);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return Err("the guest closed the channel before it was done".into()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return Err(format!("no answer from the guest within {} s", timeout.as_secs())),
            Err(e) => return Err(e.to_string()),
        }
        let text = line.trim_end();
        if let Some(n) = text.strip_prefix(snap::RESTORE_DONE) {
            return n.trim().parse().map_err(|_| format!("a done line that gives no count: {text:?}"));
        }
        if !text.trim().is_empty() {
            message(text.trim());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dinv-restore-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn data_disks_are_told_apart() {
        let d = tmp("disk");
        let p = d.join("docker.img");
        assert_eq!(data_disk(&p), DataDisk::Missing);
        fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
        // tmpfs and ext4 answer SEEK_DATA; a filesystem that cannot counts as data.
        let blank = data_disk(&p);
        assert!(matches!(blank, DataDisk::Blank | DataDisk::HoldsData));
        let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"x", 512 << 20).unwrap();
        assert_eq!(data_disk(&p), DataDisk::HoldsData);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn manifests_load_or_are_absent() {
        let d = tmp("load");
        assert_eq!(load(&d).unwrap(), None);
        fs::write(d.join(snap::MANIFEST), "{}").unwrap();
        assert!(load(&d).unwrap_err().contains("snapshot.json"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_guest_is_sent_the_request_and_its_messages_relayed_until_done() {
        let (ours, mut guest) = UnixStream::pair().unwrap();
        let g = std::thread::spawn(move || {
            let mut got = String::new();
            std::io::BufReader::new(guest.try_clone().unwrap()).read_line(&mut got).unwrap();
            guest.write_all(b"[ 1.0] dinv-guest: restore: reseeded\n\n[ 1.1] dinv-guest: error: x\ndinv-restore-done 1\n").unwrap();
            got
        });
        let mut said = Vec::new();
        assert_eq!(exchange(ours, b"{\"r\":1}\n", Duration::from_secs(5), &mut |l| said.push(l.to_string())), Ok(1));
        assert_eq!(g.join().unwrap(), "{\"r\":1}\n");
        assert_eq!(said, ["[ 1.0] dinv-guest: restore: reseeded", "[ 1.1] dinv-guest: error: x"]);

        // A guest that goes away after the request, or never answers.
        let (ours, guest) = UnixStream::pair().unwrap();
        std::thread::spawn(move || std::io::BufReader::new(guest).read_line(&mut String::new()));
        assert!(exchange(ours, b"{}\n", Duration::from_secs(5), &mut |_| {}).unwrap_err().contains("closed"));
        let (ours, _guest) = UnixStream::pair().unwrap();
        assert!(exchange(ours, b"{}\n", Duration::from_millis(100), &mut |_| {}).unwrap_err().contains("no answer"));
    }

    #[test]
    fn the_request_carries_shares_owner_and_tls() {
        let d = tmp("req");
        let settings = Settings::from_lookup(&|k| match k {
            "DINV_MOUNTS" => Some("/src;/data".into()),
            "DINV_DOCKER_SOCK_UID" => Some("1000".into()),
            _ => None,
        })
        .unwrap();
        let r = request(&settings, &[0xab; 64]).unwrap();
        assert_eq!(r.entropy, "ab".repeat(64));
        assert_eq!(r.shares, [Share { tag: "dinv0".into(), path: "/src".into() }, Share { tag: "dinv1".into(), path: "/data".into() }]);
        assert_eq!((r.sock_uid, r.shutdown_timeout, r.tls.is_none()), (1000, 5, true));
        let with_tls = Settings { tls_certdir: Some(d.join("certs")), ..settings };
        assert!(request(&with_tls, &[0; 64]).unwrap_err().to_string().contains("server/ca.pem"));
        crate::certs::ensure(&CertDir(d.join("certs")), &[], SystemTime::now()).unwrap();
        assert!(request(&with_tls, &[0; 64]).unwrap().tls.unwrap().key.contains("PRIVATE KEY"));
        fs::remove_dir_all(&d).unwrap();
    }
}
