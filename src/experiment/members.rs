//! Where each member stands, read from its run folder: the same fold of `events.jsonl` that `runs`
//! uses, and the trainer lock for liveness.

use super::{ExperimentDir, Member};
use crate::run::dir::RunDir;
use crate::run::state::RunView;
use serde::Serialize;
use std::collections::HashMap;

/// A member's state as the driver acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// No run folder yet (or one in which nothing ever started).
    Pending,
    /// A trainer holds the run's lock.
    Running,
    /// Trained to its end (early stopping included).
    Finished,
    /// Stopped by a user or a signal before its last epoch: resumed by the next driver.
    Stopped,
    /// Its process died without a word: resumed (or restarted, if it saved nothing) by the next driver.
    Crashed,
    /// Ended with an error: left as it is, and said.
    Failed,
}

impl MemberState {
    pub fn word(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Running => "running",
            MemberState::Finished => "finished",
            MemberState::Stopped => "stopped",
            MemberState::Crashed => "crashed",
            MemberState::Failed => "failed",
        }
    }

    /// Nothing more will happen to it without a user.
    pub fn settled(self) -> bool {
        matches!(self, MemberState::Finished | MemberState::Failed)
    }
}

/// One member and its run.
#[derive(Debug, Clone)]
pub struct MemberStatus {
    pub member: Member,
    pub run: RunDir,
    pub state: MemberState,
    pub view: Option<RunView>,
    /// The run saved a resume point (a resume continues it; otherwise it starts again).
    pub resumable: bool,
}

/// Read one member's folder.
pub fn status(exp: &ExperimentDir, member: &Member) -> MemberStatus {
    let run = RunDir { path: exp.member_dir(member) };
    let resumable = run.resume_state().is_file() || run.last().is_file();
    let view = crate::run::status::load_view(&run).ok().map(|(v, _)| v).filter(|v| v.info.is_some() || v.is_over());
    let state = if run.lock_held() {
        MemberState::Running
    } else {
        match view.as_ref().map(|v| v.status()) {
            None => MemberState::Pending,
            Some("finished") => MemberState::Finished,
            Some("stopped") => MemberState::Stopped,
            Some("failed") => MemberState::Failed,
            // Not over and no trainer holds it: the process died.
            Some(_) => MemberState::Crashed,
        }
    };
    MemberStatus { member: member.clone(), run, state, view, resumable }
}

/// Every member's status, in plan order.
pub fn all(exp: &ExperimentDir, members: &[Member]) -> Vec<MemberStatus> {
    members.iter().map(|m| status(exp, m)).collect()
}

/// Says each change of a member's state once.
#[derive(Default)]
pub struct Narrator {
    last: HashMap<String, MemberState>,
}

impl Narrator {
    pub fn tell(&mut self, st: &[MemberStatus]) {
        let total = st.len();
        for (i, s) in st.iter().enumerate() {
            let before = self.last.insert(s.member.id.clone(), s.state);
            if before == Some(s.state) || (before.is_none() && s.state == MemberState::Pending) {
                continue;
            }
            let extra = match (s.state, s.view.as_ref()) {
                (MemberState::Finished | MemberState::Stopped, Some(v)) => match &v.test_report {
                    Some(r) => format!(": test accuracy {:.2}%", 100.0 * r.accuracy),
                    None => String::new(),
                },
                (MemberState::Failed, Some(v)) => format!(": {}", v.error.clone().unwrap_or_default()),
                _ => String::new(),
            };
            crate::run::output::err(&format!("member {}/{total} {} {}{extra}", i + 1, s.member.id, s.state.word()));
        }
    }
}
