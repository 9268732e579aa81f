//! Compiles `csrc/state.cpp` (generator state and gradient reset, which tch does not expose)
//! against the libtorch torch-sys built with: its headers sit beside the library folder that
//! torch-sys reports (`DEP_TCH_LIBTORCH_LIB`, `.../torch/lib` -> `.../torch/include`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/state.cpp");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys reports its libtorch folder (DEP_TCH_LIBTORCH_LIB)");
    let root = std::path::Path::new(&lib)
        .parent()
        .expect("libtorch's lib folder has a parent")
        .to_path_buf();
    cc::Build::new()
        .cpp(true)
        .file("csrc/state.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        // libtorch 2.11's PyPI build uses the C++11 ABI.
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .warnings(false)
        .compile("longtail_state");
}
