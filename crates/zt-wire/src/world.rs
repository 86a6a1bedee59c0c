//! Worlds: the signed root lists of planets (type 1) and moons (type 127)
//! (PROTOCOL.md §5.1–5.2).
//!
//! A world revision is signed by the key pair whose public half the *previous* revision named
//! in `updatesMustBeSignedBy`; the signature covers the "signed form", which is the normal form
//! without the signature, framed by `7F×8` … `F7×8`.

use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::inet::InetAddress;
use zt_crypto::c25519::{self, KeyPair};
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::Identity;

/// Most roots a world may list (`ZT_WORLD_MAX_ROOTS`).
pub const MAX_ROOTS: usize = 4;
/// Most stable endpoints per root (`ZT_WORLD_MAX_STABLE_ENDPOINTS_PER_ROOT`).
pub const MAX_STABLE_ENDPOINTS: usize = 32;
/// Largest serialized world the reference accepts (`ZT_WORLD_MAX_SERIALIZED_LENGTH`).
pub const MAX_SERIALIZED_LEN: usize =
    8 + 8 + 8 + 1 + 64 + 96 + 1 + MAX_ROOTS * (135 + 1 + MAX_STABLE_ENDPOINTS * 19) + 2 + 128;

const SIGNED_FORM_START: [u8; 8] = [0x7f; 8];
const SIGNED_FORM_END: [u8; 8] = [0xf7; 8];

/// Planet or moon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorldType {
    Planet,
    Moon,
}

impl WorldType {
    pub fn to_u8(self) -> u8 {
        match self {
            WorldType::Planet => 1,
            WorldType::Moon => 127,
        }
    }
    /// Only planets and moons exist on the wire; type 0 (null) and others are refused.
    pub fn from_u8(b: u8) -> Result<WorldType, WireError> {
        match b {
            1 => Ok(WorldType::Planet),
            127 => Ok(WorldType::Moon),
            other => Err(WireError::invalid(
                "world type",
                format!("{other} is neither planet (1) nor moon (127)"),
            )),
        }
    }
}

/// A root server: its identity and the endpoints it can always be reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub identity: Identity,
    pub stable_endpoints: Vec<InetAddress>,
}

/// A planet or moon definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    pub world_type: WorldType,
    pub id: u64,
    /// Revision: milliseconds; a replacement must have a strictly larger one.
    pub timestamp: u64,
    /// C25519 public key (X25519 ‖ Ed25519) that must sign the *next* revision.
    pub updates_must_be_signed_by: [u8; 64],
    pub signature: [u8; SIGNATURE_LEN],
    pub roots: Vec<Root>,
}

impl World {
    /// Build an unsigned world (signature all zeros); call [`World::sign`] next.
    pub fn new(
        world_type: WorldType,
        id: u64,
        timestamp: u64,
        updates_must_be_signed_by: [u8; 64],
        roots: Vec<Root>,
    ) -> Result<World, WireError> {
        let world = World {
            world_type,
            id,
            timestamp,
            updates_must_be_signed_by,
            signature: [0u8; SIGNATURE_LEN],
            roots,
        };
        world.check_limits()?;
        Ok(world)
    }

    /// Build and sign in one step. `signer` must be the key pair named by the previous
    /// revision's `updatesMustBeSignedBy` (for a first revision, any key pair, usually the one
    /// whose public half is `updates_must_be_signed_by`).
    pub fn new_signed(
        world_type: WorldType,
        id: u64,
        timestamp: u64,
        updates_must_be_signed_by: [u8; 64],
        roots: Vec<Root>,
        signer: &KeyPair,
    ) -> Result<World, WireError> {
        let mut world = World::new(world_type, id, timestamp, updates_must_be_signed_by, roots)?;
        world.sign(signer);
        Ok(world)
    }

    fn check_limits(&self) -> Result<(), WireError> {
        if self.roots.len() > MAX_ROOTS {
            return Err(WireError::TooLarge("world roots"));
        }
        if self
            .roots
            .iter()
            .any(|r| r.stable_endpoints.len() > MAX_STABLE_ENDPOINTS)
        {
            return Err(WireError::TooLarge("world root stable endpoints"));
        }
        Ok(())
    }

    /// Replace the signature with one by `signer` over the signed form.
    pub fn sign(&mut self, signer: &KeyPair) {
        self.signature = signer.sign(&self.signed_form());
    }

    /// True if this world's signature was made by the key pair with public half `public_key`.
    pub fn verify_signed_by(&self, public_key: &[u8; 64]) -> bool {
        c25519::verify(public_key, &self.signed_form(), &self.signature)
    }

    /// `World::shouldBeReplacedBy`: same type and ID, strictly newer, and signed by the key this
    /// world names for updates. (A node with no world yet accepts any world; that case has no
    /// `self` and is the caller's.)
    pub fn should_be_replaced_by(&self, update: &World) -> bool {
        update.world_type == self.world_type
            && update.id == self.id
            && update.timestamp > self.timestamp
            && update.verify_signed_by(&self.updates_must_be_signed_by)
    }

    /// The bytes the signature covers.
    pub fn signed_form(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.normal_len() + 16 - SIGNATURE_LEN);
        out.put_bytes(&SIGNED_FORM_START);
        self.write_body(&mut out, false);
        out.put_bytes(&SIGNED_FORM_END);
        out
    }

    /// Append the normal (transmitted / stored) form.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_body(out, true);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.normal_len());
        self.write(&mut out);
        out
    }

    fn normal_len(&self) -> usize {
        let roots: usize = self
            .roots
            .iter()
            .map(|r| {
                71 + 1
                    + r.stable_endpoints
                        .iter()
                        .map(InetAddress::wire_len)
                        .sum::<usize>()
            })
            .sum();
        1 + 8
            + 8
            + 64
            + SIGNATURE_LEN
            + 1
            + roots
            + if self.world_type == WorldType::Moon {
                2
            } else {
                0
            }
    }

    fn write_body(&self, out: &mut Vec<u8>, with_signature: bool) {
        out.put_u8(self.world_type.to_u8());
        out.put_u64(self.id);
        out.put_u64(self.timestamp);
        out.put_bytes(&self.updates_must_be_signed_by);
        if with_signature {
            out.put_bytes(&self.signature);
        }
        // Constructors and read() enforce the limits; a world whose public fields were pushed
        // past them afterwards is written cut to the limits rather than with a wrapped count.
        let roots = &self.roots[..self.roots.len().min(MAX_ROOTS)];
        out.put_u8(roots.len() as u8);
        for root in roots {
            root.identity.write_binary(out, false);
            let endpoints =
                &root.stable_endpoints[..root.stable_endpoints.len().min(MAX_STABLE_ENDPOINTS)];
            out.put_u8(endpoints.len() as u8);
            for endpoint in endpoints {
                endpoint.write(out);
            }
        }
        if self.world_type == WorldType::Moon {
            // Moons carry an (always empty) extension section.
            out.put_u16(0);
        }
    }

    /// Read one world from `r` (it may be followed by other data, as in OK(HELLO)).
    pub fn read(r: &mut Reader<'_>) -> Result<World, WireError> {
        let world_type = WorldType::from_u8(r.u8("world type")?)?;
        let id = r.u64("world id")?;
        let timestamp = r.u64("world timestamp")?;
        let updates_must_be_signed_by = r.array("world updatesMustBeSignedBy")?;
        let signature = r.array("world signature")?;
        let root_count = r.u8("world root count")? as usize;
        if root_count > MAX_ROOTS {
            return Err(WireError::TooLarge("world roots"));
        }
        let mut roots = Vec::with_capacity(root_count);
        for _ in 0..root_count {
            let (identity, used) = Identity::read_binary(r.rest())?;
            r.skip(used, "world root identity")?;
            let endpoint_count = r.u8("world root endpoint count")? as usize;
            if endpoint_count > MAX_STABLE_ENDPOINTS {
                return Err(WireError::TooLarge("world root stable endpoints"));
            }
            let mut stable_endpoints = Vec::with_capacity(endpoint_count);
            for _ in 0..endpoint_count {
                stable_endpoints.push(InetAddress::read(r)?);
            }
            roots.push(Root {
                identity: identity.to_public(),
                stable_endpoints,
            });
        }
        if world_type == WorldType::Moon {
            let extension_len = r.u16("moon extension length")? as usize;
            r.skip(extension_len, "moon extension")?;
        }
        Ok(World {
            world_type,
            id,
            timestamp,
            updates_must_be_signed_by,
            signature,
            roots,
        })
    }

    /// Parse a buffer holding exactly one world (a `planet` or `*.moon` file).
    pub fn parse(buf: &[u8]) -> Result<World, WireError> {
        let mut r = Reader::new(buf);
        let world = World::read(&mut r)?;
        if !r.is_empty() {
            return Err(WireError::invalid(
                "world",
                format!("{} trailing bytes", r.remaining()),
            ));
        }
        Ok(world)
    }

    /// The root whose identity has `address`, if any.
    pub fn root(&self, address: zt_crypto::Address) -> Option<&Root> {
        self.roots.iter().find(|r| r.identity.address() == address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bytes() {
        assert_eq!(WorldType::from_u8(1), Ok(WorldType::Planet));
        assert_eq!(WorldType::from_u8(127), Ok(WorldType::Moon));
        assert!(WorldType::from_u8(0).is_err());
        assert!(WorldType::from_u8(2).is_err());
    }

    #[test]
    fn too_many_roots_are_refused_before_identities_are_read() {
        let mut b = vec![1u8];
        b.extend_from_slice(&[0u8; 8 + 8 + 64 + 96]);
        b.push(5);
        assert_eq!(World::parse(&b), Err(WireError::TooLarge("world roots")));
    }
}
