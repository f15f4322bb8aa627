//! The apply lock: one apply at a time per state directory, and a second one is told who holds
//! it.
//!
//! `File::try_lock` takes an advisory `flock` that the kernel releases when the process ends,
//! however it ends, so a crashed apply never leaves a stale lock. The holder's details are
//! written into the lock file for the refusal message only; they are not the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct Lock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another apply holds the lock on `{path}`: {holder}")]
    Held { path: String, holder: String },
    #[error("cannot lock `{path}`: {error}")]
    Io { path: String, error: std::io::Error },
}

impl Lock {
    /// Takes the lock in `directory`, recording `holder` (who and what) for anyone who waits.
    pub fn acquire(directory: &Path, holder: &str) -> Result<Lock, LockError> {
        let path = directory.join("lock");
        let io = |error| LockError::Io { path: path.display().to_string(), error };
        std::fs::create_dir_all(directory).map_err(io)?;
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder =
                    if text.trim().is_empty() { "a process that has not said who it is".to_string() } else { text.trim().to_string() };
                return Err(LockError::Held { path: path.display().to_string(), holder });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io(error)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(holder.as_bytes()).and_then(|()| file.flush()).map_err(io)?;
        Ok(Lock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Who is applying: process, host and user, and what.
pub fn describe_holder(what: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "this host".into());
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| format!("uid {}", nix_uid()));
    format!("pid {} on {host} (user {user}), applying {what}", std::process::id())
}

fn nix_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|line| line.starts_with("Uid:")).and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let directory = tempfile::tempdir().unwrap();
        let first = Lock::acquire(directory.path(), "pid 1 applying a.plan").unwrap();
        let error = Lock::acquire(directory.path(), "pid 2").err().expect("held");
        assert!(error.to_string().contains("pid 1 applying a.plan"), "{error}");
        drop(first);
        assert!(Lock::acquire(directory.path(), "pid 2").is_ok());
    }
}
