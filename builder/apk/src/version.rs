//! apk version ordering, as apk-tools v2 (`apk_version_compare`) does it.
//!
//! A version is read as a sequence of tokens, each with a kind that also
//! fixes which kinds may follow: `1.2.3a_rc4-r5` is digit `1`, digit-or-zero
//! `2` and `3`, letter `a`, suffix `rc`, suffix number `4`, revision `5`.
//! Two versions compare token by token while the kinds agree; where they
//! part, the kind decides (a longer version is newer, unless what follows is
//! a pre-release suffix). Invalid versions still compare (deterministically),
//! exactly as apk-tools would order them.

use std::cmp::Ordering;

/// Token kinds, in apk's order: the ordering matters when two versions part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    /// A component after `.`: a leading zero makes it compare as a fraction.
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

/// Pre-release suffixes sort below the plain version (values -4..-1).
const PRE_SUFFIXES: [&str; 4] = ["alpha", "beta", "pre", "rc"];
/// Post-release suffixes sort above it (values 0..4).
const POST_SUFFIXES: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

/// apk-tools rejects numeric components this long (they could overflow).
const MAX_DIGITS: usize = 18;

#[derive(Clone)]
struct Tokens<'a> {
    rest: &'a [u8],
    /// Kind of the token the next call to [`Tokens::take`] reads.
    kind: Kind,
}

impl<'a> Tokens<'a> {
    fn new(v: &'a str) -> Self {
        Tokens { rest: v.as_bytes(), kind: Kind::Digit }
    }

    fn invalid(&mut self) -> i64 {
        self.kind = Kind::Invalid;
        -1
    }

    /// Reads the current token's value and moves to the next token.
    fn take(&mut self) -> i64 {
        if self.rest.is_empty() {
            self.kind = Kind::End;
            return 0;
        }
        let mut forced_next = None;
        let (value, used) = match self.kind {
            Kind::DigitOrZero if self.rest[0] == b'0' => {
                // `.005`: every zero but the last counts down (so more zeros
                // sort lower); the last zero and what follows are read next
                // as a plain number.
                let zeros = self.rest.iter().take_while(|&&c| c == b'0').count();
                forced_next = Some(Kind::Digit);
                (-((zeros - 1) as i64), zeros - 1)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                let n = self.rest.iter().take_while(|c| c.is_ascii_digit()).count();
                if n >= MAX_DIGITS {
                    return self.invalid();
                }
                let v = self.rest[..n].iter().fold(0i64, |v, &c| v * 10 + (c - b'0') as i64);
                (v, n)
            }
            Kind::Letter => (self.rest[0] as i64, 1),
            Kind::Suffix => {
                let starts = |s: &str| self.rest.starts_with(s.as_bytes());
                if let Some(i) = PRE_SUFFIXES.iter().position(|s| starts(s)) {
                    (i as i64 - PRE_SUFFIXES.len() as i64, PRE_SUFFIXES[i].len())
                } else if let Some(i) = POST_SUFFIXES.iter().position(|s| starts(s)) {
                    (i as i64, POST_SUFFIXES[i].len())
                } else {
                    return self.invalid();
                }
            }
            Kind::Invalid | Kind::End => return self.invalid(),
        };
        self.rest = &self.rest[used..];
        if self.rest.is_empty() {
            self.kind = Kind::End;
        } else if let Some(k) = forced_next {
            self.kind = k;
        } else {
            self.advance_kind();
        }
        value
    }

    /// Decides the next token's kind from the separator (consuming it).
    fn advance_kind(&mut self) {
        let c = self.rest[0];
        let prev = self.kind;
        let next = if matches!(prev, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() {
            Kind::Letter
        } else if prev == Kind::Letter && c.is_ascii_digit() {
            Kind::Digit
        } else if prev == Kind::Suffix && c.is_ascii_digit() {
            Kind::SuffixNo
        } else {
            self.rest = &self.rest[1..];
            match c {
                b'.' => Kind::DigitOrZero,
                b'_' => Kind::Suffix,
                b'-' if self.rest.first() == Some(&b'r') => {
                    self.rest = &self.rest[1..];
                    Kind::RevisionNo
                }
                _ => Kind::Invalid,
            }
        };
        // Kinds only move forward, except these three back-steps:
        // `1.2` (component after digits), `_rc1_p2` (suffix after suffix
        // number), `1a2` (digits after a letter).
        let allowed_back = matches!(
            (prev, next),
            (Kind::Digit, Kind::DigitOrZero) | (Kind::SuffixNo, Kind::Suffix) | (Kind::Letter, Kind::Digit)
        );
        self.kind = if next < prev && !allowed_back { Kind::Invalid } else { next };
    }
}

fn compare_impl(a: &str, b: &str, fuzzy: bool) -> Ordering {
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    let (mut av, mut bv) = (0i64, 0i64);
    while ta.kind == tb.kind && ta.kind != Kind::End && ta.kind != Kind::Invalid && av == bv {
        av = ta.take();
        bv = tb.take();
    }
    if av != bv {
        return av.cmp(&bv);
    }
    if ta.kind == tb.kind || fuzzy {
        return Ordering::Equal;
    }
    // The shorter one is older, unless the longer continues with a
    // pre-release suffix (`1.0_rc1` < `1.0`).
    if ta.kind == Kind::Suffix && ta.clone().take() < 0 {
        return Ordering::Less;
    }
    if tb.kind == Kind::Suffix && tb.clone().take() < 0 {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
}

/// Orders two apk versions like `apk_version_compare`.
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_impl(a, b, false)
}

/// Compares like [`compare`] but calls two versions equal when one is a
/// token-wise prefix of the other (apk's `~` comparison).
pub fn compare_fuzzy(a: &str, b: &str) -> Ordering {
    compare_impl(a, b, true)
}

/// Whether `version` matches `~pattern`: equal token by token up to where
/// either ends (`1.2.5` and `1.2-r3` match `~1.2`, `1.20` does not). As in
/// apk-tools v2 this is symmetric, so `1.2` also matches `~1.2.5`.
pub fn fuzzy_match(version: &str, pattern: &str) -> bool {
    compare_fuzzy(version, pattern) == Ordering::Equal
}

/// Whether apk-tools accepts `v` as a version (`apk_version_validate`).
/// Note that apk accepts the empty string.
pub fn is_valid(v: &str) -> bool {
    let mut t = Tokens::new(v);
    while t.kind != Kind::End && t.kind != Kind::Invalid {
        t.take();
    }
    t.kind == Kind::End
}

/// The apk version ordering as a [`dinv_solver::VersionScheme`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ApkVersions;

impl dinv_solver::VersionScheme for ApkVersions {
    fn compare(&self, a: &str, b: &str) -> Ordering {
        compare(a, b)
    }

    fn fuzzy_matches(&self, version: &str, pattern: &str) -> bool {
        fuzzy_match(version, pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(a: &str, b: &str, want: Ordering) {
        assert_eq!(compare(a, b), want, "{a} vs {b}");
        assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
    }

    #[test]
    fn numeric_components() {
        check("1.0", "1.1", Less);
        check("1.9", "1.10", Less);
        check("2", "1.99999", Greater);
        check("1.0", "1.0.1", Less);
        check("1.0.0", "1.0", Greater);
        check("10.0", "9.9.9", Greater);
        check("20230101", "20221231", Greater);
        check("1.2.3", "1.2.3", Equal);
        check("0", "0", Equal);
        // The first component has no leading-zero rule.
        check("01", "1", Equal);
        check("007", "7", Equal);
    }

    #[test]
    fn leading_zero_compares_as_fraction() {
        check("1.01", "1.1", Less);
        check("1.001", "1.01", Less);
        check("1.05", "1.1", Less);
        check("1.10", "1.05", Greater);
        check("1.050", "1.05", Greater);
        // `.00` sorts below `.0`: the extra zero counts down.
        check("1.00", "1.0", Less);
        check("1.0", "1.0", Equal);
        check("1.002.3", "1.002.3", Equal);
        check("1.002", "1.02", Less);
    }

    #[test]
    fn letters() {
        check("1.0a", "1.0b", Less);
        check("1.0", "1.0a", Less);
        check("1.0z", "1.1", Less);
        // A letter sorts below a further component.
        check("1.0a", "1.0.1", Less);
        check("1a2", "1a10", Less);
        check("1a2", "1b", Less);
    }

    #[test]
    fn suffixes() {
        let order = ["1.0_alpha", "1.0_beta", "1.0_pre", "1.0_rc", "1.0", "1.0_cvs", "1.0_svn", "1.0_git", "1.0_hg", "1.0_p"];
        for w in order.windows(2) {
            check(w[0], w[1], Less);
        }
        check("1.0_rc1", "1.0_rc2", Less);
        check("1.0_rc9", "1.0_rc10", Less);
        check("1.0_alpha", "1.0_alpha1", Less);
        check("1.0_alpha", "1.0_alpha0", Less);
        check("1.0_p1", "1.0_p2", Less);
        check("1.0_rc1", "1.0", Less);
        check("1.0_p1", "1.0", Greater);
        check("1.0_git20240101", "1.0_git20231231", Greater);
        check("1.0_alpha_beta", "1.0_alpha", Less);
        check("1.0_p1_p2", "1.0_p1", Greater);
        // `pre` wins over `p` by prefix order.
        check("1.0_pre1", "1.0_p1", Less);
    }

    #[test]
    fn revisions() {
        check("1.0", "1.0-r0", Less);
        check("1.0-r1", "1.0-r2", Less);
        check("1.0-r9", "1.0-r10", Less);
        check("1.0-r1", "1.0.1", Less);
        check("1.0_p1", "1.0-r1", Greater);
        check("1.0_rc1-r3", "1.0-r0", Less);
        check("1.0_rc1-r3", "1.0_rc1-r4", Less);
        check("1.0a-r5", "1.0-r5", Greater);
        check("24.0.7-r0", "24.0.9-r0", Less);
        check("24.0.10-r0", "24.0.9-r3", Greater);
    }

    #[test]
    fn invalid_versions_still_order() {
        // An unknown suffix is treated like a pre-release.
        check("1.0_foo", "1.0", Less);
        // Junk after a complete version sorts above it.
        check("1.0-x", "1.0", Greater);
        check("1.0-x", "1.0-x", Equal);
    }

    #[test]
    fn validity() {
        for v in [
            "1",
            "0",
            "1.2.3",
            "1.2.3a",
            "1.2.3_rc1",
            "1.2.3_p20230101-r5",
            "1.2a_beta2_p3-r10",
            "1.2.3_git20200101",
            "1a2",
            "1.0_alpha_beta",
            "1.0-r",
            "12345678901234567",
            // apk quirks: a leading letter reads as `0` then a letter; the
            // empty string is accepted.
            "v1.0",
            "",
        ] {
            assert!(is_valid(v), "{v:?} should be valid");
        }
        for v in [
            "1.0-x",
            "1.0A",
            "1.0_foo",
            "1a.2",
            "1.0-r1.2",
            "1.0-r1_p1",
            "1ab",
            "1.0_rc1.2",
            "1.0-r1a",
            "123456789012345678",
            "1.0 ",
        ] {
            assert!(!is_valid(v), "{v:?} should be invalid");
        }
    }

    #[test]
    fn fuzzy() {
        assert!(fuzzy_match("1.2", "1.2"));
        assert!(fuzzy_match("1.2.5", "1.2"));
        assert!(fuzzy_match("1.2-r3", "1.2"));
        assert!(fuzzy_match("1.2_rc1", "1.2"));
        assert!(fuzzy_match("1.2a", "1.2"));
        assert!(!fuzzy_match("1.20", "1.2"));
        assert!(!fuzzy_match("1.3", "1.2"));
        assert!(!fuzzy_match("1.2.5", "1.2.4"));
        // apk-tools v2 quirk: the comparison is symmetric.
        assert!(fuzzy_match("1.2", "1.2.5"));
        assert_eq!(compare_fuzzy("1.3.1", "1.2"), Greater);
    }

    #[test]
    fn scheme_sorts() {
        use dinv_solver::VersionScheme;
        let mut v = vec!["1.0-r1", "1.0_rc1", "0.9", "1.0", "1.0.1", "1.0_p1", "1.0a"];
        v.sort_by(|a, b| ApkVersions.compare(a, b));
        assert_eq!(v, ["0.9", "1.0_rc1", "1.0", "1.0-r1", "1.0_p1", "1.0a", "1.0.1"]);
    }
}
