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
    /// The stored identity cannot be used and must not be replaced silently: the operator
    /// restores the file or sets an identity explicitly.
    #[error("{path}: {reason}; ztd will neither use nor replace it: restore it from a backup, or set the instance's identity explicitly (/zerotier/set <instance> identity=…)")]
    Refused { path: String, reason: String },
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

/// Files whose presence means the directory had an identity: without `identity.secret`
/// beside them, a new identity would orphan them (a controller's networks carry its address).
const IDENTITY_WITNESSES: [&str; 2] = [PUBLIC_FILE, crate::controller::DB_FILE];

/// Load the instance's identity, or generate and store one if the directory never had one.
/// The stored identity is checked (key pair and address derivation, memory-hard, so on a
/// blocking thread, as is generation); a damaged one, one that disagrees with
/// `identity.public`, or a missing secret beside other state is refused, never replaced.
pub async fn load_or_generate(
    dir: &Path,
) -> Result<(Identity, PublicIdentityText), IdentityStoreError> {
    let secret_path = dir.join(SECRET_FILE);
    let refused = |reason: String| IdentityStoreError::Refused {
        path: secret_path.display().to_string(),
        reason,
    };
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
        let (valid, identity) =
            tokio::task::spawn_blocking(move || (identity.locally_validate(), identity))
                .await
                .map_err(|e| IdentityStoreError::Generation(e.to_string()))?;
        if !valid {
            return Err(refused(format!(
                "the identity of {} does not check out (its keys do not form a pair, or the address is not derived from them): the file is damaged",
                identity.address()
            )));
        }
        let shown = PublicIdentityText::from_identity(&identity);
        match read_public(dir)? {
            Some(public) if public != shown => {
                return Err(refused(format!(
                    "{PUBLIC_FILE} holds {} but {SECRET_FILE} holds {}",
                    public.address, shown.address
                )))
            }
            Some(_) => {}
            None => write_atomic(&dir.join(PUBLIC_FILE), shown.public.as_bytes(), PUBLIC_MODE)?,
        }
        return Ok((identity, shown));
    }
    if let Some(witness) = IDENTITY_WITNESSES
        .iter()
        .find(|name| dir.join(name).exists())
    {
        return Err(refused(format!(
            "{SECRET_FILE} is missing although {witness} shows this instance had an identity"
        )));
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
        return Err("identity has no private key (give the secret identity, as `export show-sensitive` writes it)".into());
    }
    let (verdict, identity) = tokio::task::spawn_blocking(move || {
        // The public half alone first, so a refusal can say which part is wrong.
        let verdict = if !identity.to_public().locally_validate() {
            Err("the address does not derive from the public key")
        } else if !identity.locally_validate() {
            Err("the private key does not belong to the public key")
        } else {
            Ok(())
        };
        (verdict, identity)
    })
    .await
    .map_err(|e| e.to_string())?;
    verdict.map_err(str::to_string)?;
    Ok(identity)
}

/// The secret identity text of an instance directory (`identity.secret`), if it has one.
/// Only for `print show-sensitive` / `export show-sensitive`; never log it.
pub fn read_secret_text(dir: &Path) -> Result<Option<String>, StateError> {
    Ok(read_optional(&dir.join(SECRET_FILE))?
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// identities[0] of `shared/interop/vectors.json` (generated by ZeroTier One).
    const KNOWN_SECRET: &str = "3dd3377c70:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd";

    fn refused(result: Result<(Identity, PublicIdentityText), IdentityStoreError>) -> String {
        match result {
            Err(IdentityStoreError::Refused { reason, .. }) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// Every damaged or partial identity state is refused, and no file is changed.
    #[tokio::test]
    async fn a_damaged_or_partial_identity_is_refused_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
            // One flipped bit in the private key (not one that X25519 clamping ignores).
            (
                "flipped private bit",
                vec![(SECRET_FILE, KNOWN_SECRET.replacen(":18d7", ":28d7", 1))],
            ),
            // Another address with the same keys.
            (
                "changed address",
                vec![(
                    SECRET_FILE,
                    KNOWN_SECRET.replacen("3dd3377c70", "3dd3377c71", 1),
                )],
            ),
            // A public file of another identity.
            (
                "public of another identity",
                vec![
                    (SECRET_FILE, KNOWN_SECRET.to_string()),
                    (PUBLIC_FILE, "1122334455:0:".to_string() + &"ab".repeat(64)),
                ],
            ),
            // The secret is gone, the public file is not.
            (
                "missing secret, public present",
                vec![(PUBLIC_FILE, KNOWN_SECRET[..141].to_string())],
            ),
            // The secret is gone, the controller's networks are not.
            (
                "missing secret, controller data present",
                vec![(crate::controller::DB_FILE, "x".into())],
            ),
        ];
        for (i, (what, files)) in cases.into_iter().enumerate() {
            let dir = tmp.path().join(i.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            for (name, content) in &files {
                std::fs::write(dir.join(name), content).unwrap();
            }
            let reason = refused(load_or_generate(&dir).await);
            assert!(!reason.is_empty(), "{what}");
            for (name, content) in &files {
                assert_eq!(
                    &std::fs::read_to_string(dir.join(name)).unwrap(),
                    content,
                    "{what}: {name} changed"
                );
            }
            for name in [SECRET_FILE, PUBLIC_FILE] {
                if !files.iter().any(|(n, _)| *n == name) {
                    assert!(!dir.join(name).exists(), "{what}: {name} was created");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_sound_identity_loads_and_a_new_directory_gets_one() {
        let tmp = tempfile::tempdir().unwrap();
        let known = tmp.path().join("known");
        std::fs::create_dir_all(&known).unwrap();
        std::fs::write(known.join(SECRET_FILE), KNOWN_SECRET).unwrap();
        let (identity, shown) = load_or_generate(&known).await.unwrap();
        assert_eq!(identity.address().to_string(), "3dd3377c70");
        // identity.public is written when missing, and accepted when it agrees.
        assert_eq!(read_public(&known).unwrap(), Some(shown.clone()));
        assert_eq!(load_or_generate(&known).await.unwrap().1, shown);

        let fresh = tmp.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        let (generated, shown) = load_or_generate(&fresh).await.unwrap();
        assert!(generated.has_private());
        assert_eq!(load_or_generate(&fresh).await.unwrap().1, shown);
    }
}
