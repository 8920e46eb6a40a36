//! Just enough qcow2 for snapshots, so neither the builder nor the image
//! needs `qemu-img`: [`create`] writes an empty qcow2 v3 image (optionally
//! an overlay of a backing file), the way `qemu-img create -f qcow2` lays
//! it out; [`allocated`] lists where a qcow2 image written by QEMU holds
//! data; [`materialize`] copies that data into a sparse raw file of the
//! image's virtual size.
//!
//! Layout of [`create`] with 64 KiB clusters: cluster 0 the header (104
//! bytes, version 3), the backing format extension and the backing file
//! name; cluster 1 the refcount table; cluster 2 its one refcount block
//! (16-bit refcounts); clusters 3.. the L1 table, all zero. Every cluster
//! used has refcount 1. QEMU grows the file as the guest writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u32 = 0x5146_49fb;
const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
const HEADER_LEN: u32 = 104;
const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Bits 9-55 of an L1 or L2 entry: the host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;
/// Incompatible feature bit 0: the image was not closed cleanly. Its
/// refcounts may be stale, but L1 and L2, which is all we read, are not.
const INCOMPAT_DIRTY: u64 = 1;

/// The error of a qcow2 image we cannot read.
fn bad(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a qcow2 image we can read: {why}", path.display()))
}

/// Writes an empty qcow2 image of `size` bytes at `path` (replacing it);
/// with `backing`, an overlay of that file (`(name, format)`, the name as
/// QEMU resolves it: relative names are relative to `path`'s directory).
pub fn create(path: &Path, size: u64, backing: Option<(&str, &str)>) -> io::Result<()> {
    let l2_span = CLUSTER * (CLUSTER / 8);
    let l1_size = size.div_ceil(l2_span);
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let clusters = 3 + l1_clusters;
    if clusters > CLUSTER / 2 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{size} bytes is too large for one refcount block")));
    }
    let mut header = Vec::with_capacity(CLUSTER as usize);
    let mut ext = Vec::new();
    if let Some((_, format)) = backing {
        ext.extend_from_slice(&EXT_BACKING_FORMAT.to_be_bytes());
        ext.extend_from_slice(&(format.len() as u32).to_be_bytes());
        ext.extend_from_slice(format.as_bytes());
        ext.resize(ext.len().next_multiple_of(8), 0);
    }
    ext.extend_from_slice(&[0; 8]); // end of the extensions
    let name = backing.map(|(n, _)| n.as_bytes()).unwrap_or_default();
    let name_offset = if name.is_empty() { 0 } else { HEADER_LEN as u64 + ext.len() as u64 };
    if name_offset + name.len() as u64 > CLUSTER {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "backing file name too long"));
    }
    let put32 = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_be_bytes());
    put32(&mut header, MAGIC);
    put32(&mut header, 3);
    header.extend_from_slice(&name_offset.to_be_bytes());
    put32(&mut header, name.len() as u32);
    put32(&mut header, CLUSTER_BITS);
    header.extend_from_slice(&size.to_be_bytes());
    put32(&mut header, 0); // no encryption
    put32(&mut header, l1_size as u32);
    header.extend_from_slice(&(3 * CLUSTER).to_be_bytes()); // L1 table
    header.extend_from_slice(&CLUSTER.to_be_bytes()); // refcount table
    put32(&mut header, 1); // refcount table clusters
    put32(&mut header, 0); // snapshots
    header.extend_from_slice(&0u64.to_be_bytes()); // snapshots offset
    header.extend_from_slice(&0u64.to_be_bytes()); // incompatible features
    header.extend_from_slice(&0u64.to_be_bytes()); // compatible features
    header.extend_from_slice(&0u64.to_be_bytes()); // autoclear features
    put32(&mut header, 4); // refcount order: 16-bit refcounts
    put32(&mut header, HEADER_LEN);
    debug_assert_eq!(header.len(), HEADER_LEN as usize);
    header.extend_from_slice(&ext);
    header.extend_from_slice(name);

    let mut refcounts = vec![0u8; (clusters * 2) as usize];
    for c in 0..clusters as usize {
        refcounts[2 * c..2 * c + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    let f = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    f.set_len(clusters * CLUSTER)?;
    f.write_all_at(&header, 0)?;
    f.write_all_at(&(2 * CLUSTER).to_be_bytes(), CLUSTER)?;
    f.write_all_at(&refcounts, 2 * CLUSTER)?;
    f.sync_all()
}

/// The parts of a qcow2 header [`allocated`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub size: u64,
    pub cluster_size: u64,
    pub l1_size: u64,
    pub l1_offset: u64,
    /// The backing file name, if any.
    pub backing: Option<String>,
}

/// Reads and checks the header: version 2 or 3, no encryption, no
/// external data file, no extended L2 entries, no internal snapshots.
pub fn header(path: &Path, f: &File) -> io::Result<Header> {
    let mut h = [0u8; 104];
    // Version 2 headers are 72 bytes; the file always goes on past 104.
    f.read_exact_at(&mut h, 0).map_err(|e| bad(path, e))?;
    let u32_at = |o: usize| u32::from_be_bytes(h[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_be_bytes(h[o..o + 8].try_into().expect("8 bytes"));
    if u32_at(0) != MAGIC {
        return Err(bad(path, "no qcow2 magic"));
    }
    let version = u32_at(4);
    if !(2..=3).contains(&version) {
        return Err(bad(path, format!("version {version}")));
    }
    let cluster_bits = u32_at(20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(bad(path, format!("cluster bits {cluster_bits}")));
    }
    if u32_at(32) != 0 {
        return Err(bad(path, "encrypted"));
    }
    if u32_at(60) != 0 {
        return Err(bad(path, "it has internal snapshots"));
    }
    if version == 3 {
        let incompatible = u64_at(72);
        if incompatible & !INCOMPAT_DIRTY != 0 {
            return Err(bad(path, format!("incompatible features {incompatible:#x}")));
        }
    }
    let (name_offset, name_len) = (u64_at(8), u32_at(16) as usize);
    let backing = if name_offset == 0 || name_len == 0 {
        None
    } else {
        let mut name = vec![0u8; name_len.min(1023)];
        f.read_exact_at(&mut name, name_offset).map_err(|e| bad(path, e))?;
        Some(String::from_utf8(name).map_err(|_| bad(path, "backing file name is not UTF-8"))?)
    };
    Ok(Header { size: u64_at(24), cluster_size: 1 << cluster_bits, l1_size: u32_at(36) as u64, l1_offset: u64_at(40), backing })
}

/// A run of guest bytes the image holds: `len` bytes at guest offset
/// `guest`, stored at `host` in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub guest: u64,
    pub host: u64,
    pub len: u64,
}

/// Where the image holds data, in guest order, adjacent clusters merged.
/// Zero clusters and unallocated ones (which read as the backing file's,
/// or as zeros without one) are not listed. Compressed clusters are
/// refused: QEMU writes none for a guest.
pub fn allocated(path: &Path) -> io::Result<(Header, Vec<Extent>)> {
    let f = File::open(path)?;
    let h = header(path, &f)?;
    let file_len = f.metadata()?.len();
    let cs = h.cluster_size;
    let l2_entries = cs / 8;
    if h.l1_size > (h.size.div_ceil(cs * l2_entries)).max(1) * 2 + 1 {
        return Err(bad(path, format!("L1 size {} for {} bytes", h.l1_size, h.size)));
    }
    let mut l1 = vec![0u8; (h.l1_size * 8) as usize];
    f.read_exact_at(&mut l1, h.l1_offset).map_err(|e| bad(path, e))?;
    let mut out: Vec<Extent> = Vec::new();
    let mut l2 = vec![0u8; cs as usize];
    for (i, e) in l1.chunks_exact(8).enumerate() {
        let l2_offset = u64::from_be_bytes(e.try_into().expect("8 bytes")) & OFFSET_MASK;
        if l2_offset == 0 {
            continue;
        }
        f.read_exact_at(&mut l2, l2_offset).map_err(|e| bad(path, e))?;
        for (j, e) in l2.chunks_exact(8).enumerate() {
            let entry = u64::from_be_bytes(e.try_into().expect("8 bytes"));
            if entry & L2_COMPRESSED != 0 {
                return Err(bad(path, "compressed clusters"));
            }
            let host = entry & OFFSET_MASK;
            if host == 0 || entry & L2_ZERO != 0 {
                continue;
            }
            let guest = (i as u64 * l2_entries + j as u64) * cs;
            if guest >= h.size {
                break;
            }
            if host + cs > file_len.next_multiple_of(cs) {
                return Err(bad(path, format!("cluster at {host:#x} is past the end of the file")));
            }
            let len = cs.min(h.size - guest);
            match out.last_mut() {
                Some(last) if last.guest + last.len == guest && last.host + last.len == host => last.len += len,
                _ => out.push(Extent { guest, host, len }),
            }
        }
    }
    Ok((h, out))
}

/// Writes the guest view of the standalone qcow2 image `qcow2` into a new
/// raw file `raw` of the image's virtual size: its data where it has some,
/// holes everywhere else. Fails if `raw` exists, or if the image has a
/// backing file (its unallocated clusters would not be zeros). Returns the
/// bytes of data written.
pub fn materialize(qcow2: &Path, raw: &Path) -> io::Result<u64> {
    let (h, extents) = allocated(qcow2)?;
    if let Some(b) = &h.backing {
        return Err(bad(qcow2, format!("it has a backing file ({b}); only a standalone image can be made raw")));
    }
    let mut src = File::open(qcow2)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(raw)?;
    let result = (|| {
        dst.set_len(h.size)?;
        let mut written = 0;
        let mut buf = vec![0u8; 1 << 20];
        for e in &extents {
            src.seek(SeekFrom::Start(e.host))?;
            dst.seek(SeekFrom::Start(e.guest))?;
            let mut left = e.len;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                src.read_exact(&mut buf[..n])?;
                // Zero blocks inside data clusters stay holes too.
                if buf[..n].iter().all(|&b| b == 0) {
                    dst.seek(SeekFrom::Current(n as i64))?;
                } else {
                    dst.write_all(&buf[..n])?;
                    written += n as u64;
                }
                left -= n as u64;
            }
        }
        dst.flush()?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(raw);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dinv-qcow2-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Writes one data cluster the way QEMU would: an L2 table at the end
    /// of the file, its offset in L1, then the data cluster after it.
    fn write_cluster(path: &Path, guest: u64, data: &[u8]) {
        let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
        let h = header(path, &f).unwrap();
        let end = f.metadata().unwrap().len();
        let (l2_at, data_at) = (end, end + CLUSTER);
        let l2_index = guest / (CLUSTER * (CLUSTER / 8));
        let entry = (guest / CLUSTER) % (CLUSTER / 8);
        f.write_all_at(&(l2_at | 1 << 63).to_be_bytes(), h.l1_offset + 8 * l2_index).unwrap();
        let mut l2 = vec![0u8; CLUSTER as usize];
        l2[8 * entry as usize..8 * entry as usize + 8].copy_from_slice(&(data_at | 1 << 63).to_be_bytes());
        // A zero cluster right after: listed nowhere.
        if entry + 1 < CLUSTER / 8 {
            l2[8 * (entry as usize + 1)..8 * (entry as usize + 2)].copy_from_slice(&L2_ZERO.to_be_bytes());
        }
        f.write_all_at(&l2, l2_at).unwrap();
        let mut cluster = vec![0u8; CLUSTER as usize];
        cluster[..data.len()].copy_from_slice(data);
        f.write_all_at(&cluster, data_at).unwrap();
    }

    #[test]
    fn empty_images_hold_nothing_and_name_their_backing() {
        let d = tmp("empty");
        let p = d.join("a.qcow2");
        create(&p, 64 << 30, Some(("../rootfs.ext4", "raw"))).unwrap();
        let (h, extents) = allocated(&p).unwrap();
        assert_eq!(h, Header { size: 64 << 30, cluster_size: CLUSTER, l1_size: 128, l1_offset: 3 * CLUSTER, backing: Some("../rootfs.ext4".into()) });
        assert!(extents.is_empty());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 4 * CLUSTER);
        create(&p, 1 << 20, None).unwrap();
        assert_eq!(allocated(&p).unwrap().0.backing, None);
        std::fs::write(&p, b"not an image").unwrap();
        assert!(allocated(&p).unwrap_err().to_string().contains("not a qcow2 image"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn data_clusters_are_copied_to_their_guest_offsets() {
        let d = tmp("data");
        let (q, raw) = (d.join("d.qcow2"), d.join("d.img"));
        create(&q, 1 << 30, None).unwrap();
        let far = 600 << 20; // in the second L2 table
        write_cluster(&q, CLUSTER, b"first");
        write_cluster(&q, far, b"second");
        let (_, extents) = allocated(&q).unwrap();
        assert_eq!(extents.iter().map(|e| (e.guest, e.len)).collect::<Vec<_>>(), [(CLUSTER, CLUSTER), (far, CLUSTER)]);
        // Each cluster is written whole (it holds non-zero bytes); the rest is a hole.
        let written = materialize(&q, &raw).unwrap();
        assert_eq!(written, 2 * CLUSTER);
        let img = File::open(&raw).unwrap();
        assert_eq!(img.metadata().unwrap().len(), 1 << 30);
        let mut b = [0u8; 6];
        img.read_exact_at(&mut b, CLUSTER).unwrap();
        assert_eq!(&b[..5], b"first");
        img.read_exact_at(&mut b, far).unwrap();
        assert_eq!(&b, b"second");
        use std::os::unix::fs::MetadataExt;
        assert!(img.metadata().unwrap().blocks() * 512 <= 4 * CLUSTER, "sparse");
        // Never over an existing file, never from an overlay.
        assert_eq!(materialize(&q, &raw).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        let o = d.join("o.qcow2");
        create(&o, 1 << 30, Some(("d.img", "raw"))).unwrap();
        assert!(materialize(&o, &d.join("o.img")).unwrap_err().to_string().contains("backing file (d.img)"));
        assert!(!d.join("o.img").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// QEMU's own checker accepts what [`create`] writes, and QEMU's
    /// writes come back through [`allocated`] and [`materialize`].
    #[test]
    fn qemu_img_agrees() {
        let Some(qemu_img) = ["/usr/bin/qemu-img", "/bin/qemu-img"].into_iter().find(|p| Path::new(p).exists()) else {
            eprintln!("skipped: qemu-img (qemu-utils) is not installed");
            return;
        };
        let d = tmp("qemu-img");
        let base = d.join("base.raw");
        std::fs::write(&base, vec![7u8; 3 << 20]).unwrap();
        let (o, s) = (d.join("o.qcow2"), d.join("s.qcow2"));
        create(&o, 3 << 20, Some(("base.raw", "raw"))).unwrap();
        create(&s, 16 << 30, None).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(qemu_img).args(args).output().unwrap();
            assert!(out.status.success(), "qemu-img {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        for img in [&o, &s] {
            run(&["check", img.to_str().unwrap()]);
        }
        let info = run(&["info", "--output=json", o.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!((v["backing-filename"].as_str(), v["backing-filename-format"].as_str()), (Some("base.raw"), Some("raw")));
        assert_eq!(v["virtual-size"], 3 << 20);
        // Guest writes through QEMU's block layer: data at 1 MiB and 9 GiB, zeros at 2 GiB.
        let io = |cmd: &str| {
            let out = std::process::Command::new("qemu-io").args(["-f", "qcow2", "-c", cmd, s.to_str().unwrap()]).output().unwrap();
            assert!(out.status.success(), "qemu-io {cmd}: {}", String::from_utf8_lossy(&out.stderr));
        };
        if Path::new("/usr/bin/qemu-io").exists() {
            io("write -P 0xab 1M 64k");
            io("write -P 0xcd 9G 4k");
            io("write -z 2G 1M");
            run(&["check", s.to_str().unwrap()]);
            let (_, extents) = allocated(&s).unwrap();
            assert_eq!(extents.iter().map(|e| (e.guest, e.len)).collect::<Vec<_>>(), [(1 << 20, CLUSTER), (9 << 30, CLUSTER)]);
            let raw = d.join("s.img");
            materialize(&s, &raw).unwrap();
            let f = File::open(&raw).unwrap();
            let mut b = [0u8; 2];
            f.read_exact_at(&mut b, (1 << 20) + CLUSTER - 2).unwrap();
            assert_eq!(b, [0xab, 0xab]);
            f.read_exact_at(&mut b, (9 << 30) + 4094).unwrap();
            assert_eq!(b, [0xcd, 0xcd]);
            f.read_exact_at(&mut b, (9 << 30) + 4096).unwrap();
            assert_eq!(b, [0, 0]);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
