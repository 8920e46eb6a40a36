//! `dinv-launcher save-snapshot --out DIR`: boots the image's guest once
//! under TCG with the snapshot VM's command line, waits for dockerd,
//! quiesces the guest, and saves it into DIR (see
//! `dinv_contract::snapshot` for the files). `dinv-build snapshot` runs
//! the image's own launcher this way, with the image's own QEMU, because a
//! saved state only loads into the QEMU build and the command line that
//! made it.
//!
//! Nothing secret goes in: the guest boots without TLS, 9p shares or an
//! extra volume, and without the container's port forwards.

use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dinv_contract::qcow2;
use dinv_contract::settings::{Machine, PortForward, DOCKER_PORT};
use dinv_contract::snapshot::{self as snap, BaseFiles, MachineProfile, Manifest};
use serde_json::json;

use super::config::Paths;
use super::qemu;
use super::qga::Qga;
use super::qmp::Qmp;
use super::ready::{self, Probe};
use super::settings::Settings;
use super::snapshot_vm::{self, DiskFile, HostSide, Memory};
use super::LauncherError;

/// What `save-snapshot` is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveOptions {
    pub out: PathBuf,
    /// Guest memory; None: the image's `DINV_MEMORY`.
    pub memory_mib: Option<u64>,
    /// 9p devices a restore can mount.
    pub mount_slots: u32,
    /// `dinv-guest quiesce` steps (empty: all).
    pub quiesce: Vec<String>,
}

/// Parses `save-snapshot`'s arguments.
pub fn parse_args(args: &[String]) -> Result<SaveOptions, String> {
    let mut o = SaveOptions { out: PathBuf::new(), memory_mib: None, mount_slots: 4, quiesce: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--out" => o.out = value()?.into(),
            "--memory" => {
                let v = value()?;
                let bytes = dinv_contract::settings::setting(dinv_contract::settings::MEMORY).parse(&v).map_err(|e| format!("--memory: {}", e.why))?;
                o.memory_mib = bytes.bytes().map(|b| b >> 20);
            }
            "--mounts" => {
                let v = value()?;
                o.mount_slots = v.parse().ok().filter(|n| *n <= 16).ok_or_else(|| format!("--mounts {v:?}: expected 0 to 16"))?;
            }
            "--quiesce" => o.quiesce = value()?.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
            other => return Err(format!("unknown option {other:?} (save-snapshot --out DIR [--memory SIZE] [--mounts N] [--quiesce STEP,...])")),
        }
    }
    if o.out.as_os_str().is_empty() {
        return Err("save-snapshot needs --out DIR".into());
    }
    Ok(o)
}

/// `target` relative to the directory `base` (both absolute): what a qcow2
/// backing file name must be to resolve from `base`.
pub fn relative(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// The snapshot VM `settings` describe: the image's machine, vCPUs and
/// docker disk, `memory_mib` if given, TCG with a fixed CPU model.
pub fn profile(settings: &Settings, append: &str, memory_mib: Option<u64>, mount_slots: u32, tsc_khz: Option<u64>) -> MachineProfile {
    let mut append = append.to_string();
    let mut tsc = None;
    if settings.machine == Machine::Microvm {
        // As a TCG boot does (see qemu.rs): microvm has no PIT to calibrate against.
        if let Some(khz) = append.split_whitespace().find_map(|w| w.strip_prefix("tsc_early_khz=")).and_then(|k| k.parse().ok()) {
            tsc = Some(khz);
        } else if let Some(khz) = tsc_khz {
            append.push_str(&format!(" tsc_early_khz={khz}"));
            tsc = Some(khz);
        }
    }
    let guest = Settings { mounts: Vec::new(), volume: None, tls_certdir: None, ..settings.clone() };
    MachineProfile {
        accel: "tcg".into(),
        cpu: "max".into(),
        machine: settings.machine,
        cpus: settings.cpus,
        memory_mib: memory_mib.unwrap_or(settings.memory_mib),
        // The launcher makes disks in whole MiB.
        docker_size: settings.docker_size.div_ceil(1 << 20) << 20,
        mount_slots,
        append,
        tsc_khz: tsc,
        vmgenid: settings.machine == Machine::Q35,
        fw_cfg: qemu::fw_cfg_strings(&guest).into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

/// The sizes of the files a snapshot belongs to.
pub fn base_files(paths: &Paths) -> Result<BaseFiles, LauncherError> {
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).map_err(LauncherError::io(p, "reading the guest's files"));
    Ok(BaseFiles { kernel: size(&paths.kernel)?, initrd: paths.initrd.as_deref().map(size).transpose()?, rootfs: size(&paths.rootfs)? })
}

fn runtime(what: impl std::fmt::Display) -> LauncherError {
    LauncherError::Runtime(what.to_string())
}

fn log(msg: impl AsRef<str>) {
    eprintln!("dinv-launcher: save-snapshot: {}", msg.as_ref());
}

/// A free TCP port on 127.0.0.1 for dockerd's forward while saving.
fn free_port() -> Result<u16, LauncherError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| runtime(format!("finding a free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| runtime(e.to_string()))?.port())
}

/// Kills QEMU when dropped before it was waited for.
struct Vm(Option<Child>);

impl Drop for Vm {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Boots, quiesces and saves; returns the report printed on stdout.
pub fn save(o: &SaveOptions, settings: &Settings, paths: &Paths) -> Result<serde_json::Value, LauncherError> {
    if settings.volume.is_some() {
        return Err(LauncherError::Setting { var: "DINV_VOLUME_PATH", value: settings.volume.as_ref().map(|v| v.path.clone()).unwrap_or_default(), why: "a snapshot has no volume disk".into() });
    }
    let started = Instant::now();
    fs::create_dir_all(&o.out).map_err(LauncherError::io(&o.out, "creating the snapshot directory"))?;
    fs::create_dir_all(&paths.run_dir).map_err(LauncherError::io(&paths.run_dir, "creating the run directory"))?;
    let out = o.out.canonicalize().map_err(LauncherError::io(&o.out, "resolving"))?;
    let rootfs = paths.rootfs.canonicalize().map_err(LauncherError::io(&paths.rootfs, "resolving"))?;
    let tsc = fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| qemu::tsc_khz(&t));
    let profile = profile(settings, &paths.append, o.memory_mib, o.mount_slots, tsc);

    let (root, docker) = (out.join(snap::ROOT_OVERLAY), out.join(snap::DOCKER_DISK));
    let rootfs_size = fs::metadata(&rootfs).map_err(LauncherError::io(&rootfs, "reading"))?.len();
    let backing = relative(&rootfs, &out);
    qcow2::create(&root, rootfs_size, Some((&backing.to_string_lossy(), "raw"))).map_err(LauncherError::io(&root, "creating the root overlay"))?;
    qcow2::create(&docker, profile.docker_size, None).map_err(LauncherError::io(&docker, "creating the docker disk"))?;
    // The RAM, written by QEMU itself through its shared mapping.
    let memory = out.join(snap::MEMORY);
    let _ = fs::remove_file(&memory);
    fs::File::create(&memory).and_then(|f| f.set_len(profile.memory_mib << 20)).map_err(LauncherError::io(&memory, "creating the guest's memory file"))?;
    let empty = paths.run_dir.join("empty-share");
    fs::create_dir_all(&empty).map_err(LauncherError::io(&empty, "creating"))?;
    let port = free_port()?;
    let host = HostSide {
        kernel: paths.kernel.clone(),
        initrd: paths.initrd.clone(),
        root: DiskFile { path: root.clone(), format: "qcow2", options: String::new() },
        // Zero writes (mkfs's journal) become zero clusters: a small disk.
        docker: DiskFile { path: docker.clone(), format: "qcow2", options: ",discard=unmap,detect-zeroes=unmap".into() },
        shares: vec![empty; profile.mount_slots as usize],
        forwards: super::qemu::forwards(PortForward { host: port, guest: DOCKER_PORT }, &[], &[]),
        console_log: paths.console_log(),
        qga_socket: paths.qga_socket(),
        qmp_socket: paths.qmp_socket(),
        memory: Memory { path: memory.clone(), saving: true },
        restore_socket: paths.restore_socket(),
    };
    check_qemu(&paths.qemu)?;
    let args = snapshot_vm::args(&profile, &host);
    log(format!("booting the guest under TCG ({} MiB, {} vCPU)", profile.memory_mib, profile.cpus));
    let stderr = std::io::stderr().as_raw_fd();
    // SAFETY: dup of our own stderr; the new fd is owned by the Stdio.
    let console = unsafe { Stdio::from(OwnedFd::from_raw_fd(libc::dup(stderr))) };
    let child = Command::new(&paths.qemu).args(&args).env("TMPDIR", &paths.run_dir).stdin(Stdio::null()).stdout(console).spawn().map_err(LauncherError::io(&paths.qemu, "starting QEMU"))?;
    let vm = std::cell::RefCell::new(Vm(Some(child)));

    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let gone = || vm_exited(&mut vm.borrow_mut());
    ready::wait_ready(&addr, &Probe::Plain, settings.ready_timeout, &gone).map_err(|e| runtime(format!("the guest did not get ready: {e:?}")))?;
    let boot_s = started.elapsed().as_secs_f64();
    log(format!("dockerd answered after {boot_s:.1} s; quiescing"));

    let t = Instant::now();
    let mut qga = Qga::connect(&paths.qga_socket(), Duration::from_secs(300)).map_err(runtime)?;
    let mut args: Vec<&str> = vec!["quiesce"];
    args.extend(o.quiesce.iter().map(String::as_str));
    let q = qga.exec(dinv_contract::services::GUEST_HELPER, &args, b"", Duration::from_millis(50)).map_err(runtime)?;
    drop(qga);
    for line in q.stdout.lines().chain(q.stderr.lines()) {
        log(format!("guest: {line}"));
    }
    if q.code != 0 {
        return Err(runtime(format!("dinv-guest quiesce exited with {}", q.code)));
    }
    let quiesce_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let state = out.join(snap::STATE);
    let state_bytes = migrate_to(&paths.qmp_socket(), &state)?;
    let save_s = t.elapsed().as_secs_f64();
    let mut child = vm.borrow_mut().0.take().expect("QEMU is running");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().map_err(|e| runtime(e.to_string()))?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let memory_data_bytes = data_bytes(&memory).map_err(LauncherError::io(&memory, "reading the saved memory"))?;
    let manifest = Manifest { format: snap::FORMAT, command_line: snapshot_vm::signature(&profile), profile, base: base_files(paths)?, base_image: None, state_bytes, memory_data_bytes };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    json.push(b'\n');
    let mpath = out.join(snap::MANIFEST);
    fs::write(&mpath, json).map_err(LauncherError::io(&mpath, "writing"))?;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let data = |p: &Path| qcow2::allocated(p).map(|(_, e)| e.iter().map(|x| x.len).sum::<u64>()).unwrap_or(0);
    log(format!("saved in {save_s:.1} s: memory {} MiB, of which {} MiB not zero; device state {} KiB", manifest.profile.memory_mib, memory_data_bytes >> 20, state_bytes >> 10));
    Ok(json!({
        "boot_s": round(boot_s), "quiesce_s": round(quiesce_s), "save_s": round(save_s),
        "memory_bytes": size(&memory), "memory_data_bytes": memory_data_bytes, "state_bytes": state_bytes,
        "root_overlay_bytes": size(&root), "root_overlay_data_bytes": data(&root),
        "docker_disk_bytes": size(&docker), "docker_disk_data_bytes": data(&docker),
        "quiesce": q.stdout,
    }))
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

fn vm_exited(vm: &mut Vm) -> bool {
    vm.0.as_mut().is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))))
}

/// QEMU 8.2 or later: a restore maps the memory file with `rom=off`
/// (private and writable from a read-only file), which older QEMU lacks;
/// it would fail only when a container restores, so the save refuses.
fn check_qemu(qemu: &Path) -> Result<(), LauncherError> {
    let out = Command::new(qemu).args(["-object", "memory-backend-file,help"]).stdin(Stdio::null()).output().map_err(LauncherError::io(qemu, "starting QEMU"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.lines().any(|l| l.trim_start().starts_with("rom=")) {
        return Err(runtime(format!("{} cannot restore a snapshot: its memory-backend-file has no rom option (QEMU 8.2 or later has it)", qemu.display())));
    }
    Ok(())
}

/// Bytes of `path` outside all-zero 4 KiB pages.
fn data_bytes(path: &Path) -> std::io::Result<u64> {
    let mut f = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        n += buf[..k].chunks(4096).filter(|p| p.iter().any(|b| *b != 0)).map(|p| p.len() as u64).sum::<u64>();
    }
}

/// Stops the VM and saves its device state into `dest` (the RAM is the
/// memory file already: `x-ignore-shared`); returns the bytes written.
fn migrate_to(qmp_socket: &Path, dest: &Path) -> Result<u64, LauncherError> {
    let mut qmp = Qmp::connect(qmp_socket, Duration::from_secs(10)).map_err(runtime)?;
    let uri = snapshot_vm::state_uri(dest).map_err(runtime)?;
    // QEMU caps migration at 128 MiB/s by default: a local file takes more.
    qmp.execute_with("migrate-set-parameters", json!({"max-bandwidth": 8u64 << 30})).map_err(runtime)?;
    snapshot_vm::leave_ram_to_the_file(&mut qmp).map_err(runtime)?;
    qmp.execute("stop").map_err(runtime)?;
    qmp.execute_with("migrate", json!({"uri": uri})).map_err(runtime)?;
    loop {
        let st = qmp.execute("query-migrate").map_err(runtime)?;
        match st["status"].as_str() {
            Some("completed") => break,
            Some("failed") | Some("cancelled") => return Err(runtime(format!("QEMU could not save the VM: {}", st.get("error-desc").unwrap_or(&st)))),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let _ = qmp.execute("quit");
    fs::metadata(dest).map(|m| m.len()).map_err(LauncherError::io(dest, "reading the saved state"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_names_are_relative() {
        assert_eq!(relative(Path::new("/usr/share/dinv/rootfs.ext4"), Path::new("/usr/share/dinv/snapshot")), PathBuf::from("../rootfs.ext4"));
        assert_eq!(relative(Path::new("/a/b/c"), Path::new("/a/b")), PathBuf::from("c"));
        assert_eq!(relative(Path::new("/x/y"), Path::new("/a/b")), PathBuf::from("../../x/y"));
    }

    #[test]
    fn options() {
        let s = |v: &[&str]| parse_args(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let o = s(&["--out", "/o", "--memory", "1G", "--mounts", "2", "--quiesce", "sync, fstrim"]).unwrap();
        assert_eq!(o, SaveOptions { out: "/o".into(), memory_mib: Some(1024), mount_slots: 2, quiesce: vec!["sync".into(), "fstrim".into()] });
        assert_eq!(s(&["--out", "/o"]).unwrap().mount_slots, 4);
        assert!(s(&[]).unwrap_err().contains("--out"));
        assert!(s(&["--out", "/o", "--memory", "64M"]).unwrap_err().starts_with("--memory"));
        assert!(s(&["--out", "/o", "--mounts", "99"]).is_err());
    }

    #[test]
    fn the_profile_fixes_what_a_restore_cannot_change() {
        let settings = Settings::from_lookup(&|k| match k {
            "DINV_MOUNTS" => Some("/a".into()),
            "DOCKER_TLS_CERTDIR" => Some("/certs".into()),
            "DINV_DOCKER_SIZE" => Some("1000000000".into()),
            _ => None,
        })
        .unwrap();
        let p = profile(&settings, "console=ttyS0 quiet", Some(1024), 3, Some(2_999_998));
        assert_eq!((p.memory_mib, p.cpus, p.mount_slots, p.docker_size), (1024, 1, 3, 954 << 20));
        assert_eq!((p.append.as_str(), p.tsc_khz), ("console=ttyS0 quiet tsc_early_khz=2999998", Some(2_999_998)));
        assert_eq!(p.fw_cfg.keys().collect::<Vec<_>>(), ["shutdown_timeout", "sock_gid", "sock_uid"], "no mounts, no TLS files");
        // A recipe's own tsc_early_khz is kept.
        let p = profile(&settings, "quiet tsc_early_khz=1000", None, 3, Some(2_999_998));
        assert_eq!((p.append.as_str(), p.tsc_khz, p.memory_mib), ("quiet tsc_early_khz=1000", Some(1000), 512));
    }
}
