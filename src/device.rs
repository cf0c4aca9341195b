//! Choosing where tensors live: `auto` (CUDA when libtorch sees a GPU), `cpu`, `cuda` or `cuda:N`.

use tch::Device;

/// Why `--device` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("--device {0}: no CUDA device is visible to libtorch")]
    NoCuda(String),
    #[error("--device cuda:{0}: only {1} CUDA device(s) visible")]
    NoSuchGpu(usize, i64),
    #[error("--device {0}: expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("--device {0}: libtorch's CUDA backend did not load: {1}")]
    Backend(String, crate::cuda_runtime::CudaRuntimeError),
}

pub fn parse_device(s: &str) -> Result<Device, DeviceError> {
    match s {
        "auto" => {
            crate::cuda_runtime::load_if_driver();
            Ok(Device::cuda_if_available())
        }
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => {
            cuda_backend("cuda")?;
            if tch::Cuda::is_available() { Ok(Device::Cuda(0)) } else { Err(DeviceError::NoCuda("cuda".into())) }
        }
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                cuda_backend(other)?;
                if (n as i64) < tch::Cuda::device_count() {
                    Ok(Device::Cuda(n))
                } else {
                    Err(DeviceError::NoSuchGpu(n, tch::Cuda::device_count()))
                }
            }
            None => Err(DeviceError::Unknown(other.to_string())),
        },
    }
}

/// libtorch's CUDA backend, loaded for `--device <device>`, or why it could not be.
fn cuda_backend(device: &str) -> Result<(), DeviceError> {
    crate::cuda_runtime::load().map_err(|e| DeviceError::Backend(device.to_string(), e))
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
