//! Prediction over many files a batch at a time, for `predict` and `predict --browse`: each batch's
//! files are decoded in parallel, then the network runs once over the batch (spread over the cores as
//! `eval` is), instead of once per image. Each image's probabilities are the ones a batch of one gives
//! it, within float noise, and results come back in the order of the files.

use crate::data::decode;
use crate::model::Net;
use crate::train::tta::Tta;
use anyhow::Result;
use std::ops::ControlFlow;
use std::path::PathBuf;
use tch::{Device, Tensor};

/// Images per network pass when only the network input is kept.
pub const BATCH: usize = 16;
/// Images per pass when each decoded image is kept at its own size (previews, Grad-CAM overlays):
/// few, so that large images do not pile up in memory.
pub const BATCH_KEEPING_IMAGES: usize = 4;

/// What the batches need to know.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The network's input side.
    pub size: u32,
    pub reading: decode::Reading,
    pub tta: Option<Tta>,
    /// Keep each decoded image at its own size in `Predicted::image`.
    pub keep_images: bool,
    pub device: Device,
    /// Images per network pass.
    pub batch: usize,
}

impl Options {
    /// Batches of `BATCH`, or of `BATCH_KEEPING_IMAGES` when the images are kept.
    pub fn new(size: u32, reading: decode::Reading, tta: Option<Tta>, keep_images: bool, device: Device) -> Self {
        let batch = if keep_images { BATCH_KEEPING_IMAGES } else { BATCH };
        Options { size, reading, tta, keep_images, device, batch }
    }
}

/// One file's prediction.
#[derive(Debug)]
pub struct Predicted {
    pub path: PathBuf,
    /// The decoded image, upright, at its own size (only with `keep_images`).
    pub image: Option<image::RgbImage>,
    /// The network's 0–255 input, [1, 3, size, size] on the device (for Grad-CAM).
    pub input: Tensor,
    /// Raw (uncalibrated) class probabilities.
    pub probs: Vec<f32>,
}

/// A decoded file: the network's input bytes (size×size×3, HWC) and, when kept, the image.
type Decoded = (Vec<u8>, Option<image::RgbImage>);

/// Predict every file of `paths` in order, calling `each` with its prediction, or with the one-line
/// error ("PATH: what is wrong") of a file that could not be read or decoded. `each` ends the loop
/// early with `ControlFlow::Break`; an error of the network, or one `each` returns, ends it too.
pub fn for_each(
    net: &Net,
    paths: Vec<Result<PathBuf, String>>,
    opts: Options,
    mut each: impl FnMut(Result<Predicted, String>) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let batch = opts.batch.max(1);
    let tta = opts.tta;
    let job = move |n: &Net, x: &Tensor| crate::train::evaluate::probabilities_with(n, x, tta);
    let decoders = std::thread::available_parallelism().map_or(1, |n| n.get());
    crate::train::spread::with_spread(net, opts.device, &job, |probabilities| {
        Ok((|| -> Result<()> {
            let mut paths = paths.into_iter().peekable();
            while paths.peek().is_some() {
                let chunk: Vec<Result<PathBuf, String>> = paths.by_ref().take(batch).collect();
                let decoded = decode_all(&chunk, &opts, decoders);
                let inputs = batch_input(&decoded, opts.size, opts.device)?;
                let probs = match &inputs {
                    Some(x) => Some(probabilities(x)?.f_to_device(Device::Cpu)?),
                    None => None,
                };
                let mut row = 0;
                for (item, d) in chunk.into_iter().zip(decoded) {
                    let r = match (item, d) {
                        (Err(e), _) => Err(e),
                        (Ok(path), Err(e)) => Err(format!("{}: {e}", path.display())),
                        (Ok(path), Ok((_, image))) => {
                            let (Some(x), Some(p)) = (&inputs, &probs) else { anyhow::bail!("{}: no batch was built", path.display()) };
                            let input = x.f_narrow(0, row, 1)?;
                            let probs = Vec::<f32>::try_from(p.f_get(row)?)?;
                            row += 1;
                            Ok(Predicted { path, image, input, probs })
                        }
                    };
                    if each(r)?.is_break() {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })())
    })?
}

/// Decode the files of `chunk` on up to `threads` threads; entry k is file k's result (an expansion
/// error gives an empty error, reported by the caller with its own message).
fn decode_all(chunk: &[Result<PathBuf, String>], opts: &Options, threads: usize) -> Vec<Result<Decoded, decode::DecodeError>> {
    let one = |item: &Result<PathBuf, String>| -> Result<Decoded, decode::DecodeError> {
        let Ok(path) = item else { return Err(decode::DecodeError::Content(String::new())) };
        if opts.keep_images {
            let img = decode::open_rgb(path, &opts.reading)?;
            Ok((decode::resize_for_network(&img, opts.size), Some(img)))
        } else {
            Ok((decode::decode_file(path, opts.size, &opts.reading)?.rgb, None))
        }
    };
    let threads = threads.clamp(1, chunk.len().max(1));
    if threads == 1 {
        return chunk.iter().map(one).collect();
    }
    let mut out: Vec<Option<Result<Decoded, decode::DecodeError>>> = (0..chunk.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let one = &one;
                s.spawn(move || chunk.iter().enumerate().skip(t).step_by(threads).map(|(k, item)| (k, one(item))).collect::<Vec<_>>())
            })
            .collect();
        for w in workers {
            // A decoder that panicked leaves its files as errors; the others are kept.
            for (k, r) in w.join().unwrap_or_default() {
                out[k] = Some(r);
            }
        }
    });
    out.into_iter().map(|r| r.unwrap_or_else(|| Err(decode::DecodeError::Content("the decoder failed".into())))).collect()
}

/// The decoded images of a chunk as one network input [n, 3, size, size] (0–255 floats, on
/// `device`), as `evaluate::image_input` builds one; None when none decoded.
fn batch_input(decoded: &[Result<Decoded, decode::DecodeError>], size: u32, device: Device) -> Result<Option<Tensor>, tch::TchError> {
    let images: Vec<&[u8]> = decoded.iter().flatten().map(|(rgb, _)| rgb.as_slice()).collect();
    if images.is_empty() {
        return Ok(None);
    }
    crate::train::evaluate::pixels_input(&images.concat(), images.len() as i64, size, device).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of mixed images, some broken: batched predictions equal one-image passes within float
    /// noise, in file order, and each broken file gets its own error with its path.
    #[test]
    fn batches_match_single_images_in_order() {
        tch::manual_seed(5);
        let dir = tempfile::tempdir().unwrap();
        let mut paths = vec![];
        for k in 0..11u32 {
            let p = dir.path().join(format!("{k:02}.png"));
            if k == 4 || k == 9 {
                std::fs::write(&p, b"not an image").unwrap();
            } else {
                let (w, h) = (40 + 7 * k, 60 - 3 * k);
                image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 5 + k) as u8, (y * 3) as u8, ((x + y) * k) as u8]))
                    .save(&p)
                    .unwrap();
            }
            paths.push(Ok(p));
        }
        paths.insert(2, Err("missing.png: no such file or folder".to_string()));
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let cfg = crate::config::TrainConfig { pretrained: false, ..Default::default() };
        let net = crate::model::build(&vs, &cfg, 4).folded().expect("Lite0 folds");
        let tta = Some(Tta::parse("flip").unwrap());
        for keep_images in [false, true] {
            // Batches of 5 here: the errors fall inside and across batch boundaries.
            let opts = Options { batch: 5, ..Options::new(64, decode::Reading::default(), tta, keep_images, Device::Cpu) };
            let mut got = vec![];
            tch::no_grad(|| {
                for_each(&net, paths.clone(), opts, |r| {
                    got.push(r);
                    Ok(ControlFlow::Continue(()))
                })
            })
            .unwrap();
            assert_eq!(got.len(), paths.len());
            for (want, r) in paths.iter().zip(&got) {
                match (want, r) {
                    (Err(e), Err(g)) => assert_eq!(e, g),
                    (Ok(p), Ok(pred)) => {
                        assert_eq!(&pred.path, p);
                        assert_eq!(pred.image.is_some(), keep_images);
                        let img = decode::open_rgb(p, &decode::Reading::default()).unwrap();
                        let x = crate::train::evaluate::image_input(&img, 64, Device::Cpu).unwrap();
                        assert_eq!(
                            Vec::<f32>::try_from(x.flatten(0, -1)).unwrap(),
                            Vec::<f32>::try_from(pred.input.flatten(0, -1)).unwrap()
                        );
                        let one = tch::no_grad(|| crate::train::evaluate::image_probabilities(&net, &x, tta)).unwrap();
                        for (a, b) in one.iter().zip(&pred.probs) {
                            assert!((a - b).abs() < 1e-5, "{}: {a} against {b}", p.display());
                        }
                    }
                    (Ok(p), Err(e)) => {
                        let name = p.file_name().unwrap().to_string_lossy();
                        assert!(name == "04.png" || name == "09.png", "{name} failed: {e}");
                        assert!(e.starts_with(&p.display().to_string()) && e.len() > p.display().to_string().len() + 2, "{e}");
                    }
                    (Err(e), Ok(_)) => panic!("{e} was predicted"),
                }
            }
        }
    }
}
