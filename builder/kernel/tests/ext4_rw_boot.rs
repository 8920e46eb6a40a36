//! Boots the real Debian kernel on a root filesystem written by
//! `dinv_ext4::write_image` (not mke2fs): the guest's init writes a file,
//! and after power-off the image must be clean and hold it. This is the
//! proof that Linux mounts our ext4 read-write and agrees with its layout.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::boot::*;
use dinv_ext4::{write_image, Ext4Options};
use dinv_fstree::{Content, Meta, Node, NodeKind, Replace, Tree, TreePath};
use dinv_kernel::*;

const MARKER: &str = "DINV-EXT4-RW-DONE-41c9";
const PROOF_PATH: &str = "/var/dinv-rw-proof";
const PROOF: &str = "written by the guest kernel on a dinv-ext4 root\n";

/// x86-64 code with RIP-relative references to data placed after it.
struct Asm {
    code: Vec<u8>,
    data: Vec<Vec<u8>>,
    /// (offset of a rel32 in `code`, index into `data`).
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.code.extend_from_slice(b);
        self
    }

    /// `lea <reg>, [rip + data]`; `prefix` is the 3 opcode bytes for the register.
    fn lea(&mut self, prefix: [u8; 3], data: &[u8]) -> &mut Self {
        self.code.extend_from_slice(&prefix);
        self.fixups.push((self.code.len(), self.data.len()));
        self.data.push(data.to_vec());
        self.code.extend_from_slice(&[0; 4]);
        self
    }

    fn imm32(&mut self, opcode: &[u8], v: u32) -> &mut Self {
        self.code.extend_from_slice(opcode);
        self.code.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn finish(&self) -> Vec<u8> {
        let mut out = self.code.clone();
        let mut at = Vec::new();
        for d in &self.data {
            at.push(out.len());
            out.extend_from_slice(d);
        }
        for (pos, idx) in &self.fixups {
            let disp = (at[*idx] as i64 - (*pos as i64 + 4)) as i32;
            out[*pos..*pos + 4].copy_from_slice(&disp.to_le_bytes());
        }
        out
    }
}

const RDI: [u8; 3] = [0x48, 0x8d, 0x3d];
const RSI: [u8; 3] = [0x48, 0x8d, 0x35];
const MOV_EAX: [u8; 1] = [0xb8];
const MOV_EDI: [u8; 1] = [0xbf];
const MOV_ESI: [u8; 1] = [0xbe];
const MOV_EDX: [u8; 1] = [0xba];
const SYSCALL: [u8; 2] = [0x0f, 0x05];

/// A static init: creates `path` with `content`, syncs, remounts `/`
/// read-only (so the journal is clean, as a real shutdown leaves it),
/// prints `marker` and powers off.
fn rw_init(path: &str, content: &str, marker: &str) -> Vec<u8> {
    let mut a = Asm { code: Vec::new(), data: Vec::new(), fixups: Vec::new() };
    let cstr = |s: &str| [s.as_bytes(), &[0]].concat();
    a.lea(RDI, &cstr(path)).imm32(&MOV_ESI, 0o1101).imm32(&MOV_EDX, 0o644).imm32(&MOV_EAX, 2).bytes(&SYSCALL); // open(O_WRONLY|O_CREAT|O_TRUNC)
    a.bytes(&[0x89, 0xc7]); // mov edi, eax (the fd)
    a.lea(RSI, content.as_bytes()).imm32(&MOV_EDX, content.len() as u32).imm32(&MOV_EAX, 1).bytes(&SYSCALL); // write
    a.imm32(&MOV_EAX, 3).bytes(&SYSCALL); // close(edi)
    a.imm32(&MOV_EAX, 162).bytes(&SYSCALL); // sync
    a.lea(RDI, b"none\0").lea(RSI, b"/\0").bytes(&[0x31, 0xd2]); // source, target, fstype = NULL
    a.bytes(&[0x41, 0xba]).bytes(&(1u32 | 32).to_le_bytes()); // mov r10d, MS_RDONLY | MS_REMOUNT
    a.bytes(&[0x45, 0x31, 0xc0]).imm32(&MOV_EAX, 165).bytes(&SYSCALL); // xor r8d, r8d; mount
    let line = format!("{marker}\n");
    a.imm32(&MOV_EDI, 1).lea(RSI, line.as_bytes()).imm32(&MOV_EDX, line.len() as u32).imm32(&MOV_EAX, 1).bytes(&SYSCALL); // write(1)
    a.imm32(&MOV_EDI, 0xfee1_dead).imm32(&MOV_ESI, 0x2812_1969).imm32(&MOV_EDX, 0x4321_fedc).imm32(&MOV_EAX, 169).bytes(&SYSCALL); // reboot(POWER_OFF)
    a.bytes(&[0xeb, 0xfe]); // jmp . (if power-off failed)
    elf_exec(&a.finish())
}

/// The root tree: `/sbin/init`, mount points, an empty `/var`.
fn root_tree(init: Vec<u8>) -> Tree {
    let mut t = Tree::new();
    t.insert(TreePath::root(), Node::new(NodeKind::Dir, Meta::root(0o755)), Replace::Allow).unwrap();
    for d in ["sbin", "dev", "proc", "sys", "var"] {
        t.mkdir_p(&TreePath::new(d), Meta::root(0o755)).unwrap();
    }
    t.insert(TreePath::new("sbin/init"), Node::new(NodeKind::File(Content::from_bytes(init)), Meta::root(0o755)), Replace::Deny).unwrap();
    t.write_file(&TreePath::new("etc/hostname"), "dinv\n", Meta::root(0o644)).unwrap();
    t
}

fn tool(name: &str) -> Command {
    let p = ["/usr/sbin", "/sbin", "/usr/bin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file());
    Command::new(p.unwrap_or_else(|| panic!("{name} is needed: apt-get install -y e2fsprogs")))
}

#[test]
fn rw_init_is_a_static_executable() {
    let elf = rw_init("/x", "y", "z");
    assert!(is_static_elf(&elf));
    assert!(elf.ends_with(b"z\n"));
}

#[test]
fn the_kernel_writes_to_a_dinv_ext4_root_and_leaves_it_clean() {
    let dir = tempfile::tempdir().unwrap();
    let k = common::debian_kernel();
    let pkg = find_kernel(&k.tree).unwrap();
    let set = ModuleSet::load(&k.tree, &pkg.release).unwrap();
    let spec = InitramfsSpec {
        init_binary: Content::from_bytes(std::fs::read(dinv_init_binary()).unwrap()),
        modules: &set,
        load: BOOT_MODULES.iter().map(|s| s.to_string()).collect(),
        config: InitramfsConfig::default(),
        mtime: 0,
    };
    let initrd = dir.path().join("initrd.img");
    std::fs::write(&initrd, build_initramfs(&spec).unwrap().to_cpio().unwrap()).unwrap();
    let kernel = dir.path().join("vmlinuz");
    std::fs::write(&kernel, pkg.image.to_vec().unwrap()).unwrap();

    let rootfs = dir.path().join("root.ext4");
    let opts = Ext4Options { label: "dinv-boot".into(), ..Ext4Options::from_seed("ext4-rw-boot", 1_700_000_000) };
    let started = std::time::Instant::now();
    let report = write_image(&root_tree(rw_init(PROOF_PATH, PROOF, MARKER)), &rootfs, &opts).unwrap();
    eprintln!("dinv-ext4: {} bytes, {} blocks used, in {:?}", report.size, report.blocks_used, started.elapsed());
    let fsck = tool("e2fsck").arg("-fn").arg(&rootfs).output().unwrap();
    assert_eq!(fsck.status.code(), Some(0), "image unclean before boot: {}", String::from_utf8_lossy(&fsck.stdout));

    let cmd = qemu_command(&kernel, &initrd, &rootfs, "console=ttyS0 root=/dev/vda rw panic=-1");
    let timeout = Duration::from_secs(if accel(&kernel) == "kvm" { 60 } else { 180 });
    let r = boot(cmd, MARKER, timeout);
    let tail: String = r.console.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(r.to_marker.is_some(), "no marker on the console within {timeout:?} ({}); last lines:\n{tail}", accel(&kernel));
    assert!(r.status.is_some(), "QEMU did not exit after the marker; last lines:\n{tail}");
    assert!(r.console.contains("dinv-init: mounting /dev/vda (ext4, rw) on /newroot"), "{tail}");
    for bad in ["EXT4-fs error", "EXT4-fs warning", "JBD2: ", "Remounting filesystem read-only"] {
        assert!(!r.console.contains(bad), "kernel complained ({bad:?}):\n{tail}");
    }
    for l in r.console.lines().filter(|l| l.contains("EXT4-fs") || l.contains("dinv-init") || l.contains(MARKER)) {
        eprintln!("console: {l}");
    }

    let fsck = tool("e2fsck").arg("-fn").arg(&rootfs).output().unwrap();
    assert_eq!(
        fsck.status.code(),
        Some(0),
        "e2fsck -fn after the guest wrote to it:\n{}{}",
        String::from_utf8_lossy(&fsck.stdout),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let cat = tool("debugfs").arg("-R").arg(format!("cat {PROOF_PATH}")).arg(&rootfs).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&cat.stdout), PROOF, "debugfs: {}", String::from_utf8_lossy(&cat.stderr));
    let stat = tool("debugfs").arg("-R").arg(format!("stat {PROOF_PATH}")).arg(&rootfs).output().unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("Type: regular") && stat.contains("Mode:  0644"), "{stat}");
    eprintln!("accel {}: marker after {:?}, QEMU exited after {:?}", accel(&kernel), r.to_marker.unwrap(), r.total);
}
