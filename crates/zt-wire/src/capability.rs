//! Capability (PROTOCOL.md §6.6): a controller-signed bundle of rules a member may use, passed
//! along a custody chain. The controller issues chain length 1 (controller → member).

use crate::credential::{self, Verification};
use crate::cursor::{Reader, Writer};
use crate::error::WireError;
use crate::network_id::NetworkId;
use crate::rules::{self, Rule, MAX_CAPABILITY_RULES};
use zt_crypto::identity::SIGNATURE_LEN;
use zt_crypto::{Address, Identity};

/// Longest custody chain (`ZT_MAX_CAPABILITY_CUSTODY_CHAIN_LENGTH`).
pub const MAX_CUSTODY_CHAIN_LENGTH: u8 = 7;

/// One hand-over: `from` gave the capability to `to`, signed by `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Custody {
    pub to: Address,
    pub from: Address,
    pub signature: [u8; SIGNATURE_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub network_id: NetworkId,
    pub timestamp: u64,
    pub id: u32,
    pub rules: Vec<Rule>,
    /// 1..=7.
    pub max_custody_chain_length: u8,
    pub custody: Vec<Custody>,
}

impl Capability {
    /// A capability with no custody yet; the controller then calls [`sign`](Self::sign).
    pub fn new(
        network_id: NetworkId,
        timestamp: u64,
        id: u32,
        rules: Vec<Rule>,
        max_custody_chain_length: u8,
    ) -> Result<Capability, WireError> {
        if rules.len() > MAX_CAPABILITY_RULES {
            return Err(WireError::TooLarge("capability rules"));
        }
        if !(1..=MAX_CUSTODY_CHAIN_LENGTH).contains(&max_custody_chain_length) {
            return Err(WireError::invalid(
                "capability maxCustodyChainLength",
                "must be 1..=7",
            ));
        }
        Ok(Capability {
            network_id,
            timestamp,
            id,
            rules,
            max_custody_chain_length,
            custody: Vec::new(),
        })
    }

    /// The member holding it: the last custody recipient.
    pub fn issued_to(&self) -> Option<Address> {
        self.custody.last().map(|c| c.to)
    }

    fn write_fields(&self, out: &mut Vec<u8>) {
        out.put_u64(self.network_id.to_u64());
        out.put_u64(self.timestamp);
        out.put_u32(self.id);
        // Bounded by MAX_CAPABILITY_RULES in every constructor and in read.
        out.put_u16(self.rules.len() as u16);
        rules::write_all(&self.rules, out);
        out.put_u8(self.max_custody_chain_length);
    }

    /// The bytes every custody signature covers (no custody data in it).
    pub fn signed_form(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.write_fields(&mut body);
        credential::signed_form(&body)
    }

    /// Append a custody entry `from → to`, signed by `from` (first: the controller).
    pub fn sign(&mut self, from: &Identity, to: Address) -> Result<(), WireError> {
        if self.custody.len() >= usize::from(self.max_custody_chain_length) {
            return Err(WireError::TooLarge("capability custody chain"));
        }
        let signature = from.sign(&self.signed_form())?;
        self.custody.push(Custody {
            to,
            from: from.address(),
            signature,
        });
        Ok(())
    }

    /// Check the custody chain: the first `from` is the network's controller, each later `from`
    /// is the previous `to`, and every signature verifies. `identity_of` supplies identities.
    pub fn verify(&self, identity_of: impl Fn(Address) -> Option<Identity>) -> Verification {
        if self.custody.is_empty()
            || self.custody.len() > usize::from(self.max_custody_chain_length)
        {
            return Verification::Invalid;
        }
        let signed = self.signed_form();
        let mut expected_from = self.network_id.controller();
        for link in &self.custody {
            if link.from != expected_from || link.to == Address::default() {
                return Verification::Invalid;
            }
            let Some(signer) = identity_of(link.from) else {
                return Verification::NeedIdentity(link.from);
            };
            if signer.address() != link.from || !signer.verify(&signed, &link.signature) {
                return Verification::Invalid;
            }
            expected_from = link.to;
        }
        Verification::Valid
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_fields(out);
        for link in self
            .custody
            .iter()
            .take(usize::from(self.max_custody_chain_length))
        {
            out.put_address(link.to);
            out.put_address(link.from);
            credential::write_signature(out, &link.signature);
        }
        out.put_address(Address::default());
        out.put_u16(0);
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Capability, WireError> {
        let network_id = NetworkId(r.u64("capability nwid")?);
        let timestamp = r.u64("capability timestamp")?;
        let id = r.u32("capability id")?;
        let rule_count = r.u16("capability rule count")? as usize;
        if rule_count > MAX_CAPABILITY_RULES {
            return Err(WireError::TooLarge("capability rules"));
        }
        let rules = rules::read_count(r, rule_count)?;
        let max_custody_chain_length = r.u8("capability maxCustodyChainLength")?;
        if !(1..=MAX_CUSTODY_CHAIN_LENGTH).contains(&max_custody_chain_length) {
            return Err(WireError::invalid(
                "capability maxCustodyChainLength",
                "must be 1..=7",
            ));
        }
        let mut custody = Vec::new();
        loop {
            let to = r.address("capability custody to")?;
            if to == Address::default() {
                break;
            }
            if custody.len() >= usize::from(max_custody_chain_length) {
                return Err(WireError::TooLarge("capability custody chain"));
            }
            let from = r.address("capability custody from")?;
            let signature = credential::read_signature(r, "capability custody signature")?;
            custody.push(Custody {
                to,
                from,
                signature,
            });
        }
        credential::skip_extension(r, "capability extension")?;
        Ok(Capability {
            network_id,
            timestamp,
            id,
            rules,
            max_custody_chain_length,
            custody,
        })
    }
}
