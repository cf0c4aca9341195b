//! The plan of an experiment: its members (fold × seed × grid point), each with the `train` flags
//! that make it, written once to `experiment.json` and read by every later driver.

use super::Executor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const FORMAT: u32 = 1;

/// One setting varied over values (`--grid lr=1e-3,3e-4`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridAxis {
    /// The `train` flag without dashes (`lr`, `label-smoothing`).
    pub key: String,
    pub values: Vec<String>,
}

/// One run of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Its run folder's name under `runs/`, e.g. `fold2-seed42-lr=0.001`.
    pub id: String,
    pub fold: Option<usize>,
    pub seed: u64,
    /// The grid point: key → value.
    pub grid: BTreeMap<String, String>,
    /// `train` flags after the experiment's common ones (`--folds`, `--seed`, the grid's flags).
    pub args: Vec<String>,
}

/// What `experiment run` was asked, and every member it makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub name: String,
    pub created_unix: u64,
    /// `train` flags every member gets.
    pub train_args: Vec<String>,
    /// Cross-validation folds (0: none; members validate on a `val_fraction` carve).
    pub folds: usize,
    /// The seed of the split every member shares (test carve and folds).
    pub split_seed: u64,
    pub seeds: Vec<u64>,
    pub grid: Vec<GridAxis>,
    pub executor: Executor,
    /// Members at once (local executor; the array's `%N` on Slurm).
    pub parallel: usize,
    /// One member per GPU at a time (`--gpus 0,1`): member i on GPU `gpus[i % len]`.
    #[serde(default)]
    pub gpus: Vec<usize>,
    /// Extra `sbatch` arguments (partition, GPUs, time).
    #[serde(default)]
    pub slurm: Option<String>,
    /// What the folds hold, once the driver has split the data: images per fold and class.
    #[serde(default)]
    pub fold_counts: Vec<Vec<usize>>,
    pub members: Vec<Member>,
}

/// Keep a member id a plain file name.
fn clean(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "._=-".contains(c) { c } else { '_' }).collect()
}

/// Every point of the grid, first axis slowest.
fn grid_points(grid: &[GridAxis]) -> Vec<BTreeMap<String, String>> {
    let mut points = vec![BTreeMap::new()];
    for axis in grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(axis.key.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    points
}

/// The `train` flags of a grid point: `--key value`, or `--key` alone for a switch set to `true`
/// (`false` leaves it out). `switches` names the flags that take no value.
pub fn grid_flags(point: &BTreeMap<String, String>, switches: &[String]) -> Vec<String> {
    let mut v = vec![];
    for (k, val) in point {
        if switches.contains(k) {
            if val == "true" {
                v.push(format!("--{k}"));
            }
        } else {
            v.extend([format!("--{k}"), val.clone()]);
        }
    }
    v
}

/// The members of `folds` × `seeds` × the grid, grid slowest and folds fastest, so the first members
/// to finish already cover every fold of the first seed.
pub fn members(folds: usize, split_seed: u64, seeds: &[u64], grid: &[GridAxis], switches: &[String]) -> Vec<Member> {
    let fold_list: Vec<Option<usize>> = if folds >= 2 { (0..folds).map(Some).collect() } else { vec![None] };
    let mut out = vec![];
    for point in grid_points(grid) {
        for &seed in seeds {
            for &fold in &fold_list {
                let mut id = vec![];
                let mut args = vec![];
                if let Some(f) = fold {
                    id.push(format!("fold{f}"));
                    args.extend(["--folds".into(), folds.to_string(), "--fold".into(), f.to_string()]);
                }
                id.push(format!("seed{seed}"));
                args.extend(["--seed".into(), seed.to_string(), "--split-seed".into(), split_seed.to_string()]);
                id.extend(point.iter().map(|(k, v)| clean(&format!("{k}={v}"))));
                args.extend(grid_flags(&point, switches));
                out.push(Member { id: id.join("-"), fold, seed, grid: point.clone(), args });
            }
        }
    }
    out
}

/// A `--grid` that is not `KEY=V1,V2,…`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("--grid {0}: expected KEY=V1,V2,… with no empty key or value (e.g. lr=1e-3,3e-4)")]
pub struct GridError(pub String);

/// Parse `KEY=V1,V2,…` (values may not be empty).
pub fn parse_axis(s: &str) -> Result<GridAxis, GridError> {
    let (k, vals) = s.split_once('=').ok_or_else(|| GridError(s.to_string()))?;
    let key = k.trim().trim_start_matches("--").replace('_', "-");
    let values: Vec<String> = vals.split(',').map(|v| v.trim().to_string()).collect();
    if key.is_empty() || values.iter().any(|v| v.is_empty()) {
        return Err(GridError(s.to_string()));
    }
    Ok(GridAxis { key, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_seeds_and_grid_make_every_member_once() {
        let grid = vec![parse_axis("lr=1e-3,3e-4").unwrap(), parse_axis("no_augment=true,false").unwrap()];
        let m = members(3, 42, &[1, 2], &grid, &["no-augment".to_string()]);
        assert_eq!(m.len(), 3 * 2 * 2 * 2);
        let ids: std::collections::HashSet<&str> = m.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), m.len(), "ids are unique");
        assert_eq!(m[0].id, "fold0-seed1-lr=1e-3-no-augment=true");
        assert_eq!(m[0].args, ["--folds", "3", "--fold", "0", "--seed", "1", "--split-seed", "42", "--lr", "1e-3", "--no-augment"]);
        assert_eq!(m[1].id, "fold1-seed1-lr=1e-3-no-augment=true", "folds fastest");
        let without = m.iter().find(|m| m.grid["no-augment"] == "false").unwrap();
        assert!(!without.args.contains(&"--no-augment".to_string()), "a switch set to false is left out");
        // No folds: one member per seed, validated on the usual carve.
        let plain = members(0, 42, &[7], &[], &[]);
        assert_eq!((plain.len(), plain[0].fold, plain[0].id.as_str()), (1, None, "seed7"));
    }

    #[test]
    fn a_grid_axis_needs_a_key_and_values() {
        assert!(parse_axis("lr").is_err());
        assert!(parse_axis("lr=1e-3,").is_err());
        assert_eq!(parse_axis("--label_smoothing=0,0.1").unwrap().key, "label-smoothing");
    }
}
