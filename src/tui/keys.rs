//! Key bindings: one table (`BINDINGS`) from which the key handling (`map`), the help overlay
//! (`help_lines`), each view's footer (`footer`), the quit dialog's hints (`quit_hints`) and README's
//! key table (`markdown_table`) are all made, so none of them can drift from what the keys do.

use super::action::{Action, View};
use super::app::Mode;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The views, with no popup open.
    Views,
    /// The opened-image popup (`o`).
    Opened,
    /// The quit dialog (`q` while training).
    Quit,
    /// The help overlay and the end-of-run summary.
    Overlay,
    /// The Experiment view (`attach EXP`, `watch EXP`).
    Experiment,
}

/// A footer entry: how the footer spells the keys, its short label, and the views that show it.
pub struct Foot {
    pub keys: &'static str,
    pub label: &'static str,
    pub views: &'static [View],
}

/// One binding. Consecutive bindings of a scope with the same `what` are one line of help.
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [KeyCode],
    pub action: Action,
    pub what: &'static str,
    pub foot: Option<Foot>,
}

use KeyCode::{BackTab, Char, Down, End, Enter, Esc, Home, Left, PageDown, PageUp, Right, Tab, Up};
use Scope::{Experiment, Opened, Overlay, Quit, Views};
use View::{Confusion, Dashboard, Data, Gallery, Runs};

const ALL: &[View] = &[Dashboard, Confusion, Gallery, Data, Runs];
const TRAINING: &[View] = &[Dashboard, Data];

const fn b(scope: Scope, keys: &'static [KeyCode], action: Action, what: &'static str) -> Binding {
    Binding { scope, keys, action, what, foot: None }
}

const fn f(
    scope: Scope,
    keys: &'static [KeyCode],
    action: Action,
    what: &'static str,
    foot: (&'static str, &'static str, &'static [View]),
) -> Binding {
    Binding { scope, keys, action, what, foot: Some(Foot { keys: foot.0, label: foot.1, views: foot.2 }) }
}

/// Every key binding, in the order help and README list them.
pub const BINDINGS: &[Binding] = &[
    b(Views, &[Tab], Action::NextView, "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[BackTab], Action::PrevView, "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[Char('1')], Action::Show(Dashboard), "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[Char('2')], Action::Show(Confusion), "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[Char('3')], Action::Show(Gallery), "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[Char('4')], Action::Show(Data), "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    b(Views, &[Char('5')], Action::Show(Runs), "switch view: Dashboard, Confusion, Gallery, Data, Runs"),
    f(Views, &[Char(' ')], Action::ToggleSelect, "Runs view: select a run to compare (curves, settings)", ("space", "compare", &[Runs])),
    f(Views, &[Char('r')], Action::Refresh, "Runs view: read the runs folder again", ("r", "reread", &[Runs])),
    f(
        Views,
        &[Char('s')],
        Action::StopAfterEpoch,
        "stop after this epoch (graceful early stop)",
        ("s", "stop", &[Dashboard, Confusion, Data, Runs]),
    ),
    f(Views, &[Char('S')], Action::StopNow, "stop now, saving the current weights", ("S", "stop now", TRAINING)),
    f(
        Views,
        &[Char('+'), Char('=')],
        Action::LrUp,
        "multiply / divide the learning rate by 2",
        ("+/-", "lr", &[Dashboard, Confusion, Data]),
    ),
    b(Views, &[Char('-'), Char('_')], Action::LrDown, "multiply / divide the learning rate by 2"),
    f(Views, &[Char('l')], Action::OpenLrPrompt, "type an exact learning rate (1e-9 up to 10)", ("l", "set lr", TRAINING)),
    f(Views, &[Char('p')], Action::TogglePause, "pause / resume training", ("p", "pause", TRAINING)),
    f(Views, &[Char('c')], Action::CheckpointNow, "save a checkpoint now", ("c", "ckpt", TRAINING)),
    f(Views, &[Char('e')], Action::ToggleEarlyStopping, "turn early stopping on or off", ("e", "early stop", TRAINING)),
    b(Views, &[Char('t')], Action::CycleTheme, "cycle themes (article, light, high-contrast)"),
    f(Views, &[Up, Char('k')], Action::Up, "move in the gallery, the confusion matrix or the runs", ("↑↓", "move", &[Gallery, Runs])),
    b(Views, &[Down, Char('j')], Action::Down, "move in the gallery, the confusion matrix or the runs"),
    b(Views, &[PageUp], Action::PageUp, "move in the gallery, the confusion matrix or the runs"),
    b(Views, &[PageDown], Action::PageDown, "move in the gallery, the confusion matrix or the runs"),
    b(Views, &[Home], Action::Home, "move in the gallery, the confusion matrix or the runs"),
    b(Views, &[End, Char('G')], Action::End, "move in the gallery, the confusion matrix or the runs"),
    f(Views, &[Left, Char('h')], Action::Left, "move across confusion cells", ("←↑↓→", "cell", &[Confusion])),
    b(Views, &[Right], Action::Right, "move across confusion cells"),
    f(Views, &[Enter], Action::Enter, "confusion cell: open the gallery on its images", ("⏎", "images", &[Confusion])),
    b(Views, &[Esc], Action::Escape, "close a popup or leave a filter"),
    f(Views, &[Char('f')], Action::CycleFilter, "gallery filter: misclassified, true or predicted class", ("f", "filter", &[Gallery])),
    f(Views, &[Char('O')], Action::CycleSort, "gallery: sort (file, confidence ↑ ↓, loss)", ("O", "sort", &[Gallery])),
    f(Views, &[Char('g')], Action::ToggleCam, "gallery and opened image: Grad-CAM overlay on or off", ("g", "Grad-CAM", &[Gallery])),
    f(Views, &[Char('[')], Action::CamPrevClass, "Grad-CAM: explain the previous / next class", ("[ ]", "class", &[Gallery])),
    b(Views, &[Char(']')], Action::CamNextClass, "Grad-CAM: explain the previous / next class"),
    f(
        Views,
        &[Char('o')],
        Action::OpenPrompt,
        "open an image or folder: prediction, Grad-CAM",
        ("o", "open image", &[Dashboard, Gallery, Data]),
    ),
    f(
        Views,
        &[Char('v')],
        Action::ToggleSplit,
        "confusion and gallery: validation or test split",
        ("v", "val/test", &[Confusion, Gallery]),
    ),
    b(Views, &[Char('i')], Action::ToggleImageProtocol, "image previews: detected protocol or halfblocks"),
    f(Views, &[Char('?')], Action::ToggleHelp, "this help", ("?", "help", ALL)),
    f(Views, &[Char('q')], Action::Quit, "quit (asks first while training; attached: detach)", ("q", "quit", ALL)),
    // Ctrl-C is read before any table (any mode): listed here for help and README.
    b(Views, &[], Action::Interrupt, "Ctrl-C: stop now, save, quit (twice: no report; attached: detach)"),
    b(Opened, &[Esc, Enter], Action::Escape, "close the opened image"),
    b(Opened, &[Up, Char('k')], Action::Up, "previous / next image of the opened folder"),
    b(Opened, &[Down, Char('j')], Action::Down, "previous / next image of the opened folder"),
    b(Opened, &[Char('g')], Action::ToggleCam, "Grad-CAM overlay on or off"),
    b(Opened, &[Char('[')], Action::CamPrevClass, "explain the previous / next class"),
    b(Opened, &[Char(']')], Action::CamNextClass, "explain the previous / next class"),
    b(Opened, &[Char('o')], Action::OpenPrompt, "open another image or folder"),
    b(Opened, &[Char('q')], Action::Quit, "quit"),
    b(Quit, &[Char('s'), Char('y'), Char('q')], Action::QuitStopAndSave, "stop now, save the weights, then quit"),
    b(Quit, &[Char('d'), Char('h')], Action::QuitDetach, "keep training in the background (attach later)"),
    b(Quit, &[Char('c'), Char('n'), Esc], Action::Escape, "cancel"),
    b(Experiment, &[Up, Char('k')], Action::Up, "previous / next member"),
    b(Experiment, &[Down, Char('j')], Action::Down, "previous / next member"),
    b(Experiment, &[Enter], Action::Enter, "open the member's own dashboard (q comes back)"),
    b(Experiment, &[Char('s')], Action::StopAfterEpoch, "stop every training member after its epoch"),
    b(Experiment, &[Char('p')], Action::TogglePause, "pause / resume every training member"),
    b(Experiment, &[Char('r')], Action::Refresh, "read the members' folders again"),
    b(Experiment, &[Char('?')], Action::ToggleHelp, "help"),
    b(Experiment, &[Char('q'), Esc], Action::Quit, "leave (members keep training)"),
    b(Overlay, &[Esc, Enter, Char('?')], Action::Escape, "close"),
    b(Overlay, &[Char('q')], Action::Quit, "quit"),
];

/// How a key is written in help, footers and README.
pub fn key_name(k: KeyCode) -> String {
    match k {
        Char(' ') => "space".into(),
        Char(c) => c.to_string(),
        Up => "↑".into(),
        Down => "↓".into(),
        Left => "←".into(),
        Right => "→".into(),
        PageUp => "PgUp".into(),
        PageDown => "PgDn".into(),
        Home => "Home".into(),
        End => "End".into(),
        Enter => "Enter".into(),
        Esc => "Esc".into(),
        Tab => "Tab".into(),
        BackTab => "Shift-Tab".into(),
        other => format!("{other:?}"),
    }
}

fn scope_of(mode: &Mode) -> Option<Scope> {
    match mode {
        Mode::Normal => Some(Views),
        Mode::Predict => Some(Opened),
        Mode::QuitConfirm => Some(Quit),
        Mode::Help | Mode::Summary => Some(Overlay),
        Mode::LrPrompt(_) | Mode::OpenPrompt(_) => None,
    }
}

/// The action a key asks for in a mode: Ctrl-C always interrupts; the prompts take text; everything else
/// comes from `BINDINGS`.
pub fn map(mode: &Mode, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') {
        return Some(Action::Interrupt);
    }
    let Some(scope) = scope_of(mode) else {
        return match key.code {
            Enter => Some(Action::Enter),
            Esc => Some(Action::Escape),
            Backspace => Some(Action::Backspace),
            Tab if matches!(mode, Mode::OpenPrompt(_)) => Some(Action::Complete),
            Char(c) => Some(Action::Char(c)),
            _ => None,
        };
    };
    map_scope(scope, key)
}

/// The action a key asks for in one scope (Ctrl-C: interrupt).
pub fn map_scope(scope: Scope, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == Char('c') {
        return Some(Action::Interrupt);
    }
    BINDINGS.iter().find(|b| b.scope == scope && b.keys.contains(&key.code)).map(|b| b.action.clone())
}

use KeyCode::Backspace;

/// The lines of help for a scope: (keys, what they do), bindings with the same text on one line.
pub fn help_lines(scope: Scope) -> Vec<(String, &'static str)> {
    let mut lines: Vec<(String, &'static str)> = vec![];
    for b in BINDINGS.iter().filter(|b| b.scope == scope) {
        let keys = if b.keys.is_empty() { "Ctrl-C".to_string() } else { b.keys.iter().map(|k| key_name(*k)).collect::<Vec<_>>().join(" ") };
        let what = b.what.strip_prefix("Ctrl-C: ").unwrap_or(b.what);
        match lines.last_mut() {
            Some((k, w)) if *w == what => {
                k.push_str(" / ");
                k.push_str(&keys);
            }
            _ => lines.push((keys, what)),
        }
    }
    for (keys, _) in &mut lines {
        *keys = keys.replace("1 / 2 / 3 / 4 / 5", "1-5");
    }
    lines
}

/// A view's footer: (keys, short label), in table order.
pub fn footer(view: View) -> Vec<(&'static str, &'static str)> {
    BINDINGS.iter().filter_map(|b| b.foot.as_ref()).filter(|f| f.views.contains(&view)).map(|f| (f.keys, f.label)).collect()
}

/// The quit dialog's lines: (keys, what they do).
pub fn quit_hints() -> Vec<(String, &'static str)> {
    help_lines(Quit)
}

/// README's key table, made from `BINDINGS` (a test keeps README's copy equal to it).
pub fn markdown_table() -> String {
    let mut out = String::from("| key | action |\n|---|---|\n");
    for (scope, heading) in [(Views, ""), (Opened, "opened image: "), (Quit, "quit dialog: "), (Experiment, "experiment view: ")] {
        for (keys, what) in help_lines(scope) {
            let keys = keys.replace('|', "\\|");
            out.push_str(&format!("| {keys} | {heading}{what} |\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the table maps is named in the help of its scope, and no key means two things in one
    /// scope.
    #[test]
    fn every_mapped_key_is_in_the_help_and_none_is_bound_twice() {
        for scope in [Views, Opened, Quit, Overlay, Experiment] {
            let help = help_lines(scope);
            let mut seen = std::collections::HashSet::new();
            for b in BINDINGS.iter().filter(|b| b.scope == scope) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k:?} is bound twice in {scope:?}");
                    let name = key_name(*k);
                    let named = |keys: &str| {
                        keys.split([' ', '/']).any(|w| w == name || (w == "1-5" && ('1'..='5').any(|d| name == d.to_string())))
                    };
                    assert!(help.iter().any(|(keys, _)| named(keys)), "{name} ({scope:?}) is not in the help");
                }
            }
        }
        // Keys that once were mapped but missing from the help.
        let views = help_lines(Views);
        for k in ["G", "=", "_", "h"] {
            assert!(views.iter().any(|(keys, _)| keys.split(' ').any(|w| w == k)), "{k}");
        }
    }

    #[test]
    fn the_table_drives_the_keys() {
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert_eq!(map(&Mode::Normal, key(Char('='))), Some(Action::LrUp));
        assert_eq!(map(&Mode::Normal, key(Char('G'))), Some(Action::End));
        assert_eq!(map(&Mode::Normal, key(Char('3'))), Some(Action::Show(Gallery)));
        assert_eq!(map(&Mode::QuitConfirm, key(Char('d'))), Some(Action::QuitDetach));
        assert_eq!(map(&Mode::Predict, key(Char('k'))), Some(Action::Up));
        assert_eq!(map(&Mode::Help, key(Char('?'))), Some(Action::Escape));
        assert_eq!(map(&Mode::LrPrompt(String::new()), key(Char('3'))), Some(Action::Char('3')));
        assert_eq!(map(&Mode::OpenPrompt(String::new()), key(Tab)), Some(Action::Complete));
        assert_eq!(map(&Mode::LrPrompt(String::new()), key(Tab)), None);
        assert_eq!(map(&Mode::Normal, KeyEvent::new(Char('c'), KeyModifiers::CONTROL)), Some(Action::Interrupt));
        assert_eq!(map(&Mode::Normal, key(Char('Z'))), None);
        assert_eq!(footer(Gallery).first(), Some(&("↑↓", "move")));
    }
}
