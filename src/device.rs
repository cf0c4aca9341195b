//! Choosing where tensors live: `auto` (CUDA when libtorch sees a GPU), `cpu`, `cuda` or `cuda:N`.

use tch::Device;

pub fn parse_device(s: &str) -> Result<Device, String> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err("--device cuda: no CUDA device is visible to libtorch".into())
            }
        }
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
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
