//! `tumorscope predict`: classify files or folders; show each image in the terminal with viuer.
//! A bad file gets a one-line error and the others are still predicted.

use super::eval::load_run;
use crate::cli::PredictArgs;
use crate::data::{decode, display_class};
use anyhow::Result;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn expand(paths: &[PathBuf]) -> Vec<Result<PathBuf, String>> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = walk(p);
            files.sort();
            if files.is_empty() {
                out.push(Err(format!("{}: folder holds no files", p.display())));
            }
            out.extend(files.into_iter().map(Ok));
        } else if p.exists() {
            out.push(Ok(p.clone()));
        } else {
            out.push(Err(format!("{}: no such file or folder", p.display())));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                v.extend(walk(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

pub fn run(args: PredictArgs) -> Result<()> {
    let lr = load_run(&args.run, &args.device)?;
    let size = lr.meta.config.image_size;
    let show = !args.no_image && !args.json && std::io::stdout().is_terminal();
    let mut failures = 0;
    let mut done = 0;
    for item in expand(&args.paths) {
        let path = match item {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                failures += 1;
                continue;
            }
        };
        // One read and decode serves both the network input and the terminal preview.
        let img = match decode::open_rgb(&path) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                failures += 1;
                continue;
            }
        };
        let s = size as i64;
        let x = Tensor::f_from_data_size(&decode::resize_for_network(&img, size), &[1, s, s, 3], Kind::Uint8)?
            .to_device(lr.device)
            .to_kind(Kind::Float)
            .permute([0, 3, 1, 2]);
        let probs: Vec<f32> =
            Vec::<f32>::try_from(crate::train::evaluate::probabilities(&lr.net, &x)?.to_device(tch::Device::Cpu).flatten(0, -1))?;
        let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
        done += 1;
        if args.json {
            let p: serde_json::Map<String, serde_json::Value> =
                lr.meta.classes.iter().zip(&probs).map(|(c, p)| (c.clone(), serde_json::json!(p))).collect();
            println!(
                "{}",
                serde_json::json!({"path": path.display().to_string(), "class": lr.meta.classes[best], "confidence": probs[best], "probabilities": p})
            );
            continue;
        }
        if show {
            let conf = viuer::Config { width: Some(40), absolute_offset: false, ..Default::default() };
            let _ = viuer::print(&image::DynamicImage::ImageRgb8(img), &conf);
        }
        let name = display_class(&lr.meta.classes[best]);
        let verdict = if name == "no tumor" { "no tumor detected".to_string() } else { format!("{name} tumor") };
        println!("{}\n  prediction: {verdict} ({:.1}%)", path.display(), probs[best] * 100.0);
        let all: Vec<String> = lr.meta.classes.iter().zip(&probs).map(|(c, p)| format!("{} {:.1}%", display_class(c), p * 100.0)).collect();
        println!("  {}{}", all.join("  "), if lr.meta.synthetic { "  [model trained on SYNTHETIC data]" } else { "" });
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} input(s) could not be predicted", failures + done);
    }
    Ok(())
}
