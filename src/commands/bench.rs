//! `tumorscope bench`: training and inference images per second on synthetic batches, the same job as
//! ../shared/bench/pytorch_baseline.py (Adam, cross-entropy, 4-class head), printed as one JSON line.

use crate::cli::BenchArgs;
use crate::config::TrainConfig;
use crate::data::batch::channels_last;
use anyhow::Result;
use std::time::Instant;
use tch::nn;
use tch::{Kind, Tensor};

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(dir) = &a.ingest {
        return ingest(dir, a.size as u32);
    }
    let device = crate::device::parse_device(&a.device)?;
    if a.amp != crate::config::Amp::Off && !device.is_cuda() {
        anyhow::bail!("--amp {} needs --device cuda (a CPU trains in f32)", a.amp.name());
    }
    tch::manual_seed(0);
    let cfg = TrainConfig { model: a.model, ..Default::default() };
    let vs = nn::VarStore::new(device);
    let net = crate::model::build(&vs, &cfg, 4);
    net.freeze_stages(a.freeze_stages);
    let cl = !a.nchw;
    if cl {
        crate::model::weights::to_channels_last(&vs)?;
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let x = Tensor::randn([a.batch, 3, a.size, a.size], (Kind::Float, device));
    let x = if cl { channels_last(&x)? } else { x };
    let train = train_img_per_s(&a, &vs, &net, &x, device)?;
    let folded = net.folded();
    let spread_over = crate::train::spread::workers(folded.as_ref().unwrap_or(&net), device);
    let inf = inference(&a, &net, folded.as_ref(), &x, device)?;
    let cam = gradcam_seconds(&a, &net, &x)?;
    let r2 = |v: f64| (v * 100.0).round() / 100.0;
    crate::run::output::out(&format!(
        "{}",
        serde_json::json!({"impl": "tumorscope-tch", "model": a.model.name(), "size": a.size, "batch": a.batch, "channels_last": cl, "amp": a.amp.name(), "device": crate::device::describe(device),
            "tf_same": true, "bn_folded": folded.is_some(), "threads": tch::get_num_threads(), "train_img_per_s": r2(train), "infer_img_per_s": r2(inf.one_pass), "infer_spread_img_per_s": r2(inf.spread), "infer_spread_over": spread_over, "infer_unfolded_img_per_s": r2(inf.unfolded),
            "infer_bf16_img_per_s": inf.bf16.map(r2),
            "gradcam_s_median": (cam * 10000.0).round() / 10000.0})
    ));
    Ok(())
}

/// The training step as `train` runs it (Adam, the loss read back once, fp16's loss scale): images
/// per second over `steps` steps after a warm-up.
fn train_img_per_s(a: &BenchArgs, vs: &nn::VarStore, net: &crate::model::Net, x: &Tensor, device: tch::Device) -> Result<f64> {
    let mut opt = crate::train::adam::Adam::new(vs, 1e-3, 0.0)?;
    let mut scale = (a.amp == crate::config::Amp::Fp16).then(crate::train::amp::LossScale::new);
    let y = Tensor::randint(4, [a.batch], (Kind::Int64, device));
    let mut step = || -> Result<f64> {
        let loss = crate::train::amp::autocast(a.amp, device, || net.forward_t(x, true).cross_entropy_for_logits(&y))?;
        opt.zero_grad();
        crate::train::amp::backward(&loss, scale.as_ref())?;
        let (read, overflowed) = crate::train::amp::read_back(&[loss], &opt, scale.as_ref())?;
        crate::train::amp::step(&mut opt, scale.as_mut(), overflowed)?;
        Ok(read[0])
    };
    for _ in 0..if device.is_cuda() { 10 } else { 2 } {
        step()?;
    }
    let t = Instant::now();
    for _ in 0..a.steps {
        step()?;
    }
    Ok((a.steps as i64 * a.batch) as f64 / t.elapsed().as_secs_f64())
}

/// Inference images per second, the median batch of each way.
struct Inference {
    /// The folded copy spread over the cores, as `eval` runs it.
    spread: f64,
    /// The folded copy in one pass, as `predict` of one image runs it.
    one_pass: f64,
    unfolded: f64,
    /// The folded copy in bf16 (`--bf16`), where it exists.
    bf16: Option<f64>,
}

/// 4× as many batches of each way as training steps, in turns (a pass with all threads leaves them
/// spinning for a moment, which would slow the first spread batch after it; eval runs only spread
/// batches).
fn inference(
    a: &BenchArgs,
    net: &crate::model::Net,
    folded: Option<&crate::model::Net>,
    x: &Tensor,
    device: tch::Device,
) -> Result<Inference> {
    let folded_bf16 = net.folded_bf16();
    let timed = |n: &crate::model::Net| {
        let t = Instant::now();
        let _ = n.forward_t(x, false).double_value(&[0, 0]);
        a.batch as f64 / t.elapsed().as_secs_f64()
    };
    let forward = |n: &crate::model::Net, x: &Tensor| Ok(n.forward_t(x, false));
    Ok(tch::no_grad(|| {
        crate::train::spread::with_spread(folded.unwrap_or(net), device, &forward, |spread| {
            let mut timed_spread = || -> Result<f64, tch::TchError> {
                let t = Instant::now();
                let _ = spread(x)?.f_double_value(&[0, 0])?;
                Ok(a.batch as f64 / t.elapsed().as_secs_f64())
            };
            let (mut s, mut f, mut u, mut h) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            timed_spread()?;
            let _ = folded.map(timed);
            let _ = folded_bf16.as_ref().map(timed);
            let _ = timed(net);
            for _ in 0..a.steps {
                for _ in 0..4 {
                    s.push(timed_spread()?);
                }
                for _ in 0..4 {
                    if let Some(n) = folded {
                        f.push(timed(n));
                    }
                    u.push(timed(net));
                    if let Some(n) = &folded_bf16 {
                        h.push(timed(n));
                    }
                }
            }
            let u = median(u);
            Ok(Inference {
                spread: median(s),
                one_pass: if f.is_empty() { u } else { median(f) },
                unfolded: u,
                bf16: (!h.is_empty()).then(|| median(h)),
            })
        })
    })?)
}

/// Grad-CAM of one image (forward, head gradient, map): the median of `steps` runs after a warm-up.
fn gradcam_seconds(a: &BenchArgs, net: &crate::model::Net, x: &Tensor) -> Result<f64> {
    let one = x.narrow(0, 0, 1);
    let _ = crate::model::gradcam::grad_cam(net.as_ref(), &one, None)?;
    let cam_times: Vec<f64> = (0..a.steps.max(3))
        .map(|_| {
            let t = Instant::now();
            let _ = crate::model::gradcam::grad_cam(net.as_ref(), &one, None);
            t.elapsed().as_secs_f64()
        })
        .collect();
    Ok(median(cam_times))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Decode and resize every image of a dataset folder as training does (all cores, no cache).
fn ingest(dir: &std::path::Path, size: u32) -> Result<()> {
    use rayon::prelude::*;
    let found = crate::data::discover(dir)?;
    let t = Instant::now();
    let ok = found
        .entries
        .par_iter()
        .filter(|e| crate::data::decode::decode_file(&e.path, size, &crate::data::decode::Reading::default()).is_ok())
        .count();
    let s = t.elapsed().as_secs_f64();
    crate::run::output::out(&format!(
        "{}",
        serde_json::json!({"impl": "tumorscope", "images": ok, "size": size, "threads": rayon::current_num_threads(),
            "seconds": (s * 1000.0).round() / 1000.0, "ingest_img_per_s": (ok as f64 / s * 10.0).round() / 10.0})
    ));
    Ok(())
}
