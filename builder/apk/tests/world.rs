//! Worlds resolved under apk-tools 2.14's rules, on index entries written as
//! APKINDEX text. Each case is a class of disagreement the differential
//! harness (`examples/apk_diff.rs`) found between us and apk-tools on real
//! Alpine indexes, rebuilt from our own small entries.

use dinv_apk::index::parse_text;
use dinv_apk::{ApkUniverse, IndexEntry, Repository, WorldError};

/// Resolves `world` over repositories given as (APKINDEX text, tag).
fn resolve(repos: &[(&str, Option<&str>)], world: &[&str]) -> Result<Vec<(String, Vec<String>)>, WorldError> {
    let entries: Vec<Vec<IndexEntry>> = repos.iter().map(|(t, _)| parse_text(t).unwrap()).collect();
    let rs: Vec<Repository> = entries.iter().zip(repos).map(|(e, (_, tag))| Repository { entries: e, tag: *tag }).collect();
    let u = ApkUniverse::new(&rs);
    let world: Vec<String> = world.iter().map(|s| s.to_string()).collect();
    let chosen = u.resolve(&world, "test")?;
    let mut out: Vec<(String, Vec<String>)> = chosen.iter().map(|c| (rs[c.repo].entries[c.entry].label(), c.reasons.clone())).collect();
    out.sort();
    Ok(out)
}

fn labels(r: &[(String, Vec<String>)]) -> Vec<&str> {
    r.iter().map(|(l, _)| l.as_str()).collect()
}

const ISL: &str = "\
P:gcc
V:13.2.1-r0
D:so:libisl.so.23 gmp

P:gmp
V:6.3.0-r0

P:isl25
V:0.25-r2
p:so:libisl.so.23=23.2.0

P:isl26
V:0.26-r1
p:so:libisl.so.23=23.3.0
";

#[test]
fn the_higher_provided_version_wins_and_resolve_says_why() {
    let r = resolve(&[(ISL, None)], &["gcc"]).unwrap();
    assert_eq!(labels(&r), ["gcc-13.2.1-r0", "gmp-6.3.0-r0", "isl26-0.26-r1"]);
    let isl = &r[2].1;
    assert!(
        isl.contains(&"chose isl26 over isl25: higher provided version of so:libisl.so.23 (23.3.0 > 23.2.0)".to_string()),
        "{isl:?}"
    );
    assert!(isl.contains(&"gcc depends on so:libisl.so.23".to_string()), "{isl:?}");
}

const SSH: &str = "\
P:dropbear-dbclient
V:2025.88-r1

P:dropbear-ssh
V:2025.88-r1
D:dropbear-dbclient !openssh-client
p:cmd:ssh=2025.88-r1

P:openssh-client-default
V:10.0_p1-r9
k:2
D:openssh-keygen=10.0_p1-r9
p:openssh-client=10.0_p1-r9 cmd:ssh=10.0_p1-r9

P:openssh-keygen
V:10.0_p1-r9

P:pssh
V:2.3.5-r3
D:cmd:ssh
";

#[test]
fn provided_version_comes_before_provider_priority() {
    let r = resolve(&[(SSH, None)], &["pssh"]).unwrap();
    assert_eq!(labels(&r), ["dropbear-dbclient-2025.88-r1", "dropbear-ssh-2025.88-r1", "pssh-2.3.5-r3"]);
    // Asking for the other provider by name: it then holds cmd:ssh alone.
    let r = resolve(&[(SSH, None)], &["pssh", "openssh-client-default"]).unwrap();
    assert_eq!(labels(&r), ["openssh-client-default-10.0_p1-r9", "openssh-keygen-10.0_p1-r9", "pssh-2.3.5-r3"]);
}

const CANBERRA: &str = "\
P:alsa-lib
V:1.2.10-r0

P:libcanberra
V:0.30-r9

P:libcanberra-alsa
V:0.30-r9
D:libcanberra=0.30-r9 alsa-lib
i:libcanberra=0.30-r9 alsa-lib !pulseaudio

P:libcanberra-oldpulse
V:0.30-r9
i:libcanberra=0.30-r9 !pulseaudio<10

P:pulseaudio
V:16.1-r11
";

#[test]
fn a_negated_install_if_condition_holds_only_when_decided_against() {
    // Nothing decides pulseaudio: apk-tools 2.14 leaves the name open, so
    // `!pulseaudio` is not met and libcanberra-alsa stays out.
    let r = resolve(&[(CANBERRA, None)], &["libcanberra", "alsa-lib"]).unwrap();
    assert_eq!(labels(&r), ["alsa-lib-1.2.10-r0", "libcanberra-0.30-r9"]);
    // pulseaudio 16 is installed: `!pulseaudio` fails, `!pulseaudio<10` holds.
    let r = resolve(&[(CANBERRA, None)], &["libcanberra", "alsa-lib", "pulseaudio"]).unwrap();
    assert_eq!(labels(&r), ["alsa-lib-1.2.10-r0", "libcanberra-0.30-r9", "libcanberra-oldpulse-0.30-r9", "pulseaudio-16.1-r11"]);
    let old = &r[2].1;
    assert!(old.iter().any(|x| x.starts_with("install_if (")), "{old:?}");
}

const DHCP: &str = "\
P:dhcp
V:4.4.3_p1-r4

P:dhcp-server-ldap
V:4.4.3_p1-r4
k:10
D:dhcp=4.4.3_p1-r4
p:dhcp-server=4.4.3_p1-r4 cmd:dhcpd=4.4.3_p1-r4

P:dhcp-server-vanilla
V:4.4.3_p1-r4
k:100
D:dhcp=4.4.3_p1-r4
p:dhcp-server=4.4.3_p1-r4 cmd:dhcpd=4.4.3_p1-r4
i:dhcp=4.4.3_p1-r4
";

#[test]
fn packages_providing_one_name_with_versions_exclude_each_other() {
    // vanilla's install_if is met (dhcp is there) but ldap already holds
    // dhcp-server and cmd:dhcpd.
    let r = resolve(&[(DHCP, None)], &["dhcp-server-ldap"]).unwrap();
    assert_eq!(labels(&r), ["dhcp-4.4.3_p1-r4", "dhcp-server-ldap-4.4.3_p1-r4"]);
    let r = resolve(&[(DHCP, None)], &["dhcp"]).unwrap();
    assert_eq!(labels(&r), ["dhcp-4.4.3_p1-r4", "dhcp-server-vanilla-4.4.3_p1-r4"]);
    let err = resolve(&[(DHCP, None)], &["dhcp-server-ldap", "dhcp-server-vanilla"]).unwrap_err();
    assert!(err.to_string().contains("both provide dhcp-server"), "{err}");
}

const MTA: &str = "\
P:cron
V:4.2-r0
D:mta

P:postfix
V:3.8-r0
p:mta

P:ssmtp
V:2.64-r0
p:mta
";

#[test]
fn providers_without_version_or_priority_serve_only_once_installed() {
    let err = resolve(&[(MTA, None)], &["cron"]).unwrap_err();
    assert!(err.to_string().contains("cron → mta: virtual name provided without a version or provider priority by postfix, ssmtp"), "{err}");
    let r = resolve(&[(MTA, None)], &["cron", "ssmtp"]).unwrap();
    assert_eq!(labels(&r), ["cron-4.2-r0", "ssmtp-2.64-r0"]);
    let with_k = MTA.replace("P:ssmtp\nV:2.64-r0\n", "P:ssmtp\nV:2.64-r0\nk:1\n");
    let r = resolve(&[(&with_k, None)], &["cron"]).unwrap();
    assert_eq!(labels(&r), ["cron-4.2-r0", "ssmtp-2.64-r0"]);
}

#[test]
fn a_provider_with_a_higher_version_beats_the_package_of_that_name() {
    let idx = "P:app\nV:1\nD:libfoo\n\nP:libfoo\nV:1.0-r0\n\nP:libfoo-ng\nV:0.5-r0\np:libfoo=2.0-r0\n";
    let r = resolve(&[(idx, None)], &["app"]).unwrap();
    assert_eq!(labels(&r), ["app-1", "libfoo-ng-0.5-r0"]);
}

const MAIN: &str = "P:tool\nV:1.0-r0\nD:lib\n\nP:lib\nV:1.0-r0\n";
const EDGE: &str = "P:tool\nV:2.0-r0\nD:lib>=2\n\nP:lib\nV:2.0-r0\n\nP:edgeonly\nV:1.0-r0\nD:lib\n";

#[test]
fn tagged_repositories_serve_tagged_requests_and_their_dependencies_only() {
    let repos = [(MAIN, None), (EDGE, Some("edge"))];
    // Untagged: main's tool, though edge has a newer one.
    assert_eq!(labels(&resolve(&repos, &["tool"]).unwrap()), ["lib-1.0-r0", "tool-1.0-r0"]);
    // Tagged: edge's tool, whose dependency only edge's lib meets.
    let r = resolve(&repos, &["tool@edge"]).unwrap();
    assert_eq!(labels(&r), ["lib-2.0-r0", "tool-2.0-r0"]);
    // A tagged package's plain dependency still prefers untagged repositories.
    let r = resolve(&repos, &["edgeonly@edge"]).unwrap();
    assert_eq!(labels(&r), ["edgeonly-1.0-r0", "lib-1.0-r0"]);
    let err = resolve(&repos, &["edgeonly"]).unwrap_err();
    assert!(err.to_string().contains("only in repositories tagged @edge (ask for edgeonly@edge)"), "{err}");
}

/// The official indexes in the steering repository's `shared/reference/`
/// (next to this checkout), or `$DINV_ALPINE_INDEXES`.
fn official(rel: &[&str]) -> Option<Vec<Vec<IndexEntry>>> {
    let root = std::env::var_os("DINV_ALPINE_INDEXES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/alpine-indexes"));
    if !root.is_dir() {
        eprintln!("skipped: no official indexes at {}", root.display());
        return None;
    }
    let mut keys = dinv_apk::Keyring::new();
    let key_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../keys/alpine");
    for f in std::fs::read_dir(&key_dir).unwrap().map(|f| f.unwrap().path()) {
        if f.extension().is_some_and(|e| e == "pub") {
            keys.load_file(&f).unwrap();
        }
    }
    Some(
        rel.iter()
            .map(|r| {
                let bytes = std::fs::read(root.join(r).join("x86_64/APKINDEX.tar.gz")).unwrap();
                dinv_apk::index::read_index(&bytes, &keys).unwrap().entries
            })
            .collect(),
    )
}

fn names(indexes: &[Vec<IndexEntry>], world: &[&str]) -> Vec<String> {
    let rs: Vec<Repository> = indexes.iter().map(|e| Repository { entries: e, tag: None }).collect();
    let world: Vec<String> = world.iter().map(|s| s.to_string()).collect();
    let chosen = ApkUniverse::new(&rs).resolve(&world, "test").unwrap();
    let mut v: Vec<String> = chosen.iter().map(|c| rs[c.repo].entries[c.entry].name.clone()).collect();
    v.sort();
    v
}

/// The three disagreements of issue 24 on the real indexes, with what
/// apk-tools 2.14.9 installs (`apk add --simulate` on an empty root).
#[test]
fn official_indexes_resolve_as_apk_tools_does() {
    if let Some(v322) = official(&["v3.22/main"]) {
        let gcc = names(&v322, &["gcc"]);
        assert!(gcc.contains(&"isl26".to_string()) && !gcc.contains(&"isl25".to_string()), "{gcc:?}");
        let pssh = names(&v322, &["pssh"]);
        assert!(pssh.contains(&"dropbear-ssh".to_string()) && pssh.contains(&"dropbear-dbclient".to_string()), "{pssh:?}");
        assert!(!pssh.iter().any(|n| n.starts_with("openssh-client")), "{pssh:?}");
    }
    if let Some(v319) = official(&["v3.19/main", "v3.19/community"]) {
        let ldap = names(&v319, &["dhcp-server-ldap"]);
        assert!(ldap.contains(&"dhcp".to_string()) && !ldap.contains(&"dhcp-server-vanilla".to_string()), "{ldap:?}");
        let canberra = names(&v319, &["libcanberra", "alsa-lib"]);
        assert!(!canberra.contains(&"libcanberra-alsa".to_string()), "{canberra:?}");
        let with_pulse = names(&v319, &["libcanberra", "alsa-lib", "pulseaudio"]);
        assert!(with_pulse.contains(&"libcanberra-pulse".to_string()) && !with_pulse.contains(&"libcanberra-alsa".to_string()), "{with_pulse:?}");
    }
}

const SECRETS: &str = "\
P:app
V:1
D:dbus:secrets kde-thing

P:app2
V:1
D:kde-thing dbus:secrets

P:gnome-keyring
V:42
k:100
p:dbus:secrets

P:kde-thing
V:1
D:kwallet

P:keepassxc
V:2
k:5
D:kwallet
p:dbus:secrets

P:kwallet
V:5
k:10
p:dbus:secrets
";

#[test]
fn names_are_decided_in_apks_order() {
    // apk decides dbus:secrets before kwallet when its walk finished
    // dbus:secrets last (app lists it first): the name takes its best
    // provider, gnome-keyring, and kwallet comes too. Listed the other way
    // round, kwallet is decided first and already provides the name.
    let r = resolve(&[(SECRETS, None)], &["app"]).unwrap();
    assert_eq!(labels(&r), ["app-1", "gnome-keyring-42", "kde-thing-1", "kwallet-5"]);
    let r = resolve(&[(SECRETS, None)], &["app2"]).unwrap();
    assert_eq!(labels(&r), ["app2-1", "kde-thing-1", "kwallet-5"]);
}
