//! Driving an experiment: start, resume or follow each member until every one is settled. `local`
//! starts members as detached `train` processes (they outlive the driver: a driver killed and started
//! again follows them); `slurm` submits a job array whose task i runs `experiment member EXP i`.

use super::train_flags::parse_train;
use crate::experiment::members::{self, MemberState, MemberStatus, Narrator};
use crate::experiment::{Executor, ExperimentDir, Plan, aggregate};
use crate::run::dir::RunDir;
use crate::run::output;
use anyhow::{Context, Result, anyhow};
use std::collections::HashMap;
use std::ffi::OsString;
use std::time::Duration;

/// Attempts to start one member within one driver before it is given up as failing to start.
const ATTEMPTS: usize = 3;
const POLL: Duration = Duration::from_millis(1500);

/// Start the driver as a background process (its own session; output into EXP/driver.log).
pub fn detach(exp: &ExperimentDir) -> Result<u8> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(exp.driver_log())
        .with_context(|| exp.driver_log().display().to_string())?;
    let exe = std::env::current_exe().context("cannot find the tumorscope binary")?;
    let child = std::process::Command::new(exe)
        .args([OsString::from("experiment"), "resume".into(), exp.path.clone().into_os_string(), "--detached-child".into()])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the background driver")?;
    let p = exp.path.display();
    output::out(&format!("driving {p} in the background (pid {})", child.id()));
    output::out(&format!("  follow:  tumorscope experiment show {p}   ·   tumorscope watch {p}"));
    output::out(&format!("  output:  {}", exp.driver_log().display()));
    Ok(0)
}

/// Drive the experiment to its end, then print the aggregate. Exit 1 when a member failed.
pub fn drive(exp: &ExperimentDir) -> Result<u8> {
    let _lock = exp.lock_driver()?;
    let plan = exp.read_plan()?;
    let statuses = match plan.executor {
        Executor::Local => drive_local(exp, &plan)?,
        Executor::Slurm => super::slurm::drive(exp, &plan)?,
    };
    let agg = aggregate::aggregate(&statuses);
    output::out(&aggregate::text(&agg));
    Ok(if statuses.iter().all(|s| s.state == MemberState::Finished) { 0 } else { 1 })
}

fn drive_local(exp: &ExperimentDir, plan: &Plan) -> Result<Vec<MemberStatus>> {
    let mut attempts: HashMap<String, usize> = HashMap::new();
    let mut narrator = Narrator::default();
    loop {
        let st = members::all(exp, &plan.members);
        narrator.tell(&st);
        let waiting = |s: &MemberStatus| !s.state.settled() && s.state != MemberState::Running;
        let startable: Vec<bool> = st.iter().map(|s| waiting(s) && attempts.get(&s.member.id).copied().unwrap_or(0) < ATTEMPTS).collect();
        if st.iter().zip(&startable).all(|(s, &go)| s.state.settled() || (waiting(s) && !go)) {
            for s in st.iter().filter(|s| !s.state.settled()) {
                output::err(&format!(
                    "member {}: did not start after {ATTEMPTS} attempts (see {})",
                    s.member.id,
                    s.run.output_log().display()
                ));
            }
            return Ok(st);
        }
        let mut running: Vec<usize> = (0..st.len()).filter(|&i| st[i].state == MemberState::Running).collect();
        for i in 0..st.len() {
            if running.len() >= plan.parallel || !startable[i] {
                continue;
            }
            let gpu = gpu_of(plan, i);
            if gpu.is_some() && running.iter().any(|&j| gpu_of(plan, j) == gpu) {
                continue;
            }
            *attempts.entry(st[i].member.id.clone()).or_default() += 1;
            match launch(exp, plan, &st[i], gpu) {
                Ok(()) => running.push(i),
                Err(e) => output::err(&format!("member {}: cannot start: {e:#}", st[i].member.id)),
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The GPU member `i` runs on, with `--gpus`.
pub fn gpu_of(plan: &Plan, i: usize) -> Option<usize> {
    (!plan.gpus.is_empty()).then(|| plan.gpus[i % plan.gpus.len()])
}

/// The `train` command line that continues or starts a member: `--resume` when it saved a resume
/// point, else a fresh start in its folder (an earlier attempt that saved nothing is moved aside,
/// not deleted).
pub fn member_command(exp: &ExperimentDir, plan: &Plan, s: &MemberStatus, gpu: Option<usize>) -> Result<Vec<OsString>> {
    let run = &s.run;
    let device = gpu.map(|g| vec![OsString::from("--device"), format!("cuda:{g}").into()]).unwrap_or_default();
    if matches!(s.state, MemberState::Stopped | MemberState::Crashed) && crate::train::resume::read_state(run).is_ok() {
        let mut args: Vec<OsString> = vec!["train".into(), "--resume".into(), run.path.clone().into()];
        args.extend(device);
        // The member's thread share, which a resume may change.
        let base = parse_train(&plan.train_args)?;
        if let Some(t) = base.threads {
            args.extend(["--threads".into(), t.to_string().into()]);
        }
        return Ok(args);
    }
    if run.path.exists() && std::fs::read_dir(&run.path).map(|mut d| d.next().is_some()).unwrap_or(false) {
        let aside = exp.runs().join(format!(".{}.attempt-{}", s.member.id, crate::run::dir::utc_stamp(crate::run::dir::now_unix())));
        std::fs::rename(&run.path, &aside).with_context(|| format!("{}: cannot move aside", run.path.display()))?;
        output::err(&format!("member {}: its earlier attempt saved nothing to resume; kept as {}", s.member.id, aside.display()));
    }
    std::fs::create_dir_all(&run.path).with_context(|| format!("{}: cannot create", run.path.display()))?;
    let mut args: Vec<OsString> = vec!["train".into()];
    args.extend(plan.train_args.iter().chain(&s.member.args).map(OsString::from));
    args.extend(device);
    args.extend(["--run-dir".into(), run.path.clone().into()]);
    Ok(args)
}

/// Start one member as a detached `train` process holding its run's lock.
fn launch(exp: &ExperimentDir, plan: &Plan, s: &MemberStatus, gpu: Option<usize>) -> Result<()> {
    let mut args = member_command(exp, plan, s, gpu)?;
    args.extend(["--detached-child".into(), "--no-tui".into()]);
    let run = RunDir { path: s.run.path.clone() };
    let lock = run.lock()?;
    super::detach::spawn_child(&run, args, &lock)?;
    Ok(())
}

/// `experiment member EXP I`: run member I in the foreground (a Slurm task), resuming it if it saved
/// a resume point; a finished or running member is left alone.
pub fn run_member(exp: &ExperimentDir, index: usize) -> Result<u8> {
    let plan = exp.read_plan()?;
    let member =
        plan.members.get(index).ok_or_else(|| anyhow!("{}: no member {index} (it has {})", exp.path.display(), plan.members.len()))?;
    let s = members::status(exp, member);
    if s.state.settled() || s.state == MemberState::Running {
        output::err(&format!("member {}: {}, nothing to do", member.id, s.state.word()));
        return Ok(0);
    }
    // The device is `auto`: Slurm shows the task only the GPUs it was given (--slurm "--gres gpu:1").
    let mut args = member_command(exp, &plan, &s, None)?;
    args.push("--no-tui".into());
    output::err(&format!(
        "member {} on {}: tumorscope {}",
        member.id,
        crate::run::dir::hostname(),
        args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    ));
    let exe = std::env::current_exe().context("cannot find the tumorscope binary")?;
    let status = std::process::Command::new(exe).args(args).status().context("cannot start train")?;
    Ok(status.code().map(|c| c as u8).unwrap_or(1))
}
