//! Everything a key can ask for; keys map to these by a pure function (`keys::map`).

/// The four views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Dashboard,
    Confusion,
    Gallery,
    Data,
    Runs,
}

impl View {
    pub const ALL: [View; 5] = [View::Dashboard, View::Confusion, View::Gallery, View::Data, View::Runs];

    pub fn title(self) -> &'static str {
        match self {
            View::Dashboard => "Dashboard",
            View::Confusion => "Confusion",
            View::Gallery => "Gallery",
            View::Data => "Data",
            View::Runs => "Runs",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    NextView,
    PrevView,
    Show(View),
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Enter,
    Escape,
    StopAfterEpoch,
    StopNow,
    LrUp,
    LrDown,
    OpenLrPrompt,
    TogglePause,
    CheckpointNow,
    ToggleEarlyStopping,
    CycleTheme,
    ToggleHelp,
    Quit,
    /// Ctrl-C: stop, save and leave.
    Interrupt,
    CycleFilter,
    CycleSort,
    ToggleSplit,
    ToggleImageProtocol,
    /// Runs view: select or unselect the run under the cursor for comparison.
    ToggleSelect,
    /// Runs view: read the runs folder again.
    Refresh,
    /// Gallery and the open-image popup: Grad-CAM overlay on or off.
    ToggleCam,
    /// The class Grad-CAM explains: previous / next (around: the predicted class).
    CamPrevClass,
    CamNextClass,
    /// Ask for an image file or folder to classify (the article's upload widget).
    OpenPrompt,
    /// Tab in the path prompt.
    Complete,
    /// Typing in the LR prompt.
    Char(char),
    Backspace,
    /// Quit dialog answers.
    QuitStopAndSave,
    QuitDetach,
}
