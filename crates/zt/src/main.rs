//! `zt`: the RouterOS-style console and the tools that go with it.
//!
//! This file only dispatches. `zt idtool …` is the identity and world tool (a compatible
//! superset of `zerotier-idtool`, see [`idtool`]). `zt info|listnetworks|listpeers|join|leave`
//! are the zerotier-cli commands. Anything else — notably a console command line such as
//! `zt /zerotier/print`, whose leading `/` is not a subcommand name — is captured whole as an
//! external subcommand and handed to the [`console`]; no command at all opens its prompt.
//!
//! Exit codes: 0 success, 1 the operation failed or its input was invalid, 2 usage error.
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod console;
mod idtool;
mod lab;

#[derive(Parser)]
#[command(
    name = "zt",
    about = "zt: console and tools for the zt ZeroTier hypervisor",
    after_help = console::USAGE
)]
struct Cli {
    #[command(flatten)]
    console: console::ConsoleOptions,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Generate, check and use identities; make moons and planets (like zerotier-idtool).
    Idtool {
        #[command(subcommand)]
        command: idtool::IdtoolCommand,
    },
    /// Run the manual's Home/Office controller example in network namespaces (needs root).
    Lab(lab::LabArgs),
    #[command(flatten)]
    Service(console::ServiceCommand),
    /// A console command line, e.g. `/zerotier/print`.
    #[command(external_subcommand)]
    Console(Vec<String>),
}

fn main() -> ExitCode {
    let version = zt_wire::header::version_text(env!("CARGO_PKG_VERSION"));
    let cli = match Cli::command()
        .version(version)
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        Some(Command::Idtool { command }) => idtool::main(command),
        Some(Command::Lab(args)) => lab::main(args),
        Some(Command::Service(command)) => console::service_command(&cli.console, &command),
        Some(Command::Console(words)) => console::one_command(&cli.console, &words),
        None => console::session(&cli.console),
    }
}
