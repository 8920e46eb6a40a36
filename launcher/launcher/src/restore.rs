//! Restoring the image's snapshot instead of booting (see `start.rs` for
//! when): the docker data disk written out from the snapshot's, QEMU
//! started with the snapshot VM's command line and the saved state fed in
//! through a pipe (decompressed on the way), then, once QEMU has loaded
//! it, `cont`, and before the container's command runs, what a restored
//! guest needs, through the guest agent's `guest-exec` of `dinv-guest
//! restore`: its clock set from the host's, fresh entropy and a reseed,
//! the 9p shares, the socket owner, dockerd's shutdown timeout and TLS.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use dinv_contract::qcow2;
use dinv_contract::settings::PortForward;
use dinv_contract::snapshot::{self as snap, Manifest, RestoreRequest, Share, TlsServer};

use super::certs::{CertDir, Role};
use super::config::Paths;
use super::qga::Qga;
use super::qmp::Qmp;
use super::ready::{self, Probe};
use super::settings::Settings;
use super::snapshot_vm::{self, DiskFile, HostSide};
use super::start::DataDisk;
use super::LauncherError;

/// The fd QEMU reads the saved state from (`-incoming fd:3`).
pub const STATE_FD: RawFd = 3;
/// How long QEMU may take to load the state.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the guest agent may take to answer after the guest resumed.
const AGENT_TIMEOUT: Duration = Duration::from_secs(60);

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
    let port = settings.docker_port();
    let host = HostSide {
        kernel: paths.kernel.clone(),
        initrd: paths.initrd.clone(),
        // Guest writes go to a temporary overlay, as a boot's do.
        root: DiskFile { path: s.dir.join(snap::ROOT_OVERLAY), format: "qcow2", options: ",snapshot=on".into() },
        docker: DiskFile { path: paths.docker_disk.clone(), format: "raw", options: ",discard=unmap".into() },
        shares,
        docker_port: PortForward { host: port, guest: port },
        tcp_ports: settings.tcp_ports.clone(),
        udp_ports: settings.udp_ports.clone(),
        console_log: paths.console_log(),
        qga_socket: paths.qga_socket(),
        qmp_socket: paths.qmp_socket(),
    };
    let mut args = snapshot_vm::args(p, &host);
    args.extend(["-incoming".to_string(), format!("fd:{STATE_FD}")]);
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
    let src = s.dir.join(snap::DOCKER_DISK);
    qcow2::materialize(&src, disk).map_err(LauncherError::io(&src, "writing out the snapshot's docker disk"))
}

/// The read end of a pipe carrying the decompressed saved state, and the
/// thread filling it (it ends when QEMU closes its end).
pub fn feed_state(s: &Snapshot) -> Result<(OwnedFd, std::thread::JoinHandle<Result<u64, String>>), LauncherError> {
    let path = s.dir.join(snap::STATE);
    let file = fs::File::open(&path).map_err(LauncherError::io(&path, "opening the saved state"))?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LauncherError::Runtime(format!("pipe: {}", std::io::Error::last_os_error())));
    }
    // SAFETY: both fds are fresh and ours.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A bigger pipe: fewer wake-ups of QEMU and of this thread.
    // SAFETY: F_SETPIPE_SZ on our own pipe.
    unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    let h = std::thread::spawn(move || {
        let mut dec = zstd::stream::read::Decoder::new(file).map_err(|e| e.to_string())?;
        let mut out = fs::File::from(wr);
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = dec.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
            if k == 0 {
                return Ok(n);
            }
            out.write_all(&buf[..k]).map_err(|e| format!("feeding QEMU the saved state: {e}"))?;
            n += k as u64;
        }
    });
    Ok((rd, h))
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
    /// The guest agent answered.
    pub agent: Instant,
    pub guest_done: Instant,
    pub ready: Instant,
}

fn log(msg: impl AsRef<str>) {
    eprintln!("dinv-launcher: {}", msg.as_ref());
}

/// After QEMU started: waits for the state to load, resumes the guest,
/// runs `dinv-guest restore` with `req` (and the clock as it is then),
/// then waits for dockerd's answer. `gone` tells that QEMU exited.
pub fn resume(paths: &Paths, settings: &Settings, probe: &Probe, req: &RestoreRequest, gone: &dyn Fn() -> bool) -> Result<Steps, String> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let mut qmp = loop {
        match Qmp::connect(&paths.qmp_socket(), Duration::from_secs(5)) {
            Ok(q) => break q,
            Err(_) if gone() => return Err("QEMU exited before it loaded the snapshot".into()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    loop {
        let st = qmp.execute("query-status").map_err(|e| if gone() { "QEMU could not load the snapshot (see its message above)".to_string() } else { e })?;
        match st["status"].as_str() {
            Some("inmigrate") if gone() => return Err("QEMU exited before it loaded the snapshot".into()),
            Some("inmigrate") if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Some("paused") | Some("prelaunch") => break,
            other => return Err(format!("QEMU is {} after loading the snapshot", other.unwrap_or("in an unknown state"))),
        }
    }
    let loaded = Instant::now();
    qmp.execute("cont")?;
    let resumed = Instant::now();
    drop(qmp);

    let mut qga = Qga::connect(&paths.qga_socket(), AGENT_TIMEOUT)?;
    let agent = Instant::now();
    let mut req = req.clone();
    req.clock_ns = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_err(|e| e.to_string())?.as_nanos() as u64;
    let json = serde_json::to_vec(&req).expect("a request serialises");
    let out = qga.exec(dinv_contract::services::GUEST_HELPER, &["restore"], &json, Duration::from_millis(10))?;
    drop(qga);
    for line in out.stdout.lines().chain(out.stderr.lines()).filter(|l| !l.trim().is_empty()) {
        log(format!("guest: {}", line.trim()));
    }
    if out.code != 0 {
        return Err(format!("dinv-guest restore exited with {}", out.code));
    }
    let guest_done = Instant::now();
    ready::wait_ready(&settings.ping_addr, probe, settings.ready_timeout, gone).map_err(|e| match e {
        ready::NotReady::Timeout { after, last } => format!("dockerd did not answer /_ping within {:.0} s after the restore (last: {last})", after.as_secs_f64()),
        ready::NotReady::Stopped => "QEMU exited".into(),
    })?;
    Ok(Steps { loaded, resumed, agent, guest_done, ready: Instant::now() })
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
    fn the_state_comes_through_the_pipe_decompressed() {
        let d = tmp("feed");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(d.join(snap::STATE), zstd::encode_all(&data[..], 3).unwrap()).unwrap();
        let s = Snapshot { dir: d.clone(), manifest: crate::start::tests::manifest() };
        let (rd, h) = feed_state(&s).unwrap();
        let mut got = Vec::new();
        fs::File::from(rd).read_to_end(&mut got).unwrap();
        assert_eq!(h.join().unwrap().unwrap(), data.len() as u64);
        assert!(got == data);
        fs::remove_dir_all(&d).unwrap();
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
