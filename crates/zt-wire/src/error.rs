//! The one error type of wire parsing: what was wrong, never a panic.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended before the field named here.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// A field held a value the format does not allow.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// A signature did not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// Something exceeded a protocol limit.
    #[error("{0} exceeds its limit")]
    TooLarge(&'static str),
    /// An identity could not be decoded.
    #[error("identity: {0}")]
    Identity(#[from] zt_crypto::IdentityError),
}

impl WireError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> WireError {
        WireError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
