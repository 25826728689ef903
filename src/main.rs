//! Entry point: parse the command line, load settings, start telemetry, run. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use study_mode_api::cli::{Cli, Command};
use study_mode_api::settings::{Settings, markdown_table};
use study_mode_api::startup::{Application, StartError, shutdown_signal};
use study_mode_api::telemetry;

/// The static (musl) build allocates with mimalloc: musl's own allocator made a cached request
/// cost several times the CPU of the glibc build (docs/BENCHMARKS.md, "Allocator").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::SettingsTable) = cli.command {
        print!("{}", markdown_table());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_process_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            // A summary only: the settings hold secrets and must never be printed whole.
            println!(
                "configuration is valid: environment={:?} store={} cache={} dev_mode={}",
                settings.environment,
                settings.database.backend(),
                if settings.redis.is_some() {
                    "redis"
                } else {
                    "memory"
                },
                settings.dev_mode
            );
            ExitCode::SUCCESS
        }
        Command::Serve => serve(settings).await,
        Command::WarmCache => warm_cache(&settings).await,
        Command::ImportLegacy { dry_run, batch } => {
            import_legacy(&settings, dry_run, batch as usize).await
        }
        Command::SettingsTable => ExitCode::SUCCESS,
    }
}

async fn warm_cache(settings: &Settings) -> ExitCode {
    telemetry::init(&settings.log);
    match study_mode_api::content::warm::run(
        &settings.content,
        &settings.outbound,
        settings.redis.as_ref(),
    )
    .await
    {
        Ok(report) => {
            println!("{report}");
            if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("warm-cache: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import_legacy(settings: &Settings, dry_run: bool, batch: usize) -> ExitCode {
    telemetry::init(&settings.log);
    match study_mode_api::legacy::run(&settings.database, dry_run, batch, true).await {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("import-legacy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(StartError::LegacyNotImported(e)) => {
            // One plain line, whatever the log format: the operator's next step.
            eprintln!("study-mode-api: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    let settings = app.settings();
    tracing::info!(
        port = app.port(),
        store = settings.database.backend(),
        cache = if settings.redis.is_some() {
            "redis"
        } else {
            "memory"
        },
        dev_mode = settings.dev_mode,
        "study-mode-api listening"
    );
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}
