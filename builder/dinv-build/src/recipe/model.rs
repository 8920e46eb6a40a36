//! The recipe's typed model. Every key is documented in docs/recipe.md;
//! unknown keys are rejected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A whole recipe after `extends` has been merged.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Parent recipes (consumed by the loader; kept for `show`).
    #[serde(default)]
    pub extends: Vec<String>,
    pub image: ImageSection,
    /// Package sources by name.
    pub sources: BTreeMap<String, Source>,
    pub guest: GuestSection,
    #[serde(default)]
    pub runtime: Option<RuntimeSection>,
    #[serde(default)]
    pub kernel: KernelSection,
    #[serde(default)]
    pub docker: DockerSection,
    #[serde(default)]
    pub vm: VmSection,
    #[serde(default)]
    pub rootfs: RootfsSection,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub snapshot: SnapshotSection,
    /// Extra users created in the guest.
    #[serde(default)]
    pub users: Vec<User>,
    /// Extra groups created in the guest (e.g. `docker`).
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Directories copied into the guest tree.
    #[serde(default)]
    pub overlays: Vec<Overlay>,
    /// Single files added to the guest tree.
    #[serde(default)]
    pub files: Vec<ExtraFile>,
    /// `[platform."linux/arm64"]`: per platform of `image.platforms`, a
    /// partial recipe merged over this one for that platform, as a child
    /// recipe is (consumed by the loader; kept for `show`).
    #[serde(default)]
    pub platform: BTreeMap<String, toml::Table>,
}

/// `[image]`: what the emitted Docker image is called and carries.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    pub name: String,
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Extra OCI labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The container's default command.
    #[serde(default = "default_cmd")]
    pub cmd: Vec<String>,
    /// `org.opencontainers.image.source`.
    #[serde(default)]
    pub source_url: Option<String>,
    /// Layer compression.
    #[serde(default)]
    pub compression: ImageCompression,
    /// Compression level (gzip 1–9, zstd 1–19); `None` is the algorithm's default.
    #[serde(default)]
    pub compression_level: Option<i32>,
    /// Platforms built in one run into one multi-platform image
    /// (`linux/amd64`, `linux/arm64`); empty: the guest source's
    /// architecture alone. Each source's `arch` follows the platform, and
    /// `[platform."linux/arm64"]` holds what differs for one of them.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// `image.compression`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageCompression {
    /// Read by every docker and registry.
    #[default]
    Gzip,
    /// Smaller and faster to unpack; docker 23+, containerd 1.5+.
    Zstd,
}

impl ImageCompression {
    /// The level used when the recipe sets none.
    pub const fn default_level(self) -> i32 {
        match self {
            ImageCompression::Gzip => 6,
            ImageCompression::Zstd => 3,
        }
    }

    /// The levels the algorithm accepts.
    pub const fn levels(self) -> (i32, i32) {
        match self {
            ImageCompression::Gzip => (1, 9),
            ImageCompression::Zstd => (1, 19),
        }
    }
}

fn default_tag() -> String {
    "latest".into()
}

fn default_cmd() -> Vec<String> {
    vec!["docker".into(), "info".into()]
}

/// The CPU architecture an image is built for: its guest's packages,
/// kernel and binaries, its QEMU, its image config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The name Rust, apk and the ELF world use (`target_arch`).
    pub fn rust(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The name OCI (`architecture`, platforms) and Debian use.
    pub fn oci(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The architecture of an OCI platform `linux/amd64`, `linux/arm64`.
    pub fn of_platform(s: &str) -> Option<Arch> {
        match s {
            "linux/amd64" => Some(Arch::X86_64),
            "linux/arm64" | "linux/arm64/v8" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The OCI platform: `linux/amd64`, `linux/arm64`.
    pub fn platform(self) -> String {
        format!("linux/{}", self.oci())
    }

    /// The platform's directory in a multi-platform output: `linux-arm64`.
    pub fn platform_dir(self) -> String {
        format!("linux-{}", self.oci())
    }

    /// The machine this program runs on, when it is one images are built for.
    pub fn host() -> Option<Arch> {
        Arch::of_source_arch(std::env::consts::ARCH)
    }

    /// A source's `arch` in apk's or Debian's spelling.
    pub fn of_source_arch(s: &str) -> Option<Arch> {
        match s {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

impl Source {
    /// The source's `arch`, as its recipe spells it.
    pub fn arch(&self) -> &str {
        match self {
            Source::Apk(a) => &a.arch,
            Source::Deb(d) => &d.arch,
        }
    }
}

impl Recipe {
    /// The image's architecture: its guest source's (checked at load).
    pub fn arch(&self) -> Arch {
        self.sources.get(&self.guest.source).and_then(|s| Arch::of_source_arch(s.arch())).unwrap_or(Arch::X86_64)
    }
}

/// `[sources.NAME]`: a package source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    Apk(ApkSource),
    Deb(DebSource),
}

/// An Alpine-style apk source: one or more repositories.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApkSource {
    /// Base URL (`https://…/alpine`, `file:///…`, or a path relative to the
    /// recipe); repository URLs are `{mirror}/{branch}/{name}`.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Release branch, e.g. `v3.20` or `edge`.
    #[serde(default)]
    pub branch: Option<String>,
    pub repositories: Vec<ApkRepository>,
    /// Architecture, e.g. `x86_64`.
    #[serde(default = "default_apk_arch")]
    pub arch: String,
    /// Trusted public keys: files or directories (relative to the recipe).
    #[serde(default)]
    pub keys: Vec<String>,
}

fn default_apk_arch() -> String {
    "x86_64".into()
}

/// One apk repository: a bare name (`"main"`, expanded from mirror and
/// branch) or a table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ApkRepository {
    Name(String),
    Full(ApkRepositoryTable),
}

/// The table form of an apk repository.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApkRepositoryTable {
    /// Repository name (used with mirror/branch when `url` is absent).
    #[serde(default)]
    pub name: Option<String>,
    /// Full URL of the repository (the directory holding `ARCH/APKINDEX.tar.gz`).
    #[serde(default)]
    pub url: Option<String>,
    /// Release branch of this repository when it differs from the source's
    /// (`edge` for a tagged `testing` next to a stable release).
    #[serde(default)]
    pub branch: Option<String>,
    /// Tag: packages from this repository only install when asked as
    /// `pkg@tag`, or as dependencies of packages installed that way.
    #[serde(default)]
    pub tag: Option<String>,
    /// Accept an unsigned or unknown-key index (loud warning).
    #[serde(default)]
    pub allow_untrusted: bool,
}

/// A Debian-style source: one or more suites, read as apt reads a sources
/// list (for each package the highest version of any suite wins).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebSource {
    /// The main archive's base URL. When absent it comes from
    /// `--debian-mirror`, `DINV_DEBIAN_MIRROR`, or the host's apt sources.
    #[serde(default)]
    pub mirror: Option<String>,
    /// The security archive's base URL (suites with `archive = "security"`).
    /// When absent: `--debian-security-mirror`,
    /// `DINV_DEBIAN_SECURITY_MIRROR`, the host's apt sources, else
    /// `debian-security` next to the main archive.
    #[serde(default)]
    pub security_mirror: Option<String>,
    /// One suite (`suite = "bookworm"`); the same as `suites = ["bookworm"]`.
    #[serde(default)]
    pub suite: Option<String>,
    /// Several suites, in order: `["trixie", "trixie-updates", "trixie-security"]`.
    #[serde(default)]
    pub suites: Vec<DebSuite>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    #[serde(default = "default_deb_arch")]
    pub arch: String,
    /// OpenPGP keyring file(s) that sign the Release file.
    #[serde(default)]
    pub keyrings: Vec<String>,
    /// Accept an unsigned or badly signed Release (loud warning).
    #[serde(default)]
    pub allow_untrusted: bool,
    /// Also install every `Essential: yes` package.
    #[serde(default = "yes")]
    pub essential: bool,
    /// Also install every `Priority: required` package.
    #[serde(default)]
    pub required: bool,
}

/// One entry of `sources.NAME.suites`: a name, or a table naming the archive.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum DebSuite {
    Name(String),
    Full(DebSuiteTable),
}

/// By hand rather than `untagged`: a mistake inside the table
/// (`archive = "securty"`) is reported as itself, at its key, instead of
/// "data did not match any variant".
impl<'de> Deserialize<'de> for DebSuite {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DebSuite;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a suite name or a table { suite, archive }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DebSuite, E> {
                Ok(DebSuite::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<DebSuite, A::Error> {
                DebSuiteTable::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(DebSuite::Full)
            }
        }
        d.deserialize_any(V)
    }
}

/// `{ suite = "trixie-security", archive = "security" }`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DebSuiteTable {
    pub suite: String,
    /// The archive (tree) that serves the suite; by default the security
    /// archive for a name ending in `-security`, else the main archive.
    #[serde(default)]
    pub archive: Option<DebArchive>,
}

/// The Debian archives a suite can come from: the main archive
/// (`…/debian`) and the security archive (`…/debian-security`), each with
/// its own base URL, `dists/` and `pool/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DebArchive {
    Main,
    Security,
}

impl DebArchive {
    pub fn as_str(self) -> &'static str {
        match self {
            DebArchive::Main => "main",
            DebArchive::Security => "security",
        }
    }

    /// The archive a suite name implies: Debian serves `<codename>-security`
    /// from the security archive since bullseye.
    pub fn of_name(suite: &str) -> DebArchive {
        if suite.ends_with("-security") {
            DebArchive::Security
        } else {
            DebArchive::Main
        }
    }
}

impl DebSuite {
    pub fn name(&self) -> &str {
        match self {
            DebSuite::Name(n) => n,
            DebSuite::Full(t) => &t.suite,
        }
    }

    pub fn archive(&self) -> DebArchive {
        match self {
            DebSuite::Full(DebSuiteTable { archive: Some(a), .. }) => *a,
            _ => DebArchive::of_name(self.name()),
        }
    }
}

impl DebSource {
    /// The suites in order, with their archive: `suite`, or `suites`.
    pub fn suite_list(&self) -> Vec<(String, DebArchive)> {
        match &self.suite {
            Some(s) => vec![(s.clone(), DebArchive::of_name(s))],
            None => self.suites.iter().map(|s| (s.name().to_string(), s.archive())).collect(),
        }
    }

    /// The recipe key of suite `i` (for errors).
    pub fn suite_key(&self, name: &str, i: usize) -> String {
        match &self.suite {
            Some(_) => format!("sources.{name}.suite"),
            None => format!("sources.{name}.suites[{i}]"),
        }
    }
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}

fn default_deb_arch() -> String {
    "amd64".into()
}

fn yes() -> bool {
    true
}

/// `[guest]`: the VM's root filesystem.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSection {
    /// Name of the source in `[sources]`.
    pub source: String,
    /// Packages (apk world syntax or Debian names, per source type).
    pub packages: Vec<String>,
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Init system: `openrc` (Alpine) or `dinv` (dinv-guest as PID 1).
    #[serde(default)]
    pub init: Init,
    /// Kernel modules loaded at boot (`/etc/modules`).
    #[serde(default)]
    pub modules: Vec<String>,
    /// Services to enable (OpenRC names: `runlevel:service`, e.g. `default:docker`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Create busybox applet symlinks (when busybox is installed).
    #[serde(default = "yes")]
    pub busybox_links: bool,
    /// Paths removed from the tree after packages are unpacked (docs, caches).
    #[serde(default)]
    pub remove: Vec<String>,
    /// Debian alternatives by group, as `update-alternatives` would set
    /// them: `iptables = "nft" | "legacy"`, `awk = "gawk" | "mawk" |
    /// "original-awk" | "busybox"`. A chosen group replaces whatever links
    /// are there (the target must be installed); an unset group gets
    /// Debian's default (highest priority installed) only where no package
    /// ships the link itself (Alpine does).
    #[serde(default)]
    pub alternatives: BTreeMap<String, String>,
}

fn default_hostname() -> String {
    "dinv".into()
}

/// `guest.init`: what runs as the guest's PID 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// busybox init with OpenRC (Alpine).
    #[default]
    Openrc,
    /// `dinv-guest init`, supervising `/etc/dinv/services.json` (Debian).
    Dinv,
}

/// `vm.machine`: the QEMU machine type.
pub use super::values::{Free, Size};

/// `vm.machine`: the contract's type, shared with the launcher.
pub use dinv_contract::settings::Machine;

/// The default of a runtime setting's recipe key: the settings table's.
fn table_default(key: &str) -> &'static str {
    dinv_contract::settings::by_recipe_key(key).map(|s| s.default).unwrap_or_else(|| panic!("{key} is not in the settings table"))
}

/// A whole-number default from the table.
fn table_default_number(key: &str) -> u32 {
    table_default(key).parse().unwrap_or_else(|_| panic!("the table's default of {key} is not a whole number"))
}

/// `kernel.mode`: where the guest kernel comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelMode {
    /// A package of the guest set ships it (the only mode so far).
    #[default]
    Package,
}

/// `kernel.initramfs_compression`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitramfsCompression {
    #[default]
    Gzip,
    /// The plain cpio.
    None,
}

/// Parses a `guest.services` entry, `runlevel:service`.
pub fn parse_service(entry: &str) -> Option<(&str, &str)> {
    let (level, name) = entry.split_once(':')?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) && s != "." && s != "..";
    (ok(level) && ok(name)).then_some((level, name))
}

/// The Debian alternatives groups `guest.alternatives` can set, each with its
/// choices (Debian's default, the highest priority, first).
pub const ALTERNATIVES: &[(&str, &[&str])] = &[("iptables", &["nft", "legacy"]), ("awk", &["gawk", "mawk", "original-awk", "busybox"])];

/// Checks a `guest.alternatives` entry: a known group and one of its choices.
pub fn check_alternative(group: &str, choice: &str) -> Result<(), String> {
    let (_, choices) = ALTERNATIVES.iter().find(|(g, _)| *g == group).ok_or_else(|| {
        format!("unknown alternatives group {group:?} (known: {})", ALTERNATIVES.iter().map(|(g, _)| *g).collect::<Vec<_>>().join(", "))
    })?;
    if choices.contains(&choice) {
        Ok(())
    } else {
        Err(format!("{choice:?} is not a choice for {group} (choices: {})", choices.join(", ")))
    }
}

/// `[runtime]`: the outer image's base layer (QEMU, docker CLI).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    pub source: String,
    pub packages: Vec<String>,
    /// Paths removed from the runtime layer.
    #[serde(default)]
    pub remove: Vec<String>,
    /// When set, the runtime layer holds only these paths (files or
    /// directories) and what their ELF files link to; otherwise everything.
    #[serde(default)]
    pub keep: Option<Vec<String>>,
}

/// `[kernel]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSection {
    /// `package` (default): the kernel comes from a guest package.
    #[serde(default)]
    pub mode: KernelMode,
    /// The package that ships the kernel (e.g. `linux-virt`).
    #[serde(default)]
    pub package: Option<String>,
    /// Config fragments that must hold (paths relative to the recipe).
    #[serde(default)]
    pub fragments: Vec<String>,
    /// Extra modules for the initramfs.
    #[serde(default)]
    pub initramfs_modules: Vec<String>,
    /// `gzip` (default) or `none`.
    #[serde(default)]
    pub initramfs_compression: InitramfsCompression,
    /// Extra kernel command-line arguments.
    #[serde(default)]
    pub cmdline: Option<String>,
    /// How QEMU boots the kernel: `auto` (default: PVH when the kernel
    /// supports it, else the bzImage), `pvh`, or `bzimage`.
    #[serde(default)]
    pub boot: KernelBoot,
    /// Which of the package's modules the guest keeps: by default the
    /// closure of what the guest can need (see [`KernelModules`]).
    #[serde(default)]
    pub modules: KernelModules,
    /// The module that provides a config option (`CONFIG_X = "module"`),
    /// over dinv-kernel's map of the kernel's Makefiles: for an option the
    /// map does not know, or names wrongly for this kernel.
    #[serde(default)]
    pub option_modules: BTreeMap<String, String>,
}

/// `kernel.boot`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelBoot {
    /// PVH when the kernel has a PVH entry note and a payload we can
    /// decompress; else the bzImage.
    #[default]
    Auto,
    /// The uncompressed kernel at its PVH entry point: no decompression in
    /// the guest (seconds under TCG). An error when the kernel cannot.
    Pvh,
    /// The bzImage as the package ships it.
    Bzimage,
}

/// `kernel.modules`: `"all"`, or `{ keep = [...], decompress = true }`
/// (the default, with an empty list): the closure of the modules the
/// fragments name, `guest.modules`, the initramfs's, what dockerd and the
/// guest load at run time ([`RUNTIME_MODULES`]) and `keep` (module names,
/// aliases, or directories below `/lib/modules/<release>/` ending in `/`).
/// With `decompress` (the default) the kept modules are stored as plain
/// `.ko`: a kernel that ships them compressed (trixie's `.ko.xz`) would
/// have modprobe decompress each one at every boot, which takes seconds
/// under TCG. `strip_signatures` (default off; needs `decompress`) cuts
/// the appended signature off each kept module, so the kernel does not
/// verify one at every load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelModules {
    All,
    Keep { keep: Vec<String>, decompress: bool, strip_signatures: bool },
}

impl Default for KernelModules {
    fn default() -> Self {
        KernelModules::Keep { keep: Vec::new(), decompress: true, strip_signatures: false }
    }
}

/// What dockerd, iptables/nft and the guest load at run time, kept by
/// default when they exist (a kernel may build them in): directories below
/// `/lib/modules/<release>/` (ending in `/`) and module names.
pub const RUNTIME_MODULES: &[&str] = &[
    // Port publishing, NAT, bridge networks: iptables-legacy, iptables-nft, nft, ipvs.
    "kernel/net/netfilter/",
    "kernel/net/ipv4/netfilter/",
    "kernel/net/ipv6/netfilter/",
    "kernel/net/bridge/",
    // Container storage and the shares.
    "kernel/fs/overlayfs/",
    "kernel/fs/9p/",
    "kernel/net/9p/",
    "kernel/drivers/virtio/",
    // Network drivers of `docker network create`.
    "veth",
    "macvlan",
    "ipvlan",
    "vxlan",
    "dummy",
    "tun",
    // Guest devices and file systems.
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "virtio_rng",
    "ext4",
    "fuse",
    "loop",
    "af_packet",
];

impl Serialize for KernelModules {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            KernelModules::All => s.serialize_str("all"),
            KernelModules::Keep { keep, decompress, strip_signatures } => {
                let mut m = s.serialize_map(Some(1 + usize::from(!decompress) + usize::from(*strip_signatures)))?;
                m.serialize_entry("keep", keep)?;
                if !decompress {
                    m.serialize_entry("decompress", decompress)?;
                }
                if *strip_signatures {
                    m.serialize_entry("strip_signatures", strip_signatures)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for KernelModules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = KernelModules;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#""all" or { keep = ["module", "kernel/dir/", ...], decompress = true, strip_signatures = false }"#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<KernelModules, E> {
                match v {
                    "all" => Ok(KernelModules::All),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<KernelModules, A::Error> {
                let mut keep: Option<Vec<String>> = None;
                let mut decompress: Option<bool> = None;
                let mut strip_signatures: Option<bool> = None;
                while let Some(k) = map.next_key::<String>()? {
                    match k.as_str() {
                        "keep" if keep.is_none() => keep = Some(map.next_value()?),
                        "decompress" if decompress.is_none() => decompress = Some(map.next_value()?),
                        "strip_signatures" if strip_signatures.is_none() => strip_signatures = Some(map.next_value()?),
                        "keep" | "decompress" | "strip_signatures" => return Err(serde::de::Error::custom(format_args!("duplicate field `{k}`"))),
                        other => return Err(serde::de::Error::unknown_field(other, &["keep", "decompress", "strip_signatures"])),
                    }
                }
                Ok(KernelModules::Keep {
                    keep: keep.unwrap_or_default(),
                    decompress: decompress.unwrap_or(true),
                    strip_signatures: strip_signatures.unwrap_or(false),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[docker]`: the guest's dockerd.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    /// Bridge IP/prefix (`--bip`); must not overlap 172.17.0.0/16.
    #[serde(default = "default_bip")]
    pub bip: String,
    /// Allow a bip that overlaps the host's docker network.
    #[serde(default)]
    pub force_bip: bool,
    /// Seconds dockerd waits for containers on shutdown.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: u32,
    #[serde(default = "default_hosts")]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub storage_driver: Option<String>,
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Proxy settings for dockerd.
    #[serde(default)]
    pub proxy: Option<ProxySection>,
    /// CA certificates: added to the guest trust store, and for a registry
    /// also to `/etc/docker/certs.d/<registry>/ca.crt`.
    #[serde(default)]
    pub ca_certificates: Vec<CaCertificate>,
    /// Free-form keys merged into daemon.json.
    #[serde(default)]
    pub daemon: toml::Table,
}

impl DockerSection {
    /// The daemon.json keys the typed fields set; `docker.daemon` may not repeat them.
    pub const TYPED_KEYS: &'static [&'static str] = &["bip", "hosts", "insecure-registries", "registry-mirrors", "shutdown-timeout", "storage-driver"];
}

impl Default for DockerSection {
    fn default() -> Self {
        DockerSection {
            bip: default_bip(),
            force_bip: false,
            shutdown_timeout: default_shutdown_timeout(),
            hosts: default_hosts(),
            storage_driver: None,
            registry_mirrors: vec![],
            insecure_registries: vec![],
            proxy: None,
            ca_certificates: vec![],
            daemon: toml::Table::new(),
        }
    }
}

fn default_bip() -> String {
    "172.19.0.1/16".into()
}

fn default_shutdown_timeout() -> u32 {
    table_default_number("docker.shutdown_timeout")
}

fn default_hosts() -> Vec<String> {
    vec!["unix:///var/run/docker.sock".into(), "tcp://0.0.0.0:2375".into()]
}

/// dockerd proxy settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub https: Option<String>,
    #[serde(default)]
    pub no_proxy: Option<String>,
}

/// One extra CA certificate.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaCertificate {
    /// PEM file, relative to the recipe.
    pub file: String,
    /// Registry host[:port] this CA is for (adds `/etc/docker/certs.d/<registry>/ca.crt`).
    #[serde(default)]
    pub registry: Option<String>,
}

/// `[vm]`: defaults baked into the image's environment.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VmSection {
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    #[serde(default = "default_memory")]
    pub memory: String,
    #[serde(default = "default_disk")]
    pub docker_disk_size: String,
    /// `microvm` or `q35`.
    #[serde(default)]
    pub machine: Machine,
    /// Seconds the launcher waits for a graceful guest shutdown; must exceed
    /// `docker.shutdown_timeout`. Match it with `docker stop -t`.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: u32,
}

impl Default for VmSection {
    fn default() -> Self {
        VmSection {
            cpus: default_cpus(),
            memory: default_memory(),
            docker_disk_size: default_disk(),
            machine: Machine::default(),
            stop_timeout: default_stop_timeout(),
        }
    }
}

fn default_cpus() -> u32 {
    table_default_number("vm.cpus")
}
fn default_memory() -> String {
    table_default("vm.memory").into()
}
fn default_disk() -> String {
    table_default("vm.docker_disk_size").into()
}
fn default_stop_timeout() -> u32 {
    table_default_number("vm.stop_timeout")
}

/// `[rootfs]`: the ext4 image.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsSection {
    /// Fixed size (`512M`, `2G`); computed with headroom when absent.
    #[serde(default)]
    pub size: Option<Size>,
    /// Free space beyond the content when the size is computed: a share of
    /// the content (`"10%"`) or a size (`"64M"`). Default: 10% or 64 MiB,
    /// whichever is larger.
    #[serde(default)]
    pub free: Option<Free>,
    /// Remove what a headless VM never reads (docs, man and info pages,
    /// locales but C.UTF-8, lintian overrides). Default on.
    #[serde(default = "yes")]
    pub strip: bool,
    #[serde(default)]
    pub label: Option<String>,
}

impl Default for RootfsSection {
    fn default() -> Self {
        RootfsSection { size: None, free: None, strip: true, label: None }
    }
}

/// `[snapshot]`: what `dinv-build snapshot` saves (a booted, quiesced
/// guest the launcher restores instead of booting). Not part of `build`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// Off: `dinv-build snapshot` writes nothing for this image, so a
    /// release pipeline can call it for every image.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Guest memory of the saved VM (and the snapshot image's default
    /// `DINV_MEMORY`); default `vm.memory`. Less memory, less to load.
    #[serde(default)]
    pub memory: Option<String>,
    /// 9p devices the saved VM has: how many `DINV_MOUNTS` paths a restore
    /// can mount (more boots instead).
    #[serde(default = "default_snapshot_mounts")]
    pub mounts: u32,
    /// What the guest does before the save
    /// (`dinv_contract::snapshot::QUIESCE_STEPS`); default all but `page-out`.
    #[serde(default = "default_quiesce")]
    pub quiesce: Vec<String>,
}

impl Default for SnapshotSection {
    fn default() -> Self {
        SnapshotSection { enabled: true, memory: None, mounts: default_snapshot_mounts(), quiesce: default_quiesce() }
    }
}

fn default_snapshot_mounts() -> u32 {
    4
}

fn default_quiesce() -> Vec<String> {
    dinv_contract::snapshot::default_quiesce().into_iter().map(String::from).collect()
}

/// `[build]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// Fixed timestamp for every output; otherwise SOURCE_DATE_EPOCH or
    /// the newest package build time.
    #[serde(default)]
    pub source_date_epoch: Option<i64>,
}

/// `[[users]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub uid: u32,
    #[serde(default)]
    pub gid: Option<u32>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub home: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
}

/// `[[groups]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    #[serde(default)]
    pub members: Vec<String>,
}

/// `[[overlays]]`: a directory copied into the guest tree.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Overlay {
    /// Directory relative to the recipe.
    pub path: String,
    /// Where it lands in the guest (default `/`).
    #[serde(default)]
    pub dest: Option<String>,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// Mode for directories (default 0755).
    #[serde(default)]
    pub dir_mode: Option<u32>,
    /// Mode for files (default 0644; executables 0755).
    #[serde(default)]
    pub file_mode: Option<u32>,
    /// Per-path mode/owner overrides: `{ "/usr/local/bin/x" = { mode = 0o755 } }`.
    #[serde(default)]
    pub modes: BTreeMap<String, PathOverride>,
}

/// Mode/owner of one overlay path.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathOverride {
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

/// `[[files]]`: one file in the guest.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraFile {
    /// Absolute guest path.
    pub path: String,
    /// Inline content…
    #[serde(default)]
    pub content: Option<String>,
    /// …or a file relative to the recipe (`.j2` files are rendered).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default = "default_file_mode")]
    pub mode: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
}

fn default_file_mode() -> u32 {
    0o644
}
