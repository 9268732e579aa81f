//! `longtail` with one extra model: every subcommand (demo, train, bench, models, ...) now knows
//! `meanpool`. Try: `cargo run --release -- train --model meanpool`.

fn main() -> std::process::ExitCode {
    let mut registry = match longtail_models::builtin_registry() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = longtail_example_custom_model::register(&mut registry) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    longtail_cli::main_with(registry)
}
