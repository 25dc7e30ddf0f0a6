//! Agent events from MQTT: a topic and a payload, both untrusted. The first line of the input
//! is the topic, the rest the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_engine::decode::decode_device;
use portcullis_engine::{TenantId, TenantRegistry};

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let topic = String::from_utf8_lossy(topic);
    let mut registry = TenantRegistry::new();
    registry.add_tenant(TenantId::parse("acme").unwrap());
    match decode_device("portcullis", &topic, payload, &registry, 1 << 20) {
        Ok(event) => assert!(!event.principal.contains('\0')),
        Err(rejected) => assert!(!rejected.error.to_string().is_empty()),
    }
});
