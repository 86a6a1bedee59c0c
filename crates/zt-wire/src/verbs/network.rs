//! Network verb payloads (PROTOCOL.md §4.11, §4.12): NETWORK_CREDENTIALS,
//! NETWORK_CONFIG_REQUEST, and the signed config chunks carried by NETWORK_CONFIG and
//! OK(NETWORK_CONFIG_REQUEST), with the reassembly of chunks into a config Dictionary.

use crate::capability::Capability;
use crate::com::CertificateOfMembership;
use crate::coo::CertificateOfOwnership;
use crate::credential::{self, Verification};
use crate::cursor::{Reader, Writer};
use crate::dictionary::{Dictionary, NETWORK_CONFIG_CAPACITY};
use crate::error::WireError;
use crate::network_id::NetworkId;
use crate::revocation::Revocation;
use crate::tag::Tag;
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Identity;

// ---------------------------------------------------------------------------------------------
// NETWORK_CREDENTIALS

/// The NETWORK_CREDENTIALS payload: `{COM}* 00 [2]n caps [2]n tags [2]n revocations [2]n COOs`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkCredentials {
    pub coms: Vec<CertificateOfMembership>,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<Tag>,
    pub revocations: Vec<Revocation>,
    pub certificates_of_ownership: Vec<CertificateOfOwnership>,
}

impl NetworkCredentials {
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        for com in &self.coms {
            com.write(out);
        }
        out.put_u8(0);
        write_counted(
            out,
            &self.capabilities,
            Capability::write,
            "credential capabilities",
        )?;
        write_counted(out, &self.tags, Tag::write, "credential tags")?;
        write_counted(
            out,
            &self.revocations,
            Revocation::write,
            "credential revocations",
        )?;
        write_counted(
            out,
            &self.certificates_of_ownership,
            CertificateOfOwnership::write,
            "credential COOs",
        )
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// Older senders may stop after any section; missing sections are empty.
    pub fn parse(payload: &[u8]) -> Result<NetworkCredentials, WireError> {
        let mut r = Reader::new(payload);
        let mut creds = NetworkCredentials::default();
        while r.rest().first().is_some_and(|&b| b != 0) {
            creds.coms.push(CertificateOfMembership::read(&mut r)?);
        }
        if r.is_empty() {
            return Ok(creds);
        }
        r.skip(1, "credentials COM terminator")?;
        creds.capabilities = read_counted(&mut r, Capability::read, "credential capability count")?;
        creds.tags = read_counted(&mut r, Tag::read, "credential tag count")?;
        creds.revocations = read_counted(&mut r, Revocation::read, "credential revocation count")?;
        creds.certificates_of_ownership =
            read_counted(&mut r, CertificateOfOwnership::read, "credential COO count")?;
        Ok(creds)
    }
}

fn write_counted<T>(
    out: &mut Vec<u8>,
    items: &[T],
    write: impl Fn(&T, &mut Vec<u8>),
    what: &'static str,
) -> Result<(), WireError> {
    let count = u16::try_from(items.len()).map_err(|_| WireError::TooLarge(what))?;
    out.put_u16(count);
    for item in items {
        write(item, out);
    }
    Ok(())
}

/// `[2] n` then n items; an absent section (end of input) is empty.
fn read_counted<T>(
    r: &mut Reader<'_>,
    read: impl Fn(&mut Reader<'_>) -> Result<T, WireError>,
    what: &'static str,
) -> Result<Vec<T>, WireError> {
    if r.is_empty() {
        return Ok(Vec::new());
    }
    let count = r.u16(what)?;
    // No allocation from the count: each item must actually be present.
    let mut items = Vec::new();
    for _ in 0..count {
        items.push(read(r)?);
    }
    Ok(items)
}

// ---------------------------------------------------------------------------------------------
// NETWORK_CONFIG_REQUEST

/// Request-metadata keys and values a 1.14-compatible node sends.
pub mod metadata {
    pub const CONFIG_VERSION: &str = "v";
    pub const VENDOR: &str = "vend";
    pub const PROTOCOL_VERSION: &str = "pv";
    pub const MAJOR_VERSION: &str = "majv";
    pub const MINOR_VERSION: &str = "minv";
    pub const REVISION: &str = "revv";
    pub const MAX_RULES: &str = "mr";
    pub const MAX_CAPABILITIES: &str = "mc";
    pub const MAX_CAPABILITY_RULES: &str = "mcr";
    pub const MAX_TAGS: &str = "mt";
    pub const FLAGS: &str = "f";
    pub const RULES_ENGINE_REVISION: &str = "revr";
    pub const OS_ARCH: &str = "o";
    /// `token:<string>`: network auth token (honoured by controllers, not sent by 1.14).
    pub const AUTH: &str = "a";
}

/// The NETWORK_CONFIG_REQUEST payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfigRequest {
    pub network_id: NetworkId,
    pub metadata: Dictionary,
    /// Revision of the config the requester has (0 = none).
    pub have_revision: u64,
    /// Timestamp of the config the requester has (0 = none).
    pub have_timestamp: u64,
}

/// Software version facts a node puts in its request metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftwareVersion {
    pub protocol: u64,
    pub major: u64,
    pub minor: u64,
    pub revision: u64,
}

impl NetworkConfigRequest {
    /// The metadata a 1.14 node sends, in its key order (PROTOCOL.md §4.12).
    pub fn standard_metadata(
        version: SoftwareVersion,
        os_arch: &str,
    ) -> Result<Dictionary, WireError> {
        use metadata::*;
        let mut d = Dictionary::new();
        d.add_u64(CONFIG_VERSION, crate::netconf::CONFIG_VERSION)?;
        d.add_u64(VENDOR, 1)?;
        d.add_u64(PROTOCOL_VERSION, version.protocol)?;
        d.add_u64(MAJOR_VERSION, version.major)?;
        d.add_u64(MINOR_VERSION, version.minor)?;
        d.add_u64(REVISION, version.revision)?;
        d.add_u64(MAX_RULES, crate::rules::MAX_NETWORK_RULES as u64)?;
        d.add_u64(MAX_CAPABILITIES, crate::netconf::MAX_CAPABILITIES as u64)?;
        d.add_u64(
            MAX_CAPABILITY_RULES,
            crate::rules::MAX_CAPABILITY_RULES as u64,
        )?;
        d.add_u64(MAX_TAGS, crate::netconf::MAX_TAGS as u64)?;
        d.add_u64(FLAGS, 0)?;
        d.add_u64(RULES_ENGINE_REVISION, 1)?;
        d.add_str(OS_ARCH, os_arch)?;
        Ok(d)
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let meta = self.metadata.to_bytes();
        let len = u16::try_from(meta.len())
            .map_err(|_| WireError::TooLarge("config request metadata"))?;
        out.put_u64(self.network_id.to_u64());
        out.put_u16(len);
        out.put_bytes(&meta);
        out.put_u64(self.have_revision);
        out.put_u64(self.have_timestamp);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The revision and timestamp fields are optional on receive (0 when absent).
    pub fn parse(payload: &[u8]) -> Result<NetworkConfigRequest, WireError> {
        let mut r = Reader::new(payload);
        let network_id = NetworkId(r.u64("config request nwid")?);
        let len = r.u16("config request metadata length")? as usize;
        let metadata = Dictionary::parse(r.bytes(len, "config request metadata")?);
        let have_revision = if r.remaining() >= 8 {
            r.u64("config request revision")?
        } else {
            0
        };
        let have_timestamp = if r.remaining() >= 8 {
            r.u64("config request timestamp")?
        } else {
            0
        };
        Ok(NetworkConfigRequest {
            network_id,
            metadata,
            have_revision,
            have_timestamp,
        })
    }

    /// Metadata integer, 0 when absent or malformed (as the controller treats it).
    pub fn metadata_u64(&self, key: &'static str) -> u64 {
        self.metadata.get_u64(key).ok().flatten().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------------
// NETWORK_CONFIG / OK(NETWORK_CONFIG_REQUEST) chunks

/// Largest Dictionary slice in one chunk: `10024 − (28 + 256)`.
pub const MAX_CHUNK_LEN: usize = 9740;
/// Chunk flag: forward to the other members at once.
pub const CHUNK_FLAG_FAST_PROPAGATE: u8 = 0x01;
/// Updates assembled at once (`ZT_NETWORK_MAX_INCOMING_UPDATES`).
pub const MAX_INCOMING_UPDATES: usize = 3;

/// One signed slice of a config Dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChunk {
    pub network_id: NetworkId,
    pub data: Vec<u8>,
    pub flags: u8,
    /// Random and non-zero; the same for all chunks of one update.
    pub update_id: u64,
    /// Length of the whole Dictionary.
    pub total_len: u32,
    /// Byte offset of `data` in the Dictionary.
    pub index: u32,
    pub signature: [u8; SIGNATURE_LEN],
}

/// A config reply body: a signed chunk, or the legacy form (nwid and a complete, unsigned
/// Dictionary, acceptable only from the controller itself in an OK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPayload {
    Chunk(ConfigChunk),
    Legacy {
        network_id: NetworkId,
        data: Vec<u8>,
    },
}

impl ConfigPayload {
    pub fn parse(payload: &[u8]) -> Result<ConfigPayload, WireError> {
        let mut r = Reader::new(payload);
        let network_id = NetworkId(r.u64("config nwid")?);
        let len = r.u16("config chunk length")? as usize;
        let data = r.bytes(len, "config chunk data")?.to_vec();
        if r.is_empty() {
            return Ok(ConfigPayload::Legacy { network_id, data });
        }
        let flags = r.u8("config chunk flags")?;
        let update_id = r.u64("config update id")?;
        let total_len = r.u32("config total length")?;
        let index = r.u32("config chunk index")?;
        let signature_type = r.u8("config chunk signature type")?;
        let signature_len = r.u16("config chunk signature length")?;
        if signature_type != credential::SIGNATURE_TYPE_C25519
            || usize::from(signature_len) != SIGNATURE_LEN
        {
            return Err(WireError::invalid(
                "config chunk signature",
                format!("type {signature_type} length {signature_len}, expected type 1 length 96"),
            ));
        }
        let signature = r.array("config chunk signature")?;
        Ok(ConfigPayload::Chunk(ConfigChunk {
            network_id,
            data,
            flags,
            update_id,
            total_len,
            index,
            signature,
        }))
    }
}

impl ConfigChunk {
    /// Split a serialized Dictionary into chunks of at most [`MAX_CHUNK_LEN`] bytes, each signed
    /// by the controller identity (which must be the network's controller and hold its
    /// private key).
    pub fn split_and_sign(
        network_id: NetworkId,
        dictionary: &[u8],
        update_id: u64,
        controller: &Identity,
    ) -> Result<Vec<ConfigChunk>, WireError> {
        if update_id == 0 {
            return Err(WireError::invalid("config update id", "must be non-zero"));
        }
        if controller.address() != network_id.controller() {
            return Err(WireError::invalid(
                "config signer",
                "not this network's controller",
            ));
        }
        if dictionary.is_empty() {
            return Err(WireError::invalid("config", "empty dictionary"));
        }
        if dictionary.len() >= NETWORK_CONFIG_CAPACITY {
            return Err(WireError::TooLarge("config dictionary"));
        }
        let total_len = dictionary.len() as u32;
        let mut chunks = Vec::with_capacity(dictionary.len().div_ceil(MAX_CHUNK_LEN));
        for (i, slice) in dictionary.chunks(MAX_CHUNK_LEN).enumerate() {
            let mut chunk = ConfigChunk {
                network_id,
                data: slice.to_vec(),
                flags: 0,
                update_id,
                total_len,
                index: (i * MAX_CHUNK_LEN) as u32,
                signature: [0u8; SIGNATURE_LEN],
            };
            chunk.signature = controller.sign(&chunk.signed_region())?;
            chunks.push(chunk);
        }
        Ok(chunks)
    }

    /// The bytes the signature covers: nwid through chunk index.
    pub fn signed_region(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(27 + self.data.len());
        out.put_u64(self.network_id.to_u64());
        // Chunks built here are ≤ MAX_CHUNK_LEN; parsed ones came from a u16 length.
        out.put_u16(self.data.len() as u16);
        out.put_bytes(&self.data);
        out.put_u8(self.flags);
        out.put_u64(self.update_id);
        out.put_u32(self.total_len);
        out.put_u32(self.index);
        out
    }

    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if self.data.len() > usize::from(u16::MAX) {
            return Err(WireError::TooLarge("config chunk"));
        }
        out.put_bytes(&self.signed_region());
        credential::write_signature(out, &self.signature);
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.write(&mut out)?;
        Ok(out)
    }

    /// The signature must be by the network's controller, and `controller` must be it.
    pub fn verify(&self, controller: &Identity) -> Verification {
        let expected = self.network_id.controller();
        if controller.address() != expected {
            return Verification::NeedIdentity(expected);
        }
        if controller.verify(&self.signed_region(), &self.signature) {
            Verification::Valid
        } else {
            Verification::Invalid
        }
    }

    /// The structural checks a receiver applies before anything else.
    pub fn check_bounds(&self) -> Result<(), WireError> {
        let end = u64::from(self.index) + self.data.len() as u64;
        if end > u64::from(self.total_len) {
            return Err(WireError::invalid(
                "config chunk",
                "extends past the total length",
            ));
        }
        if self.data.is_empty() || self.total_len == 0 {
            return Err(WireError::invalid("config chunk", "empty"));
        }
        if self.total_len as usize >= NETWORK_CONFIG_CAPACITY {
            return Err(WireError::TooLarge("config dictionary"));
        }
        if self.update_id == 0 {
            return Err(WireError::invalid("config update id", "zero"));
        }
        Ok(())
    }
}

/// The OK a member sends after a NETWORK_CONFIG push completes (in-re verb ECHO in the
/// reference): `[8] nwid [8] configUpdateId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigAck {
    pub network_id: NetworkId,
    pub update_id: u64,
}

impl ConfigAck {
    pub fn write(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.to_u64());
        out.put_u64(self.update_id);
    }
    pub fn parse(payload: &[u8]) -> Result<ConfigAck, WireError> {
        let mut r = Reader::new(payload);
        Ok(ConfigAck {
            network_id: NetworkId(r.u64("config ack nwid")?),
            update_id: r.u64("config ack update id")?,
        })
    }
}

/// A config update being assembled.
#[derive(Debug, Clone)]
struct PendingUpdate {
    update_id: u64,
    total_len: u32,
    buffer: Vec<u8>,
    /// Received `(index, len)` ranges, kept non-overlapping.
    ranges: Vec<(u32, u32)>,
    received: usize,
    last_touched: u64,
}

/// Reassembles verified config chunks of one network into complete Dictionaries. Chunks may
/// arrive in any order; exact duplicates are ignored; overlapping, oversized or inconsistent
/// chunks are refused. At most [`MAX_INCOMING_UPDATES`] updates are kept; the least recently
/// touched is dropped to make room.
#[derive(Debug, Clone)]
pub struct ConfigAssembler {
    network_id: NetworkId,
    pending: Vec<PendingUpdate>,
    clock: u64,
}

impl ConfigAssembler {
    pub fn new(network_id: NetworkId) -> Self {
        ConfigAssembler {
            network_id,
            pending: Vec::new(),
            clock: 0,
        }
    }

    /// Verify `chunk` with the controller identity, then [`accept_verified`](Self::accept_verified).
    pub fn accept(
        &mut self,
        chunk: &ConfigChunk,
        controller: &Identity,
    ) -> Result<Option<Vec<u8>>, WireError> {
        match chunk.verify(controller) {
            Verification::Valid => self.accept_verified(chunk),
            Verification::Invalid | Verification::NeedIdentity(_) => {
                Err(WireError::BadSignature("config chunk"))
            }
        }
    }

    /// Add a chunk whose signature the caller has checked. Returns the whole Dictionary text
    /// when this chunk completes its update.
    pub fn accept_verified(&mut self, chunk: &ConfigChunk) -> Result<Option<Vec<u8>>, WireError> {
        if chunk.network_id != self.network_id {
            return Err(WireError::invalid("config chunk nwid", "another network"));
        }
        chunk.check_bounds()?;
        self.clock += 1;
        let position = match self
            .pending
            .iter()
            .position(|p| p.update_id == chunk.update_id)
        {
            Some(i) => i,
            None => {
                if self.pending.len() == MAX_INCOMING_UPDATES {
                    let oldest = (0..self.pending.len())
                        .min_by_key(|&i| self.pending[i].last_touched)
                        .expect("pending is full, so not empty");
                    self.pending.swap_remove(oldest);
                }
                self.pending.push(PendingUpdate {
                    update_id: chunk.update_id,
                    total_len: chunk.total_len,
                    buffer: vec![0u8; chunk.total_len as usize],
                    ranges: Vec::new(),
                    received: 0,
                    last_touched: 0,
                });
                self.pending.len() - 1
            }
        };
        let update = &mut self.pending[position];
        update.last_touched = self.clock;
        if update.total_len != chunk.total_len {
            return Err(WireError::invalid(
                "config chunk",
                "total length differs from earlier chunks",
            ));
        }
        let start = chunk.index;
        let len = chunk.data.len() as u32;
        let span = start as usize..(start + len) as usize;
        if let Some(&(s, l)) = update
            .ranges
            .iter()
            .find(|&&(s, l)| start < s + l && s < start + len)
        {
            if s == start && l == len && update.buffer[span] == chunk.data[..] {
                return Ok(None);
            }
            return Err(WireError::invalid(
                "config chunk",
                "overlaps a different earlier chunk",
            ));
        }
        update.buffer[span].copy_from_slice(&chunk.data);
        update.ranges.push((start, len));
        update.received += chunk.data.len();
        if update.received == update.total_len as usize {
            let done = self.pending.swap_remove(position);
            return Ok(Some(done.buffer));
        }
        Ok(None)
    }

    /// Updates currently being assembled.
    pub fn pending_updates(&self) -> usize {
        self.pending.len()
    }
}
