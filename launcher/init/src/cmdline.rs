//! The kernel command line, as far as the first-stage init cares.

/// Boot parameters dinv-init honours (everything else is ignored here; the
/// kernel passes unknown words on to the guest init).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootArgs {
    /// `root=`
    pub root: Option<String>,
    /// `rootfstype=`
    pub rootfstype: Option<String>,
    /// `init=`
    pub init: Option<String>,
    /// `ro` → `Some(true)`, `rw` → `Some(false)`; the last one wins.
    pub read_only: Option<bool>,
    /// `dinv.debug` (or `dinv.debug=1`): step-by-step messages.
    pub debug: bool,
    /// `dinv.root_timeout=<seconds>`
    pub root_timeout_secs: Option<u32>,
}

/// Splits a command line into words the way the kernel does: spaces
/// separate, double quotes group (and are removed), `--` ends the
/// kernel's part.
pub fn split_words(cmdline: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    if let Some(i) = out.iter().position(|w| w == "--") {
        out.truncate(i);
    }
    out
}

/// Parses `/proc/cmdline`.
pub fn parse_cmdline(cmdline: &str) -> BootArgs {
    let mut a = BootArgs::default();
    for w in split_words(cmdline) {
        let (k, v) = match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w.as_str(), None),
        };
        match (k, v) {
            ("root", Some(v)) if !v.is_empty() => a.root = Some(v.to_string()),
            ("rootfstype", Some(v)) if !v.is_empty() => a.rootfstype = Some(v.to_string()),
            ("init", Some(v)) if !v.is_empty() => a.init = Some(v.to_string()),
            ("ro", None) => a.read_only = Some(true),
            ("rw", None) => a.read_only = Some(false),
            ("dinv.debug", None) => a.debug = true,
            ("dinv.debug", Some(v)) => a.debug = !matches!(v, "0" | "n" | "no" | "off" | "false"),
            ("dinv.root_timeout", Some(v)) => a.root_timeout_secs = v.parse().ok(),
            _ => {}
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(split_words("  a b=\"c d\"  e -- f g"), ["a", "b=c d", "e"]);
        assert_eq!(split_words("x=\"\""), ["x="]);
        assert!(split_words("   ").is_empty());
    }

    #[test]
    fn parses_what_we_honour() {
        let a = parse_cmdline("console=ttyS0 root=/dev/vda rw panic=-1 rootfstype=ext4 init=/bin/sh dinv.debug dinv.root_timeout=3 ro\n");
        assert_eq!(
            a,
            BootArgs {
                root: Some("/dev/vda".into()),
                rootfstype: Some("ext4".into()),
                init: Some("/bin/sh".into()),
                read_only: Some(true),
                debug: true,
                root_timeout_secs: Some(3),
            }
        );
        let b = parse_cmdline("root= init=\"/sbin/my init\" dinv.debug=0 rw -- init=/evil");
        assert_eq!(b.root, None);
        assert_eq!(b.init.as_deref(), Some("/sbin/my init"));
        assert_eq!(b.read_only, Some(false));
        assert!(!b.debug);
        assert_eq!(parse_cmdline(""), BootArgs::default());
    }
}
