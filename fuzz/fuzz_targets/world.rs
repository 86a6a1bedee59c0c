//! World parsing never panics; a parsed world re-serializes to something that parses to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zt_wire::world::World;

fuzz_target!(|data: &[u8]| {
    if let Ok(world) = World::parse(data) {
        let bytes = world.to_bytes();
        assert_eq!(World::parse(&bytes).as_ref(), Ok(&world));
        let _ = world.verify_signed_by(&world.updates_must_be_signed_by);
        let _ = world.should_be_replaced_by(&world);
    }
});
