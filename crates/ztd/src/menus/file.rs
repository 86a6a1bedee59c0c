//! `/file add name= contents=`: the router's files, as RouterOS keeps exports
//! (`export file=NAME` writes `NAME.rsc` there). ztd keeps them in `<home>/files/`, mode
//! 0600 (an `export show-sensitive` holds secret identities).
use std::path::PathBuf;

use crate::daemon::Daemon;
use crate::menu::{Args, CommandError};
use crate::state_dir::{write_atomic, SECRET_MODE};

const FILES_DIR: &str = "files";

/// A file name that stays inside the files directory: no `/`, not hidden, not empty.
fn checked_name(name: &str) -> Result<&str, CommandError> {
    let fine = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\0'])
        && !name.chars().any(char::is_control);
    if fine {
        Ok(name)
    } else {
        Err(CommandError::invalid_value("name"))
    }
}

/// `POST /rest/file/add {"name":"backup.rsc","contents":"…"}`: write (or replace) the file.
pub async fn add(daemon: &Daemon, mut args: Args) -> Result<PathBuf, CommandError> {
    let name = args
        .take("name")
        .ok_or_else(|| CommandError::refused("missing value(s) of argument(s) name"))?;
    let contents = args.take("contents").unwrap_or_default();
    args.finish()?;
    let dir = daemon.state_dir().root().join(FILES_DIR);
    let path = dir.join(checked_name(&name)?);
    std::fs::create_dir_all(&dir).map_err(|e| CommandError::Internal(e.to_string()))?;
    write_atomic(&path, contents.as_bytes(), SECRET_MODE)
        .map_err(|e| CommandError::Internal(e.to_string()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_files_directory() {
        assert_eq!(checked_name("backup.rsc").unwrap(), "backup.rsc");
        for bad in ["", "../x.rsc", "a/b.rsc", ".hidden.rsc", "a\nb"] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
    }
}
