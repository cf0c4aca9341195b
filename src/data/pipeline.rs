//! Training batches, built off the training thread. An epoch is planned up front on the training
//! thread (which images, which augmentation: every random draw, in the same order as one batch at a
//! time would make them), then a worker thread gathers, augments and normalises the next batches
//! while the current step runs. Batches come out already in the network's input range, channels-last
//! (NHWC) in memory. The worker never touches libtorch, so it does not fight its thread pool.
//!
//! `Batches::synchronous` builds the same plans on the calling thread: a test checks the two agree
//! byte for byte.

use super::ImageSet;
use super::augment::{self, AugmentParams, Draw};
use crate::rng::Rng;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// One batch to build: the images, and the augmentation drawn for each (empty: none).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub idx: Vec<usize>,
    pub draws: Vec<Draw>,
}

/// A plan together with the generator's state before its draws, so a run stopped at that batch saves
/// exactly the state a resumed run must start from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub rng_before: Rng,
}

/// Plan batches `start..` of an epoch whose (already shuffled) order is `order`. Draws advance `rng`
/// as the synchronous loop would.
pub fn plan_epoch(order: &[usize], batch_size: usize, start: usize, aug: Option<&AugmentParams>, rng: &mut Rng) -> Vec<Planned> {
    order
        .chunks(batch_size.max(1))
        .skip(start)
        .map(|idx| {
            let rng_before = rng.clone();
            let draws = aug.map(|p| idx.iter().map(|_| augment::draw(p, rng)).collect()).unwrap_or_default();
            Planned { plan: Plan { idx: idx.to_vec(), draws }, rng_before }
        })
        .collect()
}

/// A built batch: `n` images of `size×size×3` floats, HWC, scaled to the network's input range
/// ((x − 127) / 128, as the Lite0 weights expect), with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    pub n: usize,
}

/// The network's input range: (x − INPUT_OFFSET) / INPUT_SCALE, as the Lite0 weights expect. Training
/// batches (here) and inference batches (`batch::normalize`) share it.
pub const INPUT_OFFSET: f32 = 127.0;
pub const INPUT_SCALE: f32 = 128.0;

/// Scale 0–255 to the network's input range.
#[inline]
pub fn normalize(v: f32) -> f32 {
    (v - INPUT_OFFSET) / INPUT_SCALE
}

/// Gather, augment and normalise one batch.
pub fn build(set: &ImageSet, plan: &Plan) -> Built {
    build_on(set, plan, false)
}

/// `build`, with the images shared out over all cores when `parallel` (a GPU run, whose step is too
/// quick for one thread to keep up with). Each image is built the same way either way.
pub fn build_on(set: &ImageSet, plan: &Plan, parallel: bool) -> Built {
    use rayon::prelude::*;
    let s = set.size as usize;
    let per = set.bytes_per_image();
    let mut pixels = vec![0.0f32; plan.idx.len() * per];
    let one = |(k, out): (usize, &mut [f32])| {
        let i = plan.idx[k];
        match plan.draws.get(k) {
            Some(d) => {
                augment::apply(set.image(i), s, s, d, out);
                out.iter_mut().for_each(|v| *v = normalize(*v));
            }
            None => out.iter_mut().zip(set.image(i)).for_each(|(o, &b)| *o = normalize(b as f32)),
        }
    };
    if parallel {
        pixels.par_chunks_mut(per.max(1)).enumerate().for_each(one);
    } else {
        pixels.chunks_mut(per.max(1)).enumerate().for_each(one);
    }
    Built { pixels, labels: plan.idx.iter().map(|&i| set.labels[i] as i64).collect(), n: plan.idx.len() }
}

/// The batches of a plan list, in order: built on a worker thread `depth` batches ahead, or on the
/// calling thread.
pub enum Batches {
    Synchronous { set: Arc<ImageSet>, plans: std::vec::IntoIter<Plan> },
    Prefetched { rx: Receiver<Built>, worker: Option<std::thread::JoinHandle<()>> },
}

impl Batches {
    pub fn synchronous(set: Arc<ImageSet>, plans: Vec<Plan>) -> Batches {
        Batches::Synchronous { set, plans: plans.into_iter() }
    }

    /// Build up to `depth` batches ahead on a worker thread (falls back to the calling thread if no
    /// thread can be started); `parallel`: the worker shares each batch out over all cores.
    pub fn prefetched(set: Arc<ImageSet>, plans: Vec<Plan>, depth: usize, parallel: bool) -> Batches {
        let (tx, rx): (SyncSender<Built>, Receiver<Built>) = sync_channel(depth.max(1) - 1);
        let worker_set = set.clone();
        let worker_plans = plans.clone();
        let spawned = std::thread::Builder::new().name("batches".into()).spawn(move || {
            for plan in &worker_plans {
                // The receiver is gone when training stopped mid-epoch: nothing more to build.
                if tx.send(build_on(&worker_set, plan, parallel)).is_err() {
                    return;
                }
            }
        });
        match spawned {
            Ok(h) => Batches::Prefetched { rx, worker: Some(h) },
            Err(_) => Batches::synchronous(set, plans),
        }
    }
}

impl Iterator for Batches {
    type Item = Built;

    fn next(&mut self) -> Option<Built> {
        match self {
            Batches::Synchronous { set, plans } => plans.next().map(|p| build(set, &p)),
            Batches::Prefetched { rx, .. } => rx.recv().ok(),
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Batches::Prefetched { rx, worker } = self {
            // Unblock a worker waiting to hand over a batch, then wait for it to end.
            let (_, dead) = sync_channel(0);
            drop(std::mem::replace(rx, dead));
            if let Some(h) = worker.take() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, size: u32) -> Arc<ImageSet> {
        let mut r = Rng::new(9);
        let per = (size * size * 3) as usize;
        Arc::new(ImageSet {
            size,
            classes: vec!["a".into(), "b".into()],
            pixels: (0..n * per).map(|_| r.below(256) as u8).collect(),
            labels: (0..n).map(|i| i % 2).collect(),
            paths: (0..n).map(|i| format!("{i}.jpg").into()).collect(),
            hashes: (0..n as u64).collect(),
            from_test_folder: vec![false; n],
            patients: vec![None; n],
            synthetic: true,
        })
    }

    #[test]
    fn prefetched_batches_equal_the_synchronous_ones() {
        let data = set(37, 24);
        let order: Vec<usize> = (0..37).rev().collect();
        for aug in [Some(AugmentParams::default()), None] {
            let mut r1 = Rng::new(5);
            let mut r2 = Rng::new(5);
            let a = plan_epoch(&order, 8, 0, aug.as_ref(), &mut r1);
            let b = plan_epoch(&order, 8, 0, aug.as_ref(), &mut r2);
            assert_eq!(r1, r2);
            let sync: Vec<Built> = Batches::synchronous(data.clone(), a.into_iter().map(|p| p.plan).collect()).collect();
            let plans: Vec<Plan> = b.into_iter().map(|p| p.plan).collect();
            let pre: Vec<Built> = Batches::prefetched(data.clone(), plans.clone(), 2, false).collect();
            let parallel: Vec<Built> = Batches::prefetched(data.clone(), plans, 3, true).collect();
            assert_eq!(sync.len(), 5);
            assert_eq!(sync, pre);
            assert_eq!(sync, parallel);
            assert_eq!(sync[0].labels, order[..8].iter().map(|&i| (i % 2) as i64).collect::<Vec<_>>());
            assert_eq!(sync[4].n, 5);
        }
    }

    /// Planning from batch k with the state saved before batch k gives the tail of the full plan: a
    /// resumed epoch sees the same augmentation.
    #[test]
    fn planning_from_a_saved_point_replays_the_rest() {
        let order: Vec<usize> = (0..50).collect();
        let aug = AugmentParams::default();
        let mut r = Rng::new(11);
        let full = plan_epoch(&order, 8, 0, Some(&aug), &mut r);
        let mut resumed_rng = full[3].rng_before.clone();
        let tail = plan_epoch(&order, 8, 3, Some(&aug), &mut resumed_rng);
        assert_eq!(resumed_rng, r);
        assert_eq!(tail.iter().map(|p| &p.plan).collect::<Vec<_>>(), full[3..].iter().map(|p| &p.plan).collect::<Vec<_>>());
    }

    #[test]
    fn dropping_a_prefetcher_midway_ends_its_worker() {
        let data = set(64, 16);
        let order: Vec<usize> = (0..64).collect();
        let plans = plan_epoch(&order, 4, 0, Some(&AugmentParams::default()), &mut Rng::new(1));
        let mut b = Batches::prefetched(data, plans.into_iter().map(|p| p.plan).collect(), 2, false);
        assert!(b.next().is_some());
        drop(b); // joins the worker: the test would hang if it did not end
    }

    #[test]
    fn without_augmentation_pixels_are_only_normalised() {
        let data = set(3, 8);
        let built = build(&data, &Plan { idx: vec![2], draws: vec![] });
        let want: Vec<f32> = data.image(2).iter().map(|&b| (b as f32 - 127.0) / 128.0).collect();
        assert_eq!(built.pixels, want);
    }
}
