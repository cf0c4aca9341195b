//! The Experiment view (`attach EXP`, `watch EXP`): one row per member with its state, epoch bar, best
//! validation and test accuracy; the aggregate with its interval; the members' validation curves
//! overlaid. Enter opens a member's own dashboard (the command does, and comes back here); `s` and `p`
//! stop or pause every live member. State is read from the members' run folders, like `runs`.

use super::keys::{self, Scope};
use crate::experiment::aggregate::{self, Aggregate};
use crate::experiment::members::{self, MemberState, MemberStatus};
use crate::experiment::{ExperimentDir, Plan};
use crate::run::{Liveness, TrainCommand};
use crossterm::event::{Event, KeyEventKind};
use std::time::{Duration, Instant};

/// What the Experiment view shows.
pub struct ExperimentScreen {
    pub exp: ExperimentDir,
    pub plan: Plan,
    pub statuses: Vec<MemberStatus>,
    pub aggregate: Aggregate,
    pub cursor: usize,
    pub help: bool,
    pub read_only: bool,
    /// The latest thing said (a command sent, a member that could not be reached).
    pub note: Option<String>,
    pub theme: super::theme::Theme,
    /// Each member's state and latest record when the aggregate was computed: it is recomputed (a
    /// bootstrap per member) only when one of them changes, not on every refresh.
    folded: Vec<(MemberState, Option<u64>)>,
}

/// How the view was left.
pub enum ExperimentEnding {
    Quit,
    /// Open this member's dashboard, then come back.
    Open(std::path::PathBuf, bool),
}

impl ExperimentScreen {
    pub fn new(exp: ExperimentDir, plan: Plan, theme: super::theme::Theme, read_only: bool) -> Self {
        let mut s = ExperimentScreen {
            exp,
            plan,
            statuses: vec![],
            aggregate: aggregate::aggregate(&[]),
            cursor: 0,
            help: false,
            read_only,
            note: None,
            theme,
            folded: vec![],
        };
        s.refresh();
        s
    }

    pub fn refresh(&mut self) {
        self.statuses = members::all(&self.exp, &self.plan.members);
        let folded: Vec<(MemberState, Option<u64>)> = self.statuses.iter().map(|s| (s.state, s.view.as_ref().and_then(|v| v.last_seq))).collect();
        if folded != self.folded {
            self.aggregate = aggregate::aggregate(&self.statuses);
            self.folded = folded;
        }
        self.cursor = self.cursor.min(self.statuses.len().saturating_sub(1));
    }

    /// Send `cmd` to every member that is training now (its socket here, its folder elsewhere).
    fn send_to_every_live(&mut self, cmd: &TrainCommand) {
        let (mut sent, mut failed) = (0, vec![]);
        for s in self.statuses.iter().filter(|s| s.state == MemberState::Running) {
            let r = match s.run.liveness() {
                Liveness::Elsewhere(_) => crate::run::inbox::post(&s.run, cmd).map(|_| ()),
                _ => crate::run::socket::connect(&s.run).map_err(std::io::Error::other).and_then(|mut st| crate::run::socket::send(&mut st, cmd)),
            };
            match r {
                Ok(()) => sent += 1,
                Err(e) => failed.push(format!("{}: {e}", s.member.id)),
            }
        }
        self.note = Some(match failed.is_empty() {
            true => format!("'{}' sent to {sent} member(s)", cmd.describe()),
            false => format!("'{}' sent to {sent}; not reached: {}", cmd.describe(), failed.join("; ")),
        });
    }

    /// Apply a key's action; `Some` when the view is left.
    pub fn act(&mut self, a: &super::action::Action) -> Option<ExperimentEnding> {
        use super::action::Action;
        if self.help {
            self.help = !matches!(a, Action::Escape | Action::ToggleHelp | Action::Enter);
            return matches!(a, Action::Quit).then_some(ExperimentEnding::Quit);
        }
        match a {
            Action::Up => self.cursor = self.cursor.saturating_sub(1),
            Action::Down => self.cursor = (self.cursor + 1).min(self.statuses.len().saturating_sub(1)),
            Action::Refresh => self.refresh(),
            Action::ToggleHelp => self.help = true,
            Action::Quit | Action::Interrupt => return Some(ExperimentEnding::Quit),
            Action::Enter => {
                let s = self.statuses.get(self.cursor)?;
                return s.run.events().exists().then(|| ExperimentEnding::Open(s.run.path.clone(), self.read_only));
            }
            Action::StopAfterEpoch if !self.read_only => self.send_to_every_live(&TrainCommand::StopAfterEpoch),
            Action::TogglePause if !self.read_only => {
                let paused = self.statuses.iter().any(|s| s.view.as_ref().is_some_and(|v| v.state == crate::run::RunState::Paused));
                self.send_to_every_live(if paused { &TrainCommand::Resume } else { &TrainCommand::Pause });
            }
            _ => {}
        }
        None
    }
}

/// Run the view until the user leaves or opens a member.
pub fn run(screen: &mut ExperimentScreen) -> anyhow::Result<ExperimentEnding> {
    let (mut term, guard) = super::setup()?;
    let mut last = Instant::now();
    let end = loop {
        term.draw(|f| super::views::experiment::draw(f, screen))?;
        if crossterm::event::poll(Duration::from_millis(500))?
            && let Event::Key(k) = crossterm::event::read()?
            && k.kind == KeyEventKind::Press
            && let Some(a) = keys::map_scope(Scope::Experiment, k)
            && let Some(end) = screen.act(&a)
        {
            break end;
        }
        if last.elapsed() > Duration::from_secs(1) {
            screen.refresh();
            last = Instant::now();
        }
    };
    drop(guard);
    std::mem::forget(term);
    Ok(end)
}
