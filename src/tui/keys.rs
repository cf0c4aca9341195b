//! Key bindings: a pure function from (mode, key) to an action.

use super::action::{Action, View};
use super::app::Mode;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Bindings shown in the help overlay: (keys, what they do).
pub const HELP: &[(&str, &str)] = &[
    ("Tab / Shift-Tab, 1-5", "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    ("space / r", "runs: select a run to compare / reread the runs folder"),
    ("s", "stop after this epoch (graceful early stop)"),
    ("S", "stop now, saving current weights"),
    ("+ / -", "multiply / divide the learning rate by 2"),
    ("l", "type an exact learning rate"),
    ("p", "pause or resume training"),
    ("c", "save a checkpoint now"),
    ("e", "toggle early stopping"),
    ("t", "cycle themes (article, light, high-contrast)"),
    ("↑↓ / j k, PgUp PgDn, Home End", "move (gallery, confusion cell, opened folder)"),
    ("← →", "move the confusion cell"),
    ("Enter", "confusion: open the gallery on that cell"),
    ("f", "gallery: filter (all, misclassified, by class)"),
    ("O", "gallery: sort (file, confidence ↑ ↓, loss)"),
    ("o", "open an image or folder (Tab completes): prediction, Grad-CAM"),
    ("g", "gallery / opened image: Grad-CAM overlay on or off"),
    ("[ / ]", "Grad-CAM: explain the previous / next class"),
    ("v", "confusion / gallery: validation or test split"),
    ("i", "gallery: image protocol (detected / halfblocks)"),
    ("?", "this help"),
    ("q", "quit (asks first while training; attached: detach)"),
    ("Ctrl-C", "stop now, save, and quit (again: skip the report)"),
];

pub fn map(mode: &Mode, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Interrupt);
    }
    match mode {
        Mode::LrPrompt(_) => match key.code {
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc => Some(Action::Escape),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) => Some(Action::Char(c)),
            _ => None,
        },
        Mode::OpenPrompt(_) => match key.code {
            KeyCode::Enter => Some(Action::Enter),
            KeyCode::Esc => Some(Action::Escape),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Tab => Some(Action::Complete),
            KeyCode::Char(c) => Some(Action::Char(c)),
            _ => None,
        },
        Mode::Predict => match key.code {
            KeyCode::Esc | KeyCode::Enter => Some(Action::Escape),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('g') => Some(Action::ToggleCam),
            KeyCode::Char('[') => Some(Action::CamPrevClass),
            KeyCode::Char(']') => Some(Action::CamNextClass),
            KeyCode::Char('o') => Some(Action::OpenPrompt),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            _ => None,
        },
        Mode::QuitConfirm => match key.code {
            KeyCode::Char('s') | KeyCode::Char('y') => Some(Action::QuitStopAndSave),
            KeyCode::Char('h') | KeyCode::Char('d') => Some(Action::QuitDetach),
            KeyCode::Char('c') | KeyCode::Char('n') | KeyCode::Esc => Some(Action::Escape),
            KeyCode::Char('q') => Some(Action::QuitStopAndSave),
            _ => None,
        },
        Mode::Help | Mode::Summary => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('?') => Some(Action::Escape),
            KeyCode::Char('q') => Some(Action::Quit),
            _ => None,
        },
        Mode::Normal => Some(match key.code {
            KeyCode::Tab => Action::NextView,
            KeyCode::BackTab => Action::PrevView,
            KeyCode::Char('1') => Action::Show(View::Dashboard),
            KeyCode::Char('2') => Action::Show(View::Confusion),
            KeyCode::Char('3') => Action::Show(View::Gallery),
            KeyCode::Char('4') => Action::Show(View::Data),
            KeyCode::Char('5') => Action::Show(View::Runs),
            KeyCode::Char(' ') => Action::ToggleSelect,
            KeyCode::Char('r') => Action::Refresh,
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::Left | KeyCode::Char('h') => Action::Left,
            KeyCode::Right => Action::Right,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Home => Action::Home,
            KeyCode::Char('g') => Action::ToggleCam,
            KeyCode::Char('[') => Action::CamPrevClass,
            KeyCode::Char(']') => Action::CamNextClass,
            KeyCode::End | KeyCode::Char('G') => Action::End,
            KeyCode::Enter => Action::Enter,
            KeyCode::Esc => Action::Escape,
            KeyCode::Char('s') => Action::StopAfterEpoch,
            KeyCode::Char('S') => Action::StopNow,
            KeyCode::Char('+') | KeyCode::Char('=') => Action::LrUp,
            KeyCode::Char('-') | KeyCode::Char('_') => Action::LrDown,
            KeyCode::Char('l') => Action::OpenLrPrompt,
            KeyCode::Char('p') => Action::TogglePause,
            KeyCode::Char('c') => Action::CheckpointNow,
            KeyCode::Char('e') => Action::ToggleEarlyStopping,
            KeyCode::Char('t') => Action::CycleTheme,
            KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Char('f') => Action::CycleFilter,
            KeyCode::Char('O') => Action::CycleSort,
            KeyCode::Char('o') => Action::OpenPrompt,
            KeyCode::Char('v') => Action::ToggleSplit,
            KeyCode::Char('i') => Action::ToggleImageProtocol,
            _ => return None,
        }),
    }
}
