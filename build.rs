//! Embed libtorch's directory as an rpath (absolute, then relative to the binary) so `tumorscope`
//! (and every test binary) runs without `LD_LIBRARY_PATH`, and tell the binary where that folder
//! is: `libtorch_cuda` is not linked but loaded at run time where a GPU may be used
//! (src/cuda_runtime.rs).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    // Then the same venv relative to the binary (target/<profile>/tumorscope, and test binaries in
    // target/<profile>/deps/), so a checkout that was moved or copied whole still finds libtorch.
    let venv = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(".venv");
    if Path::new(&dir).starts_with(&venv) {
        for up in ["../..", "../../.."] {
            println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/{up}/.venv/libtorch/lib");
        }
    }
    println!("cargo:rustc-env=TUMORSCOPE_LIBTORCH_LIB={dir}");
}
