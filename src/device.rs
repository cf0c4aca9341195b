//! Choosing where tensors live: `auto` (CUDA when libtorch sees a GPU), `cpu`, `cuda` or `cuda:N`.

use tch::Device;

pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => {
            crate::cuda_runtime::load_if_driver();
            Ok(Device::cuda_if_available())
        }
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            cuda_backend("cuda")?;
            if tch::Cuda::is_available() { Ok(Device::Cuda(0)) } else { Err("--device cuda: no CUDA device is visible to libtorch".into()) }
        }
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                cuda_backend(other)?;
                if (n as i64) < tch::Cuda::device_count() {
                    Ok(Device::Cuda(n))
                } else {
                    Err(format!("--device cuda:{n}: only {} CUDA device(s) visible", tch::Cuda::device_count()))
                }
            }
            None => Err(format!("--device {other}: expected auto, cpu, cuda or cuda:N")),
        },
    }
}

/// libtorch's CUDA backend, loaded for `--device <device>`, or why it could not be.
fn cuda_backend(device: &str) -> Result<(), String> {
    crate::cuda_runtime::load().map_err(|e| format!("--device {device}: libtorch's CUDA backend did not load: {e}"))
}

pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => match tch::get_num_threads() {
            1 => "cpu (1 thread)".to_string(),
            n => format!("cpu ({n} threads)"),
        },
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
