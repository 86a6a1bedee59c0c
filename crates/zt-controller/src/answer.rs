//! The controller's whole side of the protocol, request in, signed packets out: the answer to
//! a NETWORK_CONFIG_REQUEST ([`Controller::answer`]) and the packets an administrative change
//! owes the members ([`Controller::outgoing`]).
//!
//! ```text
//!   requester, nwid, metadata ──> Controller::answer ──> Reply: Nothing | Error(code) | Config(signed)
//!   update_*/delete_* ──> Pushes ──> Controller::outgoing ──> [Outgoing::Config | Outgoing::Revocation]
//! ```
//!
//! The daemon only carries these to the node (OK/ERROR in reply to the request packet,
//! unsolicited NETWORK_CONFIG, NETWORK_CREDENTIALS); every face that changes the controller
//! (console, RouterOS REST, the zerotier JSON API) gets the same packets for the same change.
use zt_crypto::{Address, Identity};
use zt_wire::dictionary::Dictionary;
use zt_wire::netconf::NetworkConfig;
use zt_wire::revocation::Revocation;
use zt_wire::verbs::error::ErrorCode;

use crate::controller::{Controller, Decision, Pushes, RequestMetadata};
use crate::error::StorageError;
use crate::issue::{build_config, build_revocation, IssueError};
use crate::model::NetworkId;
use crate::storage::Storage;

/// What to answer a config request with.
#[derive(Debug)]
pub enum Reply {
    /// Send nothing: not this controller's network, or the member asked again too soon.
    Nothing,
    /// ERROR with this code, in reply to the request.
    Error(ErrorCode),
    /// OK with this signed config, in reply to the request.
    Config(Box<NetworkConfig>),
}

/// A packet an administrative change owes a member.
#[derive(Debug)]
pub enum Outgoing {
    /// An unsolicited NETWORK_CONFIG (the member's config changed).
    Config {
        dest: Address,
        nwid: NetworkId,
        config: Box<NetworkConfig>,
    },
    /// NETWORK_CREDENTIALS carrying a COM revocation (a member lost access).
    Revocation {
        dest: Address,
        revocation: Box<Revocation>,
    },
}

/// Why an answer or a push could not be produced. Nothing is sent for it; a member whose
/// request failed asks again on its own.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("controller database: {0}")]
    Storage(#[from] StorageError),
    #[error("config for {member} not issued: {source}")]
    Config { member: Address, source: IssueError },
    #[error("revocation of {target} not issued: {source}")]
    Revocation { target: Address, source: IssueError },
}

impl<S: Storage> Controller<S> {
    /// Decides a NETWORK_CONFIG_REQUEST from `requester` for `nwid` (its metadata
    /// Dictionary as sent) and builds the reply, signed by `signer` (this controller's
    /// identity, with its private key). Records what it learned about the member.
    pub fn answer(
        &mut self,
        now_ms: i64,
        requester: &Identity,
        nwid: NetworkId,
        metadata: &Dictionary,
        signer: &Identity,
    ) -> Result<Reply, AnswerError> {
        let metadata = RequestMetadata::from_dictionary(metadata);
        Ok(
            match self.handle_config_request(now_ms, requester, nwid, &metadata)? {
                Decision::Config(data) => {
                    let config =
                        build_config(&data, signer).map_err(|source| AnswerError::Config {
                            member: requester.address(),
                            source,
                        })?;
                    Reply::Config(Box::new(config))
                }
                Decision::NotFound => Reply::Error(ErrorCode::ObjNotFound),
                Decision::AccessDenied => Reply::Error(ErrorCode::NetworkAccessDenied),
                Decision::Ignore(_) => Reply::Nothing,
            },
        )
    }

    /// The packets `pushes` stands for, signed by `signer`: the config re-issued to each
    /// member that should get one, and each revocation to each of its recipients.
    /// `revocation_id` draws the random ID of each revocation (the caller's RNG). One item
    /// that cannot be produced does not keep the others from being sent.
    pub fn outgoing(
        &mut self,
        now_ms: i64,
        pushes: &Pushes,
        signer: &Identity,
        mut revocation_id: impl FnMut() -> u32,
    ) -> Vec<Result<Outgoing, AnswerError>> {
        let nwid = pushes.network_id;
        let mut out = Vec::new();
        for &dest in &pushes.config_to {
            let item = match self.push_config(now_ms, nwid, dest) {
                Ok(Some(data)) => build_config(&data, signer)
                    .map(|config| Outgoing::Config {
                        dest,
                        nwid,
                        config: Box::new(config),
                    })
                    .map_err(|source| AnswerError::Config {
                        member: dest,
                        source,
                    }),
                Ok(None) => continue,
                Err(error) => Err(error.into()),
            };
            out.push(item);
        }
        for plan in &pushes.revocations {
            match build_revocation(plan, revocation_id(), signer) {
                Ok(revocation) => out.extend(plan.recipients.iter().map(|&dest| {
                    Ok(Outgoing::Revocation {
                        dest,
                        revocation: Box::new(revocation.clone()),
                    })
                })),
                Err(source) => out.push(Err(AnswerError::Revocation {
                    target: plan.target,
                    source,
                })),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network_id_for;
    use crate::props::{member_patch_from_properties, network_patch_from_properties};
    use crate::storage::MemoryStorage;
    use zt_wire::credential::Verification;

    /// identities[0..3] of `shared/interop/vectors.json` (generated by ZeroTier One): the
    /// controller and two members, with their private keys.
    const CONTROLLER: &str = "3dd3377c70:0:b536662c7b3d61b5440d8dfc5f6e65b101ca3b6c32e8d3cafef52fd71786a264cf3ac90ce863a85a22ae6e93f2795e33f6af6731a126a5a7fdadd05808ca5533:18d7f229860de6a3220c19d51def3433e4e029c16760efdaf9f0c87437ffbf3149527de5d528174a6b64de837233cc4f5f123a3e809603c82096609c7a5e73fd";
    const MEMBER_A: &str = "2a6d498fe1:0:a95d25efcc7001ff72c5eb9fbfcb7d64bd19d4177d4cfd233a6e588915834949346c4903f301fbc8a01ece5b0558fda33d48680710567cb1baabdd45f9a8cbc6:32a8d600ad156438937bd7b890851b870d9622a2e8adffe05b9fad5a01c85a2d005046b8f5396ccbaf8a43f0948dc5d970666c812951f880a84ffa668c68b953";
    const MEMBER_B: &str = "d6d2f391f9:0:2b03360ba8dad16d482c127598eab25d52307454ed7f1018797daa4aa6d5265d445221da037466872010902d0f3f5b51be2f6e2db1f538f760a7e1c9a4108ced:060947f76e9904a0e4e8afd1a9fa80063fb73b66dd4f447c3d4326b744fe43e5a9fb3c01acf066a8a7f3762c8b785a5d090c07041d988956ca331989e0e2cc25";
    const T0: i64 = 1_800_000_000_000;

    struct Lab {
        signer: Identity,
        ctl: Controller<MemoryStorage>,
        nwid: NetworkId,
        a: Identity,
        b: Identity,
    }

    fn lab() -> Lab {
        let signer = Identity::from_string(CONTROLLER).unwrap();
        let mut ctl = Controller::new(signer.address(), MemoryStorage::new());
        let nwid = network_id_for(signer.address(), 0xa99e4b);
        let patch = network_patch_from_properties(&[
            ("name", "lab"),
            ("ip-range", "172.27.27.10-172.27.27.20"),
            ("routes", "172.27.27.0/24"),
        ])
        .unwrap();
        ctl.create_network(T0, nwid, &patch).unwrap();
        Lab {
            signer,
            ctl,
            nwid,
            a: Identity::from_string(MEMBER_A).unwrap(),
            b: Identity::from_string(MEMBER_B).unwrap(),
        }
    }

    impl Lab {
        fn ask(&mut self, now: i64, who: &Identity) -> Reply {
            let (nwid, signer) = (self.nwid, self.signer.clone());
            self.ctl
                .answer(now, who, nwid, &Dictionary::new(), &signer)
                .unwrap()
        }

        fn authorize(&mut self, now: i64, who: &Identity, yes: bool) -> Pushes {
            let patch =
                member_patch_from_properties(&[("authorized", if yes { "yes" } else { "no" })])
                    .unwrap();
            self.ctl
                .update_member(now, self.nwid, who.address(), &patch)
                .unwrap()
                .1
        }

        fn outgoing(&mut self, now: i64, pushes: &Pushes) -> Vec<Outgoing> {
            let signer = self.signer.clone();
            let mut ids = 100..;
            self.ctl
                .outgoing(now, pushes, &signer, || ids.next().unwrap_or(0))
                .into_iter()
                .map(|item| item.expect("every push is issued"))
                .collect()
        }
    }

    #[test]
    fn answer_follows_each_decision() {
        let mut lab = lab();
        let a = lab.a.clone();
        // Unknown network of ours: OBJ_NOT_FOUND. Another controller's network: silence.
        let signer = lab.signer.clone();
        let unknown = network_id_for(signer.address(), 0x000001);
        let reply = lab
            .ctl
            .answer(T0, &a, unknown, &Dictionary::new(), &signer)
            .unwrap();
        assert!(
            matches!(reply, Reply::Error(ErrorCode::ObjNotFound)),
            "{reply:?}"
        );
        let foreign = network_id_for(a.address(), 0x000001);
        let reply = lab
            .ctl
            .answer(T0, &a, foreign, &Dictionary::new(), &signer)
            .unwrap();
        assert!(matches!(reply, Reply::Nothing), "{reply:?}");

        // Private network, not authorized: NETWORK_ACCESS_DENIED; again within the minimum
        // request period: silence.
        let reply = lab.ask(T0 + 1_000, &a);
        assert!(
            matches!(reply, Reply::Error(ErrorCode::NetworkAccessDenied)),
            "{reply:?}"
        );
        assert!(matches!(lab.ask(T0 + 1_500, &a), Reply::Nothing));

        // Authorized: a config issued to the member, its COM and COO signed by the controller.
        lab.authorize(T0 + 2_000, &a, true);
        let Reply::Config(config) = lab.ask(T0 + 3_000, &a) else {
            panic!("an authorized member gets its config");
        };
        assert_eq!(config.issued_to, a.address());
        assert_eq!(config.network_id.0, lab.nwid);
        assert_eq!(config.timestamp, (T0 + 3_000) as u64);
        let public = lab.signer.to_public();
        let com = config
            .com
            .as_ref()
            .expect("a private network's config has a COM");
        assert_eq!(com.verify(&public), Verification::Valid);
        let coo = &config.certificates_of_ownership[0];
        assert_eq!(coo.verify(&public), Verification::Valid);
        // Checked against anyone else, it does not verify.
        let b_public = lab.b.to_public();
        assert_ne!(com.verify(&b_public), Verification::Valid);
    }

    #[test]
    fn pushes_become_signed_packets() {
        let mut lab = lab();
        let (a, b) = (lab.a.clone(), lab.b.clone());
        lab.ask(T0, &a);
        lab.ask(T0, &b);
        // Authorizing an online member pushes its config to it, signed.
        let pushes = lab.authorize(T0 + 2_000, &a, true);
        let out = lab.outgoing(T0 + 2_000, &pushes);
        let [Outgoing::Config { dest, nwid, config }] = out.as_slice() else {
            panic!("one config push expected: {out:?}");
        };
        assert_eq!((*dest, *nwid), (a.address(), lab.nwid));
        assert_eq!(
            config.com.as_ref().unwrap().verify(&lab.signer.to_public()),
            Verification::Valid
        );

        // Deauthorizing it revokes its COM towards every online member, signed, with the ID
        // the caller drew.
        let pushes = lab.authorize(T0 + 3_000, &a, false);
        let out = lab.outgoing(T0 + 3_000, &pushes);
        let dests: Vec<Address> = out
            .iter()
            .map(|item| match item {
                Outgoing::Revocation { dest, revocation } => {
                    assert_eq!(revocation.target, a.address());
                    assert_eq!(revocation.id, 100);
                    assert_eq!(
                        revocation.verify(&lab.signer.to_public()),
                        Verification::Valid
                    );
                    *dest
                }
                other => panic!("only revocations expected: {other:?}"),
            })
            .collect();
        let mut online = vec![a.address(), b.address()];
        online.sort();
        assert_eq!(dests, online);
    }

    #[test]
    fn deleting_a_network_revokes_its_admitted_members() {
        let mut lab = lab();
        let (a, b) = (lab.a.clone(), lab.b.clone());
        lab.authorize(T0, &a, true);
        lab.ask(T0 + 1_000, &a);
        // b asked but was never admitted: nothing of it to revoke.
        lab.ask(T0 + 1_000, &b);
        let nwid = lab.nwid;
        let (deleted, pushes) = lab.ctl.delete_network(T0 + 2_000, nwid).unwrap();
        assert_eq!(deleted.map(|n| n.name).as_deref(), Some("lab"));
        assert!(pushes.config_to.is_empty());
        let [plan] = pushes.revocations.as_slice() else {
            panic!("one revocation expected: {pushes:?}");
        };
        assert_eq!((plan.target, plan.threshold), (a.address(), T0 + 2_000));
        let mut online = vec![a.address(), b.address()];
        online.sort();
        assert_eq!(plan.recipients, online);
        let out = lab.outgoing(T0 + 2_000, &pushes);
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|o| matches!(o, Outgoing::Revocation { revocation, .. } if revocation.target == a.address())));
        // The network is gone: its members are told it does not exist.
        assert!(matches!(
            lab.ask(T0 + 5_000, &a),
            Reply::Error(ErrorCode::ObjNotFound)
        ));
        // Deleting it again changes nothing and owes nothing.
        let (again, pushes) = lab.ctl.delete_network(T0 + 6_000, nwid).unwrap();
        assert!(again.is_none() && pushes.is_empty());
    }
}
