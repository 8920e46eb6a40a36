//! The ACPI power button for guests run by `dinv-guest init` (acpid's job
//! on OpenRC guests): the launcher presses it (QMP `system_powerdown`) when
//! the guest agent does not answer. The kernel's button driver turns it
//! into a KEY_POWER press on an evdev device; a watcher thread reads those
//! devices and asks PID 1 to power off, as `poweroff` would.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::log::say;
use crate::pid1::power::{self, PowerAction};

/// `EV_KEY` from linux/input-event-codes.h.
const EV_KEY: u16 = 1;
/// `KEY_POWER` from linux/input-event-codes.h.
pub const KEY_POWER: u16 = 116;
/// `struct input_event` on 64-bit: a timeval (16 bytes), type, code (u16 each) and value (i32).
const EVENT_SIZE: usize = 24;

/// True if `records` (whole `input_event`s) hold a KEY_POWER press.
pub fn has_power_press(records: &[u8]) -> bool {
    records.chunks_exact(EVENT_SIZE).any(|e| {
        let u16_at = |i: usize| u16::from_ne_bytes([e[i], e[i + 1]]);
        let value = i32::from_ne_bytes([e[20], e[21], e[22], e[23]]);
        u16_at(16) == EV_KEY && u16_at(18) == KEY_POWER && value == 1
    })
}

/// True if a sysfs `capabilities/key` bitmap (hex words, most significant
/// first, each a C `long`) has bit `bit` set.
pub fn bitmap_has(text: &str, bit: usize) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (word, shift) = (bit / 64, bit % 64);
    words.len() > word && u64::from_str_radix(words[words.len() - 1 - word], 16).is_ok_and(|w| w >> shift & 1 == 1)
}

/// The `/dev/input/eventN` devices that can send KEY_POWER, from `sys_class_input` (`/sys/class/input`).
pub fn power_devices(sys_class_input: &Path, dev_input: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(sys_class_input)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("event"))
        .filter(|e| std::fs::read_to_string(e.path().join("device/capabilities/key")).is_ok_and(|t| bitmap_has(&t, KEY_POWER as usize)))
        .map(|e| dev_input.join(e.file_name()))
        .collect();
    out.sort();
    out
}

/// Reads `device` until a KEY_POWER press, then calls `pressed`; returns on a read error.
pub fn watch(device: &Path, pressed: &dyn Fn()) -> std::io::Result<()> {
    let mut f = std::fs::File::open(device)?;
    let mut buf = [0u8; EVENT_SIZE * 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if has_power_press(&buf[..n - n % EVENT_SIZE]) {
            pressed();
        }
    }
}

/// Starts a watcher thread per power button; the modules (button, evdev)
/// are loaded at boot, so a few seconds of looking is enough.
pub fn spawn() {
    std::thread::spawn(|| {
        let mut devices = Vec::new();
        for _ in 0..10 {
            devices = power_devices(Path::new("/sys/class/input"), Path::new("/dev/input"));
            if !devices.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        if devices.is_empty() {
            say("no power button (kernel options ACPI_BUTTON, INPUT_EVDEV); only the guest agent can stop this guest cleanly");
        }
        for device in devices {
            say(format_args!("power button: watching {}", device.display()));
            std::thread::spawn(move || {
                let pressed = || {
                    say("power button pressed");
                    if let Err(e) = power::request(PowerAction::PowerOff) {
                        say(format_args!("error: signalling PID 1 to power off: {e}"));
                    }
                };
                if let Err(e) = watch(&device, &pressed) {
                    say(format_args!("error: reading {}: {e}", device.display()));
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e.extend(kind.to_ne_bytes());
        e.extend(code.to_ne_bytes());
        e.extend(value.to_ne_bytes());
        e
    }

    #[test]
    fn finds_the_press_among_events() {
        let release = [event(EV_KEY, KEY_POWER, 0), event(0, 0, 0)].concat();
        assert!(!has_power_press(&release), "a release or a SYN is not a press");
        assert!(!has_power_press(&event(EV_KEY, 115, 1)), "another key");
        assert!(!has_power_press(&event(2, KEY_POWER, 1)), "not a key event");
        assert!(has_power_press(&[event(0, 0, 0), event(EV_KEY, KEY_POWER, 1), event(0, 0, 0)].concat()));
    }

    #[test]
    fn key_bitmaps() {
        // The ACPI power button's bitmap: only bit 116 (word 1, bit 52).
        assert!(bitmap_has("10000000000000 0", 116));
        assert!(!bitmap_has("10000000000000 0", 115));
        assert!(!bitmap_has("0", 116));
        assert!(!bitmap_has("", 116));
        assert!(bitmap_has("1", 0));
    }

    #[test]
    fn picks_devices_that_have_the_power_key() {
        let dir = TempDir::new("input");
        let sys = dir.path().join("sys");
        for (name, caps) in [("event0", Some("10000000000000 0")), ("event1", Some("0")), ("event2", None), ("mice", Some("10000000000000 0"))] {
            let d = sys.join(name).join("device/capabilities");
            std::fs::create_dir_all(&d).unwrap();
            if let Some(c) = caps {
                std::fs::write(d.join("key"), format!("{c}\n")).unwrap();
            }
        }
        assert_eq!(power_devices(&sys, Path::new("/dev/input")), vec![PathBuf::from("/dev/input/event0")]);
    }

    #[test]
    fn watch_calls_back_on_a_press() {
        let dir = TempDir::new("input");
        let dev = dir.path().join("event0");
        std::fs::write(&dev, [event(EV_KEY, KEY_POWER, 1), event(0, 0, 0)].concat()).unwrap();
        let count = std::cell::Cell::new(0);
        watch(&dev, &|| count.set(count.get() + 1)).unwrap();
        assert_eq!(count.get(), 1);
    }
}
