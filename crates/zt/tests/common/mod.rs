//! What the `zt` integration tests share: the `zt` binary under test, plus the namespace and
//! `ztpeer` harness from the `zt-testnet` crate.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

pub use zt_testnet::*;

/// The `zt` binary under test.
pub fn zt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zt"))
}

/// Run `zt idtool ARGS…` in `dir`, with a deadline.
pub fn idtool(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = zt();
    cmd.current_dir(dir).arg("idtool").args(args);
    run_with_deadline(cmd, Duration::from_secs(60))
}
