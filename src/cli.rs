//! The command line: `study-mode-api [serve]`, `check-config`, `warm-cache`; `--help` lists every setting.

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
