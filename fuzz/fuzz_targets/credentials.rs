//! NETWORK_CREDENTIALS, NETWORK_CONFIG_REQUEST and config chunk parsing never panic; parsed
//! values re-serialize and parse back equal; the chunk assembler never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zt_wire::verbs::network::{
    ConfigAssembler, ConfigPayload, NetworkConfigRequest, NetworkCredentials,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(creds) = NetworkCredentials::parse(data) {
        let bytes = creds.to_bytes().expect("parsed counts fit");
        assert_eq!(NetworkCredentials::parse(&bytes).as_ref(), Ok(&creds));
    }
    if let Ok(request) = NetworkConfigRequest::parse(data) {
        if let Ok(bytes) = request.to_bytes() {
            assert_eq!(NetworkConfigRequest::parse(&bytes).as_ref(), Ok(&request));
        }
    }
    if let Ok(ConfigPayload::Chunk(chunk)) = ConfigPayload::parse(data) {
        let bytes = chunk.to_bytes().expect("parsed chunk fits");
        assert_eq!(
            ConfigPayload::parse(&bytes),
            Ok(ConfigPayload::Chunk(chunk.clone()))
        );
        let mut assembler = ConfigAssembler::new(chunk.network_id);
        let _ = assembler.accept_verified(&chunk);
        let mut shifted = chunk.clone();
        shifted.index = shifted.index.wrapping_add(shifted.data.len() as u32);
        let _ = assembler.accept_verified(&shifted);
    }
});
