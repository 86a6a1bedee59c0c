//! Finding the `ztd` binary for the console tests.
//!
//! `ztd` belongs to another package, so Cargo does not build it for this package's tests.
//! It is looked for at `$ZTD`, then beside the `zt` binary under test (`target/<profile>/ztd`,
//! present after `cargo build --workspace --bins` or `cargo test --workspace`). When it is
//! missing there, it is built once with the same cargo, target directory and profile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub fn ztd_binary() -> PathBuf {
    static FOUND: OnceLock<PathBuf> = OnceLock::new();
    FOUND.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> PathBuf {
    if let Some(path) = std::env::var_os("ZTD") {
        return PathBuf::from(path);
    }
    let zt = Path::new(env!("CARGO_BIN_EXE_zt"));
    let ztd = zt.with_file_name("ztd");
    if ztd.exists() {
        return ztd;
    }
    let profile_dir = zt
        .parent()
        .expect("the zt binary is in a profile directory");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory is in a target dir");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "-p", "ztd", "--bin", "ztd", "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
        None => {}
    }
    let status = build.status().expect("run cargo to build ztd");
    assert!(
        status.success() && ztd.exists(),
        "building {} failed ({status}); build it with `cargo build -p ztd` or set ZTD",
        ztd.display()
    );
    ztd
}
