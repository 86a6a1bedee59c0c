//! Checks for the structure codecs (PROTOCOL.md §4.11–4.12, §5, §6): parsing arbitrary bytes
//! never panics, and whatever parses re-serializes to bytes that parse back to the same value.
use zt_wire::dictionary::Dictionary;
use zt_wire::netconf::NetworkConfig;
use zt_wire::verbs::network::{
    ConfigAssembler, ConfigPayload, NetworkConfigRequest, NetworkCredentials,
};
use zt_wire::world::World;

pub fn dictionary(data: &[u8]) {
    let dict = Dictionary::parse(data);
    let text = dict.to_bytes();
    assert_eq!(text.len(), dict.encoded_len());
    assert_eq!(Dictionary::parse(&text), dict);
    // The typed getters on every key a config or request uses.
    for key in [
        "v", "nwid", "ts", "ctmd", "r", "id", "tt", "tl", "f", "ml", "t", "n", "mtu", "ssov",
        "ssoe", "aexpt", "vend", "pv", "majv", "minv", "revv", "mr", "mc", "mcr", "mt", "revr",
    ] {
        let _ = dict.get_u64(key);
        let _ = dict.get_i64(key);
        let _ = dict.get_address(key);
        let _ = dict.get_bool(key);
    }
}

pub fn world(data: &[u8]) {
    if let Ok(world) = World::parse(data) {
        let bytes = world.to_bytes();
        assert_eq!(World::parse(&bytes).as_ref(), Ok(&world));
        let _ = world.verify_signed_by(&world.updates_must_be_signed_by);
        let _ = world.should_be_replaced_by(&world);
    }
}

pub fn netconf(data: &[u8]) {
    if let Ok(config) = NetworkConfig::parse(data) {
        let text = config.to_bytes().expect("a parsed config is within limits");
        assert_eq!(NetworkConfig::parse(&text).as_ref(), Ok(&config));
    }
}

pub fn credentials(data: &[u8]) {
    if let Ok(creds) = NetworkCredentials::parse(data) {
        let bytes = creds.to_bytes().expect("parsed counts fit");
        assert_eq!(NetworkCredentials::parse(&bytes).as_ref(), Ok(&creds));
    }
    if let Ok(request) = NetworkConfigRequest::parse(data) {
        let bytes = request
            .to_bytes()
            .expect("re-escaped metadata is never longer than the input");
        assert_eq!(NetworkConfigRequest::parse(&bytes).as_ref(), Ok(&request));
    }
    if let Ok(ConfigPayload::Chunk(chunk)) = ConfigPayload::parse(data) {
        let bytes = chunk.to_bytes().expect("parsed chunk fits");
        assert_eq!(
            ConfigPayload::parse(&bytes),
            Ok(ConfigPayload::Chunk(chunk.clone()))
        );
        let mut assembler = ConfigAssembler::new(chunk.network_id);
        let _ = assembler.accept_verified(&chunk);
        let mut next = chunk.clone();
        next.index = next.index.wrapping_add(next.data.len() as u32);
        let _ = assembler.accept_verified(&next);
    }
}
