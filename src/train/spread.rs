//! Inference spread over the CPU's cores. Each of the process's libtorch threads becomes a worker
//! that owns a replica of the network (the same weights, no copy) and runs with one thread of its
//! own on its share of every batch. One pass per core on part of the batch beats one pass over the
//! whole batch with all cores: the cores never wait for each other at the end of each of the
//! network's operations, and a core another process takes slows only its own share (README,
//! "Performance"). Each image's result is the same either way, within float noise.
//!
//! Where it does not apply (a GPU, one thread, a network without replicas), `job` runs on the
//! whole batch in the calling thread.

use crate::model::Net;
use std::sync::mpsc;
use tch::{Device, TchError, Tensor};

/// What a worker runs on its share of a batch.
pub type Job<'a> = &'a (dyn Fn(&Net, &Tensor) -> Result<Tensor, TchError> + Sync);

/// How many workers inference on `device` would use for `net` now (1: the calling thread alone).
pub fn workers(net: &Net, device: Device) -> usize {
    if net.replica().is_none() { 1 } else { cpu_threads(device) }
}

/// libtorch's threads on a CPU, 1 on a GPU.
fn cpu_threads(device: Device) -> usize {
    if device == Device::Cpu { tch::get_num_threads().max(1) as usize } else { 1 }
}

/// Call `body` with a function that runs `job` on a batch and returns the results in batch order,
/// the batch split across the workers where spreading applies.
pub fn with_spread<T>(
    net: &Net,
    device: Device,
    job: Job<'_>,
    body: impl FnOnce(&mut dyn FnMut(&Tensor) -> Result<Tensor, TchError>) -> Result<T, TchError>,
) -> Result<T, TchError> {
    with_workers(net, cpu_threads(device), job, body)
}

/// As `with_spread`, over `n` workers (1, or a network without replicas: none).
fn with_workers<T>(
    net: &Net,
    n: usize,
    job: Job<'_>,
    body: impl FnOnce(&mut dyn FnMut(&Tensor) -> Result<Tensor, TchError>) -> Result<T, TchError>,
) -> Result<T, TchError> {
    let replicas: Option<Vec<Net>> = if n > 1 { (0..n).map(|_| net.replica()).collect() } else { None };
    let Some(replicas) = replicas else {
        return body(&mut |x| job(net, x));
    };
    let threads = tch::get_num_threads();
    let out = std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Tensor, TchError>)>();
        let inputs: Vec<mpsc::Sender<(usize, Tensor)>> = replicas
            .into_iter()
            .map(|replica| {
                let (tx, rx) = mpsc::channel::<(usize, Tensor)>();
                let done = done_tx.clone();
                scope.spawn(move || {
                    tch::set_num_threads(1);
                    for (part, x) in rx {
                        // A libtorch error that tch turns into a panic comes back as an error.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&replica, &x)))
                            .unwrap_or_else(|p| Err(TchError::Torch(panic_message(p.as_ref()))));
                        if done.send((part, r)).is_err() {
                            break;
                        }
                    }
                });
                tx
            })
            .collect();
        drop(done_tx);
        let mut run = |x: &Tensor| -> Result<Tensor, TchError> {
            let parts = shares(x.size().first().copied().unwrap_or(0), inputs.len());
            if parts.len() < 2 {
                return job(net, x);
            }
            for (k, &(start, len)) in parts.iter().enumerate() {
                let sent = inputs[k].send((k, x.f_narrow(0, start, len)?));
                sent.map_err(|_| TchError::Torch("an inference worker stopped".into()))?;
            }
            let mut got: Vec<Option<Tensor>> = (0..parts.len()).map(|_| None).collect();
            for _ in 0..parts.len() {
                let (k, r) = done_rx.recv().map_err(|_| TchError::Torch("an inference worker stopped".into()))?;
                got[k] = Some(r?);
            }
            Tensor::f_cat(&got.into_iter().flatten().collect::<Vec<_>>(), 0)
        };
        let r = body(&mut run);
        drop(inputs); // the workers end
        r
    });
    // A worker's `set_num_threads(1)` also set libtorch's default for threads that start later.
    tch::set_num_threads(threads);
    out
}

/// (start, length) of each worker's share of a batch of `n`: as even as possible, none empty.
pub fn shares(n: i64, workers: usize) -> Vec<(i64, i64)> {
    let w = (workers as i64).min(n).max(0);
    let mut start = 0;
    (0..w)
        .map(|k| {
            let len = n / w + i64::from(k < n % w);
            let s = (start, len);
            start += len;
            s
        })
        .collect()
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "inference failed".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three workers on batches of 7 and 2 give each image the logits one pass gives it, in order, and
    /// leave libtorch's thread count as it was.
    #[test]
    fn spread_inference_matches_one_pass() {
        tch::manual_seed(3);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let cfg = crate::config::TrainConfig { pretrained: false, ..Default::default() };
        let net = crate::model::build(&vs, &cfg, 4).folded().expect("Lite0 folds");
        let forward = |n: &Net, x: &Tensor| Ok(n.forward_t(x, false));
        let threads = tch::get_num_threads();
        for size in [7, 2] {
            let x = crate::data::batch::channels_last(&Tensor::randn([size, 3, 64, 64], (tch::Kind::Float, Device::Cpu))).unwrap();
            let want = tch::no_grad(|| net.forward_t(&x, false));
            let got = tch::no_grad(|| with_workers(&net, 3, &forward, |run| run(&x))).unwrap();
            assert_eq!(got.size(), want.size());
            let diff = (&got - &want).abs().max().double_value(&[]);
            assert!(diff <= 1e-5 * want.abs().max().double_value(&[]).max(1.0), "batch of {size}: logits differ by {diff}");
        }
        assert_eq!(tch::get_num_threads(), threads);
    }

    #[test]
    fn a_failing_job_is_an_error_not_a_hang() {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let cfg = crate::config::TrainConfig { pretrained: false, ..Default::default() };
        let net = crate::model::build(&vs, &cfg, 4).folded().expect("Lite0 folds");
        // A wrong channel count: libtorch refuses, tch panics, the worker reports it.
        let x = Tensor::zeros([4, 5, 32, 32], (tch::Kind::Float, Device::Cpu));
        let forward = |n: &Net, x: &Tensor| Ok(n.forward_t(x, false));
        let r = tch::no_grad(|| with_workers(&net, 2, &forward, |run| run(&x)));
        assert!(r.is_err());
    }

    #[test]
    fn shares_cover_the_batch_evenly() {
        assert_eq!(shares(32, 2), vec![(0, 16), (16, 16)]);
        assert_eq!(shares(5, 2), vec![(0, 3), (3, 2)]);
        assert_eq!(shares(3, 16), vec![(0, 1), (1, 1), (2, 1)]);
        assert_eq!(shares(0, 2), vec![]);
        assert_eq!(shares(7, 1), vec![(0, 7)]);
    }
}
