//! Relationship fields (Depends, Pre-Depends, Conflicts, Breaks, Provides...):
//! `a (>= 1.0) | b:any, c [amd64] <!nocheck>`.

use dinv_solver::{Constraint, Dependency, Op, Provide};

use crate::DebError;

/// One alternative of a relationship, with everything the syntax allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture, from `name:qualifier`.
    pub arch_qualifier: Option<String>,
    pub op: Op,
    /// Empty when `op` is [`Op::Any`].
    pub version: String,
    /// `[amd64 !i386]`: (negated, architecture or wildcard).
    pub arches: Vec<(bool, String)>,
    /// `<!nocheck> <stage1 cross>`: lists of (negated, profile).
    pub profiles: Vec<Vec<(bool, String)>>,
}

impl Relation {
    /// Whether this alternative applies when installing for `arch` with no
    /// build profile active (binary installation).
    pub fn applies_to(&self, arch: &str) -> bool {
        let arch_ok = if self.arches.is_empty() {
            true
        } else {
            let pos: Vec<&str> = self.arches.iter().filter(|(n, _)| !n).map(|(_, a)| a.as_str()).collect();
            let neg_hit = self.arches.iter().any(|(n, a)| *n && arch_matches(a, arch));
            (pos.is_empty() || pos.iter().any(|a| arch_matches(a, arch))) && !neg_hit
        };
        // With no profile active, a list holds only if all its terms are negated.
        let profile_ok = self.profiles.is_empty() || self.profiles.iter().any(|l| l.iter().all(|(neg, _)| *neg));
        arch_ok && profile_ok
    }

    /// The solver constraint for this alternative when installing for `arch`.
    /// `:any` and `:native` (and the target's own arch) name the plain
    /// package: dinv-build installs one architecture.
    pub fn constraint(&self, arch: &str) -> Constraint {
        let name = match self.arch_qualifier.as_deref() {
            None | Some("any") | Some("native") => self.name.clone(),
            Some(q) if q == arch => self.name.clone(),
            Some(q) => format!("{}:{q}", self.name),
        };
        Constraint { name, op: self.op, version: self.version.clone(), tag: None }
    }
}

/// Matches an architecture or a Debian wildcard (`any`, `linux-any`,
/// `any-amd64`) against a Linux target architecture.
fn arch_matches(pattern: &str, arch: &str) -> bool {
    pattern == arch
        || pattern == "any"
        || pattern == "linux-any"
        || pattern.strip_prefix("any-").is_some_and(|cpu| cpu == arch)
        || pattern.strip_prefix("linux-").is_some_and(|cpu| cpu == arch)
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        // By whole characters: Unicode whitespace (U+00A0, U+2003...) is
        // more than one byte.
        while let Some(c) = self.s[self.pos..].chars().next().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.s[self.pos..].chars().next()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }
    /// A run of characters that are not whitespace or syntax.
    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let n = rest.find(|c: char| c.is_whitespace() || "()[]<>,|:!".contains(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }
    fn err(&self, why: impl Into<String>) -> DebError {
        DebError::malformed(self.what, format!("{} in {:?}", why.into(), self.s.trim()))
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b))
}

fn parse_op(c: &mut Cursor) -> Result<Op, DebError> {
    c.skip_ws();
    let rest = &c.s[c.pos..];
    let n = rest.find(|ch: char| !"<>=".contains(ch)).unwrap_or(rest.len());
    let op = match &rest[..n] {
        "<<" => Op::Lt,
        // `<` and `>` are obsolete spellings of `<=` and `>=`.
        "<=" | "<" => Op::Le,
        "=" => Op::Eq,
        ">=" | ">" => Op::Ge,
        ">>" => Op::Gt,
        o => return Err(c.err(format!("unknown version operator {o:?}"))),
    };
    c.pos += n;
    Ok(op)
}

fn parse_one(c: &mut Cursor) -> Result<Relation, DebError> {
    let name = c.word();
    if !valid_name(name) {
        return Err(c.err(format!("invalid package name {name:?}")));
    }
    let mut rel = Relation {
        name: name.to_string(),
        arch_qualifier: None,
        op: Op::Any,
        version: String::new(),
        arches: Vec::new(),
        profiles: Vec::new(),
    };
    if c.eat(':') {
        let q = c.word();
        if q.is_empty() {
            return Err(c.err("empty architecture qualifier"));
        }
        rel.arch_qualifier = Some(q.to_string());
    }
    if c.eat('(') {
        rel.op = parse_op(c)?;
        let v = c.word();
        // Versions may contain `:` (epochs), which `word` stops at.
        let mut v = v.to_string();
        while c.eat(':') {
            v.push(':');
            v.push_str(c.word());
        }
        if v.is_empty() {
            return Err(c.err("missing version after operator"));
        }
        if !c.eat(')') {
            return Err(c.err("missing `)`"));
        }
        rel.version = v;
    }
    if c.eat('[') {
        loop {
            if c.eat(']') {
                break;
            }
            let neg = c.eat('!');
            let a = c.word();
            if a.is_empty() {
                return Err(c.err("bad architecture list"));
            }
            rel.arches.push((neg, a.to_string()));
        }
    }
    while c.eat('<') {
        let mut list = Vec::new();
        loop {
            if c.eat('>') {
                break;
            }
            let neg = c.eat('!');
            let p = c.word();
            if p.is_empty() {
                return Err(c.err("bad build-profile list"));
            }
            list.push((neg, p.to_string()));
        }
        rel.profiles.push(list);
    }
    Ok(rel)
}

/// Parses a relationship field into AND-ed groups of OR-ed alternatives.
/// `what` names the field and package in errors (`docker.io Depends`).
pub fn parse_relations(field: &str, what: &str) -> Result<Vec<Vec<Relation>>, DebError> {
    let mut c = Cursor { s: field, pos: 0, what };
    let mut out = Vec::new();
    if c.peek().is_none() {
        return Ok(out);
    }
    loop {
        let mut alts = vec![parse_one(&mut c)?];
        while c.eat('|') {
            alts.push(parse_one(&mut c)?);
        }
        out.push(alts);
        match c.peek() {
            None => break,
            Some(',') => {
                c.pos += 1;
                // Tolerate a trailing comma, which dpkg accepts.
                if c.peek().is_none() {
                    break;
                }
            }
            Some(other) => return Err(c.err(format!("unexpected {other:?}"))),
        }
    }
    Ok(out)
}

/// Parses a Depends-style field into solver dependencies for `arch`,
/// dropping alternatives that do not apply there (and groups left empty).
pub fn parse_dependencies(field: &str, arch: &str, what: &str) -> Result<Vec<Dependency>, DebError> {
    Ok(parse_relations(field, what)?
        .into_iter()
        .filter_map(|alts| {
            let alternatives: Vec<Constraint> =
                alts.iter().filter(|r| r.applies_to(arch)).map(|r| r.constraint(arch)).collect();
            (!alternatives.is_empty()).then_some(Dependency { alternatives })
        })
        .collect())
}

/// Parses Conflicts or Breaks into a flat list of constraints for `arch`
/// (those fields have no alternatives; a stray `|` is read as two entries).
pub fn parse_conflicts(field: &str, arch: &str, what: &str) -> Result<Vec<Constraint>, DebError> {
    Ok(parse_relations(field, what)?
        .into_iter()
        .flatten()
        .filter(|r| r.applies_to(arch))
        .map(|r| r.constraint(arch))
        .collect())
}

/// Parses Provides: names with an optional `(= version)`.
pub fn parse_provides(field: &str, what: &str) -> Result<Vec<Provide>, DebError> {
    let mut out = Vec::new();
    for alts in parse_relations(field, what)? {
        if alts.len() != 1 {
            return Err(DebError::malformed(
                what,
                format!("alternatives (`|`) are not allowed in Provides: {field:?}"),
            ));
        }
        let r = alts.into_iter().next().expect("one alternative");
        let version = match r.op {
            Op::Any => None,
            Op::Eq => Some(r.version),
            _ => {
                return Err(DebError::malformed(
                    what,
                    format!("Provides of {} must use `=`, not another operator", r.name),
                ))
            }
        };
        out.push(Provide { name: r.name, version });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, op: Op, v: &str) -> Constraint {
        Constraint { name: name.into(), op, version: v.into(), tag: None }
    }

    #[test]
    fn full_syntax() {
        let r = parse_relations(
            "a (>= 1.0) | b:any, c [amd64] <!nocheck>, d (<< 2:1.0-1~) [!i386] <stage1 cross> <!nodoc>",
            "t",
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0][0].op, Op::Ge);
        assert_eq!(r[0][1].arch_qualifier.as_deref(), Some("any"));
        assert_eq!(r[1][0].arches, vec![(false, "amd64".to_string())]);
        assert_eq!(r[1][0].profiles, vec![vec![(true, "nocheck".to_string())]]);
        assert_eq!(r[2][0].version, "2:1.0-1~");
        assert_eq!(r[2][0].profiles.len(), 2);
    }

    #[test]
    fn dependencies_for_an_arch() {
        let deps = parse_dependencies(
            "a (>= 1.0) | b:any, c [amd64] <!nocheck>, d [i386], e [!amd64] | f:native, g <stage1>, h:amd64, i:arm64,",
            "amd64",
            "t",
        )
        .unwrap();
        assert_eq!(deps.len(), 5, "{deps:?}");
        assert_eq!(deps[0].alternatives, vec![c("a", Op::Ge, "1.0"), c("b", Op::Any, "")]);
        assert_eq!(deps[1].alternatives, vec![c("c", Op::Any, "")]);
        assert_eq!(deps[2].alternatives, vec![c("f", Op::Any, "")]);
        assert_eq!(deps[3].alternatives, vec![c("h", Op::Any, "")]);
        assert_eq!(deps[4].alternatives, vec![c("i:arm64", Op::Any, "")]);
    }

    #[test]
    fn operators_including_obsolete_ones() {
        let deps = parse_dependencies(
            "a (<< 1), b (<= 1), c (= 1), d (>= 1), e (>> 1), f (< 1), g (> 1), h(>=1)",
            "amd64",
            "t",
        )
        .unwrap();
        let ops: Vec<Op> = deps.iter().map(|d| d.alternatives[0].op).collect();
        assert_eq!(ops, [Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt, Op::Le, Op::Ge, Op::Ge]);
        assert_eq!(deps[7].alternatives[0].version, "1");
    }

    #[test]
    fn multiline_field() {
        let deps = parse_dependencies("libc6 (>= 2.34),\n libseccomp2\n (>= 2.5.0)", "amd64", "t").unwrap();
        assert_eq!(deps[1].alternatives, vec![c("libseccomp2", Op::Ge, "2.5.0")]);
        assert!(parse_dependencies("", "amd64", "t").unwrap().is_empty());
    }

    #[test]
    fn provides() {
        let p = parse_provides("mail-transport-agent, libfoo-abi (= 1.2-3), x", "t").unwrap();
        assert_eq!(p[1], Provide { name: "libfoo-abi".into(), version: Some("1.2-3".into()) });
        assert_eq!(p[0].version, None);
        assert!(parse_provides("a | b", "t").is_err());
        assert!(parse_provides("a (>= 1)", "t").is_err());
    }

    /// Found while fuzzing (read in the code, confirmed through the
    /// deb_relations target): `skip_ws` stepped one byte over a
    /// multi-byte whitespace character and the next slice panicked
    /// (`byte index is not a char boundary`).
    #[test]
    fn unicode_whitespace_is_skipped_whole() {
        let r = parse_relations("a\u{a0}(>= 1),\u{2003}b\u{3000}|\u{85}c", "t").unwrap();
        assert_eq!((r[0][0].name.as_str(), r[0][0].version.as_str()), ("a", "1"));
        assert_eq!(r[1].iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        for bad in ["a\u{a0}", "\u{a0}", "a (\u{2003}>= \u{a0}1\u{a0})\u{a0}x", "a\u{a0}é"] {
            let _ = parse_relations(bad, "t");
        }
        assert!(parse_relations("a\u{a0}é", "t").is_err());
    }

    #[test]
    fn errors_quote_field() {
        for bad in ["a (>= 1.0", "a (=> 1)", "a (>=)", "a b", "a, , b", "a [amd64", "(>= 1)", "a:"] {
            let e = parse_relations(bad, "docker.io Depends").unwrap_err().to_string();
            assert!(e.contains("docker.io Depends"), "{bad}: {e}");
        }
    }
}
