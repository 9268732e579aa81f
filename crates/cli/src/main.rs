//! The `longtail` binary: the CLI with the built-in models.

fn main() -> std::process::ExitCode {
    match longtail_models::builtin_registry() {
        Ok(registry) => {
            longtail_cli::main_with(registry, longtail_train::ScheduleRegistry::builtin())
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
