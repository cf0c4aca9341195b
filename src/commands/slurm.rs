//! The Slurm executor: one job array per round, task i runs `tumorscope experiment member EXP i`
//! (which resumes or starts member i); the driver follows the members' run folders and `squeue`, and
//! submits again the members a round left unfinished (a node that died, a member killed). The
//! experiment folder and the binary must be on a filesystem the nodes share.

use crate::experiment::members::{self, MemberState, MemberStatus, Narrator};
use crate::experiment::{ExperimentDir, Plan};
use crate::run::output;
use anyhow::{Context, Result, anyhow, bail};
use std::time::Duration;

/// Rounds of submission before unfinished members are given up.
const ROUNDS: usize = 3;
const POLL: Duration = Duration::from_secs(2);

/// `sbatch` is needed to submit; say so in one line when it is missing.
pub fn check_sbatch() -> Result<()> {
    match std::process::Command::new("sbatch").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => bail!("--executor slurm: `sbatch --version` failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(_) => bail!("--executor slurm: sbatch not found on PATH (install Slurm's client tools, or use --executor local)"),
    }
}

/// The batch script of the array.
fn script(exp: &ExperimentDir, exe: &std::path::Path) -> String {
    format!(
        "#!/bin/sh\n# Written by tumorscope: task i runs member i of the experiment.\nexec '{}' experiment member '{}' \"$SLURM_ARRAY_TASK_ID\"\n",
        exe.display(),
        exp.path.display()
    )
}

/// Submit the members at `indices` as one array; the job id.
fn submit(exp: &ExperimentDir, plan: &Plan, indices: &[usize]) -> Result<String> {
    let dir = exp.slurm_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let exe = std::env::current_exe().context("cannot find the tumorscope binary")?;
    let script_path = dir.join("array.sh");
    std::fs::write(&script_path, script(exp, &exe)).with_context(|| format!("{}: cannot write", script_path.display()))?;
    let list: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
    let mut cmd = std::process::Command::new("sbatch");
    cmd.arg("--parsable")
        .arg(format!("--array={}%{}", list.join(","), plan.parallel.max(1)))
        .arg(format!("--job-name=tumorscope-{}", plan.name))
        .arg(format!("--output={}/%A_%a.out", dir.display()))
        .arg(format!("--chdir={}", exp.path.display()));
    if let Some(extra) = &plan.slurm {
        cmd.args(extra.split_whitespace());
    }
    let out = cmd.arg(&script_path).output().map_err(|e| anyhow!("sbatch: cannot run: {e} (is Slurm installed?)"))?;
    if !out.status.success() {
        bail!("sbatch refused the array: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        bail!("sbatch printed no job id");
    }
    let mut jobs: Vec<String> = std::fs::read_to_string(dir.join("jobs")).unwrap_or_default().lines().map(str::to_string).collect();
    jobs.push(id.clone());
    crate::run::dir::write_atomic(&dir.join("jobs"), (jobs.join("\n") + "\n").as_bytes())?;
    Ok(id)
}

/// Whether any task of `job` is still queued or running.
fn queued(job: &str) -> Result<bool> {
    let out = std::process::Command::new("squeue").args(["-h", "-o", "%i", "-j", job]).output().map_err(|e| anyhow!("squeue: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // A job Slurm has already forgotten is no longer queued.
        if err.contains("Invalid job id") {
            return Ok(false);
        }
        bail!("squeue -j {job}: {}", err.trim());
    }
    Ok(!String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

/// The job of an earlier driver that still has tasks in the queue, if any.
fn live_job(exp: &ExperimentDir) -> Option<String> {
    let jobs = std::fs::read_to_string(exp.slurm_dir().join("jobs")).ok()?;
    jobs.lines().rev().find(|j| queued(j).unwrap_or(false)).map(str::to_string)
}

pub fn drive(exp: &ExperimentDir, plan: &Plan) -> Result<Vec<MemberStatus>> {
    check_sbatch()?;
    let mut narrator = Narrator::default();
    let mut job = live_job(exp);
    if let Some(j) = &job {
        output::err(&format!("following Slurm job {j}, submitted earlier"));
    }
    let mut rounds = 0;
    loop {
        let st = members::all(exp, &plan.members);
        narrator.tell(&st);
        let in_queue = match &job {
            Some(j) => queued(j)?,
            None => false,
        };
        if in_queue || st.iter().any(|s| s.state == MemberState::Running) {
            std::thread::sleep(POLL);
            continue;
        }
        let todo: Vec<usize> = (0..st.len()).filter(|&i| !st[i].state.settled()).collect();
        if todo.is_empty() || rounds == ROUNDS {
            for &i in &todo {
                output::err(&format!(
                    "member {}: unfinished after {ROUNDS} Slurm rounds (see {})",
                    st[i].member.id,
                    exp.slurm_dir().display()
                ));
            }
            return Ok(st);
        }
        rounds += 1;
        let id = submit(exp, plan, &todo)?;
        output::err(&format!("submitted Slurm job array {id}: {} member(s)", todo.len()));
        job = Some(id);
        std::thread::sleep(POLL);
    }
}
