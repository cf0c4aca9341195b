//! `tumorscope experiment run | resume | show`: plan an experiment (every member's `train` flags,
//! checked before anything starts), write `experiment.json`, then drive it (`executor`).

use super::executor;
use super::train_flags::{parse_train, train_flags};
use crate::cli::TrainArgs;
use crate::cli_experiment::{ExperimentAction, ExperimentArgs, ExperimentRunArgs, ExperimentShowArgs};
use crate::experiment::{self, Executor, ExperimentDir, GridAxis, Plan, aggregate, members, plan};
use anyhow::{Result, anyhow, bail};
use std::path::Path;

pub fn run(args: ExperimentArgs) -> Result<u8> {
    match args.action {
        ExperimentAction::Run(a) => start(a),
        ExperimentAction::Resume(a) => {
            if a.detached_child {
                super::detach::become_session_leader();
            }
            let exp = ExperimentDir::open(&a.experiment)?;
            if a.detach { executor::detach(&exp) } else { executor::drive(&exp) }
        }
        ExperimentAction::Show(a) => show(&a).map(|_| 0),
        ExperimentAction::Member(a) => executor::run_member(&ExperimentDir::open(&a.experiment)?, a.index),
    }
}

/// Flags the experiment sets for each member itself.
const CONTROLLED: [&str; 8] = ["folds", "fold", "split-seed", "resume", "detach", "runs-dir", "no-tui", "seed"];

fn check_train_flags(t: &TrainArgs, seeds_given: bool) -> Result<()> {
    let given = [
        (t.folds.is_some(), "--folds", "give `experiment run --folds K`"),
        (t.fold.is_some() || t.split_seed.is_some(), "--fold/--split-seed", "the experiment sets them per member"),
        (t.resume.is_some(), "--resume", "use `experiment resume EXP`"),
        (t.detach, "--detach", "give `experiment run --detach` before the train flags"),
        (t.runs_dir.is_some() || t.run_dir.is_some(), "--runs-dir", "members live in EXP/runs/"),
        (t.seed.is_some() && seeds_given, "--seed", "--seeds lists every seed"),
    ];
    for (on, flag, why) in given {
        if on {
            bail!("{flag} is not a member flag here: {why}");
        }
    }
    Ok(())
}

fn check_grid(grid: &[GridAxis], names: &[String], seeds_given: bool) -> Result<()> {
    for axis in grid {
        if !names.contains(&axis.key) {
            bail!("--grid {}: not a train flag (see `tumorscope train --help`)", axis.key);
        }
        if CONTROLLED.contains(&axis.key.as_str()) && (axis.key != "seed" || seeds_given) {
            bail!("--grid {}: set by the experiment itself (use --folds or --seeds)", axis.key);
        }
    }
    Ok(())
}

/// `--data` and `--config` as absolute paths (members may run from another folder or node); the data
/// folder found the usual way is pinned, so every member trains on the same one.
fn pin_paths(flags: &[String], t: &TrainArgs) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut it = flags.iter().peekable();
    while let Some(f) = it.next() {
        let (name, inline) = match f.split_once('=') {
            Some((n, v)) if n == "--data" || n == "--config" => (n.to_string(), Some(v.to_string())),
            _ => (f.clone(), None),
        };
        if name == "--data" || name == "--config" {
            let v = inline.or_else(|| it.next().cloned()).unwrap_or_default();
            let abs = std::fs::canonicalize(&v).map_err(|e| anyhow!("{name} {v}: {e}"))?;
            out.extend([name, abs.display().to_string()]);
        } else {
            out.push(f.clone());
        }
    }
    if t.data.is_none() && !t.synthetic {
        let (_, place) = t.resolve_all()?;
        let src = super::prepare::resolve_source(place.data.as_deref(), false)?;
        if src.synthetic {
            crate::run::output::err(super::prepare::GET_REAL_DATA);
            out.push("--synthetic".into());
        } else {
            out.extend(["--data".into(), std::fs::canonicalize(&src.root)?.display().to_string()]);
        }
    }
    Ok(out)
}

/// `experiment run`: continue the experiment of that name, or plan a new one and drive it.
fn start(a: ExperimentRunArgs) -> Result<u8> {
    let plan = make_plan(&a)?;
    if let Some(name) = &a.name
        && let Some(exp) = experiment::find_named(&a.experiments_dir, name)
    {
        let old = exp.read_plan()?;
        if old.members != plan.members || old.train_args != plan.train_args {
            bail!("{}: planned with other flags; give another --name, or `experiment resume {0}`", exp.path.display());
        }
        crate::run::output::err(&format!("continuing {}", exp.path.display()));
        return if a.detach { executor::detach(&exp) } else { executor::drive(&exp) };
    }
    let plan = with_fold_counts(plan)?;
    let exp =
        experiment::create(&a.experiments_dir, &plan.name).map_err(|e| anyhow!("{}: cannot create: {e}", a.experiments_dir.display()))?;
    exp.write_plan(&plan)?;
    crate::run::output::err(&format!("experiment {}: {} member(s), {}", exp.path.display(), plan.members.len(), describe(&plan)));
    if a.detach { executor::detach(&exp) } else { executor::drive(&exp) }
}

fn describe(p: &Plan) -> String {
    let mut s = vec![];
    if p.folds >= 2 {
        s.push(format!("{} folds", p.folds));
    }
    s.push(format!("seeds {:?}", p.seeds));
    for g in &p.grid {
        s.push(format!("{} ∈ {{{}}}", g.key, g.values.join(", ")));
    }
    s.push(format!("{:?} executor, {} at once", p.executor, p.parallel).to_lowercase());
    s.join(", ")
}

/// Every member's flags, checked by parsing and validating them as `train` will.
fn make_plan(a: &ExperimentRunArgs) -> Result<Plan> {
    let base = parse_train(&a.train)?;
    let seeds_given = !a.seeds.is_empty();
    check_train_flags(&base, seeds_given)?;
    let (names, switches) = train_flags();
    let grid: Vec<GridAxis> = a.grid.iter().map(|g| plan::parse_axis(g).map_err(anyhow::Error::from)).collect::<Result<_>>()?;
    check_grid(&grid, &names, seeds_given)?;
    let folds = a.folds.unwrap_or(0);
    if a.folds.is_some() && folds < 2 {
        bail!("--folds {folds}: cross-validation needs at least 2 folds");
    }
    if a.executor == Executor::Slurm {
        super::slurm::check_sbatch()?;
    }
    let (cfg, _) = base.resolve_all()?;
    let seeds = if seeds_given { a.seeds.clone() } else { vec![cfg.seed] };
    let parallel = a.parallel.unwrap_or(if a.gpus.is_empty() { 1 } else { a.gpus.len() }).max(1);
    let mut train_args = pin_paths(&a.train, &base)?;
    if a.executor == Executor::Local && a.gpus.is_empty() && parallel > 1 && base.threads.is_none() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        train_args.extend(["--threads".into(), (cores / parallel).max(1).to_string()]);
    }
    let members = plan::members(folds, cfg.seed, &seeds, &grid, &switches);
    for m in &members {
        let flags: Vec<String> = train_args.iter().chain(&m.args).cloned().collect();
        parse_train(&flags)?.resolve_all().map_err(|e| anyhow!("member {}: {e}", m.id))?;
    }
    Ok(Plan {
        format: plan::FORMAT,
        name: a.name.clone().unwrap_or_else(|| if folds >= 2 { format!("{folds}fold") } else { "sweep".into() }),
        created_unix: crate::run::dir::now_unix(),
        train_args,
        folds,
        split_seed: cfg.seed,
        seeds,
        grid,
        executor: a.executor,
        parallel,
        gpus: a.gpus.clone(),
        slurm: a.slurm.clone(),
        fold_counts: vec![],
        members,
    })
}

/// Load the data once (the members then read the cache), deal the folds and record what each holds;
/// more folds than the smallest class has groups is refused here, before any member starts.
fn with_fold_counts(mut plan: Plan) -> Result<Plan> {
    if plan.folds < 2 {
        return Ok(plan);
    }
    let first: Vec<String> = plan.train_args.iter().chain(&plan.members[0].args).cloned().collect();
    let t = parse_train(&first)?;
    let (cfg, place) = t.resolve_all()?;
    let src = super::prepare::resolve_source(place.data.as_deref(), t.synthetic)?;
    let (set, _) = super::prepare::load(&src, &cfg, false)?;
    let split = super::prepare::split(&set, &cfg)?;
    let mut counts = vec![vec![0usize; set.classes.len()]; plan.folds];
    for (i, f) in split.fold_of.iter().enumerate() {
        if let Some(f) = f {
            counts[*f][set.labels[i]] += 1;
        }
    }
    crate::run::output::err(&format!(
        "folds (images per class): {}; test: {} images",
        counts.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(" "),
        split.test.len()
    ));
    plan.fold_counts = counts;
    Ok(plan)
}

/// `experiment show`.
fn show(a: &ExperimentShowArgs) -> Result<()> {
    let exp = ExperimentDir::open(&a.experiment)?;
    let plan = exp.read_plan()?;
    let st = members::all(&exp, &plan.members);
    let agg = aggregate::aggregate(&st);
    if a.json {
        let out = serde_json::json!({ "experiment": exp.path.display().to_string(), "plan": plan, "aggregate": agg });
        crate::run::output::out(&serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    crate::run::output::out(&format!("experiment {}: {}\n", exp.path.display(), describe(&plan)));
    crate::run::output::out(&aggregate::text(&agg));
    Ok(())
}

/// The experiment folder a path names, if it is one (for commands that take a run or an experiment).
pub fn as_experiment(path: &Path) -> Option<ExperimentDir> {
    ExperimentDir::open(path).ok()
}
