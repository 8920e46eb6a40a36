//! `DOCKER_TLS_CERTDIR`, docker:dind style: a CA, a server and a client
//! certificate, made in Rust (ECDSA P-256, RustCrypto) on first start and
//! kept across restarts.
//!
//! Layout (as docker:dind): `ca/{cert,key}.pem`, `server/{ca,cert,key}.pem`,
//! `client/{ca,cert,key}.pem`. Kept as they are when valid: the CA while its
//! key and certificate are there; a leaf while it is signed by that CA, has
//! more than [`RENEW_BEFORE`] left and (server) names every wanted SAN, so a
//! new container address gets a new server certificate from the same CA and
//! clients keep working. `server/*` without `ca/key.pem` is a user-managed
//! set and used untouched. Private keys are 0600 except the client's (0644,
//! meant to be shared with other containers, as docker:dind does).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::Ia5String;
use x509_cert::der::{Decode, DecodePem, Encode, EncodePem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use super::LauncherError;

/// Validity of the CA.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Validity of server and client certificates (docker:dind's 825 days).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(825 * 86_400);
/// A leaf with less than this left is issued again at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

pub use dinv_contract::settings::San;

/// A subject alternative name as the certificate holds it.
fn general_name(san: &San) -> Result<GeneralName, String> {
    match san {
        San::Dns(d) => Ia5String::new(d).map(GeneralName::DnsName).map_err(|e| format!("DNS name {d:?}: {e}")),
        San::Ip(ip) => Ok(GeneralName::from(*ip)),
    }
}

/// The three sub-directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ca,
    Server,
    Client,
}

impl Role {
    fn dir(self) -> &'static str {
        match self {
            Role::Ca => "ca",
            Role::Server => "server",
            Role::Client => "client",
        }
    }
    fn common_name(self) -> &'static str {
        match self {
            Role::Ca => "CN=dinv CA",
            Role::Server => "CN=dinv server",
            Role::Client => "CN=dinv client",
        }
    }
}

/// A `DOCKER_TLS_CERTDIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertDir(pub PathBuf);

impl CertDir {
    /// `<dir>/<role>/<name>` (name: `ca.pem`, `cert.pem` or `key.pem`).
    pub fn file(&self, role: Role, name: &str) -> PathBuf {
        self.0.join(role.dir()).join(name)
    }
    /// Where the docker CLI finds the client files (`DOCKER_CERT_PATH`).
    pub fn client_dir(&self) -> PathBuf {
        self.0.join(Role::Client.dir())
    }
}

/// What [`ensure`] did, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Files written, relative to the directory (`ca/cert.pem`...).
    pub written: Vec<String>,
    /// True when `server/` is user-managed (no `ca/key.pem`).
    pub external: bool,
}

/// A key and its certificate.
struct Pair {
    key: SigningKey,
    cert: Certificate,
}

fn err(path: &Path, why: impl Into<String>) -> LauncherError {
    LauncherError::Config { path: path.to_path_buf(), why: why.into() }
}

fn serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut bytes).map_err(|e| format!("random serial: {e}"))?;
    // Positive and minimal in DER: first byte 0x01..=0x7f.
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::new(&bytes).map_err(|e| e.to_string())
}

fn validity(now: SystemTime, length: Duration) -> Result<Validity, String> {
    // An hour of slack for clocks a little behind ours (the guest's, a client's).
    let from = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    let time = |t: SystemTime| Time::try_from(t).map_err(|e| format!("certificate time: {e}"));
    Ok(Validity { not_before: time(from)?, not_after: time(now + length)? })
}

fn spki(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, String> {
    let der = VerifyingKey::from(key).to_public_key_der().map_err(|e| e.to_string())?;
    SubjectPublicKeyInfoOwned::from_der(der.as_bytes()).map_err(|e| e.to_string())
}

fn new_key() -> SigningKey {
    SigningKey::random(&mut rand_core::OsRng)
}

/// A self-signed CA.
fn issue_ca(now: SystemTime) -> Result<Pair, String> {
    let key = new_key();
    let name = Name::from_str(Role::Ca.common_name()).map_err(|e| e.to_string())?;
    let b = CertificateBuilder::new(Profile::Root, serial()?, validity(now, CA_VALIDITY)?, name, spki(&key)?, &key)
        .map_err(|e| format!("CA certificate: {e}"))?;
    let cert = b.build::<DerSignature>().map_err(|e| format!("signing the CA certificate: {e}"))?;
    Ok(Pair { key, cert })
}

/// A server (`sans` non-empty) or client certificate signed by `ca`.
fn issue_leaf(ca: &Pair, role: Role, sans: &[San], now: SystemTime) -> Result<Pair, String> {
    let key = new_key();
    let profile = Profile::Leaf { issuer: ca.cert.tbs_certificate.subject.clone(), enable_key_agreement: false, enable_key_encipherment: false };
    let name = Name::from_str(role.common_name()).map_err(|e| e.to_string())?;
    let mut b = CertificateBuilder::new(profile, serial()?, validity(now, LEAF_VALIDITY)?, name, spki(&key)?, &ca.key)
        .map_err(|e| format!("{} certificate: {e}", role.dir()))?;
    let usage = match role {
        Role::Server => const_oid_server_auth(),
        _ => const_oid_client_auth(),
    };
    b.add_extension(&ExtendedKeyUsage(vec![usage])).map_err(|e| e.to_string())?;
    if !sans.is_empty() {
        let names = sans.iter().map(general_name).collect::<Result<Vec<_>, _>>()?;
        b.add_extension(&SubjectAltName(names)).map_err(|e| e.to_string())?;
    }
    let cert = b.build::<DerSignature>().map_err(|e| format!("signing the {} certificate: {e}", role.dir()))?;
    Ok(Pair { key, cert })
}

fn const_oid_server_auth() -> x509_cert::der::oid::ObjectIdentifier {
    x509_cert::der::oid::db::rfc5280::ID_KP_SERVER_AUTH
}

fn const_oid_client_auth() -> x509_cert::der::oid::ObjectIdentifier {
    x509_cert::der::oid::db::rfc5280::ID_KP_CLIENT_AUTH
}

/// The SANs a certificate names (empty without the extension).
pub fn sans_of(cert: &Certificate) -> Vec<San> {
    let Some(ext) = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == x509_cert::der::oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME)
    else {
        return Vec::new();
    };
    let Ok(SubjectAltName(names)) = SubjectAltName::from_der(ext.extn_value.as_bytes()) else { return Vec::new() };
    names
        .into_iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(San::Dns(d.to_string())),
            GeneralName::IpAddress(o) => match o.as_bytes().len() {
                4 => <[u8; 4]>::try_from(o.as_bytes()).ok().map(|b| San::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(o.as_bytes()).ok().map(|b| San::Ip(IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// True when `cert` carries a valid signature by `issuer`'s key.
pub fn signed_by(cert: &Certificate, issuer: &VerifyingKey) -> bool {
    let Ok(tbs) = cert.tbs_certificate.to_der() else { return false };
    let Some(sig) = cert.signature.as_bytes().and_then(|b| DerSignature::from_bytes(b).ok()) else { return false };
    issuer.verify(&tbs, &sig).is_ok()
}

fn read(path: &Path) -> Result<Option<String>, LauncherError> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LauncherError::Io { path: path.to_path_buf(), what: "reading", source: e }),
    }
}

fn parse_cert(path: &Path, pem: &str) -> Result<Certificate, LauncherError> {
    Certificate::from_pem(pem.as_bytes()).map_err(|e| err(path, format!("not a PEM certificate: {e}")))
}

fn parse_key(path: &Path, pem: &str) -> Result<SigningKey, LauncherError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| err(path, format!("not a PKCS#8 ECDSA P-256 key (the only kind dinv signs with): {e}")))
}

/// Writes `contents` to `path` with `mode`, atomically (temp file + rename).
fn write(path: &Path, contents: &str, mode: u32) -> Result<(), LauncherError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("cert files live in a sub-directory");
    std::fs::create_dir_all(dir).map_err(LauncherError::io(dir, "creating"))?;
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(LauncherError::io(&tmp, "creating"))?;
    f.write_all(contents.as_bytes()).and_then(|()| f.sync_all()).map_err(LauncherError::io(&tmp, "writing"))?;
    std::fs::rename(&tmp, path).map_err(LauncherError::io(path, "replacing"))
}

fn cert_pem(path: &Path, c: &Certificate) -> Result<String, LauncherError> {
    c.to_pem(LineEnding::LF).map_err(|e| err(path, format!("encoding: {e}")))
}

fn key_pem(path: &Path, k: &SigningKey) -> Result<String, LauncherError> {
    k.to_pkcs8_pem(LineEnding::LF).map(|z| z.to_string()).map_err(|e| err(path, format!("encoding: {e}")))
}

/// Makes sure `dir` holds a usable CA, server and client set for `sans`,
/// creating or renewing what is missing, invalid or about to expire.
pub fn ensure(dir: &CertDir, sans: &[San], now: SystemTime) -> Result<Outcome, LauncherError> {
    let mut out = Outcome::default();
    let f = |role, name| dir.file(role, name);
    let (ca_key_path, ca_cert_path) = (f(Role::Ca, "key.pem"), f(Role::Ca, "cert.pem"));
    let ca_key = read(&ca_key_path)?;
    if ca_key.is_none() && ["ca.pem", "cert.pem", "key.pem"].iter().all(|n| f(Role::Server, n).is_file()) {
        // User-managed: only check that the files parse.
        parse_cert(&f(Role::Server, "cert.pem"), &read(&f(Role::Server, "cert.pem"))?.unwrap_or_default())?;
        out.external = true;
        return Ok(out);
    }
    let ca_cert = read(&ca_cert_path)?;
    let mut fresh_ca = false;
    let ca = match (ca_key, ca_cert) {
        (Some(k), Some(c)) => Pair { key: parse_key(&ca_key_path, &k)?, cert: parse_cert(&ca_cert_path, &c)? },
        (None, Some(_)) => return Err(err(&ca_key_path, "missing: ca/cert.pem is there but not its key, so no server certificate can be signed (add ca/key.pem, or provide server/{ca,cert,key}.pem)")),
        _ => {
            let ca = issue_ca(now).map_err(|why| err(&ca_cert_path, why))?;
            write(&ca_key_path, &key_pem(&ca_key_path, &ca.key)?, 0o600)?;
            write(&ca_cert_path, &cert_pem(&ca_cert_path, &ca.cert)?, 0o644)?;
            out.written.extend(["ca/key.pem".to_string(), "ca/cert.pem".to_string()]);
            fresh_ca = true;
            ca
        }
    };
    let ca_pem = cert_pem(&ca_cert_path, &ca.cert)?;
    let ca_public = VerifyingKey::from(&ca.key);
    for (role, wanted, key_mode) in [(Role::Server, sans, 0o600), (Role::Client, &[][..], 0o644)] {
        let (key_path, cert_path, chain_path) = (f(role, "key.pem"), f(role, "cert.pem"), f(role, "ca.pem"));
        let keep = !fresh_ca
            && read(&key_path)?.is_some_and(|k| parse_key(&key_path, &k).is_ok())
            && read(&chain_path)?.is_some_and(|c| parse_cert(&chain_path, &c).is_ok_and(|c| c == ca.cert))
            && read(&cert_path)?.and_then(|c| parse_cert(&cert_path, &c).ok()).is_some_and(|c| {
                let left = SystemTime::from(c.tbs_certificate.validity.not_after).duration_since(now).unwrap_or_default();
                let named = sans_of(&c);
                signed_by(&c, &ca_public) && left > RENEW_BEFORE && wanted.iter().all(|s| named.contains(s))
            });
        if keep {
            continue;
        }
        let leaf = issue_leaf(&ca, role, wanted, now).map_err(|why| err(&cert_path, why))?;
        write(&key_path, &key_pem(&key_path, &leaf.key)?, key_mode)?;
        write(&cert_path, &cert_pem(&cert_path, &leaf.cert)?, 0o644)?;
        write(&chain_path, &ca_pem, 0o644)?;
        out.written.extend(["key.pem", "cert.pem", "ca.pem"].map(|n| format!("{}/{n}", role.dir())));
    }
    Ok(out)
}

/// The server certificate's names: `localhost`, `docker`, the loopback
/// addresses, `hostname`, every address in `ips` and `extra`; sorted, no
/// duplicates.
pub fn server_sans(hostname: Option<&str>, ips: &[IpAddr], extra: &[San]) -> Vec<San> {
    let mut v = vec![San::Dns("localhost".into()), San::Dns("docker".into()), San::Ip([127, 0, 0, 1].into()), San::Ip(std::net::Ipv6Addr::LOCALHOST.into())];
    if let Some(h) = hostname.map(str::trim).filter(|h| !h.is_empty() && h.is_ascii()) {
        v.push(San::Dns(h.to_string()));
    }
    v.extend(ips.iter().map(|ip| San::Ip(*ip)));
    v.extend(extra.iter().cloned());
    v.sort();
    v.dedup();
    v
}

/// This container's host name and interface addresses.
pub fn container_identity() -> (Option<String>, Vec<IpAddr>) {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let host = (unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0)
        .then(|| String::from_utf8_lossy(&buf[..buf.iter().position(|&b| b == 0).unwrap_or(buf.len())]).into_owned());
    let mut ips = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut list) == 0 {
            let mut p = list;
            while !p.is_null() {
                let a = (*p).ifa_addr;
                if !a.is_null() {
                    match (*a).sa_family as libc::c_int {
                        libc::AF_INET => ips.push(IpAddr::from((*(a as *const libc::sockaddr_in)).sin_addr.s_addr.to_ne_bytes())),
                        libc::AF_INET6 => ips.push(IpAddr::from((*(a as *const libc::sockaddr_in6)).sin6_addr.s6_addr)),
                        _ => {}
                    }
                }
                p = (*p).ifa_next;
            }
            libc::freeifaddrs(list);
        }
    }
    (host, ips)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dinv-certs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn load(dir: &CertDir, role: Role, name: &str) -> Certificate {
        Certificate::from_pem(std::fs::read(dir.file(role, name)).unwrap()).unwrap()
    }

    fn snapshot(dir: &CertDir) -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for role in [Role::Ca, Role::Server, Role::Client] {
            for n in ["ca.pem", "cert.pem", "key.pem"] {
                if let Ok(b) = std::fs::read(dir.file(role, n)) {
                    v.push((format!("{}/{n}", role.dir()), b));
                }
            }
        }
        v
    }

    pub(crate) fn sans() -> Vec<San> {
        server_sans(Some("dinv-host"), &["172.17.0.5".parse().unwrap()], &[])
    }

    #[test]
    fn first_start_creates_a_verifying_chain_with_the_sans() {
        let root = tempdir("first");
        let dir = CertDir(root.clone());
        let now = SystemTime::now();
        let out = ensure(&dir, &sans(), now).unwrap();
        assert_eq!(out.written.len(), 8, "{:?}", out.written);
        let ca = load(&dir, Role::Ca, "cert.pem");
        let ca_key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.file(Role::Ca, "key.pem")).unwrap()).unwrap();
        let ca_public = VerifyingKey::from(&ca_key);
        assert!(signed_by(&ca, &ca_public), "the CA is self-signed");
        for role in [Role::Server, Role::Client] {
            let c = load(&dir, role, "cert.pem");
            assert!(signed_by(&c, &ca_public), "{role:?} certificate verifies against the CA");
            assert_eq!(c.tbs_certificate.issuer, ca.tbs_certificate.subject);
            assert_eq!(load(&dir, role, "ca.pem"), ca);
            // The key in key.pem is the certificate's.
            let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.file(role, "key.pem")).unwrap()).unwrap();
            assert_eq!(spki(&key).unwrap(), c.tbs_certificate.subject_public_key_info);
        }
        let server = load(&dir, Role::Server, "cert.pem");
        let named = sans_of(&server);
        for want in ["localhost", "docker", "dinv-host"] {
            assert!(named.contains(&San::Dns(want.into())), "{want} in {named:?}");
        }
        for want in ["127.0.0.1", "::1", "172.17.0.5"] {
            assert!(named.contains(&San::Ip(want.parse().unwrap())), "{want} in {named:?}");
        }
        assert!(sans_of(&load(&dir, Role::Client, "cert.pem")).is_empty());
        let mode = |role, n| std::fs::metadata(dir.file(role, n)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(Role::Ca, "key.pem"), mode(Role::Server, "key.pem"), mode(Role::Client, "key.pem")), (0o600, 0o600, 0o644));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn later_starts_keep_everything_and_renew_only_what_needs_it() {
        let root = tempdir("reuse");
        let dir = CertDir(root.clone());
        let now = SystemTime::now();
        ensure(&dir, &sans(), now).unwrap();
        let before = snapshot(&dir);
        assert_eq!(ensure(&dir, &sans(), now).unwrap(), Outcome::default());
        assert_eq!(snapshot(&dir), before, "nothing rewritten on a second start");
        // Fewer names wanted: still covered, kept.
        assert_eq!(ensure(&dir, &sans()[..2], now).unwrap(), Outcome::default());

        // A new container address: a new server certificate from the same CA; the client set stays.
        let moved = server_sans(Some("dinv-host"), &["172.17.0.9".parse().unwrap()], &[]);
        let out = ensure(&dir, &moved, now).unwrap();
        assert_eq!(out.written, ["server/key.pem", "server/cert.pem", "server/ca.pem"]);
        let after = snapshot(&dir);
        let changed: Vec<&str> = before.iter().zip(&after).filter(|(a, b)| a != b).map(|(a, _)| a.0.as_str()).collect();
        assert_eq!(changed, ["server/cert.pem", "server/key.pem"]);
        assert!(sans_of(&load(&dir, Role::Server, "cert.pem")).contains(&San::Ip("172.17.0.9".parse().unwrap())));

        // Close to expiry (two years on): both leaves are renewed, the CA kept.
        let later = now + LEAF_VALIDITY - RENEW_BEFORE / 2;
        let out = ensure(&dir, &moved, later).unwrap();
        assert_eq!(out.written.len(), 6, "{:?}", out.written);
        assert!(!out.written.iter().any(|w| w.starts_with("ca/")));

        // A damaged client certificate is replaced.
        std::fs::write(dir.file(Role::Client, "cert.pem"), "junk").unwrap();
        assert_eq!(ensure(&dir, &moved, later).unwrap().written, ["client/key.pem", "client/cert.pem", "client/ca.pem"]);

        // A new CA (its files and server/ca.pem removed) means new leaves too.
        for (role, n) in [(Role::Ca, "cert.pem"), (Role::Ca, "key.pem"), (Role::Server, "ca.pem")] {
            std::fs::remove_file(dir.file(role, n)).unwrap();
        }
        assert_eq!(ensure(&dir, &moved, later).unwrap().written.len(), 8);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn user_managed_and_broken_sets() {
        let root = tempdir("user");
        let dir = CertDir(root.clone());
        ensure(&dir, &sans(), SystemTime::now()).unwrap();
        // Without the CA key, server/ is the user's and left alone.
        std::fs::remove_file(dir.file(Role::Ca, "key.pem")).unwrap();
        let before = snapshot(&dir);
        let out = ensure(&dir, &sans(), SystemTime::now()).unwrap();
        assert!(out.external && out.written.is_empty());
        assert_eq!(snapshot(&dir), before);
        // ... unless server/ is incomplete: nothing can sign a new one.
        std::fs::remove_file(dir.file(Role::Server, "cert.pem")).unwrap();
        let e = ensure(&dir, &sans(), SystemTime::now()).unwrap_err().to_string();
        assert!(e.contains("ca/key.pem") && e.contains("missing"), "{e}");
        // A CA key we cannot use is reported with its path, never overwritten.
        std::fs::write(dir.file(Role::Ca, "key.pem"), "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        let e = ensure(&dir, &sans(), SystemTime::now()).unwrap_err().to_string();
        assert!(e.contains("ca/key.pem") && e.contains("PKCS#8"), "{e}");
        std::fs::remove_dir_all(root).unwrap();
    }

    /// `DOCKER_TLS_SAN` through the settings table.
    fn parse_extra_sans(v: &str) -> Result<Vec<San>, String> {
        use dinv_contract::settings::{setting, Value, TLS_SAN};
        match setting(TLS_SAN).parse(v) {
            Ok(Value::Sans(s)) => Ok(s),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.why),
        }
    }

    #[test]
    fn extra_sans_and_defaults() {
        assert_eq!(
            parse_extra_sans("DNS:dind.example, IP:10.1.2.3 dns:other").unwrap(),
            vec![San::Dns("dind.example".into()), San::Ip("10.1.2.3".parse().unwrap()), San::Dns("other".into())]
        );
        for bad in ["dind.example", "IP:nope", "DNS:", "URI:x"] {
            assert!(parse_extra_sans(bad).is_err(), "{bad}");
        }
        let s = server_sans(Some("h\n"), &["127.0.0.1".parse().unwrap()], &[San::Dns("docker".into())]);
        assert_eq!(s.iter().filter(|x| **x == San::Ip("127.0.0.1".parse().unwrap())).count(), 1, "deduplicated");
        assert!(s.contains(&San::Dns("h".into())));
        let (_, ips) = container_identity();
        assert!(ips.contains(&"127.0.0.1".parse().unwrap()), "{ips:?}");
    }
}
