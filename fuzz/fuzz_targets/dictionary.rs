//! Dictionary parsing never panics, and parse → serialize → parse is stable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zt_wire::dictionary::Dictionary;

fuzz_target!(|data: &[u8]| {
    let dict = Dictionary::parse(data);
    let text = dict.to_bytes();
    assert_eq!(text.len(), dict.encoded_len());
    assert_eq!(Dictionary::parse(&text), dict);
    for (key, _) in dict.iter() {
        let key: &'static str = Box::leak(key.to_string().into_boxed_str());
        let _ = dict.get_u64(key);
        let _ = dict.get_i64(key);
        let _ = dict.get_address(key);
        let _ = dict.get_bool(key);
    }
});
