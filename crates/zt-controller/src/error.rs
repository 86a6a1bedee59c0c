//! Errors: [`ModelError`] for values a user gave (each says what was wrong and, where it helps,
//! what would be right), [`StorageError`] for the database, and [`ControllerError`] for
//! operations that can hit either.

/// A value that does not make a valid network or member. Nothing is stored when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("invalid network id {0:?}: expected 16 hex digits")]
    InvalidNetworkId(String),
    #[error("invalid ZeroTier address {0:?}: expected 10 hex digits")]
    InvalidAddress(String),
    #[error("{0} is a reserved ZeroTier address")]
    ReservedAddress(String),
    #[error("invalid {what} {value:?}: expected an IPv4 or IPv6 address")]
    InvalidIp { what: &'static str, value: String },
    #[error(
        "invalid prefix {0:?}: expected address/bits with bits at most 32 (IPv4) or 128 (IPv6)"
    )]
    InvalidPrefix(String),
    #[error("{value} has host bits set; the network address is {network}")]
    HostBitsSet { value: String, network: String },
    #[error("route {target}: gateway {via} is not of the same address family")]
    ViaFamilyMismatch { target: String, via: String },
    #[error("invalid range {0:?}: expected first-last, e.g. 172.27.27.10-172.27.27.20")]
    InvalidRange(String),
    #[error("range {0}: first and last address are of different families")]
    PoolMixedFamily(String),
    #[error("range {0}: the first address is above the last")]
    PoolReversed(String),
    #[error("range {0}: it may not start at the unspecified address")]
    PoolStartsAtZero(String),
    #[error("range {second} overlaps range {first}")]
    PoolsOverlap { first: String, second: String },
    #[error("range {0} is an {1} range in an {2} property")]
    PoolWrongFamily(String, &'static str, &'static str),
    #[error("range {pool} is not inside any route, so members could get no address from it; add a route such as {suggestion}")]
    PoolNotRouted { pool: String, suggestion: String },
    #[error("{0} is listed twice")]
    DuplicateIp(String),
    #[error("{ip} is already assigned to member {owner}")]
    IpInUse { ip: String, owner: String },
    #[error("{0} is not inside any route of the network, so it would never be issued; add a route that contains it first")]
    IpNotRouted(String),
    #[error("mtu {0} is out of range (1280..10000)")]
    MtuOutOfRange(u32),
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} may not contain NUL, CR or LF")]
    ControlCharacter { what: &'static str },
    #[error("too many {what} (at most {max})")]
    TooMany { what: &'static str, max: usize },
    #[error("invalid value {value:?} for {property}: expected yes or no")]
    InvalidBool { property: String, value: String },
    #[error("invalid value {value:?} for {property}: {reason}")]
    InvalidValue {
        property: String,
        value: String,
        reason: String,
    },
    #[error("unknown property {0:?}")]
    UnknownProperty(String),
    #[error("{0} is read-only")]
    ReadOnly(String),
    #[error("not supported by this controller: {0}")]
    Unsupported(String),
    /// Rules-language text that does not compile; the error names line and column.
    #[error("{property}: {error}")]
    RulesLanguage {
        property: &'static str,
        error: crate::rules_language::CompileError,
    },
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("network {network} belongs to controller {owner}, not to this controller ({ours}): requests for it would never reach us")]
    ForeignNetwork {
        network: String,
        owner: String,
        ours: String,
    },
}

/// The database failed or holds something we cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Postgres(#[from] postgres::Error),
    /// Another writer changed the record since it was read; nothing was stored. The
    /// controller reads again and re-applies its change.
    #[error("the record was changed by another writer since it was read")]
    Conflict,
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error(
        "database schema version {found} is newer than this program understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("{ip} is already assigned to member {owner}")]
    IpInUse { ip: String, owner: String },
}

impl StorageError {
    /// True for a failure that a fresh read and a retry can cure (a concurrent writer won).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StorageError::Conflict)
    }
}

/// An operation on the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Invalid(#[from] ModelError),
    #[error(transparent)]
    Storage(StorageError),
    #[error("no such network {0:016x}")]
    NoSuchNetwork(u64),
    #[error("no such member {address} in network {network:016x}")]
    NoSuchMember { network: u64, address: String },
    #[error("network {0:016x} already exists")]
    NetworkExists(u64),
    #[error("no free network number found (the random source keeps repeating used numbers)")]
    NoFreeNetworkId,
}

impl From<StorageError> for ControllerError {
    /// A uniqueness conflict found by the database is a user error, not a database fault.
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::IpInUse { ip, owner } => {
                ControllerError::Invalid(ModelError::IpInUse { ip, owner })
            }
            other => ControllerError::Storage(other),
        }
    }
}
