//! The guest configuration stage on real package trees: an Alpine-shaped
//! repository generated at test time (signed index and packages) is
//! resolved, fetched and unpacked through the library, then configured;
//! a Debian-shaped tree is built by hand. Assertions are on the tree.

use std::fs;
use std::path::{Path, PathBuf};

use dinv_apk::testkit::{write_repository, PackageSpec, TestKey};
use dinv_build::configure::GuestInputs;
use dinv_build::recipe;
use dinv_build::Context;
use dinv_fstree::{Meta, NodeKind, Tree, TreePath};

const OPENRC_SERVICES: &[&str] =
    &["devfs", "dmesg", "mdev", "modules", "sysctl", "hostname", "bootmisc", "syslog", "networking", "mount-ro", "killprocs", "savecache"];

const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdC1jb3JwLWNh\n-----END CERTIFICATE-----\n";

fn specs() -> Vec<PackageSpec> {
    let script = b"#!/sbin/openrc-run\n".to_vec();
    let mut openrc = PackageSpec::new("openrc", "0.55.1-r2").file("sbin/openrc", b"openrc".to_vec(), 0o755);
    for s in OPENRC_SERVICES {
        openrc = openrc.file(&format!("etc/init.d/{s}"), script.clone(), 0o755);
    }
    vec![
        PackageSpec::new("alpine-baselayout", "3.7.0-r0")
            .file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n".to_vec(), 0o644)
            .file("etc/group", b"root:x:0:root\nwheel:x:10:root\n".to_vec(), 0o644)
            .file("etc/hosts", b"127.0.0.1\tlocalhost localhost.localdomain\n".to_vec(), 0o644)
            .file("etc/modules", b"af_packet\nipv6\n".to_vec(), 0o644),
        PackageSpec::new("busybox", "1.37.0-r18")
            .file("bin/busybox", b"#!busybox".to_vec(), 0o755)
            .file("etc/busybox-paths.d/busybox", b"bin/sh\nsbin/getty\nsbin/mdev\n".to_vec(), 0o644),
        openrc,
        PackageSpec::new("docker", "28.3.3-r0")
            .file("usr/bin/dockerd", b"dockerd".to_vec(), 0o755)
            .file("etc/init.d/docker", script.clone(), 0o755)
            .file("etc/conf.d/docker", b"DOCKER_OPTS=\"\"\n".to_vec(), 0o644),
        PackageSpec::new("qemu-guest-agent", "10.0.2-r0")
            .file("usr/bin/qemu-ga", b"qemu-ga".to_vec(), 0o755)
            .file("etc/init.d/qemu-guest-agent", script, 0o755),
        PackageSpec::new("ca-certificates-bundle", "20250619-r0")
            .file("etc/ssl/certs/ca-certificates.crt", b"-----BEGIN CERTIFICATE-----\nMIIalpine\n-----END CERTIFICATE-----\n".to_vec(), 0o644),
    ]
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::generate("test-signer@dinv.invalid-5e1f0002.rsa.pub", 1024, 11);
        write_repository(&dir.path().join("mirror"), "main", "x86_64", &specs(), &key).unwrap();
        fs::create_dir_all(dir.path().join("keys")).unwrap();
        fs::write(dir.path().join("keys").join(&key.name), key.public_pem()).unwrap();
        let o = dir.path().join("overlay");
        fs::create_dir_all(o.join("etc/sysctl.d")).unwrap();
        fs::write(o.join("etc/motd.j2"), "Welcome to {{ guest.hostname }} ({{ image_ref }})\n").unwrap();
        fs::write(o.join("etc/sysctl.d/dinv.conf"), "net.ipv4.ip_forward = 1\n").unwrap();
        fs::write(dir.path().join("corp-ca.pem"), CA_PEM).unwrap();
        Fixture { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a recipe with `extra` appended and returns its path.
    fn recipe(&self, extra: &str) -> PathBuf {
        let text = format!(
            r#"[image]
name = "guest-test"

[sources.alpine]
type = "apk"
repositories = [{{ url = "file://{root}/main" }}]
keys = ["keys"]

[guest]
source = "alpine"
packages = ["alpine-baselayout", "busybox", "openrc", "docker", "qemu-guest-agent", "ca-certificates-bundle"]
hostname = "dinvtest"
modules = ["9pnet", "virtio_console", "ipv6"]

[docker]
registry_mirrors = ["https://mirror.corp.invalid"]
ca_certificates = [{{ file = "corp-ca.pem", registry = "registry.corp.invalid:5000" }}]

[[groups]]
name = "docker"
gid = 101
{extra}
"#,
            root = self.path("mirror").display(),
        );
        let p = self.path("recipe.toml");
        fs::write(&p, text).unwrap();
        p
    }

    /// Resolves, fetches and unpacks the guest packages, then configures the tree.
    fn configure(&self, recipe_path: &Path) -> Result<Tree, String> {
        let l = recipe::load(recipe_path).map_err(|e| e.to_string())?;
        let ctx = Context { quiet: true, cache_dir: Some(self.path("cache")), ..Context::default() };
        dinv_build::configured_guest(&ctx, &l).map_err(|e| e.to_string())
    }
}

fn text(t: &Tree, p: &str) -> String {
    String::from_utf8(t.read_file(&TreePath::new(p)).unwrap_or_else(|| panic!("/{p} missing"))).unwrap()
}

fn link(t: &Tree, p: &str) -> Option<String> {
    match &t.get(&TreePath::new(p))?.kind {
        NodeKind::Symlink(s) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn alpine_guest_is_configured() {
    let f = Fixture::new();
    let r = f.recipe("[[overlays]]\npath = \"overlay\"\n\n[[files]]\npath = \"/etc/dinv/note\"\ncontent = \"hi\\n\"\nmode = 0o600\n");
    let t = f.configure(&r).unwrap();

    assert_eq!(
        text(&t, "etc/docker/daemon.json"),
        r#"{
  "bip": "172.19.0.1/16",
  "hosts": [
    "unix:///var/run/docker.sock",
    "tcp://0.0.0.0:2375"
  ],
  "registry-mirrors": [
    "https://mirror.corp.invalid"
  ],
  "tls": false
}
"#
    );
    assert_eq!(t.get(&TreePath::new("etc/docker/daemon.json")).unwrap().meta.mode, 0o644);

    for (level, svc) in [("sysinit", "devfs"), ("sysinit", "mdev"), ("boot", "networking"), ("default", "docker"), ("default", "qemu-guest-agent"), ("default", "dinv-setup"), ("default", "dinv-post"), ("shutdown", "killprocs")] {
        assert_eq!(link(&t, &format!("etc/runlevels/{level}/{svc}")), Some(format!("/etc/init.d/{svc}")), "{level}/{svc}");
    }
    assert!(text(&t, "etc/init.d/dinv-setup").contains("/usr/sbin/dinv-guest setup"));
    assert!(text(&t, "etc/inittab").contains("ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100"));
    assert!(text(&t, "etc/inittab").contains("::shutdown:/sbin/openrc shutdown"));
    assert_eq!(text(&t, "etc/modules"), "af_packet\nipv6\n9pnet\nvirtio_console\n");
    assert_eq!(text(&t, "etc/hostname"), "dinvtest\n");
    assert!(text(&t, "etc/hosts").contains("127.0.1.1\tdinvtest"));
    assert_eq!(text(&t, "etc/fstab"), "LABEL=dinv-root / ext4 rw,relatime 0 1\n");
    assert!(text(&t, "etc/network/interfaces").contains("iface eth0 inet dhcp"));
    assert!(text(&t, "etc/securetty").contains("ttyS0"));
    assert!(text(&t, "etc/group").contains("docker:x:101:"));
    assert!(text(&t, "etc/conf.d/qemu-guest-agent").contains("GA_PATH=\"/dev/virtio-ports/org.qemu.guest_agent.0\""));
    assert!(text(&t, "etc/mdev.conf").contains("virtio-ports"));

    let guest = t.read_file(&TreePath::new("usr/sbin/dinv-guest")).unwrap();
    assert_eq!(&guest[..4], b"\x7fELF");
    assert_eq!(t.get(&TreePath::new("usr/sbin/dinv-guest")).unwrap().meta.mode, 0o755);
    assert_eq!(link(&t, "sbin/getty").as_deref(), Some("/bin/busybox"));

    // Overlay: the template rendered with recipe values, suffix dropped, root-owned.
    assert_eq!(text(&t, "etc/motd"), "Welcome to dinvtest (guest-test:latest)\n");
    assert!(t.get(&TreePath::new("etc/motd.j2")).is_none());
    let sysctl = t.get(&TreePath::new("etc/sysctl.d/dinv.conf")).unwrap();
    assert_eq!((sysctl.meta.mode, sysctl.meta.uid, sysctl.meta.gid), (0o644, 0, 0));
    assert_eq!(t.get(&TreePath::new("etc/dinv/note")).unwrap().meta.mode, 0o600);

    // The recipe's CA: in the bundle after Alpine's, in the local store, in certs.d.
    let bundle = text(&t, "etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.starts_with("-----BEGIN CERTIFICATE-----\nMIIalpine") && bundle.ends_with(CA_PEM), "{bundle}");
    assert_eq!(text(&t, "usr/local/share/ca-certificates/corp-ca.crt"), CA_PEM);
    assert_eq!(text(&t, "etc/docker/certs.d/registry.corp.invalid:5000/ca.crt"), CA_PEM);
}

#[test]
fn proxy_and_extra_services_on_openrc() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("svc/etc/init.d")).unwrap();
    fs::write(f.path("svc/etc/init.d/local"), "#!/sbin/openrc-run\n").unwrap();
    let extra = "[docker.proxy]\nhttps = \"http://proxy.corp.invalid:3128\"\n\n[[overlays]]\npath = \"svc\"\nmodes = { \"/etc/init.d/local\" = { mode = 0o755 } }\n";
    let r = f.recipe(extra);
    // guest.services belongs in [guest].
    let t = fs::read_to_string(&r).unwrap().replace("hostname = \"dinvtest\"", "hostname = \"dinvtest\"\nservices = [\"default:local\"]");
    fs::write(&r, t).unwrap();
    let tree = f.configure(&r).unwrap();
    assert_eq!(text(&tree, "etc/conf.d/docker"), "DOCKER_OPTS=\"\"\nexport HTTPS_PROXY='http://proxy.corp.invalid:3128'\n");
    assert_eq!(link(&tree, "etc/runlevels/default/local").as_deref(), Some("/etc/init.d/local"));
    assert_eq!(tree.get(&TreePath::new("etc/init.d/local")).unwrap().meta.mode, 0o755);
    assert!(!text(&tree, "etc/docker/daemon.json").contains("proxy"));
}

#[test]
fn bad_overlays_are_reported() {
    let f = Fixture::new();
    // Missing directory: caught when the recipe loads, pointing at the key.
    let e = f.configure(&f.recipe("[[overlays]]\npath = \"nope\"\n")).unwrap_err();
    assert!(e.contains("overlays[0].path") && e.contains("does not exist"), "{e}");

    // A template error names the template file and line.
    fs::create_dir_all(f.path("bad/etc")).unwrap();
    fs::write(f.path("bad/etc/motd.j2"), "line one\n{{ guest.hostnam }}\n").unwrap();
    let e = f.configure(&f.recipe("[[overlays]]\npath = \"bad\"\n")).unwrap_err();
    assert!(e.contains(&format!("{}:2", f.path("bad/etc/motd.j2").display())) && e.contains("undefined"), "{e}");

    // A symlink climbing out of the guest root is refused.
    fs::create_dir_all(f.path("esc/etc")).unwrap();
    std::os::unix::fs::symlink("../../../../root/.ssh/id_rsa", f.path("esc/etc/key")).unwrap();
    let e = f.configure(&f.recipe("[[overlays]]\npath = \"esc\"\n")).unwrap_err();
    assert!(e.contains("points outside the guest root") && e.contains("esc/etc/key"), "{e}");

    // So is a destination with `..`.
    fs::create_dir_all(f.path("ok")).unwrap();
    let e = f.configure(&f.recipe("[[overlays]]\npath = \"ok\"\ndest = \"/etc/../../x\"\n")).unwrap_err();
    assert!(e.contains("overlays[0].dest"), "{e}");

    // A CA file that is not a certificate.
    fs::write(f.path("corp-ca.pem"), "-----BEGIN PRIVATE KEY-----\nx\n").unwrap();
    let e = f.configure(&f.recipe("")).unwrap_err();
    assert!(e.contains("corp-ca.pem holds no PEM certificate"), "{e}");
}

/// A Debian guest as the deb source would unpack it: merged /usr, no
/// maintainer scripts run.
fn debian_tree() -> Tree {
    let mut t = Tree::new();
    for d in ["usr/bin", "usr/sbin", "usr/lib", "etc/ssl/certs"] {
        t.mkdir_p(&TreePath::new(d), Meta::root(0o755)).unwrap();
    }
    for (l, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
        t.symlink(&TreePath::new(l), target).unwrap();
    }
    let exe = |t: &mut Tree, p: &str| t.write_file(&TreePath::new(p), p.as_bytes().to_vec(), Meta::root(0o755)).unwrap();
    for p in ["usr/sbin/dockerd", "usr/sbin/qemu-ga", "usr/bin/dash", "usr/bin/mawk", "usr/sbin/xtables-nft-multi", "usr/sbin/xtables-legacy-multi"] {
        exe(&mut t, p);
    }
    for base in ["iptables", "ip6tables"] {
        for kind in ["nft", "legacy"] {
            for suffix in ["", "-save", "-restore"] {
                t.symlink(&TreePath::new(&format!("usr/sbin/{base}-{kind}{suffix}")), &format!("xtables-{kind}-multi")).unwrap();
            }
        }
    }
    for n in ["B_Root", "A_Root"] {
        let pem = format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
        t.write_file(&TreePath::new(&format!("usr/share/ca-certificates/mozilla/{n}.crt")), pem, Meta::root(0o644)).unwrap();
    }
    t.write_file(&TreePath::new("etc/group"), "root:x:0:\n", Meta::root(0o644)).unwrap();
    t
}

#[test]
fn debian_guest_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("corp.pem"), CA_PEM).unwrap();
    let r = dir.path().join("debian.toml");
    fs::write(
        &r,
        r#"[image]
name = "dinv-debian"

[sources.debian]
type = "deb"
suite = "bookworm"
allow_untrusted = true

[guest]
source = "debian"
packages = ["docker.io"]
init = "dinv"
hostname = "deb"
alternatives = { iptables = "legacy" }

[docker]
proxy = { http = "http://proxy.corp.invalid:3128" }
ca_certificates = [{ file = "corp.pem" }]

[rootfs]
label = "debroot"

[[groups]]
name = "docker"
gid = 101
"#,
    )
    .unwrap();
    let l = recipe::load(&r).unwrap();
    let mut t = debian_tree();
    dinv_build::configure::apply(&l, &mut t, &GuestInputs::default()).unwrap();

    let services = dinv_contract::services::ServicesFile::parse(&text(&t, "etc/dinv/services.json")).unwrap();
    let names: Vec<&str> = services.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["qemu-ga", "dockerd", "dinv-post"]);
    assert_eq!(services.services[0].argv[..3], ["/usr/sbin/qemu-ga", "-m", "virtio-serial"]);
    assert_eq!(services.services[1].argv, ["/usr/sbin/dinv-guest", "exec-dockerd", "/usr/sbin/dockerd"]);
    assert_eq!(services.services[1].env.get("HTTP_PROXY").map(String::as_str), Some("http://proxy.corp.invalid:3128"));
    for n in ["init", "poweroff", "shutdown", "halt", "reboot"] {
        assert_eq!(link(&t, &format!("usr/sbin/{n}")).as_deref(), Some("dinv-guest"), "{n}");
    }
    assert_eq!(link(&t, "sbin").as_deref(), Some("usr/sbin"), "merged /usr kept");
    assert_eq!(&t.read_file(&TreePath::new("sbin/init")).unwrap()[..4], b"\x7fELF");
    assert!(t.read_file(&TreePath::new("etc/inittab")).is_none());
    assert_eq!(text(&t, "etc/hostname"), "deb\n");
    assert_eq!(text(&t, "etc/fstab"), "LABEL=debroot / ext4 rw,relatime 0 1\n");
    assert!(!text(&t, "etc/docker/daemon.json").contains("proxy"));

    // Alternatives: the recipe's choice, through /etc/alternatives as dpkg does it.
    assert_eq!(link(&t, "usr/sbin/iptables").as_deref(), Some("/etc/alternatives/iptables"));
    assert_eq!(link(&t, "etc/alternatives/iptables-save").as_deref(), Some("/usr/sbin/iptables-legacy-save"));
    assert_eq!(link(&t, "etc/alternatives/awk").as_deref(), Some("/usr/bin/mawk"));
    assert_eq!(t.read_file(&TreePath::new("bin/sh")).unwrap(), b"usr/bin/dash");

    // CA bundle: what update-ca-certificates would write, then the recipe's CA.
    assert_eq!(text(&t, "etc/ca-certificates.conf"), "mozilla/A_Root.crt\nmozilla/B_Root.crt\n");
    let bundle = text(&t, "etc/ssl/certs/ca-certificates.crt");
    let a = bundle.find("A_Root").unwrap();
    let b = bundle.find("B_Root").unwrap();
    assert!(a < b && bundle.ends_with(CA_PEM), "{bundle}");
    assert_eq!(text(&t, "usr/local/share/ca-certificates/corp.crt"), CA_PEM);
}

#[test]
fn recipe_keys_are_validated_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[image]\nname = \"x\"\n[sources.s]\ntype = \"deb\"\nsuite = \"bookworm\"\nallow_untrusted = true\n[guest]\nsource = \"s\"\npackages = []\n";
    for (extra, want) in [
        ("init = \"dinv\"\nalternatives = { iptables = \"ebpf\" }\n", "guest.alternatives.iptables"),
        ("init = \"dinv\"\nservices = [\"default:local\"]\n", "guest.services[0]"),
        ("services = [\"local\"]\n", "expected `runlevel:service`"),
        ("[docker.daemon]\nbip = \"10.9.0.1/16\"\n", "docker.daemon.bip: set it with docker.bip"),
    ] {
        let p = dir.path().join("r.toml");
        fs::write(&p, format!("{base}{extra}")).unwrap();
        let e = recipe::load(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{extra}: {e}");
    }
}

#[test]
fn shipped_dinv_overlay_renders_with_the_default_recipe() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let l = recipe::load(&root.join("recipes/default.toml")).unwrap();
    let overlay = dinv_build::recipe::Overlay {
        path: root.join("rootfs-overlays/dinv").display().to_string(),
        dest: None,
        uid: 0,
        gid: 0,
        dir_mode: None,
        file_mode: None,
        modes: Default::default(),
    };
    let ctx = dinv_build::configure::template::context(&l.recipe).unwrap();
    let mut t = Tree::new();
    dinv_build::configure::overlays::copy_overlay(&mut t, 0, &overlay, &ctx).unwrap();
    let motd = text(&t, "etc/motd");
    assert!(motd.starts_with("dinv:latest: Docker-in-VM guest dinv.\n"), "{motd}");
    assert!(motd.contains("unix:///var/run/docker.sock, tcp://0.0.0.0:2375; bridge 172.19.0.1/16"), "{motd}");
    assert!(text(&t, "etc/sysctl.d/dinv.conf").contains("net.ipv4.ip_forward = 1"));
}
