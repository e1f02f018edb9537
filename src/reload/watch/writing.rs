//! Files still being written in place, so that a reload waits for the writer to finish.
//!
//! A tool that writes a file in place (open, write, …, close) without a rename can
//! pause between writes; the debounce's quiet period alone then reads a prefix of the
//! file, which is valid YAML whenever the pause falls at a line boundary (200 devices
//! read as 188, the other 12 removed with their state). inotify says when a writer is
//! done: the file is closed after writing (`IN_CLOSE_WRITE`). A file modified and not
//! yet closed is "being written", and the debounce waits for it, up to
//! [`super::SETTLE_LIMIT`].

use std::collections::HashSet;
use std::path::PathBuf;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind};
use parking_lot::Mutex;

#[derive(Default)]
pub struct Writing {
    open: Mutex<HashSet<PathBuf>>,
}

impl Writing {
    /// Follows `event`: a file written to is being written until it is closed after
    /// writing, removed or renamed (renamed, its close comes under the new name). Created
    /// alone is not written to: a FIFO made with `mkfifo` is never closed.
    pub fn note(&self, event: &Event) {
        let mut open = self.open.lock();
        match event.kind {
            EventKind::Modify(ModifyKind::Data(_)) => {
                open.extend(event.paths.iter().cloned());
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_)) => {
                for path in &event.paths {
                    open.remove(path);
                }
            }
            _ => {}
        }
    }

    /// Whether any file is being written.
    pub fn any(&self) -> bool {
        !self.open.lock().is_empty()
    }

    /// Forgets every file: after a reload, a close that was missed must not delay the
    /// next one.
    pub fn clear(&self) {
        self.open.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn a_file_is_being_written_from_its_first_write_to_its_close() {
        let w = Writing::default();
        w.note(&event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            "/i/a.yaml",
        ));
        assert!(w.any());
        w.note(&event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/i/a.yaml",
        ));
        assert!(w.any(), "a reader closing is not the writer");
        w.note(&event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/i/a.yaml",
        ));
        assert!(!w.any());
        w.note(&event(EventKind::Create(CreateKind::File), "/i/f.yaml"));
        assert!(!w.any(), "created, not written to");
        w.note(&event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            "/i/b.yaml",
        ));
        w.note(&event(EventKind::Remove(RemoveKind::File), "/i/b.yaml"));
        assert!(!w.any(), "removed while open");
    }
}
