//! Embed libtorch's directory as an rpath so `tumorscope` (and every test binary) runs without
//! `LD_LIBRARY_PATH`, and tell the binary where that folder is: `libtorch_cuda` is not linked but
//! loaded at run time where a GPU may be used (src/cuda_runtime.rs).
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    println!("cargo:rustc-env=TUMORSCOPE_LIBTORCH_LIB={dir}");
}
