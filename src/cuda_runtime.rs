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

/// Why libtorch's CUDA backend or its autocast calls cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CudaRuntimeError {
    /// The dynamic loader's own message.
    #[error("{0}")]
    Load(String),
    #[error("libtorch lacks {0}")]
    MissingSymbol(String),
    #[error("autocast cannot cast to {0:?}")]
    Kind(tch::Kind),
}

/// Load `libtorch_cuda.so` once: from the libtorch folder the binary was built against, else from the
/// loader's search path. The error is the loader's own message.
pub fn load() -> Result<(), CudaRuntimeError> {
    static LOADED: OnceLock<Result<(), CudaRuntimeError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let mut candidates: Vec<String> =
                option_env!("TUMORSCOPE_LIBTORCH_LIB").map(|d| format!("{d}/libtorch_cuda.so")).into_iter().collect();
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
            Err(CudaRuntimeError::Load(last))
        })
        .clone()
}

/// For `auto`: load the CUDA backend where a driver is present (a CPU-only machine never pays for it).
pub fn load_if_driver() {
    if driver_present() {
        let _ = load();
    }
}

/// libtorch's `at::autocast::set_autocast_dtype(DeviceType, ScalarType)` and its getter, by their C++
/// names (tch can switch CUDA autocast on, but only at libtorch's default, fp16).
const SET_AUTOCAST_DTYPE: &CStr = c"_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE";
const GET_AUTOCAST_DTYPE: &CStr = c"_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE";
const SET_AUTOCAST_ENABLED: &CStr = c"_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb";
const IS_AUTOCAST_ENABLED: &CStr = c"_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE";
/// c10::DeviceType::CUDA.
const DEVICE_TYPE_CUDA: i8 = 1;

/// c10::ScalarType's number for the kinds autocast can cast to.
fn scalar_type(kind: tch::Kind) -> Option<i8> {
    match kind {
        tch::Kind::Half => Some(5),
        tch::Kind::BFloat16 => Some(15),
        _ => None,
    }
}

fn symbol(name: &CStr) -> Result<*mut libc::c_void, CudaRuntimeError> {
    // SAFETY: `name` is NUL-terminated; RTLD_DEFAULT searches the libraries already loaded (libtorch_cpu
    // is linked into every binary of this crate).
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if p.is_null() { Err(CudaRuntimeError::MissingSymbol(name.to_string_lossy().into_owned())) } else { Ok(p) }
}

/// Make CUDA autocast on this thread (autocast state is per thread) cast to `kind` (Half or BFloat16).
pub fn set_cuda_autocast_kind(kind: tch::Kind) -> Result<(), CudaRuntimeError> {
    let st = scalar_type(kind).ok_or(CudaRuntimeError::Kind(kind))?;
    let f = symbol(SET_AUTOCAST_DTYPE)?;
    // SAFETY: the symbol is `void at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType)`;
    // both enums are `enum class : int8_t`, passed as 8-bit integers in the C calling convention.
    // The function only stores the value in a thread-local table.
    let f: extern "C" fn(i8, i8) = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(i8, i8)>(f) };
    f(DEVICE_TYPE_CUDA, st);
    Ok(())
}

/// The kind CUDA autocast casts to on this thread (None for a kind other than Half or BFloat16).
pub fn cuda_autocast_kind() -> Result<Option<tch::Kind>, CudaRuntimeError> {
    let f = symbol(GET_AUTOCAST_DTYPE)?;
    // SAFETY: the symbol is `c10::ScalarType at::autocast::get_autocast_dtype(c10::DeviceType)`, an
    // 8-bit enum in and out; it reads a thread-local table.
    let f: extern "C" fn(i8) -> i8 = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(i8) -> i8>(f) };
    Ok(match f(DEVICE_TYPE_CUDA) {
        5 => Some(tch::Kind::Half),
        15 => Some(tch::Kind::BFloat16),
        _ => None,
    })
}

/// Whether CUDA autocast is on for this thread (`at::autocast::is_autocast_enabled(kCUDA)`).
fn cuda_autocast_enabled() -> Result<bool, CudaRuntimeError> {
    let f = symbol(IS_AUTOCAST_ENABLED)?;
    // SAFETY: the symbol is `bool at::autocast::is_autocast_enabled(c10::DeviceType)` (an 8-bit enum in,
    // a C++ bool out); it reads this thread's dispatch keys.
    let f: extern "C" fn(i8) -> bool = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(i8) -> bool>(f) };
    Ok(f(DEVICE_TYPE_CUDA))
}

/// Switch CUDA autocast on or off for this thread (`at::autocast::set_autocast_enabled(kCUDA, on)`).
fn set_cuda_autocast_enabled(on: bool) -> Result<(), CudaRuntimeError> {
    let f = symbol(SET_AUTOCAST_ENABLED)?;
    // SAFETY: the symbol is `void at::autocast::set_autocast_enabled(c10::DeviceType, bool)`; it sets
    // this thread's dispatch keys.
    let f: extern "C" fn(i8, bool) = unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(i8, bool)>(f) };
    f(DEVICE_TYPE_CUDA, on);
    Ok(())
}

/// Run `f` with CUDA autocast on, casting to `kind` (Half or BFloat16), as PyTorch's
/// `torch.autocast("cuda", dtype)` does: on, one nesting level deeper, and on leaving the outermost
/// level the cache of cast weights is cleared and the previous state comes back. (tch's `autocast`
/// goes through libtorch's deprecated calls, which print a warning on every use.)
pub fn with_cuda_autocast<T>(kind: tch::Kind, f: impl FnOnce() -> T) -> Result<T, CudaRuntimeError> {
    set_cuda_autocast_kind(kind)?;
    let before = cuda_autocast_enabled()?;
    set_cuda_autocast_enabled(true)?;
    // SAFETY: plain libtorch calls with no arguments; they update this thread's autocast nesting
    // counter (and the cast cache, which only autocast itself uses).
    unsafe { torch_sys::at_autocast_increment_nesting() };
    let out = f();
    if unsafe { torch_sys::at_autocast_decrement_nesting() } == 0 {
        unsafe { torch_sys::at_autocast_clear_cache() };
    }
    set_cuda_autocast_enabled(before)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C++ symbols exist in the libtorch this crate links, and the setter's value is read back (the
    /// table is per thread and needs no GPU).
    #[test]
    fn the_cuda_autocast_kind_can_be_set_and_read_back() {
        std::thread::spawn(|| {
            assert_eq!(cuda_autocast_kind().unwrap(), Some(tch::Kind::Half), "libtorch's default");
            set_cuda_autocast_kind(tch::Kind::BFloat16).unwrap();
            assert_eq!(cuda_autocast_kind().unwrap(), Some(tch::Kind::BFloat16));
            set_cuda_autocast_kind(tch::Kind::Half).unwrap();
            assert_eq!(cuda_autocast_kind().unwrap(), Some(tch::Kind::Half));
            assert!(set_cuda_autocast_kind(tch::Kind::Float).is_err());
            // On inside, off again after; CPU tensors are not cast by CUDA autocast.
            assert!(!cuda_autocast_enabled().unwrap());
            let x = tch::Tensor::ones([2, 2], (tch::Kind::Float, tch::Device::Cpu));
            let (on, kind) = with_cuda_autocast(tch::Kind::BFloat16, || (cuda_autocast_enabled().unwrap(), x.matmul(&x).kind())).unwrap();
            assert!(on);
            assert_eq!(kind, tch::Kind::Float);
            assert!(!cuda_autocast_enabled().unwrap());
            assert_eq!(cuda_autocast_kind().unwrap(), Some(tch::Kind::BFloat16));
        })
        .join()
        .unwrap();
    }
}
