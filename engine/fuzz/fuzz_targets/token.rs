//! Bearer tokens and scopes as presented by untrusted callers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_engine::access::{Grants, TokenSecret};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = TokenSecret::parse(text) {
        // A token that parses is one this engine could have made, spelled one way only.
        assert_eq!(token.expose(), text);
        assert_eq!(TokenSecret::parse(token.expose()).unwrap().hash(), token.hash());
    }
    let scopes: Vec<&str> = text.split(',').collect();
    if let Ok(grants) = Grants::parse(&scopes) {
        // Scopes read back as written.
        let again = Grants::parse(&grants.to_strings()).unwrap();
        assert_eq!(again, grants);
    }
});
