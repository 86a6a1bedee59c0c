//! Joining networks and getting their configs (PROTOCOL.md §1 step 4–6, §4.3, §4.12, §6.1):
//! NETWORK_CONFIG_REQUEST to the controller, signed config chunks (reassembled, verified,
//! checked and applied), ERRORs from the controller, ad-hoc networks, and the local
//! controller hook: requests for networks we control become `Event::ConfigRequest`, answered
//! by the daemon through [`Node::send_network_config`] / [`Node::send_network_error`].

use super::{
    JoinSettings, Network, NetworkInfo, NetworkStatus, Vl2Error, CONFIG_REFRESH_PERIOD,
    CONFIG_RETRY_PERIOD,
};
use crate::node::{Event, Inbound, Node};
use zt_crypto::{Address, Identity};
use zt_wire::credential::Verification;
use zt_wire::dictionary::Dictionary;
use zt_wire::header::{Verb, PROTOCOL_VERSION};
use zt_wire::netconf::{NetworkConfig, MIN_CONFIG_VERSION};
use zt_wire::network_id::NetworkId;
use zt_wire::revocation::Revocation;
use zt_wire::verbs::error::{ErrorBody, ErrorCode, ErrorPayload};
use zt_wire::verbs::network::{
    metadata, ConfigAck, ConfigChunk, ConfigPayload, NetworkConfigRequest, NetworkCredentials,
    SoftwareVersion, CHUNK_FLAG_FAST_PROPAGATE,
};
use zt_wire::verbs::ok::{OkBody, OkPayload};

/// The `o` metadata value: `<os>/<arch>` as the reference's `ZT_TARGET_NAME` (e.g.
/// `linux/x86_64`).
fn os_arch() -> String {
    format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)
}

impl Node {
    /// Joins a network (or updates the settings of one already joined). The config request
    /// goes out at once; ad-hoc networks (`0xff…`) get their config locally. Returns false if
    /// it was already joined.
    pub fn join(&mut self, now: u64, nwid: NetworkId, settings: JoinSettings) -> bool {
        let now = self.clock(now);
        if let Some(network) = self.vl2.networks.get_mut(&nwid) {
            network.settings = settings;
            return false;
        }
        let network = Network::new(nwid, self.address(), settings);
        self.vl2.networks.insert(nwid, network);
        self.events.push_back(Event::NetworkStatusChanged {
            nwid,
            status: NetworkStatus::RequestingConfiguration,
        });
        self.request_config(now, nwid);
        true
    }

    /// Leaves a network and forgets everything about it. Returns false if it was not joined.
    pub fn leave(&mut self, nwid: NetworkId) -> bool {
        self.vl2.networks.remove(&nwid).is_some()
    }

    /// The joined networks, in network ID order.
    pub fn networks(&self) -> Vec<NetworkInfo> {
        self.vl2.networks.values().map(Network::info).collect()
    }

    /// The current config of a joined network.
    pub fn network_config(&self, nwid: NetworkId) -> Option<&NetworkConfig> {
        self.vl2.networks.get(&nwid)?.config.as_ref()
    }

    /// Restores a config saved by the daemon (`networks.d/<nwid>.conf`) so the network works
    /// before the controller answers; joins the network if needed. The config must be one
    /// issued to us for this network.
    pub fn restore_network_config(
        &mut self,
        now: u64,
        nwid: NetworkId,
        config: NetworkConfig,
    ) -> Result<(), Vl2Error> {
        let now = self.clock(now);
        if !self.vl2.networks.contains_key(&nwid) {
            let network = Network::new(nwid, self.address(), JoinSettings::default());
            self.vl2.networks.insert(nwid, network);
        }
        self.apply_config(now, nwid, config)
            .map_err(Vl2Error::BadConfig)?;
        // The controller is asked again at the next check; the restored config carries us
        // until it answers.
        if let Some(network) = self.vl2.networks.get_mut(&nwid) {
            network.last_config_request = None;
        }
        Ok(())
    }

    /// The daemon reports that the tap of `nwid` could (not) be set up.
    pub fn set_network_port_error(&mut self, nwid: NetworkId, error: bool) {
        self.update_network_status(nwid, |n| n.port_error = error);
    }

    // -----------------------------------------------------------------------------------------
    // Requesting

    /// Every ping check: request configs we lack (every 5 s) or refresh them (every 60 s).
    pub(crate) fn request_configs_due(&mut self, now: u64) {
        let due: Vec<NetworkId> = self
            .vl2
            .networks
            .values()
            .filter(|n| !n.nwid.is_adhoc())
            .filter(|n| {
                let period = if n.config.is_some() {
                    CONFIG_REFRESH_PERIOD
                } else {
                    CONFIG_RETRY_PERIOD
                };
                n.last_config_request
                    .is_none_or(|t| now.saturating_sub(t) >= period)
            })
            .map(|n| n.nwid)
            .collect();
        for nwid in due {
            self.request_config(now, nwid);
        }
    }

    /// The metadata a 1.x client sends with its request (§4.12), plus our auth token.
    fn request_metadata(&self, settings: &JoinSettings) -> Dictionary {
        let (major, minor, revision) = self.config.version;
        let version = SoftwareVersion {
            protocol: u64::from(PROTOCOL_VERSION),
            major: u64::from(major),
            minor: u64::from(minor),
            revision: u64::from(revision),
        };
        let mut d =
            NetworkConfigRequest::standard_metadata(version, &os_arch()).unwrap_or_default();
        if let Some(token) = &settings.auth_token {
            // A token that cannot be encoded is left out; the request still goes.
            let _ = d.add_str(metadata::AUTH, &format!("token:{token}"));
        }
        d
    }

    /// Sends NETWORK_CONFIG_REQUEST to the controller, asks our own controller logic (via
    /// the daemon) if the network is ours, or builds an ad-hoc network's config.
    pub(crate) fn request_config(&mut self, now: u64, nwid: NetworkId) {
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        network.last_config_request = Some(now);
        if nwid.is_adhoc() {
            if network.config.is_some() {
                return;
            }
            let own = self.identity.address();
            match NetworkConfig::adhoc(nwid, own, now) {
                Some(config) => {
                    let _ = self.apply_config(now, nwid, config);
                }
                None => {
                    self.update_network_status(nwid, |n| n.failure = Some(NetworkStatus::NotFound))
                }
            }
            return;
        }
        let settings = network.settings.clone();
        let (have_revision, have_timestamp) = network
            .config
            .as_ref()
            .map_or((0, 0), |c| (c.revision, c.timestamp));
        let metadata = self.request_metadata(&settings);
        self.stats.vl2.config_requests_sent += 1;
        if nwid.controller() == self.address() {
            let request_packet_id = self.random_packet_id() | 1;
            self.events.push_back(Event::ConfigRequest {
                requester: self.identity.to_public(),
                nwid,
                metadata,
                request_packet_id,
            });
            return;
        }
        let request = NetworkConfigRequest {
            network_id: nwid,
            metadata,
            have_revision,
            have_timestamp,
        };
        if let Ok(body) = request.to_bytes() {
            let _ = self.send_to_peer(now, nwid.controller(), Verb::NetworkConfigRequest, &body);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Receiving configs

    /// A config chunk in OK(NETWORK_CONFIG_REQUEST) (`is_reply`) or NETWORK_CONFIG.
    pub(crate) fn handle_config_chunk(&mut self, from: &Inbound, body: &[u8], is_reply: bool) {
        let now = from.now;
        let payload = match ConfigPayload::parse(body) {
            Ok(p) => p,
            Err(_) => {
                self.stats.vl2.config_bad_chunk += 1;
                return;
            }
        };
        let chunk = match payload {
            ConfigPayload::Legacy { network_id, data } => {
                // A complete unsigned Dictionary: only from the controller itself, as a reply.
                if !is_reply || from.source != network_id.controller() {
                    self.stats.vl2.not_from_controller += 1;
                    return;
                }
                if !self.vl2.networks.contains_key(&network_id) {
                    self.stats.vl2.not_member += 1;
                    return;
                }
                self.config_assembled(from, network_id, &data, None);
                return;
            }
            ConfigPayload::Chunk(c) => c,
        };
        let nwid = chunk.network_id;
        if !self.vl2.networks.contains_key(&nwid) {
            self.stats.vl2.not_member += 1;
            return;
        }
        if chunk.check_bounds().is_err() {
            self.stats.vl2.config_bad_chunk += 1;
            return;
        }
        let Some(controller) = self.controller_identity(nwid) else {
            self.stats.vl2.config_unknown_controller += 1;
            return;
        };
        if chunk.verify(&controller) != Verification::Valid {
            self.stats.vl2.config_bad_signature += 1;
            return;
        }
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        let assembled = match network.assembler.accept_verified(&chunk) {
            Ok(a) => a,
            Err(_) => {
                self.stats.vl2.config_bad_chunk += 1;
                return;
            }
        };
        if chunk.flags & CHUNK_FLAG_FAST_PROPAGATE != 0 {
            self.propagate_chunk(now, &chunk, from.source);
        }
        if let Some(dictionary) = assembled {
            let ack = (!is_reply).then_some(chunk.update_id);
            self.config_assembled(from, nwid, &dictionary, ack);
        }
    }

    /// Re-sends a verified fast-propagate chunk to the other members we know.
    fn propagate_chunk(&mut self, now: u64, chunk: &ConfigChunk, source: Address) {
        let Ok(body) = chunk.to_bytes() else {
            return;
        };
        let controller = chunk.network_id.controller();
        let recipients: Vec<Address> = self
            .vl2
            .networks
            .get(&chunk.network_id)
            .map(|n| n.members.keys().copied().collect())
            .unwrap_or_default();
        for to in recipients {
            if to != source && to != controller && to != self.address() {
                let _ = self.send_to_peer(now, to, Verb::NetworkConfig, &body);
            }
        }
    }

    /// A whole config Dictionary arrived. Pushes (`ack` = their update ID) are acknowledged
    /// with the reference's OK-in-re-ECHO once the Dictionary parses, then the config is
    /// checked and applied.
    fn config_assembled(
        &mut self,
        from: &Inbound,
        nwid: NetworkId,
        dictionary: &[u8],
        ack: Option<u64>,
    ) {
        let config = match NetworkConfig::parse(dictionary) {
            Ok(c) => c,
            Err(_) => {
                self.stats.vl2.config_rejected += 1;
                return;
            }
        };
        if let Some(update_id) = ack {
            let mut body = Vec::with_capacity(16);
            ConfigAck {
                network_id: nwid,
                update_id,
            }
            .write(&mut body);
            let mut ok = Vec::with_capacity(9 + body.len());
            OkPayload {
                in_re_verb: Verb::Echo,
                in_re_packet_id: from.packet_id,
                body: OkBody::Echo(&body),
            }
            .write(&mut ok);
            self.vl2_reply(from, Verb::Ok, &ok);
        }
        if self.apply_config(from.now, nwid, config).is_err() {
            self.stats.vl2.config_rejected += 1;
        }
    }

    /// Checks a config (`v` ≥ 6, our `id`, this `nwid`) and makes it current: the status
    /// becomes OK and the daemon gets the config; then our subscriptions are announced.
    pub(crate) fn apply_config(
        &mut self,
        now: u64,
        nwid: NetworkId,
        config: NetworkConfig,
    ) -> Result<(), &'static str> {
        if config.version < MIN_CONFIG_VERSION {
            return Err("config version below 6");
        }
        if config.network_id != nwid {
            return Err("config is for another network");
        }
        if config.issued_to != self.address() {
            return Err("config is issued to another node");
        }
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return Err("network not joined");
        };
        let before = network.status();
        network.failure = None;
        network.last_config_update = now;
        let changed = network.config.as_ref() != Some(&config);
        network.config = Some(config.clone());
        let after = network.status();
        self.stats.vl2.configs_applied += 1;
        if changed {
            self.events.push_back(Event::NetworkConfigChanged {
                nwid,
                config: Box::new(config),
            });
        }
        if before != after {
            self.events.push_back(Event::NetworkStatusChanged {
                nwid,
                status: after,
            });
        }
        self.announce_multicast_groups(now, nwid, None);
        Ok(())
    }

    /// Runs `change` on a joined network and reports a status change.
    pub(crate) fn update_network_status(
        &mut self,
        nwid: NetworkId,
        change: impl FnOnce(&mut Network),
    ) {
        let Some(network) = self.vl2.networks.get_mut(&nwid) else {
            return;
        };
        let before = network.status();
        change(network);
        let after = network.status();
        if before != after {
            self.events.push_back(Event::NetworkStatusChanged {
                nwid,
                status: after,
            });
        }
    }

    /// The identity of a network's controller, if we know it (ourselves included).
    pub(crate) fn controller_identity(&self, nwid: NetworkId) -> Option<Identity> {
        let controller = nwid.controller();
        if controller == self.address() {
            return Some(self.identity.to_public());
        }
        self.peers.get(&controller).map(|p| p.identity.clone())
    }

    // -----------------------------------------------------------------------------------------
    // ERRORs

    pub(crate) fn handle_vl2_error(&mut self, from: &Inbound, error: &ErrorPayload<'_>) {
        let from_controller = |nwid: NetworkId| from.source == nwid.controller();
        match (&error.code, &error.body) {
            (
                ErrorCode::ObjNotFound | ErrorCode::UnsupportedOperation,
                ErrorBody::Network(nwid),
            ) if error.in_re_verb == Verb::NetworkConfigRequest => {
                self.controller_failure(from, *nwid, NetworkStatus::NotFound)
            }
            (ErrorCode::NetworkAccessDenied, ErrorBody::Network(nwid)) => {
                self.controller_failure(from, *nwid, NetworkStatus::AccessDenied)
            }
            (
                ErrorCode::NetworkAuthenticationRequired,
                ErrorBody::AuthenticationRequired { nwid, .. },
            ) => self.controller_failure(from, *nwid, NetworkStatus::AuthenticationRequired),
            (ErrorCode::BadProtocolVersion, _)
                if error.in_re_verb == Verb::NetworkConfigRequest =>
            {
                // The body names no network: it applies to the networks the sender controls.
                let nwids: Vec<NetworkId> = self
                    .vl2
                    .networks
                    .keys()
                    .copied()
                    .filter(|n| from_controller(*n))
                    .collect();
                for nwid in nwids {
                    self.update_network_status(nwid, |n| {
                        n.failure = Some(NetworkStatus::ClientTooOld)
                    });
                }
            }
            (ErrorCode::NeedMembershipCertificate, ErrorBody::Network(nwid)) => {
                self.credentials_requested(from, *nwid)
            }
            (ErrorCode::UnwantedMulticast, ErrorBody::UnwantedMulticast { nwid, group })
                if self.gate(*nwid, from.source) =>
            {
                self.vl2.subscribers.unsubscribe(*nwid, *group, from.source);
            }
            _ => {}
        }
    }

    /// NOT_FOUND / ACCESS_DENIED / AUTHENTICATION_REQUIRED: honoured only from the
    /// network's controller.
    fn controller_failure(&mut self, from: &Inbound, nwid: NetworkId, status: NetworkStatus) {
        if from.source != nwid.controller() {
            self.stats.vl2.not_from_controller += 1;
            return;
        }
        self.update_network_status(nwid, |n| n.failure = Some(status));
    }

    // -----------------------------------------------------------------------------------------
    // Local controller hook

    /// A NETWORK_CONFIG_REQUEST: for a network we control it becomes `Event::ConfigRequest`;
    /// anything else is ignored silently (a zerotier-one node with its embedded controller
    /// does the same).
    pub(crate) fn handle_config_request(&mut self, from: &Inbound, payload: &[u8]) {
        let Ok(request) = NetworkConfigRequest::parse(payload) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if request.network_id.controller() != self.address() {
            self.stats.vl2.config_requests_not_ours += 1;
            return;
        }
        let Some(requester) = self.peers.get(&from.source).map(|p| p.identity.clone()) else {
            return;
        };
        self.stats.vl2.config_requests_received += 1;
        self.events.push_back(Event::ConfigRequest {
            requester,
            nwid: request.network_id,
            metadata: request.metadata,
            request_packet_id: from.packet_id,
        });
    }

    /// Sends a config for a network we control to `dest`, as signed chunks: in
    /// OK(NETWORK_CONFIG_REQUEST) when answering request `in_re`, else as a NETWORK_CONFIG
    /// push. For our own address the config is applied directly.
    pub fn send_network_config(
        &mut self,
        now: u64,
        dest: Address,
        nwid: NetworkId,
        in_re: Option<u64>,
        config: &NetworkConfig,
    ) -> Result<(), Vl2Error> {
        let now = self.clock(now);
        if nwid.controller() != self.address() {
            return Err(Vl2Error::NotController(nwid));
        }
        self.vl2.authorized_by_us.insert((nwid, dest), now);
        if dest == self.address() {
            return self
                .apply_config(now, nwid, config.clone())
                .map_err(Vl2Error::BadConfig);
        }
        let dictionary = config
            .to_bytes()
            .map_err(|e| Vl2Error::Encode(e.to_string()))?;
        let update_id = loop {
            let id = self.random_packet_id();
            if id != 0 {
                break id;
            }
        };
        let chunks = ConfigChunk::split_and_sign(nwid, &dictionary, update_id, &self.identity)
            .map_err(|e| Vl2Error::Encode(e.to_string()))?;
        for chunk in chunks {
            let body = chunk
                .to_bytes()
                .map_err(|e| Vl2Error::Encode(e.to_string()))?;
            match in_re {
                Some(in_re_packet_id) => {
                    let mut ok = Vec::with_capacity(9 + body.len());
                    OkPayload {
                        in_re_verb: Verb::NetworkConfigRequest,
                        in_re_packet_id,
                        body: OkBody::NetworkConfig(&body),
                    }
                    .write(&mut ok);
                    let _ = self.send_to_peer(now, dest, Verb::Ok, &ok);
                }
                None => {
                    let _ = self.send_to_peer(now, dest, Verb::NetworkConfig, &body);
                }
            }
        }
        Ok(())
    }

    /// Refuses request `in_re` for a network we control: `code` is OBJ_NOT_FOUND,
    /// NETWORK_ACCESS_DENIED or NETWORK_AUTHENTICATION_REQUIRED. Nothing is sent for packet
    /// ID 0 (a push). For our own address the status is set directly.
    pub fn send_network_error(
        &mut self,
        now: u64,
        dest: Address,
        nwid: NetworkId,
        in_re: u64,
        code: ErrorCode,
    ) -> Result<(), Vl2Error> {
        let now = self.clock(now);
        if nwid.controller() != self.address() {
            return Err(Vl2Error::NotController(nwid));
        }
        if dest == self.address() {
            let status = match code {
                ErrorCode::ObjNotFound | ErrorCode::UnsupportedOperation => NetworkStatus::NotFound,
                ErrorCode::NetworkAuthenticationRequired => NetworkStatus::AuthenticationRequired,
                _ => NetworkStatus::AccessDenied,
            };
            self.update_network_status(nwid, |n| n.failure = Some(status));
            return Ok(());
        }
        if in_re == 0 {
            return Ok(());
        }
        let body = match code {
            ErrorCode::NetworkAuthenticationRequired => {
                ErrorBody::AuthenticationRequired { nwid, info: None }
            }
            _ => ErrorBody::Network(nwid),
        };
        let mut out = Vec::with_capacity(18);
        ErrorPayload {
            in_re_verb: Verb::NetworkConfigRequest,
            in_re_packet_id: in_re,
            code,
            body,
        }
        .write(&mut out);
        let _ = self.send_to_peer(now, dest, Verb::Error, &out);
        Ok(())
    }

    /// Sends a revocation we signed (zt-controller's `build_revocation` after a
    /// deauthorization) to `dest` in the controller's layout: NETWORK_CREDENTIALS with only
    /// that revocation. For our own address it is applied directly.
    pub fn send_revocation(
        &mut self,
        now: u64,
        dest: Address,
        revocation: &Revocation,
    ) -> Result<(), Vl2Error> {
        let now = self.clock(now);
        let nwid = revocation.network_id;
        if nwid.controller() != self.address() {
            return Err(Vl2Error::NotController(nwid));
        }
        if dest == self.address() {
            let own = self.identity.to_public();
            if revocation.verify(&own) != Verification::Valid {
                return Err(Vl2Error::BadConfig("revocation not signed by us"));
            }
            self.apply_revocation(now, revocation, dest);
            return Ok(());
        }
        let credentials = NetworkCredentials {
            revocations: vec![revocation.clone()],
            ..Default::default()
        };
        let body = credentials
            .to_bytes()
            .map_err(|e| Vl2Error::Encode(e.to_string()))?;
        let _ = self.send_to_peer(now, dest, Verb::NetworkCredentials, &body);
        Ok(())
    }
}
