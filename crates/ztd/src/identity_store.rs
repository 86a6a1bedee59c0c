//! An instance's identity on disk: `identity.secret` (mode 0600, `addr:0:pub:priv`) and
//! `identity.public` (`addr:0:pub`), generated on first enable and reused afterwards.
use std::path::Path;

use zt_crypto::Identity;

use crate::state_dir::{read_optional, write_atomic, StateError, PUBLIC_MODE, SECRET_MODE};

pub const SECRET_FILE: &str = "identity.secret";
pub const PUBLIC_FILE: &str = "identity.public";

#[derive(Debug, thiserror::Error)]
pub enum IdentityStoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{path}: not a secret identity: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("identity generation failed: {0}")]
    Generation(String),
}

/// What management APIs show about an identity, read from `identity.public` (no crypto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicIdentityText {
    /// The 10-hex-digit address.
    pub address: String,
    /// `addr:0:pub`.
    pub public: String,
}

impl PublicIdentityText {
    fn from_identity(identity: &Identity) -> PublicIdentityText {
        PublicIdentityText {
            address: identity.address().to_string(),
            public: identity.to_public_string(),
        }
    }
}

/// The public identity text of an instance directory, if one was generated.
pub fn read_public(dir: &Path) -> Result<Option<PublicIdentityText>, StateError> {
    let Some(bytes) = read_optional(&dir.join(PUBLIC_FILE))? else {
        return Ok(None);
    };
    let public = String::from_utf8_lossy(&bytes).trim().to_string();
    let address = public.split(':').next().unwrap_or_default().to_string();
    if address.len() != 10 {
        return Ok(None);
    }
    Ok(Some(PublicIdentityText { address, public }))
}

/// Load the instance's identity, or generate and store one if there is none. Generation is
/// CPU-heavy (memory-hard hash), so it runs on a blocking thread.
pub async fn load_or_generate(
    dir: &Path,
) -> Result<(Identity, PublicIdentityText), IdentityStoreError> {
    let secret_path = dir.join(SECRET_FILE);
    if let Some(bytes) = read_optional(&secret_path)? {
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let unreadable = |reason: String| IdentityStoreError::Unreadable {
            path: secret_path.display().to_string(),
            reason,
        };
        let identity = Identity::from_string(&text).map_err(|e| unreadable(e.to_string()))?;
        if !identity.has_private() {
            return Err(unreadable("no private key".into()));
        }
        let shown = PublicIdentityText::from_identity(&identity);
        // Keep identity.public in step with the secret (it may be missing or stale).
        if read_public(dir)?.as_ref() != Some(&shown) {
            write_atomic(&dir.join(PUBLIC_FILE), shown.public.as_bytes(), PUBLIC_MODE)?;
        }
        return Ok((identity, shown));
    }
    let identity = tokio::task::spawn_blocking(|| Identity::generate(&mut rand_core::OsRng))
        .await
        .map_err(|e| IdentityStoreError::Generation(e.to_string()))?;
    let secret = identity.to_secret_string().ok_or_else(|| {
        IdentityStoreError::Generation("generated identity has no private key".into())
    })?;
    write_atomic(&secret_path, secret.as_bytes(), SECRET_MODE)?;
    let shown = PublicIdentityText::from_identity(&identity);
    write_atomic(&dir.join(PUBLIC_FILE), shown.public.as_bytes(), PUBLIC_MODE)?;
    tracing::info!(address = %shown.address, dir = %dir.display(), "generated a new identity");
    Ok((identity, shown))
}

/// Parse and check an identity given by an operator (`set identity=addr:0:pub:priv`): it must
/// carry its private key and pass the address derivation (memory-hard, so off the runtime).
pub async fn parse_secret(text: &str) -> Result<Identity, String> {
    let identity = Identity::from_string(text.trim()).map_err(|e| e.to_string())?;
    if !identity.has_private() {
        return Err("identity has no private key".into());
    }
    let (valid, identity) =
        tokio::task::spawn_blocking(move || (identity.locally_validate(), identity))
            .await
            .map_err(|e| e.to_string())?;
    if !valid {
        return Err("identity does not validate".into());
    }
    Ok(identity)
}

/// The identity files of a directory as they are now, to put back if a change fails.
pub struct Snapshot {
    secret: Option<Vec<u8>>,
    public: Option<Vec<u8>>,
}

pub fn snapshot(dir: &Path) -> Result<Snapshot, StateError> {
    Ok(Snapshot {
        secret: read_optional(&dir.join(SECRET_FILE))?,
        public: read_optional(&dir.join(PUBLIC_FILE))?,
    })
}

/// Put a snapshot back (files that did not exist are removed).
pub fn restore(dir: &Path, snapshot: &Snapshot) -> Result<(), StateError> {
    for (name, content, mode) in [
        (SECRET_FILE, &snapshot.secret, SECRET_MODE),
        (PUBLIC_FILE, &snapshot.public, PUBLIC_MODE),
    ] {
        let path = dir.join(name);
        match content {
            Some(bytes) => write_atomic(&path, bytes, mode)?,
            None => {
                if let Err(e) = std::fs::remove_file(&path) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(StateError { path, source: e });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Store `identity` as the directory's identity (replacing any other).
pub fn install(dir: &Path, identity: &Identity) -> Result<PublicIdentityText, IdentityStoreError> {
    let secret = identity
        .to_secret_string()
        .ok_or_else(|| IdentityStoreError::Generation("identity has no private key".into()))?;
    write_atomic(&dir.join(SECRET_FILE), secret.as_bytes(), SECRET_MODE)?;
    let shown = PublicIdentityText::from_identity(identity);
    write_atomic(&dir.join(PUBLIC_FILE), shown.public.as_bytes(), PUBLIC_MODE)?;
    Ok(shown)
}
