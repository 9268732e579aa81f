//! Integration tests of longtail-eval (one test binary, see architecture.md).

mod goldens;
mod goldens_ranking;
