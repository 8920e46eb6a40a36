//! Signals without handlers: the main thread blocks the signals we care
//! about before any thread starts (threads inherit the mask), and one
//! thread receives them with sigwait. Blocked signals are queued even for
//! PID 1, which otherwise ignores signals it has no handler for. Children
//! get an empty mask back before exec.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc::Sender;

/// A set of blocked signals, to be waited for.
#[derive(Clone, Copy)]
pub struct Blocked(libc::sigset_t);

/// Blocks `signals` in the calling thread (call before spawning threads).
pub fn block(signals: &[libc::c_int]) -> io::Result<Blocked> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(Blocked(set))
    }
}

/// Starts the thread that turns each received signal into `wrap(signal)`
/// on `tx`; it ends when the receiver is gone.
pub fn forward<T: Send + 'static>(set: Blocked, tx: Sender<T>, wrap: fn(libc::c_int) -> T) {
    std::thread::spawn(move || loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: waits on a valid, initialised set.
        let rc = unsafe { libc::sigwait(&set.0, &mut sig) };
        if rc == 0 && tx.send(wrap(sig)).is_err() {
            return;
        }
    });
}

/// Makes `cmd` start with no blocked signals (the mask survives exec).
pub fn unblock_in_child(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The conventional name of a signal, for messages.
pub fn name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGCHLD => "SIGCHLD".into(),
        libc::SIGKILL => "SIGKILL".into(),
        other => format!("signal {other}"),
    }
}
