//! A small disk of the test's own: a tmpfs mounted on a temporary directory (unmounted
//! when the guard goes, even if the test panics), and a file that fills it.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `256k`).
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount is installed");
        assert!(
            out.status.success(),
            "mount tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// A file that takes all the free space of the file system it is on, until dropped.
pub struct Filler {
    path: PathBuf,
}

impl Filler {
    pub fn fill(dir: &Path) -> Filler {
        let path = dir.join("filler");
        std::fs::File::create(&path).unwrap();
        let filler = Filler { path };
        filler.top_up();
        filler
    }

    /// Takes again whatever the file system freed since (a file the appliance replaced
    /// gives its old pages back), so the disk stays full.
    pub fn top_up(&self) {
        let path = &self.path;
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        let page = [0u8; 4096];
        loop {
            match f.write(&page) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let _ = f.sync_all();
    }

    /// Gives `bytes` back to the file system (rounded to whole pages by tmpfs).
    pub fn leave(&self, bytes: u64) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(bytes)).unwrap();
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// ENOSPC on Linux.
fn libc_enospc() -> i32 {
    28
}
