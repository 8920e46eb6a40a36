//! Debian version ordering (Policy §5.6.12): `[epoch:]upstream[-revision]`,
//! compared part by part with dpkg's rules.

use std::cmp::Ordering;

use dinv_solver::VersionScheme;

use crate::DebError;

/// The Debian [`VersionScheme`], for the solver's `Universe`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DebVersions;

impl VersionScheme for DebVersions {
    fn compare(&self, a: &str, b: &str) -> Ordering {
        compare_versions(a, b)
    }
}

/// A version split into its three parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    /// Empty when the version has no `-`.
    pub revision: &'a str,
}

impl<'a> Version<'a> {
    /// Splits a version without validating its characters (dpkg compares
    /// even odd versions; [`validate_version`] is the strict check).
    pub fn split(v: &'a str) -> Version<'a> {
        let v = v.trim();
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse().unwrap_or(u64::MAX), rest)
            }
            _ => (0, v),
        };
        let (upstream, revision) = match rest.rfind('-') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        Version { epoch, upstream, revision }
    }
}

/// Checks a version string against Policy's syntax; the error says what is wrong.
pub fn validate_version(v: &str) -> Result<(), DebError> {
    let bad = |why: &str| DebError::malformed(format!("version {v:?}"), why);
    if v.is_empty() {
        return Err(bad("empty"));
    }
    if let Some((e, _)) = v.split_once(':') {
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("epoch is not a number"));
        }
    }
    let p = Version::split(v);
    if !p.upstream.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad("upstream version must start with a digit"));
    }
    let ok_up = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
    if !p.upstream.chars().all(ok_up) {
        return Err(bad("upstream version has a character outside [A-Za-z0-9.+~-:]"));
    }
    if !p.revision.chars().all(|c| c.is_ascii_alphanumeric() || ".+~".contains(c)) {
        return Err(bad("revision has a character outside [A-Za-z0-9.+~]"));
    }
    if v.contains('-') && p.revision.is_empty() {
        return Err(bad("empty revision after `-`"));
    }
    Ok(())
}

/// Compares two Debian versions the way dpkg does.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (Version::split(a), Version::split(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(a.upstream.as_bytes(), b.upstream.as_bytes()))
        .then_with(|| compare_part(a.revision.as_bytes(), b.revision.as_bytes()))
}

/// Sort weight of a non-digit character: `~` before the end of the string,
/// the end before letters, letters before everything else.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit runs (by [`weight`]) and digit
/// runs (numerically, leading zeros ignored).
fn compare_part(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        // Non-digit prefix.
        while a.first().is_some_and(|c| !c.is_ascii_digit()) || b.first().is_some_and(|c| !c.is_ascii_digit()) {
            let (wa, wb) = (weight(a.first().copied()), weight(b.first().copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            a = &a[1.min(a.len())..];
            b = &b[1.min(b.len())..];
        }
        // Digit run, compared as numbers of any length.
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let na = trim_zeros(&a[..da]);
        let nb = trim_zeros(&b[..db]);
        let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
        if o != Ordering::Equal {
            return o;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn ordering_vectors() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1.0", "1.0", Equal),
            ("1.0", "1.00", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.2", "1.10", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~~a", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0+", Less),
            ("1.0+", "1.0.", Less),
            ("1.0.", "1.0-", Greater),
            ("1.0a", "1.0b", Less),
            ("1.0Z", "1.0a", Less),
            ("1:0.1", "2.0", Greater),
            ("2:1.0", "10:0.1", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.0-1", "1.0", Greater),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("1.0-1+deb12u1", "1.0-1", Greater),
            ("1.0-1+deb12u1", "1.0-1+deb12u2", Less),
            ("1.0-1+b1", "1.0-1+deb12u1", Less),
            ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
            ("20.10.24+dfsg1-1+b3", "20.10.24+dfsg1-1", Greater),
            ("1.2.3-4-5", "1.2.3-4-6", Less),
            ("1.2.3-4-5", "1.2.3-5", Greater),
            ("000123", "123", Equal),
            ("1.000001", "1.1", Equal),
            ("99999999999999999999999", "99999999999999999999998", Greater),
            ("1.0", "1", Greater),
            ("1", "1.0~", Less),
            ("a", "b", Less),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
            ("1:2.38.1-5+deb12u3", "2.39", Greater),
            ("252.38-1~deb12u1", "252.38-1", Less),
            ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ("1.0+really0.9", "1.0", Greater),
            ("5.10", "5.9", Greater),
            ("0.0.0~git20230101", "0", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), *want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn sorting_is_total_and_stable() {
        let mut v = vec!["1.0", "1.0~rc1", "1:0.5", "1.0-1", "1.0+b1", "0.9", "1.0a", "1.0~~"];
        v.sort_by(|a, b| DebVersions.compare(a, b));
        assert_eq!(v, ["0.9", "1.0~~", "1.0~rc1", "1.0", "1.0-1", "1.0a", "1.0+b1", "1:0.5"]);
    }

    #[test]
    fn splits_parts() {
        assert_eq!(Version::split("2:1.2-3-4"), Version { epoch: 2, upstream: "1.2-3", revision: "4" });
        assert_eq!(Version::split("1.2"), Version { epoch: 0, upstream: "1.2", revision: "" });
    }

    #[test]
    fn validation() {
        for good in ["1.0", "1:2.3-4", "2.36-9+deb12u4", "1.0~rc1-0+b1", "0.1+git20230101.abc-1"] {
            validate_version(good).unwrap();
        }
        for bad in ["", "a1.0", "x:1.0", "1.0-", "1.0 2", "1.0_1", "1.0-1_2"] {
            assert!(validate_version(bad).is_err(), "{bad:?}");
        }
    }
}
