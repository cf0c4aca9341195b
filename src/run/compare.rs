//! Runs side by side: each run's validation curves, settings and figures, and which settings differ.

use super::dir::{RunDir, list_runs};
use super::status::{RunSummary, load_view, summary_of};
use crate::config::TrainConfig;
use std::collections::BTreeMap;
use std::path::Path;

/// One run as the Runs view compares it.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub summary: RunSummary,
    /// (epoch, val_acc, val_loss) per finished epoch.
    pub curve: Vec<(usize, f64, f64)>,
    pub config: Option<TrainConfig>,
}

/// Every run under `runs_dir`, newest first.
pub fn load_entries(runs_dir: &Path) -> std::io::Result<Vec<RunEntry>> {
    Ok(list_runs(runs_dir)?.iter().map(load_entry).collect())
}

pub fn load_entry(run: &RunDir) -> RunEntry {
    let view = load_view(run).map(|(v, _)| v).unwrap_or_default();
    let config = view.info.as_ref().map(|i| i.config.clone()).or_else(|| run.read_meta().ok().map(|m| m.config));
    RunEntry { summary: summary_of(run, &view), curve: view.history.iter().map(|m| (m.epoch, m.val_acc, m.val_loss)).collect(), config }
}

/// The settings whose values differ between `configs`: (name, one value per config).
pub fn config_differences(configs: &[Option<&TrainConfig>]) -> Vec<(String, Vec<String>)> {
    let flat: Vec<BTreeMap<String, String>> = configs
        .iter()
        .map(|c| match c.and_then(|c| serde_json::to_value(c).ok()) {
            Some(serde_json::Value::Object(m)) => m.into_iter().map(|(k, v)| (k, v.to_string().trim_matches('"').to_string())).collect(),
            _ => BTreeMap::new(),
        })
        .collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let vals: Vec<String> = flat.iter().map(|m| m.get(k).cloned().unwrap_or_else(|| "?".into())).collect();
            (vals.iter().any(|v| v != &vals[0])).then(|| (k.clone(), vals))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differing_settings_are_listed() {
        let a = TrainConfig::article();
        let b = TrainConfig { lr: 1e-3, epochs: 20, ..TrainConfig::article() };
        let d = config_differences(&[Some(&a), Some(&b), Some(&a)]);
        assert_eq!(
            d,
            vec![
                ("epochs".to_string(), vec!["12".into(), "20".into(), "12".into()]),
                ("lr".to_string(), vec!["0.0003".into(), "0.001".into(), "0.0003".into()])
            ]
        );
        assert!(config_differences(&[Some(&a), Some(&a)]).is_empty());
    }
}
