//! The daemon's state directory: the one place that writes files.
//!
//! Layout (see `DESIGN.md`, PROTOCOL.md §9.4):
//! ```text
//! <home>/authtoken.secret        API token, 24 chars a-z0-9, mode 0600
//! <home>/metricstoken.secret     token that opens only `/metrics`, same form
//! <home>/instances.json          the /zerotier menu (instance list)
//! <home>/<instance>/identity.secret   mode 0600
//! <home>/<instance>/identity.public
//! ```
//! Every write is atomic: a temporary file in the same directory is written, fsynced and
//! renamed over the target, then the directory is fsynced, so a crash leaves either the old or
//! the new content, never a torn file.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::Rng;

/// File mode for secrets (identity.secret, authtoken.secret).
pub const SECRET_MODE: u32 = 0o600;
/// File mode for everything else.
pub const PUBLIC_MODE: u32 = 0o644;

const AUTHTOKEN_FILE: &str = "authtoken.secret";
/// zerotier-one's second token (1.12+): a Prometheus scraper can hold it without being able to
/// change anything.
const METRICSTOKEN_FILE: &str = "metricstoken.secret";
const AUTHTOKEN_LEN: usize = 24;
const AUTHTOKEN_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A failure of the state directory. These are fatal for the operation that hit them (unlike a
/// bad packet, nothing can be "dropped and counted" here).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl StateError {
    fn at(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
        move |source| StateError {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Handle on the home directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Open (creating if needed, mode 0700) the home directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<StateDir, StateError> {
        let root = root.into();
        create_private_dir(&root)?;
        Ok(StateDir { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a file directly under the home directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The per-instance directory (`<home>/<name>`), created on demand.
    pub fn instance_dir(&self, instance_name: &str) -> Result<PathBuf, StateError> {
        let dir = self.root.join(instance_name);
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// Rename an instance directory when the instance is renamed. Missing source is fine
    /// (the instance never had state).
    pub fn rename_instance_dir(&self, old: &str, new: &str) -> Result<(), StateError> {
        let from = self.root.join(old);
        let to = self.root.join(new);
        match fs::rename(&from, &to) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::at(&from)(e)),
        }
    }

    /// Remove an instance directory and everything in it (instance removed).
    pub fn remove_instance_dir(&self, name: &str) -> Result<(), StateError> {
        let dir = self.root.join(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => sync_dir(&self.root),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::at(&dir)(e)),
        }
    }

    /// The API token from `authtoken.secret`, created (24 random a-z0-9, mode 0600) if the
    /// file is missing or blank. Surrounding whitespace is ignored, as zerotier-one does.
    pub fn load_or_create_authtoken(&self) -> Result<String, StateError> {
        self.load_or_create_token(AUTHTOKEN_FILE)
    }

    /// The `/metrics` token from `metricstoken.secret`, made and read like the API token.
    pub fn load_or_create_metricstoken(&self) -> Result<String, StateError> {
        self.load_or_create_token(METRICSTOKEN_FILE)
    }

    fn load_or_create_token(&self, file: &str) -> Result<String, StateError> {
        let path = self.file(file);
        if let Some(existing) = read_optional(&path)? {
            let token = String::from_utf8_lossy(&existing).trim().to_string();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        let mut rng = rand::thread_rng();
        let token: String = (0..AUTHTOKEN_LEN)
            .map(|_| AUTHTOKEN_ALPHABET[rng.gen_range(0..AUTHTOKEN_ALPHABET.len())] as char)
            .collect();
        write_atomic(&path, token.as_bytes(), SECRET_MODE)?;
        Ok(token)
    }
}

/// Read a whole file; `Ok(None)` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::at(path)(e)),
    }
}

/// Replace `path` with `contents` atomically, with permission bits `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and per write, so concurrent writers never share a temp file.
    static NEXT_TEMP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = NEXT_TEMP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.tmp.{}.{serial}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(StateError::at(&tmp))?;
        // `mode` at creation is filtered by the umask and ignored for an existing temp file;
        // set it explicitly so a secret is never readable by others.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(StateError::at(&tmp))?;
        f.write_all(contents).map_err(StateError::at(&tmp))?;
        f.sync_all().map_err(StateError::at(&tmp))?;
        fs::rename(&tmp, path).map_err(StateError::at(path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StateError::at(dir))
}

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(StateError::at(dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.secret");
        write_atomic(&path, b"one", PUBLIC_MODE).unwrap();
        write_atomic(&path, b"two", SECRET_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            SECRET_MODE
        );
        // no temporary files left behind
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn authtoken_created_once_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path().join("home")).unwrap();
        let token = dir.load_or_create_authtoken().unwrap();
        assert_eq!(token.len(), 24);
        assert!(token.bytes().all(|b| AUTHTOKEN_ALPHABET.contains(&b)));
        let mode = fs::metadata(dir.file(AUTHTOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, SECRET_MODE);
        assert_eq!(dir.load_or_create_authtoken().unwrap(), token);
    }

    #[test]
    fn authtoken_whitespace_is_trimmed_and_blank_regenerated() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        fs::write(dir.file(AUTHTOKEN_FILE), "  mytoken\n").unwrap();
        assert_eq!(dir.load_or_create_authtoken().unwrap(), "mytoken");
        fs::write(dir.file(AUTHTOKEN_FILE), " \n").unwrap();
        assert_eq!(dir.load_or_create_authtoken().unwrap().len(), 24);
    }

    #[test]
    fn metricstoken_is_its_own_secret_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        let api = dir.load_or_create_authtoken().unwrap();
        let metrics = dir.load_or_create_metricstoken().unwrap();
        assert_ne!(api, metrics);
        let mode = fs::metadata(dir.file(METRICSTOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, SECRET_MODE);
        assert_eq!(dir.load_or_create_metricstoken().unwrap(), metrics);
    }
}
