//! The Runs view's state: the runs of a folder, a cursor, and the runs selected for comparison.

use crate::run::compare::{RunEntry, load_entries};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Default)]
pub struct RunsBrowser {
    /// The folder listed (`runs/`, or the attached run's parent).
    pub dir: Option<PathBuf>,
    pub entries: Vec<RunEntry>,
    pub cursor: usize,
    /// Names of the runs overlaid in the charts.
    pub selected: BTreeSet<String>,
    /// Why the folder could not be read, if it could not.
    pub error: Option<String>,
    pub loaded: bool,
}

impl RunsBrowser {
    /// Read the folder again; `current` (the run on screen) is selected the first time.
    pub fn refresh(&mut self, current: Option<&str>) {
        let Some(dir) = &self.dir else {
            self.error = Some("no runs folder".into());
            return;
        };
        match load_entries(dir) {
            Ok(e) => {
                self.entries = e;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{}: {e}", dir.display())),
        }
        if !self.loaded {
            self.loaded = true;
            match current {
                Some(c) if self.entries.iter().any(|e| e.summary.name == c) => {
                    self.selected.insert(c.to_string());
                }
                _ => self.selected.extend(self.entries.iter().take(2).map(|e| e.summary.name.clone())),
            }
        }
        self.selected.retain(|n| self.entries.iter().any(|e| &e.summary.name == n));
        self.cursor = self.cursor.min(self.entries.len().saturating_sub(1));
    }

    pub fn move_by(&mut self, d: isize) {
        if !self.entries.is_empty() {
            self.cursor = (self.cursor as isize + d).clamp(0, self.entries.len() as isize - 1) as usize;
        }
    }

    /// Select or unselect the run under the cursor.
    pub fn toggle(&mut self) {
        if let Some(e) = self.entries.get(self.cursor) {
            let n = e.summary.name.clone();
            if !self.selected.remove(&n) {
                self.selected.insert(n);
            }
        }
    }

    pub fn selected_entries(&self) -> Vec<&RunEntry> {
        self.entries.iter().filter(|e| self.selected.contains(&e.summary.name)).collect()
    }
}
