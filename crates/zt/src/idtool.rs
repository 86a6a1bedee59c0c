//! `zt idtool`: identities, signatures, moons and planets from the command line.
//!
//! Behaves like ZeroTier One's `zerotier-idtool` (same commands, arguments, output file names
//! and moon JSON), so scripts and documentation written for it work here, plus
//! `initplanet`/`genplanet` to make a private planet (custom root set).
//!
//! An identity argument is either a literal identity string (`aaaaaaaaaa:0:…`) or the path of
//! a file holding one, as in the original tool.
//!
//! Exit codes: 0 success; 1 the input was invalid or the operation failed, with a one-line
//! reason on stderr; 2 usage error (clap's own).
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use rand_core::OsRng;
use zt_crypto::Identity;

mod files;
mod world_json;

#[derive(Subcommand, Debug)]
pub enum IdtoolCommand {
    /// Generate an identity; print it, or write identity.secret (0600) and identity.public.
    Generate {
        /// Where to write the secret identity (mode 0600); without it, print it.
        secret_file: Option<PathBuf>,
        /// Where to write the public identity.
        public_file: Option<PathBuf>,
    },
    /// Check an identity's format and its address derivation (and key pair, if secret).
    Validate {
        /// Identity string or file.
        identity: String,
    },
    /// Print the public form of an identity.
    Getpublic {
        /// Identity string or file.
        identity: String,
    },
    /// Sign a file with a secret identity; prints the 96-byte signature in hex.
    Sign {
        /// Secret identity string or file.
        identity: String,
        /// File to sign.
        file: PathBuf,
    },
    /// Verify a signature (hex string, or a file holding it) over a file.
    Verify {
        /// Identity string or file.
        identity: String,
        /// Signed file.
        file: PathBuf,
        /// Signature in hex, or a file holding it.
        signature: String,
    },
    /// Print a moon JSON template whose first root is the given identity, with a new signing key.
    Initmoon {
        /// Public identity (string or file) of the moon's first root.
        identity: String,
    },
    /// Sign a moon (or planet) JSON; writes `<16-hex world id>.moon` in the current directory.
    Genmoon {
        /// Moon JSON made by `initmoon` (roots' stableEndpoints filled in).
        moon_json: PathBuf,
    },
    /// Start a private planet: writes DIR/planet.json and the signing key DIR/planet.c25519.
    Initplanet {
        /// Directory for planet.json and planet.c25519 (created if missing).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// World ID in hex (default: random). Never 8eac90a, the public planet's.
        #[arg(long)]
        world_id: Option<String>,
        /// Overwrite an existing planet.json / planet.c25519.
        #[arg(long)]
        force: bool,
        /// Roots: `IDENTITY[@IP/PORT[,IP/PORT…]]`, identity as a string or a file.
        #[arg(required = true)]
        roots: Vec<String>,
    },
    /// Sign a planet JSON with the key beside it; writes `planet` next to the JSON.
    Genplanet {
        /// Planet JSON made by `initplanet`.
        planet_json: PathBuf,
        /// Where to write the planet (default: `planet` in the JSON's directory).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Revision timestamp in ms (default: now). An update must be newer than the last.
        #[arg(long)]
        timestamp: Option<u64>,
    },
}

/// Why a command failed; printed as one line on stderr, exit code 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<T: std::fmt::Display> From<T> for Failure {
    fn from(e: T) -> Failure {
        Failure(e.to_string())
    }
}

macro_rules! fail {
    ($($arg:tt)*) => { return Err(Failure(format!($($arg)*))) };
}
pub(crate) use fail;

/// Run one idtool command, writing results to stdout.
pub fn main(command: IdtoolCommand) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(command, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(reason)) => {
            let _ = out.flush();
            // Always one line, so scripts can read the reason with `2>&1 | head -1`.
            eprintln!("zt idtool: {}", reason.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

fn run(command: IdtoolCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        IdtoolCommand::Generate {
            secret_file,
            public_file,
        } => generate(secret_file.as_deref(), public_file.as_deref(), out),
        IdtoolCommand::Validate { identity } => {
            let id = identity_from_arg(&identity)?;
            if !id.locally_validate() {
                fail!("{identity} FAILED validation");
            }
            writeln!(out, "{identity} is a valid identity")?;
            Ok(())
        }
        IdtoolCommand::Getpublic { identity } => {
            let id = identity_from_arg(&identity)?;
            writeln!(out, "{}", id.to_public_string())?;
            Ok(())
        }
        IdtoolCommand::Sign { identity, file } => {
            let id = identity_from_arg(&identity)?;
            if !id.has_private() {
                fail!("{identity} does not contain a private key (must use private to sign)");
            }
            let data = read_file(&file)?;
            let signature = id.sign(&data)?;
            writeln!(out, "{}", hex::encode(signature))?;
            Ok(())
        }
        IdtoolCommand::Verify {
            identity,
            file,
            signature,
        } => {
            let id = identity_from_arg(&identity)?;
            let data = read_file(&file)?;
            let signature = signature_from_arg(&signature)?;
            if !id.verify(&data, &signature) {
                fail!("{} signature check FAILED", file.display());
            }
            writeln!(out, "{} signature valid", file.display())?;
            Ok(())
        }
        IdtoolCommand::Initmoon { identity } => {
            let id = identity_from_arg(&identity)?;
            let moon = world_json::init_moon(&id, &mut OsRng);
            writeln!(out, "{}", serde_json::to_string_pretty(&moon)?)?;
            Ok(())
        }
        IdtoolCommand::Genmoon { moon_json } => {
            let (file_name, timestamp) = world_json::gen_moon(&moon_json, files::now_ms())?;
            writeln!(
                out,
                "wrote {file_name} (signed world with timestamp {timestamp})"
            )?;
            Ok(())
        }
        IdtoolCommand::Initplanet {
            dir,
            world_id,
            force,
            roots,
        } => {
            let written = world_json::init_planet(&dir, world_id.as_deref(), force, &roots)?;
            for path in written {
                writeln!(out, "wrote {}", path.display())?;
            }
            Ok(())
        }
        IdtoolCommand::Genplanet {
            planet_json,
            out: out_path,
            timestamp,
        } => {
            let timestamp = timestamp.unwrap_or_else(files::now_ms);
            let made = world_json::gen_planet(&planet_json, out_path.as_deref(), timestamp)?;
            writeln!(
                out,
                "wrote {} (planet {:016x}, {} root(s), timestamp {}); install it as `planet` in a \
                 node's home directory (ztd: <home>/planet, used by the default instance zt1; \
                 other instances read <home>/<instance>/planet)",
                made.path.display(),
                made.world_id,
                made.root_count,
                made.timestamp
            )?;
            Ok(())
        }
    }
}

fn generate(
    secret_file: Option<&Path>,
    public_file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let id = Identity::generate(&mut OsRng);
    let secret = id
        .to_secret_string()
        .ok_or_else(|| Failure("generated identity has no private key".into()))?;
    match secret_file {
        None => writeln!(out, "{secret}")?,
        Some(path) => {
            files::write_atomic(path, secret.as_bytes(), files::Mode::Private)
                .map_err(|e| Failure(format!("error writing to {}: {e}", path.display())))?;
            writeln!(out, "{} written", path.display())?;
            if let Some(path) = public_file {
                files::write_atomic(path, id.to_public_string().as_bytes(), files::Mode::Public)
                    .map_err(|e| Failure(format!("error writing to {}: {e}", path.display())))?;
                writeln!(out, "{} written", path.display())?;
            }
        }
    }
    Ok(())
}

/// An identity given literally (`aaaaaaaaaa:…`) or as a file holding one; parsed, not validated.
pub(crate) fn identity_from_arg(arg: &str) -> Result<Identity, Failure> {
    let literal = arg.len() > 32 && arg.as_bytes().get(10) == Some(&b':');
    let text = if literal {
        arg.to_string()
    } else {
        fs::read_to_string(arg).map_err(|e| {
            Failure(format!(
                "identity argument invalid or file unreadable: {arg}: {e}"
            ))
        })?
    };
    Identity::from_string(text.trim()).map_err(|e| {
        Failure(format!(
            "identity argument invalid or file unreadable: {arg}: {e}"
        ))
    })
}

/// A signature as hex on the command line, or a file holding the hex.
fn signature_from_arg(arg: &str) -> Result<Vec<u8>, Failure> {
    if let Ok(bytes) = hex::decode(arg.trim()) {
        return Ok(bytes);
    }
    let text = fs::read_to_string(arg).map_err(|_| {
        Failure(format!(
            "signature is neither hex nor a readable file: {arg}"
        ))
    })?;
    hex::decode(text.trim()).map_err(|_| Failure(format!("{arg} does not hold a hex signature")))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    fs::read(path).map_err(|e| Failure(format!("{} is not readable: {e}", path.display())))
}
