//! Links libtorch so the `longtail` binary works out of the box:
//! - `libtorch_cuda` is linked with `--no-as-needed`, otherwise the linker drops it and the
//!   binary never sees a GPU even on a GPU machine;
//! - an rpath to the libtorch folder torch-sys built against, so no `LD_LIBRARY_PATH` is needed
//!   on this machine (elsewhere `LD_LIBRARY_PATH` still wins);
//! - the git revision, for run manifests.

fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=LONGTAIL_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
