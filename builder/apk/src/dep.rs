//! apk dependency atoms: `[!]name[@tag][op version]`, as used by `D:`,
//! `p:`, `i:` and `.PKGINFO`'s `depend`/`provides`/`install_if`/`replaces`.

use std::cmp::Ordering;
use std::fmt;

use crate::version;

/// A version operator. apk builds it from any run of `<`, `>`, `=`, `~`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApkOp {
    /// No version given.
    Any,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `~` (or `=~`): fuzzy equal, see [`version::fuzzy_match`].
    Fuzzy,
    /// `<~`: older than, or fuzzy equal to, the version.
    LtFuzzy,
    /// `>~`: newer than, or fuzzy equal to, the version.
    GtFuzzy,
    /// `><`: the version is a package checksum (`Q1…`), not a version.
    Checksum,
}

impl ApkOp {
    /// The operator as apk writes it (empty for [`ApkOp::Any`]).
    pub fn as_str(self) -> &'static str {
        match self {
            ApkOp::Any => "",
            ApkOp::Lt => "<",
            ApkOp::Le => "<=",
            ApkOp::Eq => "=",
            ApkOp::Ge => ">=",
            ApkOp::Gt => ">",
            ApkOp::Fuzzy => "~",
            ApkOp::LtFuzzy => "<~",
            ApkOp::GtFuzzy => ">~",
            ApkOp::Checksum => "><",
        }
    }

    fn from_chars(op: &str) -> Option<ApkOp> {
        let (mut lt, mut gt, mut eq, mut fz) = (false, false, false, false);
        for c in op.chars() {
            match c {
                '<' => lt = true,
                '>' => gt = true,
                '=' => eq = true,
                '~' => fz = true,
                _ => return None,
            }
        }
        Some(match (lt, gt, eq, fz) {
            (true, true, false, false) => ApkOp::Checksum,
            (true, false, false, false) => ApkOp::Lt,
            (true, false, true, false) => ApkOp::Le,
            (false, false, true, false) => ApkOp::Eq,
            (false, true, true, false) => ApkOp::Ge,
            (false, true, false, false) => ApkOp::Gt,
            (false, false, _, true) => ApkOp::Fuzzy,
            (true, false, _, true) => ApkOp::LtFuzzy,
            (false, true, _, true) => ApkOp::GtFuzzy,
            // `<>=`, `<>~`: accepted by apk but meaningless.
            _ => return None,
        })
    }
}

/// One dependency atom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApkDep {
    /// Package or virtual name (`so:libz.so.1`, `cmd:sh`).
    pub name: String,
    /// Repository tag without the `@` (`foo@edge` → `edge`).
    pub tag: Option<String>,
    /// `!name`: must not be installed (or not in the given versions).
    pub conflict: bool,
    /// The version operator.
    pub op: ApkOp,
    /// Empty when `op` is [`ApkOp::Any`].
    /// The version (or checksum for [`ApkOp::Checksum`]).
    pub version: String,
}

/// A dependency atom apk-tools would refuse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dependency {text:?}: {why}")]
pub struct DepParseError {
    /// The atom as written.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '~')
}

impl ApkDep {
    /// Parses one atom (no spaces).
    pub fn parse(text: &str) -> Result<ApkDep, DepParseError> {
        let err = |why| DepParseError { text: text.to_string(), why };
        let (conflict, body) = match text.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, text),
        };
        let (name_tag, op, ver) = match body.find(is_op_char) {
            Some(i) => {
                let rest = &body[i..];
                let op_len = rest.find(|c| !is_op_char(c)).ok_or_else(|| err("operator without a version"))?;
                let op = ApkOp::from_chars(&rest[..op_len]).ok_or_else(|| err("unsupported operator"))?;
                let ver = &rest[op_len..];
                if op != ApkOp::Checksum && !version::is_valid(ver) {
                    return Err(err("invalid version"));
                }
                (&body[..i], op, ver)
            }
            None => (body, ApkOp::Any, ""),
        };
        let (name, tag) = match name_tag.split_once('@') {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(err("empty name"));
        }
        Ok(ApkDep { name: name.to_string(), tag, conflict, op, version: ver.to_string() })
    }

    /// Parses a space- or newline-separated list of atoms.
    pub fn parse_list(text: &str) -> Result<Vec<ApkDep>, DepParseError> {
        text.split([' ', '\n']).filter(|s| !s.is_empty()).map(ApkDep::parse).collect()
    }

    /// Whether a provider at `version` satisfies the version part (the
    /// conflict flag is the caller's business). [`ApkOp::Checksum`] never
    /// matches a version.
    pub fn matches_version(&self, version: &str) -> bool {
        let plain = || version::compare(version, &self.version);
        let fuzzy = || version::compare_fuzzy(version, &self.version);
        match self.op {
            ApkOp::Any => true,
            ApkOp::Lt => plain() == Ordering::Less,
            ApkOp::Le => plain() != Ordering::Greater,
            ApkOp::Eq => plain() == Ordering::Equal,
            ApkOp::Ge => plain() != Ordering::Less,
            ApkOp::Gt => plain() == Ordering::Greater,
            ApkOp::Fuzzy => fuzzy() == Ordering::Equal,
            ApkOp::LtFuzzy => fuzzy() != Ordering::Greater,
            ApkOp::GtFuzzy => fuzzy() != Ordering::Less,
            ApkOp::Checksum => false,
        }
    }
}

impl fmt::Display for ApkDep {
    /// The atom as apk writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        f.write_str(&self.name)?;
        if let Some(t) = &self.tag {
            write!(f, "@{t}")?;
        }
        write!(f, "{}{}", self.op.as_str(), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> ApkDep {
        ApkDep::parse(s).unwrap()
    }

    #[test]
    fn parses_every_operator() {
        for (text, op) in [
            ("a", ApkOp::Any),
            ("a<1", ApkOp::Lt),
            ("a<=1", ApkOp::Le),
            ("a=<1", ApkOp::Le),
            ("a=1", ApkOp::Eq),
            ("a>=1", ApkOp::Ge),
            ("a>1", ApkOp::Gt),
            ("a~1", ApkOp::Fuzzy),
            ("a=~1", ApkOp::Fuzzy),
            ("a<~1", ApkOp::LtFuzzy),
            ("a>~1", ApkOp::GtFuzzy),
        ] {
            let dep = d(text);
            assert_eq!(dep.op, op, "{text}");
            assert_eq!(dep.name, "a");
            assert_eq!(dep.version, if op == ApkOp::Any { "" } else { "1" });
        }
        let c = d("musl><Q1abcdefghijklmnopqrstuvwxyzAB=");
        assert_eq!((c.op, c.version.as_str()), (ApkOp::Checksum, "Q1abcdefghijklmnopqrstuvwxyzAB="));
        assert_eq!(c.to_string(), "musl><Q1abcdefghijklmnopqrstuvwxyzAB=");
    }

    #[test]
    fn names_tags_conflicts() {
        let x = d("!so:libc.musl-x86_64.so.1@edge>=1.2-r0");
        assert!(x.conflict);
        assert_eq!(x.name, "so:libc.musl-x86_64.so.1");
        assert_eq!(x.tag.as_deref(), Some("edge"));
        assert_eq!(x.to_string(), "!so:libc.musl-x86_64.so.1@edge>=1.2-r0");
        assert_eq!(d("cmd:docker=24.0.7-r0").name, "cmd:docker");
        assert_eq!(d("pc:libfoo=1.0").version, "1.0");
        let l = ApkDep::parse_list("a  b>1\nc ").unwrap();
        assert_eq!(l.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn refuses_what_apk_refuses() {
        for bad in ["a>=", "a>=1.0-x", "!", "=1", "a<>=1", "a@edge>=1.0A"] {
            assert!(ApkDep::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_matching() {
        assert!(d("a>=1.2").matches_version("1.2"));
        assert!(d("a>=1.2").matches_version("1.10"));
        assert!(!d("a>=1.2").matches_version("1.2_rc1"));
        assert!(d("a<1.2").matches_version("1.2_rc1"));
        assert!(d("a~1.2").matches_version("1.2.9-r3"));
        assert!(!d("a~1.2").matches_version("1.3"));
        // `>~1.2` admits 1.2's pre-releases, `>=1.2` does not.
        assert!(d("a>~1.2").matches_version("1.2_rc1"));
        assert!(d("a<~1.2").matches_version("1.2.5"));
        assert!(!d("a<~1.2").matches_version("1.3"));
        assert!(d("a=1.0-r0").matches_version("1.0-r0"));
        assert!(!d("a=1.0-r0").matches_version("1.0-r1"));
        assert!(!d("a><Q1xx").matches_version("1.0"));
    }
}
