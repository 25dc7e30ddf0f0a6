//! CloudTrail messages from Kafka: a single record or a log file `{"Records": [...]}`, from
//! untrusted bytes. Every outcome must be an event or a rejection with a reason; no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_engine::decode::decode_cloudtrail;
use portcullis_engine::{TenantId, TenantRegistry};

fuzz_target!(|data: &[u8]| {
    let mut registry = TenantRegistry::new();
    let acme = TenantId::parse("acme").unwrap();
    registry.add_tenant(acme.clone());
    registry.add_account("111111111111", acme);
    for outcome in decode_cloudtrail(data, &registry, 1 << 20) {
        match outcome {
            Ok(event) => {
                // What is stored must be storable: no NUL reaches Postgres.
                assert!(!event.principal.contains('\0') && !event.action.contains('\0'));
            }
            Err(rejected) => assert!(!rejected.error.to_string().is_empty()),
        }
    }
});
