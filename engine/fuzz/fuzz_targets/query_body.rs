//! The decision API's request body, `{"input": ...}`, from untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_engine::decode::contains_nul;
use portcullis_engine::policy::query_input;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(input)) = query_input(data) {
        // An accepted input is logged; it must hold no NUL.
        assert!(!contains_nul(&input));
    }
});
