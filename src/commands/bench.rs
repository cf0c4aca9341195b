//! `tumorscope bench`: training and inference images per second on synthetic batches, the same job as
//! ../shared/bench/pytorch_baseline.py (Adam, cross-entropy, 4-class head), printed as one JSON line.

use crate::cli::BenchArgs;
use crate::config::TrainConfig;
use crate::data::batch::channels_last;
use anyhow::Result;
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

pub fn run(a: BenchArgs) -> Result<()> {
    let device = crate::device::parse_device(&a.device).map_err(anyhow::Error::msg)?;
    tch::manual_seed(0);
    let cfg = TrainConfig { model: a.model, ..Default::default() };
    let vs = nn::VarStore::new(device);
    let net = crate::model::build(&vs, &cfg, 4);
    let cl = !a.nchw && device == tch::Device::Cpu;
    if cl {
        crate::model::weights::to_channels_last(&vs)?;
    }
    let mut opt = nn::Adam::default().build(&vs, 1e-3)?;
    let x = Tensor::randn([a.batch, 3, a.size, a.size], (Kind::Float, device));
    let x = if cl { channels_last(&x)? } else { x };
    let y = Tensor::randint(4, [a.batch], (Kind::Int64, device));
    let mut step = || {
        let loss = net.forward_t(&x, true).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
        loss.double_value(&[])
    };
    for _ in 0..2 {
        step();
    }
    let t = Instant::now();
    for _ in 0..a.steps {
        step();
    }
    let train = (a.steps as i64 * a.batch) as f64 / t.elapsed().as_secs_f64();
    let infer = tch::no_grad(|| {
        let _ = net.forward_t(&x, false);
        let t = Instant::now();
        for _ in 0..a.steps {
            let _ = net.forward_t(&x, false).double_value(&[0, 0]);
        }
        (a.steps as i64 * a.batch) as f64 / t.elapsed().as_secs_f64()
    });
    // Grad-CAM of one image (forward, head gradient, map): the median of `steps` runs after a warm-up.
    let one = x.narrow(0, 0, 1);
    let _ = crate::model::gradcam::grad_cam(net.as_ref(), &one, None)?;
    let mut cam_times: Vec<f64> = (0..a.steps.max(3))
        .map(|_| {
            let t = Instant::now();
            let _ = crate::model::gradcam::grad_cam(net.as_ref(), &one, None);
            t.elapsed().as_secs_f64()
        })
        .collect();
    cam_times.sort_by(f64::total_cmp);
    let cam = cam_times[cam_times.len() / 2];
    crate::run::output::out(&format!(
        "{}",
        serde_json::json!({"impl": "tumorscope-tch", "model": a.model.name(), "size": a.size, "batch": a.batch, "channels_last": cl,
            "tf_same": true, "threads": tch::get_num_threads(), "train_img_per_s": (train * 100.0).round() / 100.0, "infer_img_per_s": (infer * 100.0).round() / 100.0,
            "gradcam_s_median": (cam * 10000.0).round() / 10000.0})
    ));
    Ok(())
}
