//! ERROR (0x02, PROTOCOL.md §4 and §4.3): `[1] in-re verb [8] in-re packet ID [1] code` and a
//! body chosen by the code (and, for two codes, the in-re verb).
use super::multicast::MulticastGroup;
use super::read_nwid;
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::header::Verb;
use crate::network_id::NetworkId;

/// ERROR codes. Unassigned values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    None,
    InvalidRequest,
    BadProtocolVersion,
    ObjNotFound,
    IdentityCollision,
    UnsupportedOperation,
    NeedMembershipCertificate,
    NetworkAccessDenied,
    UnwantedMulticast,
    NetworkAuthenticationRequired,
    Unknown(u8),
}

impl From<u8> for ErrorCode {
    fn from(b: u8) -> ErrorCode {
        match b {
            0x00 => ErrorCode::None,
            0x01 => ErrorCode::InvalidRequest,
            0x02 => ErrorCode::BadProtocolVersion,
            0x03 => ErrorCode::ObjNotFound,
            0x04 => ErrorCode::IdentityCollision,
            0x05 => ErrorCode::UnsupportedOperation,
            0x06 => ErrorCode::NeedMembershipCertificate,
            0x07 => ErrorCode::NetworkAccessDenied,
            0x08 => ErrorCode::UnwantedMulticast,
            0x09 => ErrorCode::NetworkAuthenticationRequired,
            other => ErrorCode::Unknown(other),
        }
    }
}

impl From<ErrorCode> for u8 {
    fn from(c: ErrorCode) -> u8 {
        match c {
            ErrorCode::None => 0x00,
            ErrorCode::InvalidRequest => 0x01,
            ErrorCode::BadProtocolVersion => 0x02,
            ErrorCode::ObjNotFound => 0x03,
            ErrorCode::IdentityCollision => 0x04,
            ErrorCode::UnsupportedOperation => 0x05,
            ErrorCode::NeedMembershipCertificate => 0x06,
            ErrorCode::NetworkAccessDenied => 0x07,
            ErrorCode::UnwantedMulticast => 0x08,
            ErrorCode::NetworkAuthenticationRequired => 0x09,
            ErrorCode::Unknown(b) => b,
        }
    }
}

impl ErrorCode {
    /// The reference's name, as in the capture decodes.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::None => "NONE",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::BadProtocolVersion => "BAD_PROTOCOL_VERSION",
            ErrorCode::ObjNotFound => "OBJ_NOT_FOUND",
            ErrorCode::IdentityCollision => "IDENTITY_COLLISION",
            ErrorCode::UnsupportedOperation => "UNSUPPORTED_OPERATION",
            ErrorCode::NeedMembershipCertificate => "NEED_MEMBERSHIP_CERTIFICATE",
            ErrorCode::NetworkAccessDenied => "NETWORK_ACCESS_DENIED",
            ErrorCode::UnwantedMulticast => "UNWANTED_MULTICAST",
            ErrorCode::NetworkAuthenticationRequired => "NETWORK_AUTHENTICATION_REQUIRED",
            ErrorCode::Unknown(_) => "UNKNOWN",
        }
    }

    /// Whether an ERROR with this code (in reply to `in_re`) carries `[8] nwid` as its body.
    fn has_network_body(self, in_re: Verb) -> bool {
        match self {
            ErrorCode::NeedMembershipCertificate | ErrorCode::NetworkAccessDenied => true,
            ErrorCode::ObjNotFound | ErrorCode::UnsupportedOperation => {
                in_re == Verb::NetworkConfigRequest
            }
            _ => false,
        }
    }
}

/// An ERROR payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPayload<'a> {
    pub in_re_verb: Verb,
    pub in_re_packet_id: u64,
    pub code: ErrorCode,
    pub body: ErrorBody<'a>,
}

/// The code-specific part of an ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorBody<'a> {
    /// `[8] nwid`: NEED_MEMBERSHIP_CERTIFICATE, NETWORK_ACCESS_DENIED, and OBJ_NOT_FOUND or
    /// UNSUPPORTED_OPERATION in reply to NETWORK_CONFIG_REQUEST.
    Network(NetworkId),
    /// UNWANTED_MULTICAST: `[8] nwid [6] MAC [4] ADI`.
    UnwantedMulticast {
        nwid: NetworkId,
        group: MulticastGroup,
    },
    /// NETWORK_AUTHENTICATION_REQUIRED: `[8] nwid` and optionally `[2] len [len]` Dictionary
    /// with the SSO details (parse with `crate::dictionary`).
    AuthenticationRequired {
        nwid: NetworkId,
        info: Option<&'a [u8]>,
    },
    /// Any other code: the raw body (often empty).
    Other(&'a [u8]),
}

impl<'a> ErrorPayload<'a> {
    pub const VERB: Verb = Verb::Error;

    pub fn read(payload: &'a [u8]) -> Result<ErrorPayload<'a>, WireError> {
        let mut r = Reader::new(payload);
        let in_re_verb = Verb::from(r.u8("ERROR in-re verb")?);
        let in_re_packet_id = r.u64("ERROR in-re packet id")?;
        let code = ErrorCode::from(r.u8("ERROR code")?);
        let body = if code.has_network_body(in_re_verb) {
            ErrorBody::Network(read_nwid(&mut r)?)
        } else if code == ErrorCode::UnwantedMulticast {
            ErrorBody::UnwantedMulticast {
                nwid: read_nwid(&mut r)?,
                group: MulticastGroup::read(&mut r)?,
            }
        } else if code == ErrorCode::NetworkAuthenticationRequired {
            let nwid = read_nwid(&mut r)?;
            let mut info = None;
            if r.remaining() >= 2 {
                let len = r.u16("ERROR auth info length")? as usize;
                info = Some(r.bytes(len, "ERROR auth info")?);
            }
            ErrorBody::AuthenticationRequired { nwid, info }
        } else {
            ErrorBody::Other(r.rest())
        };
        Ok(ErrorPayload {
            in_re_verb,
            in_re_packet_id,
            code,
            body,
        })
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u8(self.in_re_verb.into());
        out.put_u64(self.in_re_packet_id);
        out.put_u8(self.code.into());
        match &self.body {
            ErrorBody::Network(nwid) => out.put_u64(nwid.0),
            ErrorBody::UnwantedMulticast { nwid, group } => {
                out.put_u64(nwid.0);
                group.write(out);
            }
            ErrorBody::AuthenticationRequired { nwid, info } => {
                out.put_u64(nwid.0);
                if let Some(info) = info {
                    let n = info.len().min(u16::MAX as usize);
                    out.put_u16(n as u16);
                    out.put_bytes(&info[..n]);
                }
            }
            ErrorBody::Other(b) => out.put_bytes(b),
        }
    }
}
