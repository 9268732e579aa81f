//! `longtail` with one extra model and one extra schedule: every subcommand (demo, train, bench,
//! models, schedules, ...) now knows `meanpool` and `warmup_finetune`. Try:
//! `cargo run --release -- train --model meanpool`.

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
    let mut schedules = longtail_train::ScheduleRegistry::builtin();
    if let Err(e) = schedules.register(Box::new(
        longtail_example_custom_model::warmup::WarmupFinetune,
    )) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    longtail_cli::main_with(registry, schedules)
}
