//! Starts one service process with its output relayed, line by line and prefixed, to the console.

use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::log;
use crate::pid1::services::Service;

/// PATH given to init and every service (PID 1 starts with almost no environment).
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment every service starts from; its own `env` entries are added on top.
pub fn base_env() -> [(&'static str, &'static str); 3] {
    [("PATH", PATH), ("TERM", "linux"), ("HOME", "/root")]
}

/// Spawns `service` in its own session with a clean signal mask; returns its pid.
pub fn spawn(service: &Service) -> io::Result<i32> {
    let mut cmd = Command::new(&service.argv[0]);
    cmd.args(&service.argv[1..])
        .env_clear()
        .envs(base_env())
        .envs(&service.env)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid and sigprocmask are async-signal-safe; nothing here allocates.
    unsafe {
        cmd.pre_exec(|| {
            // Own session: console signals for init do not reach services, and agetty can take a tty.
            libc::setsid();
            // init blocks the signals it waits for; services must not inherit that.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    if let Some(out) = child.stdout.take() {
        relay(&service.name, out);
    }
    if let Some(err) = child.stderr.take() {
        relay(&service.name, err);
    }
    // Dropping `child` neither waits nor kills: init reaps every pid itself with waitpid(-1).
    Ok(pid)
}

/// Reaps every child that has exited, without blocking: (pid, wait status) pairs.
pub fn reap_all() -> Vec<(i32, libc::c_int)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return out;
        }
        out.push((pid, status));
    }
}

/// A wait status in words: "exit status 1", "signal 9".
pub fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// The console line for one line of a service's output.
pub fn prefixed(name: &str, line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    format!("[{name}] {}", String::from_utf8_lossy(line))
}

fn relay(name: &str, stream: impl Read + Send + 'static) {
    let name = name.to_string();
    let _ = std::thread::Builder::new().name(format!("relay-{name}")).spawn(move || {
        for line in BufReader::new(stream).split(b'\n') {
            match line {
                Ok(line) => log::line(prefixed(&name, &line)),
                Err(_) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(script: &str) -> Service {
        Service {
            name: "t".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: [("FOO".to_string(), "bar".to_string())].into(),
            restart: false,
            after_ready_of: None,
            ready_path: None,
            stop_timeout: Default::default(),
        }
    }

    fn wait(pid: i32) -> i32 {
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn service_gets_env_own_session_and_empty_mask() {
        let check = r#"test "$FOO" = bar && test "$PATH" = /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            && test "$(cut -d' ' -f6 /proc/$$/stat)" = "$$""#;
        assert_eq!(wait(spawn(&service(check)).unwrap()), 0);
        // Block a signal in this thread to prove the child does not inherit the mask; grep reads
        // its own mask (a shell would show its transient mask while it waits for a child).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let mut mask = service("");
        mask.argv = ["grep", "-q", "^SigBlk:[[:space:]]*0*$", "/proc/self/status"].map(String::from).to_vec();
        assert_eq!(wait(spawn(&mask).unwrap()), 0);
    }

    #[test]
    fn missing_program_is_an_error() {
        let mut s = service("");
        s.argv = vec!["/nonexistent/dinv-service".into()];
        assert_eq!(spawn(&s).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn describes_statuses() {
        assert_eq!(describe_status(1 << 8), "exit status 1");
        assert_eq!(describe_status(9), "signal 9");
    }

    #[test]
    fn prefixes_lines() {
        assert_eq!(prefixed("dockerd", b"level=info msg=\"API listen\"\r"), "[dockerd] level=info msg=\"API listen\"");
        assert_eq!(prefixed("x", &[0xff, b'a']), "[x] \u{fffd}a");
    }
}
