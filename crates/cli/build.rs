//! Links libtorch so the `longtail` binary works out of the box:
//! - `libtorch_cuda` is linked with `--no-as-needed`, otherwise the linker drops it and the
//!   binary never sees a GPU even on a GPU machine;
//! - an rpath to the libtorch folder torch-sys built against, so no `LD_LIBRARY_PATH` is needed
//!   on this machine (elsewhere `LD_LIBRARY_PATH` still wins);
//! - the git revision, for run manifests: `HEAD`'s short hash, with `-dirty` when tracked files
//!   differ from it. The script reruns when HEAD, its branch, the index or the workspace sources
//!   change; otherwise manifests would keep the revision of whatever build first ran it.

fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = std::path::PathBuf::from(dir);
        let branch = git(&["symbolic-ref", "-q", "HEAD"]);
        let watched = ["HEAD", "index", "packed-refs"]
            .into_iter()
            .map(|f| dir.join(f))
            .chain(branch.map(|b| dir.join(b)));
        // A missing path would make cargo rerun the script on every build.
        for path in watched.filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        for src in ["../../crates", "../../Cargo.toml", "../../Cargo.lock"] {
            println!("cargo:rerun-if-changed={src}");
        }
    }
    let mut rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]);
    if !rev.is_empty() && dirty.is_some_and(|d| !d.is_empty()) {
        rev.push_str("-dirty");
    }
    println!("cargo:rustc-env=LONGTAIL_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
