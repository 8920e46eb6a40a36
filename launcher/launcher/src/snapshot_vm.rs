//! The QEMU command line of a snapshot VM: the one `save-snapshot` boots
//! and saves, and every restore of it. QEMU loads a saved state only into
//! the same devices in the same order, so both come from [`args`]: a
//! [`MachineProfile`] (what the snapshot fixes) and a [`HostSide`] (what may
//! differ between the save and a restore: files, sockets, port forwards,
//! the directories behind the 9p devices). [`signature`] hashes the command
//! line with a placeholder host side, so a launcher that would build
//! another one refuses the snapshot instead of failing in QEMU.
//!
//! Unlike a boot, the VM always has its 9p devices (`mount_slots` of them,
//! unmounted until a restore mounts the shares; QEMU refuses to migrate a
//! mounted 9p export), and on q35 a `vmgenid` device (a restore gives it a
//! new generation ID, and the guest kernel reseeds its generator on the
//! change; QEMU 7.2 gives microvm no ACPI entry for it).
//!
//! The guest's RAM is a file ([`Memory`]): the saving QEMU maps it shared,
//! so at the save the file is the RAM and the migration stream carries the
//! devices only (the `x-ignore-shared` capability, set over QMP on both
//! sides); a restoring QEMU maps it private from
//! a read-only file (`readonly=on,rom=off`, QEMU 8.2 or later), so loading
//! takes milliseconds and the image's layer is never copied up. A second
//! virtio-serial port ([`RESTORE_PORT`]) carries the restore request to the
//! guest, which waits on it from the save on.

use std::path::PathBuf;

use dinv_contract::settings::Machine;
use dinv_contract::snapshot::{MachineProfile, RESTORE_PORT};
use sha2::{Digest, Sha256};

/// One disk's backing file and drive options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFile {
    pub path: PathBuf,
    /// `raw` or `qcow2`.
    pub format: &'static str,
    /// More `-drive` options (`,snapshot=on`), each with its leading comma.
    pub options: String,
}

/// The guest RAM's file and how QEMU maps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    pub path: PathBuf,
    /// Saving: shared, so the file is the RAM. Restoring: a private
    /// (copy-on-write) mapping of the read-only file.
    pub saving: bool,
}

/// What may differ between the save and each restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSide {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub root: DiskFile,
    pub docker: DiskFile,
    /// The directory behind each 9p device, `mount_slots` of them.
    pub shares: Vec<PathBuf>,
    /// SLIRP's port forwards on the command line ([`crate::qemu::forwards`]). A restore
    /// has none there: it adds them once the guest runs, because a
    /// connection SLIRP accepts while the guest is still paused waits for
    /// SLIRP's SYN retransmission, 1.5 s later.
    pub forwards: Vec<String>,
    pub console_log: PathBuf,
    pub qga_socket: PathBuf,
    pub qmp_socket: PathBuf,
    pub memory: Memory,
    /// The restore request's channel (`RESTORE_PORT` in the guest).
    pub restore_socket: PathBuf,
}

impl HostSide {
    /// Fixed stand-ins for [`signature`].
    pub fn placeholder(profile: &MachineProfile) -> HostSide {
        let disk = |name: &str| DiskFile { path: name.into(), format: "placeholder", options: String::new() };
        HostSide {
            kernel: "kernel".into(),
            initrd: Some("initrd".into()),
            root: disk("root"),
            docker: disk("docker"),
            shares: (0..profile.mount_slots).map(|i| PathBuf::from(format!("share{i}"))).collect(),
            forwards: Vec::new(),
            console_log: "console".into(),
            qga_socket: "qga".into(),
            qmp_socket: "qmp".into(),
            memory: Memory { path: "memory".into(), saving: false },
            restore_socket: "restore".into(),
        }
    }
}

/// QEMU option values double their commas.
fn esc(s: &str) -> String {
    s.replace(',', ",,")
}

fn path(p: &std::path::Path) -> String {
    esc(&p.to_string_lossy())
}

/// Sets the migration capability that leaves the RAM to the memory file
/// (`x-ignore-shared`): the saving and the restoring QEMU both need it,
/// before `migrate` and `migrate-incoming`.
pub fn leave_ram_to_the_file(qmp: &mut super::qmp::Qmp) -> Result<(), String> {
    qmp.execute_with("migrate-set-capabilities", serde_json::json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]})).map(drop)
}

/// The URI QEMU saves the device state to and loads it from (`file:`;
/// QEMU reads `,offset=` in one as an option).
pub fn state_uri(path: &std::path::Path) -> Result<String, String> {
    let p = path.to_string_lossy();
    if p.contains(",offset=") {
        return Err(format!("{p}: QEMU cannot load a state from a path holding \",offset=\""));
    }
    Ok(format!("file:{p}"))
}

/// The QEMU arguments (without the program name) of a snapshot VM.
pub fn args(p: &MachineProfile, h: &HostSide) -> Vec<String> {
    let dev = |name: &str| match p.machine {
        Machine::Microvm | Machine::Virt => format!("{name}-device"),
        Machine::Q35 => format!("{name}-pci"),
    };
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|x| x.to_string()));
    push(&["-M", &format!("{},memory-backend=dinv-ram", super::qemu::machine_option(p.machine)), "-accel", &p.accel, "-cpu", &p.cpu]);
    push(&["-smp", &p.cpus.to_string(), "-m", &format!("{}M", p.memory_mib)]);
    let mapping = if h.memory.saving { "share=on" } else { "share=off,readonly=on,rom=off" };
    push(&["-object", &format!("memory-backend-file,id=dinv-ram,size={}M,mem-path={},{mapping}", p.memory_mib, path(&h.memory.path))]);
    push(&["-nodefaults", "-no-user-config", "-no-reboot", "-nographic"]);
    push(&["-kernel", &h.kernel.to_string_lossy()]);
    if let Some(initrd) = &h.initrd {
        push(&["-initrd", &initrd.to_string_lossy()]);
    }
    push(&["-append", &p.append]);
    push(&["-chardev", &format!("stdio,id=console,signal=off,logfile={}", path(&h.console_log))]);
    push(&["-serial", "chardev:console"]);
    for (id, disk) in [("root", &h.root), ("docker", &h.docker)] {
        push(&["-drive", &format!("file={},format={},if=none,id={id}{}", path(&disk.path), disk.format, disk.options)]);
        push(&["-device", &format!("{},drive={id},serial={}", dev("virtio-blk"), dinv_contract::disks::serial_for(id))]);
    }
    push(&["-netdev", &crate::qemu::user_netdev(&h.forwards), "-device", &format!("{},netdev=net0", dev("virtio-net"))]);
    for (i, share) in h.shares.iter().enumerate() {
        push(&["-fsdev", &format!("local,security_model=none,id=fs{i},path={}", path(share))]);
        push(&["-device", &format!("{},fsdev=fs{i},mount_tag={}", dev("virtio-9p"), crate::qemu::mount_tag(i))]);
    }
    push(&["-device", &format!("{},id=vser0", dev("virtio-serial"))]);
    push(&["-chardev", &format!("socket,id=qga0,path={},server=on,wait=off", path(&h.qga_socket))]);
    push(&["-device", "virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"]);
    push(&["-chardev", &format!("socket,id=restore0,path={},server=on,wait=off", path(&h.restore_socket))]);
    push(&["-device", &format!("virtserialport,bus=vser0.0,chardev=restore0,name={RESTORE_PORT}")]);
    push(&["-device", &dev("virtio-balloon")]);
    if p.vmgenid {
        push(&["-device", "vmgenid,guid=auto"]);
    }
    push(&["-qmp", &format!("unix:{},server=on,wait=off", path(&h.qmp_socket))]);
    for (key, value) in &p.fw_cfg {
        push(&["-fw_cfg", &format!("name={}/{key},string={}", dinv_contract::fw_cfg::PREFIX, esc(value))]);
    }
    a
}

/// SHA-256 (hex) of the command line for `profile` with the placeholder
/// host side: equal for the save and a restore exactly when both build
/// the same machine.
pub fn signature(profile: &MachineProfile) -> String {
    let mut h = Sha256::new();
    for a in args(profile, &HostSide::placeholder(profile)) {
        h.update((a.len() as u64).to_le_bytes());
        h.update(a.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dinv_contract::settings::PortForward;

    pub fn profile() -> MachineProfile {
        MachineProfile {
            accel: "tcg".into(),
            cpu: "max".into(),
            machine: Machine::Microvm,
            cpus: 1,
            memory_mib: 512,
            docker_size: 64 << 30,
            mount_slots: 2,
            append: "console=ttyS0 root=SERIAL=dinv-root rw quiet tsc_early_khz=2999998".into(),
            tsc_khz: Some(2_999_998),
            vmgenid: true,
            fw_cfg: [("shutdown_timeout", "5"), ("sock_gid", "0"), ("sock_uid", "0")].into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn host() -> HostSide {
        HostSide {
            kernel: "/usr/share/dinv/vmlinux".into(),
            initrd: Some("/usr/share/dinv/initramfs".into()),
            root: DiskFile { path: "/usr/share/dinv/snapshot/root.qcow2".into(), format: "qcow2", options: ",snapshot=on".into() },
            docker: DiskFile { path: "/docker/docker.img".into(), format: "raw", options: ",discard=unmap".into() },
            shares: vec!["/src".into(), "/run/dinv/empty".into()],
            forwards: crate::qemu::forwards(PortForward { host: 2375, guest: 2375 }, &[PortForward { host: 8080, guest: 80 }], &[PortForward { host: 53, guest: 5353 }]),
            console_log: "/run/dinv/console.log".into(),
            qga_socket: "/run/dinv/qga.sock".into(),
            qmp_socket: "/run/dinv/qmp.sock".into(),
            memory: Memory { path: "/usr/share/dinv/snapshot/memory".into(), saving: false },
            restore_socket: "/run/dinv/restore.sock".into(),
        }
    }

    #[test]
    fn the_state_is_loaded_from_a_file_uri() {
        use std::path::Path;
        assert_eq!(state_uri(Path::new("/usr/share/dinv/snapshot/state")).unwrap(), "file:/usr/share/dinv/snapshot/state");
        assert_eq!(state_uri(Path::new("/a,b/state")).unwrap(), "file:/a,b/state");
        assert!(state_uri(Path::new("/a,offset=1/state")).unwrap_err().contains("offset"));
    }

    #[test]
    fn a_restore_command_line() {
        let got = args(&profile(), &host()).join(" ");
        let want = "-M microvm,pic=off,memory-backend=dinv-ram -accel tcg -cpu max -smp 1 -m 512M \
            -object memory-backend-file,id=dinv-ram,size=512M,mem-path=/usr/share/dinv/snapshot/memory,share=off,readonly=on,rom=off \
            -nodefaults -no-user-config -no-reboot -nographic \
            -kernel /usr/share/dinv/vmlinux -initrd /usr/share/dinv/initramfs \
            -append console=ttyS0 root=SERIAL=dinv-root rw quiet tsc_early_khz=2999998 \
            -chardev stdio,id=console,signal=off,logfile=/run/dinv/console.log -serial chardev:console \
            -drive file=/usr/share/dinv/snapshot/root.qcow2,format=qcow2,if=none,id=root,snapshot=on -device virtio-blk-device,drive=root,serial=dinv-root \
            -drive file=/docker/docker.img,format=raw,if=none,id=docker,discard=unmap -device virtio-blk-device,drive=docker,serial=dinv-docker \
            -netdev user,id=net0,hostfwd=tcp::2375-:2375,hostfwd=tcp::8080-:80,hostfwd=udp::53-:5353 -device virtio-net-device,netdev=net0 \
            -fsdev local,security_model=none,id=fs0,path=/src -device virtio-9p-device,fsdev=fs0,mount_tag=dinv0 \
            -fsdev local,security_model=none,id=fs1,path=/run/dinv/empty -device virtio-9p-device,fsdev=fs1,mount_tag=dinv1 \
            -device virtio-serial-device,id=vser0 -chardev socket,id=qga0,path=/run/dinv/qga.sock,server=on,wait=off \
            -device virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0 \
            -chardev socket,id=restore0,path=/run/dinv/restore.sock,server=on,wait=off -device virtserialport,bus=vser0.0,chardev=restore0,name=org.dinv.restore.0 \
            -device virtio-balloon-device \
            -device vmgenid,guid=auto -qmp unix:/run/dinv/qmp.sock,server=on,wait=off \
            -fw_cfg name=opt/dinv/shutdown_timeout,string=5 -fw_cfg name=opt/dinv/sock_gid,string=0 -fw_cfg name=opt/dinv/sock_uid,string=0";
        assert_eq!(got, want);
    }

    #[test]
    fn the_signature_ignores_the_host_side_only() {
        let p = profile();
        let s = signature(&p);
        assert_eq!(s.len(), 64);
        let mut other = host();
        other.forwards.clear();
        other.shares[0] = "/elsewhere".into();
        other.restore_socket = "/elsewhere/restore.sock".into();
        other.memory.saving = true;
        assert_ne!(args(&p, &host()), args(&p, &other));
        assert_eq!(signature(&p), s, "host paths and ports do not count");
        for change in [
            |p: &mut MachineProfile| p.memory_mib = 1024,
            |p: &mut MachineProfile| p.mount_slots = 3,
            |p: &mut MachineProfile| p.machine = Machine::Q35,
            |p: &mut MachineProfile| p.vmgenid = false,
            |p: &mut MachineProfile| p.append.push_str(" x"),
            |p: &mut MachineProfile| {
                p.fw_cfg.insert("sock_uid".into(), "1".into());
            },
        ] {
            let mut q = p.clone();
            change(&mut q);
            assert_ne!(signature(&q), s, "{q:?}");
        }
    }
}
