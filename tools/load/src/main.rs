//! `study-mode-load`: the load generator of study-mode-api (loopback benchmarks only).
//!
//! Owns: the subcommands `suggestions` (fixed rate without coordinated omission, or fixed
//! concurrency), `chat` (many concurrent ChatKit streams), `turns` (chat turns per second at
//! fixed concurrency), `cold-start` (process start → ready) and `fake-model` (a slow
//! OpenAI-compatible model that keeps streams open). Each prints a human table, or JSON with
//! `--json`.

mod chat;
mod cold_start;
mod fake_model;
mod net;
mod procfs;
mod sse;
mod stats;
mod suggestions;
mod turns;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "study-mode-load", version, about)]
struct Cli {
    /// Print the report as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// GET requests (cached suggestions) at a fixed rate or fixed concurrency.
    Suggestions(suggestions::SuggestionsArgs),
    /// Many concurrent ChatKit streams (`threads.create`).
    Chat(chat::ChatArgs),
    /// Chat turns per second: closed loop at fixed concurrency, whole SSE reply per turn.
    Turns(turns::TurnsArgs),
    /// Process start → `/health/ready` 200, N runs.
    ColdStart(cold_start::ColdStartArgs),
    /// A local OpenAI-compatible model server with a configurable token rate.
    FakeModel(fake_model::FakeModelArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Suggestions(a) => suggestions::run(a, cli.json).await,
            Command::Chat(a) => chat::run(a, cli.json).await,
            Command::Turns(a) => turns::run(a, cli.json).await,
            Command::ColdStart(a) => cold_start::run(a, cli.json).await,
            Command::FakeModel(a) => fake_model::run(a).await,
        }
    })
}
