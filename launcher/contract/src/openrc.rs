//! OpenRC services for Alpine guests: `dinv-setup` before docker, `dinv-post` after it.

/// Script of `/etc/init.d/dinv-setup` (runs `dinv-guest setup`).
pub const DINV_SETUP: &str = include_str!("openrc/dinv-setup");

/// Script of `/etc/init.d/dinv-post` (runs `dinv-guest post`).
pub const DINV_POST: &str = include_str!("openrc/dinv-post");

/// (guest path, contents) of each OpenRC script; install mode 0755, enable both in the `default` runlevel.
pub fn openrc_scripts() -> Vec<(&'static str, &'static str)> {
    vec![("/etc/init.d/dinv-setup", DINV_SETUP), ("/etc/init.d/dinv-post", DINV_POST)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_openrc_run_with_the_right_ordering() {
        let scripts = openrc_scripts();
        assert_eq!(scripts.len(), 2);
        for (path, text) in &scripts {
            assert!(path.starts_with("/etc/init.d/dinv-"));
            assert!(text.starts_with("#!/sbin/openrc-run\n"), "{path}");
            assert!(text.contains("depend() {"), "{path}");
        }
        assert!(DINV_SETUP.contains("need localmount") && DINV_SETUP.contains("before docker"));
        assert!(DINV_SETUP.contains("/usr/sbin/dinv-guest setup"));
        assert!(DINV_POST.contains("after docker") && DINV_POST.contains("/usr/sbin/dinv-guest post"));
    }

    #[test]
    fn scripts_parse_as_shell() {
        let Ok(sh) = which_sh() else { return };
        for (path, text) in openrc_scripts() {
            let status = std::process::Command::new(&sh).args(["-n", "-c", text]).status().unwrap();
            assert!(status.success(), "{path} is not valid shell");
        }
    }

    fn which_sh() -> Result<String, ()> {
        ["/bin/sh", "/usr/bin/sh"].into_iter().find(|p| std::path::Path::new(p).exists()).map(String::from).ok_or(())
    }
}
