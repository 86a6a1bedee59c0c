//! `zt`: the RouterOS-style console and the tools that go with it.
//!
//! This file only dispatches. `zt idtool …` is the identity and world tool (a compatible
//! superset of `zerotier-idtool`, see [`idtool`]). Anything else — notably a console command
//! line such as `zt /zerotier/print`, whose leading `/` is not a subcommand name — is captured
//! whole as an external subcommand and handed to the console.
//!
//! Exit codes: 0 success, 1 the operation failed or its input was invalid, 2 usage error.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod idtool;

#[derive(Parser)]
#[command(
    name = "zt",
    version,
    about = "zt: console and tools for the zt ZeroTier hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate, check and use identities; make moons and planets (like zerotier-idtool).
    Idtool {
        #[command(subcommand)]
        command: idtool::IdtoolCommand,
    },
    /// A console command line, e.g. `/zerotier/print`.
    #[command(external_subcommand)]
    Console(Vec<String>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Idtool { command } => idtool::main(command),
        Command::Console(words) => {
            // The console front end is added by the console crate's work; until then say so
            // plainly instead of pretending to run the command.
            eprintln!(
                "zt: console commands are not available in this build: {}",
                words.join(" ")
            );
            ExitCode::from(2)
        }
    }
}
