//! Module alias patterns: the fnmatch(3) globs modprobe matches names against.

/// True when `name` matches the alias `pattern` (`*`, `?`, `[a-z]`, `[!x]`,
/// `\` escapes), as fnmatch with no flags does.
pub fn alias_matches(pattern: &str, name: &str) -> bool {
    matches(pattern.as_bytes(), name.as_bytes())
}

fn matches(p: &[u8], s: &[u8]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear enough for
    // alias strings and immune to pathological recursion.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((ok, len)) = class(&p[pi..], s[si]) {
                        if ok {
                            pi += len;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == b'[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == s[si] {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[si] {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Matches `c` against a bracket expression at the start of `p`; returns
/// (matched, length of the expression) or `None` if it is unterminated.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|h| *h != b']') {
            let hi = p[i + 2];
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::alias_matches as m;

    #[test]
    fn globs() {
        assert!(m("crypto-crc32c", "crypto-crc32c"));
        assert!(!m("crypto-crc32c", "crypto-crc32"));
        assert!(m("virtio:d00000002v*", "virtio:d00000002v00001AF4"));
        assert!(m("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"));
        assert!(!m("pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001001sv00001AF4sd00000002bc01sc00i00"));
        assert!(m("of:N*T*Cvirtio,mmio", "of:NvirtioTCvirtio,mmio"));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("x[0-9]y", "x5y") && !m("x[0-9]y", "xay"));
        assert!(m("x[!0-9]y", "xay") && !m("x[!0-9]y", "x5y"));
        assert!(m("*", "") && m("**a", "a") && !m("a*b", "ac"));
        assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
    }
}
