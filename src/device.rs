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
            crate::cuda_runtime::load().map_err(|e| format!("--device cuda: libtorch's CUDA backend did not load: {e}"))?;
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err("--device cuda: no CUDA device is visible to libtorch".into())
            }
        }
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(_) if crate::cuda_runtime::load().is_err() => Err(format!(
                "--device {other}: libtorch's CUDA backend did not load: {}",
                crate::cuda_runtime::load().err().unwrap_or_default()
            )),
            Some(n) if (n as i64) < tch::Cuda::device_count() => Ok(Device::Cuda(n)),
            Some(n) => Err(format!("--device cuda:{n}: only {} CUDA device(s) visible", tch::Cuda::device_count())),
            None => Err(format!("--device {other}: expected auto, cpu, cuda or cuda:N")),
        },
    }
}

pub fn describe(d: Device) -> String {
    match d {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
