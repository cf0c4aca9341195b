//! Embed libtorch's directory as an rpath so `tumorscope` (and every test binary) runs without
//! `LD_LIBRARY_PATH`, and keep `libtorch_cuda` linked so CUDA is visible when the machine has a GPU.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    if Path::new(&dir).join("libtorch_cuda.so").exists() {
        // Linkers drop libtorch_cuda as unneeded (nothing references it by symbol); without it
        // tch never sees a GPU.
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
