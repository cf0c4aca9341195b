//! libtorch's CUDA half (`libtorch_cuda.so`, and through it cuDNN, cuBLAS, NCCL and the rest of the CUDA
//! libraries) is loaded at run time, when a command may use a GPU and the machine has an NVIDIA
//! driver. Linked at start-up, it cost every process (`predict`, `--help`, each test) the loading and
//! static initialisation of about 2 GB of libraries, on machines without a GPU as well. Its static
//! constructors register the CUDA backend with libtorch, so once it is loaded, `tch::Cuda` sees the GPU
//! exactly as if it had been linked.

// The one place that needs FFI: dlopen/dlerror have no safe wrapper in our dependencies.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::OnceLock;

/// True where an NVIDIA driver is installed (its device nodes or its /proc entry exist).
pub fn driver_present() -> bool {
    ["/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version"].iter().any(|p| Path::new(p).exists())
}

/// Load `libtorch_cuda.so` once: from the libtorch folder the binary was built against, else from the
/// loader's search path. The error is the loader's own message.
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut candidates: Vec<String> = option_env!("TUMORSCOPE_LIBTORCH_LIB").map(|d| format!("{d}/libtorch_cuda.so")).into_iter().collect();
            candidates.push("libtorch_cuda.so".into());
            let mut last = String::from("libtorch_cuda.so: not found");
            for name in candidates {
                let Ok(c) = CString::new(name) else { continue };
                // SAFETY: `c` is a valid NUL-terminated path. The library is libtorch's own CUDA backend,
                // built against the libtorch already loaded; its constructors only register that
                // backend. The handle is never closed, so nothing it registered can dangle.
                let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
                if !handle.is_null() {
                    return Ok(());
                }
                // SAFETY: dlerror returns null or a NUL-terminated string that stays valid until the
                // next dl* call on this thread; it is copied at once.
                let err = unsafe { libc::dlerror() };
                if !err.is_null() {
                    last = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
                }
            }
            Err(last)
        })
        .clone()
}

/// For `auto`: load the CUDA backend where a driver is present (a CPU-only machine never pays for it).
pub fn load_if_driver() {
    if driver_present() {
        let _ = load();
    }
}
