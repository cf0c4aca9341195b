//! `tumorscope ensemble EXP|RUN… --out DIR`: a model folder whose network averages its members'
//! calibrated probabilities (`model::ensemble`), accepted wherever a run is for inference. Members must
//! agree on classes and input size and share one test split, which the folder records as its own.

use crate::cli_experiment::EnsembleArgs;
use crate::data::record::{RecordedFile, SplitRecord};
use crate::experiment::{ExperimentDir, members};
use crate::model::ensemble::{EnsembleSpec, FILE, FORMAT, MemberSpec};
use crate::run::dir::{RunDir, RunMeta};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The run folders the arguments name: an experiment's finished members, or runs.
fn member_runs(sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut runs = vec![];
    for s in sources {
        match ExperimentDir::open(s) {
            Ok(exp) => {
                let plan = exp.read_plan()?;
                let st = members::all(&exp, &plan.members);
                let done: Vec<PathBuf> = st.iter().filter(|m| m.state == members::MemberState::Finished).map(|m| m.run.path.clone()).collect();
                if done.len() < st.len() {
                    crate::run::output::err(&format!("note: {}: {} of {} members finished; the others are left out", s.display(), done.len(), st.len()));
                }
                if done.is_empty() {
                    bail!("{}: no finished member to ensemble", s.display());
                }
                runs.extend(done);
            }
            Err(_) => runs.push(std::fs::canonicalize(s).map_err(|e| anyhow!("{}: {e}", s.display()))?),
        }
    }
    Ok(runs)
}

/// The recorded test images of a run (path and hash), which every member must share.
fn test_set(rec: &SplitRecord) -> BTreeSet<(String, String)> {
    rec.files.iter().filter(|f| f.split == "test").map(|f| (f.path.clone(), f.hash.clone())).collect()
}

struct Checked {
    meta: RunMeta,
    spec: MemberSpec,
    record: SplitRecord,
}

fn check_member(run: &Path) -> Result<Checked> {
    let dir = RunDir::open(run)?;
    let meta = dir.read_meta()?;
    let checkpoint = dir.checkpoint().ok_or_else(|| anyhow!("{}: no checkpoint (the run never finished an epoch)", run.display()))?;
    let record = SplitRecord::read(&dir.split_record()).map_err(|e| anyhow!("{e}: an ensemble scores the test split its members share"))?;
    let name = checkpoint.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let temperature = crate::calibration::Calibration::read(&run.join("calibration.json")).ok().filter(|c| c.checkpoint == name).map(|c| c.temperature);
    let spec = MemberSpec { run: run.to_path_buf(), checkpoint, temperature, model: meta.config.model.name().to_string() };
    Ok(Checked { meta, spec, record })
}

/// Refuse members that differ in classes, input size or test split, naming the member.
fn check_agree(members: &[Checked]) -> Result<()> {
    let first = &members[0];
    let test = test_set(&first.record);
    if test.is_empty() {
        bail!("{}: its split has no test images", first.spec.run.display());
    }
    for m in &members[1..] {
        let r = m.spec.run.display();
        if m.meta.classes != first.meta.classes {
            bail!("{r}: classes {:?} differ from {}'s {:?}", m.meta.classes, first.spec.run.display(), first.meta.classes);
        }
        if m.meta.config.image_size != first.meta.config.image_size {
            bail!("{r}: input size {} differs from {}'s {}", m.meta.config.image_size, first.spec.run.display(), first.meta.config.image_size);
        }
        if test_set(&m.record) != test {
            bail!("{r}: its test split differs from {}'s: the members share no test split to score", first.spec.run.display());
        }
    }
    Ok(())
}

/// The folder's split: the shared test images, and every image any member trained or validated on as
/// `train` (what `eval --exclude-near-duplicates` compares the test images with).
fn shared_record(members: &[Checked]) -> SplitRecord {
    let first = &members[0].record;
    let seen: BTreeSet<&str> = members.iter().flat_map(|m| m.record.files.iter()).filter(|f| f.split == "train" || f.split == "val").map(|f| f.path.as_str()).collect();
    let files = first
        .files
        .iter()
        .map(|f| {
            let split = if f.split == "test" { "test" } else if seen.contains(f.path.as_str()) { "train" } else { "excluded" };
            RecordedFile { split: split.to_string(), fold: None, ..f.clone() }
        })
        .collect();
    SplitRecord { folds: None, fold: None, files, ..first.clone() }
}

pub fn run(args: EnsembleArgs) -> Result<()> {
    let runs = member_runs(&args.sources)?;
    if runs.is_empty() {
        bail!("name at least one experiment or run");
    }
    let members: Vec<Checked> = runs.iter().map(|r| check_member(r)).collect::<Result<_>>()?;
    check_agree(&members)?;
    let out = &args.out;
    if out.exists() && std::fs::read_dir(out).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{}: exists and is not empty (an ensemble is written into a new folder)", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let dir = RunDir { path: out.clone() };
    let meta = RunMeta { created_unix: crate::run::dir::now_unix(), ..members[0].meta.clone() };
    dir.write_meta(&meta).with_context(|| format!("{}: cannot write", dir.meta_path().display()))?;
    let record = shared_record(&members);
    record.write(&dir.split_record()).with_context(|| format!("{}: cannot write", dir.split_record().display()))?;
    let spec = EnsembleSpec {
        format: FORMAT,
        classes: meta.classes.clone(),
        image_size: meta.config.image_size,
        members: members.into_iter().map(|m| m.spec).collect(),
        test_images: record.files.iter().filter(|f| f.split == "test").count(),
        created_unix: meta.created_unix,
    };
    crate::run::dir::write_atomic(&out.join(FILE), &serde_json::to_vec_pretty(&spec)?).with_context(|| format!("{}: cannot write", out.join(FILE).display()))?;
    let calibrated = spec.members.iter().filter(|m| m.temperature.is_some()).count();
    crate::run::output::out(&format!(
        "ensemble of {} members ({calibrated} calibrated) in {}: it averages their probabilities on {} shared test images\n  score it:   tumorscope eval {1}\n  use it:     tumorscope predict --run {1} IMAGES…",
        spec.members.len(),
        out.display(),
        spec.test_images
    ));
    Ok(())
}
