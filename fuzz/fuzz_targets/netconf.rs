//! Network config parsing never panics; a parsed config re-serializes and parses back equal.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zt_wire::netconf::NetworkConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = NetworkConfig::parse(data) {
        let text = config.to_bytes().expect("a parsed config is within limits");
        assert_eq!(NetworkConfig::parse(&text).as_ref(), Ok(&config));
    }
});
