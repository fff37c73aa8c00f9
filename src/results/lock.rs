//! One run per OUTPUT: an exclusive OS file lock on `OUTPUT.lock`, held for the whole run.
//!
//! The kernel releases the lock when the process dies, however it dies, so a crash never
//! leaves a stale lock: a leftover file is just taken over. The holder writes its pid and start
//! time into the file, for the message a second run gives. On release the file is removed
//! before it is unlocked; a run that locked a file that has since been removed (or replaced)
//! notices by comparing inodes and tries again, so two runs can never both hold "the" lock.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::results::output::with_suffix;

/// The lock file of OUTPUT.
pub fn lock_path(output: &Path) -> PathBuf {
    with_suffix(output, ".lock")
}

/// Held while a run works on an OUTPUT; dropping it releases the lock.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    file: File,
}

impl OutputLock {
    /// Takes the lock of `output` at once, or refuses (exit 2) naming the run holding it.
    pub fn acquire(output: &Path) -> Result<OutputLock, Error> {
        let path = lock_path(output);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(Error::unwritable(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another bihu-renew run".to_string()
                    } else {
                        format!("another bihu-renew run ({holder})")
                    };
                    return Err(Error::Refused(anyhow::anyhow!(
                        "{} is in use by {who}; nothing was sent. Two runs on one OUTPUT would request the same rows and spoil the file: wait for that run to end (or stop it), or use -o to write elsewhere",
                        output.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(cannot("lock", &path)(error)),
            }
            // Locked; but if the holder before us removed the file meanwhile, this lock is on
            // a file nobody else will look at: start again.
            let same = match std::fs::metadata(&path) {
                Ok(on_disk) => {
                    let held = file.metadata().map_err(cannot("lock", &path))?;
                    on_disk.ino() == held.ino() && on_disk.dev() == held.dev()
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => false,
                Err(error) => return Err(cannot("lock", &path)(error)),
            };
            if !same {
                continue;
            }
            let about = format!(
                "pid {}, started {}",
                std::process::id(),
                utc_text(SystemTime::now())
            );
            let written = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(format!("{about}\n").as_bytes()));
            written.map_err(cannot("write", &path))?;
            return Ok(OutputLock { path, file });
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still locked (see the module doc); the lock goes with the file handle.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// An I/O failure on the lock file, before any request: "cannot lock PATH: why".
fn cannot<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |error| {
        Error::Refused(anyhow::Error::new(error).context(format!("cannot {action} {}", path.display())))
    }
}

/// `2026-12-01 22:45:01 UTC`.
fn utc_text(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = crate::results::history::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_named_and_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.csv");
        let first = OutputLock::acquire(&output).unwrap();
        let refused = OutputLock::acquire(&output).unwrap_err().to_string();
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        assert!(refused.contains("nothing was sent"), "{refused}");
        drop(first);
        assert!(!lock_path(&output).exists(), "released locks leave no file");
        let again = OutputLock::acquire(&output).unwrap();
        drop(again);
        // A leftover file (a crashed run's) is simply taken over.
        std::fs::write(lock_path(&output), "pid 1, started long ago\n").unwrap();
        OutputLock::acquire(&output).unwrap();
    }

    #[test]
    fn utc_text_is_the_calendar_date() {
        let at = |secs| utc_text(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_796_164_501), "2026-12-01 22:35:01 UTC");
    }
}
