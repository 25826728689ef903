//! The command line: `study-mode-api [serve]`, `check-config`, `warm-cache`, `import-legacy`;
//! `--help` lists every setting.

use clap::{Parser, Subcommand};

use crate::settings::all_settings;

/// Backend of the study-mode AI tutor (ChatKit protocol server).
#[derive(Debug, Parser)]
#[command(name = "study-mode-api", version, about, after_long_help = settings_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; serving is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP on HOST:PORT (the default when no subcommand is given).
    Serve,
    /// Validate the configuration and print a summary (exit code 2 when invalid).
    CheckConfig,
    /// Load every lesson into the cache (exit code 1 when any failed).
    WarmCache,
    /// Import the threads of the Python study-mode service from DATABASE_URL's
    /// `study_mode_chat` schema into ours (`study_mode`); run again to take what changed since.
    /// Resumable; never writes the legacy tables (docs/OPERATIONS.md, "Cut-over").
    ImportLegacy {
        /// Read and compare only: print what would be imported, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per page and per transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
    /// Print the settings table as Markdown (the README's table is this output).
    #[command(hide = true)]
    SettingsTable,
}

/// The settings table shown by `--help`.
pub fn settings_help() -> String {
    let mut out =
        String::from("Settings (environment variables; `.env` is read in development):\n");
    for s in all_settings() {
        out.push_str(&format!(
            "  {:<32} default: {}\n      {}\n",
            s.name, s.default, s.meaning
        ));
    }
    out
}
