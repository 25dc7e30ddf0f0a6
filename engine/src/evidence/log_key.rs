//! The key that signs a log's checkpoints, in the text forms of Go's `note` package and C2SP
//! signed-note: `PRIVATE+KEY+<name>+<id>+<base64(0x01‖seed)>` for the private key and
//! `<name>+<id>+<base64(0x01‖public key)>` for the public one, where the id is the first four
//! bytes of `SHA-256(name‖"\n"‖0x01‖public key)`. Any signed-note verifier reads them.

use base64::prelude::*;
use ed25519_dalek::SigningKey;
use signed_note::{is_key_name_valid, key_id, Signer, StandardSigner};

use super::EvidenceError;

/// Signed-note's algorithm byte for Ed25519.
const ED25519: u8 = 1;

#[derive(Clone)]
pub struct LogKey {
    signer: StandardSigner,
    private_text: String,
    public_text: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("LogKey")
            .field("public", &self.public_text)
            .finish()
    }
}

impl LogKey {
    /// A key named `name` from 32 random bytes the caller draws.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, EvidenceError> {
        if !is_key_name_valid(name) {
            return Err(EvidenceError::BadKeyName(name.to_owned()));
        }
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let mut encoded_public = vec![ED25519];
        encoded_public.extend_from_slice(&public);
        let id = key_id(name, &encoded_public);
        let mut encoded_private = vec![ED25519];
        encoded_private.extend_from_slice(&seed);
        let private_text = format!(
            "PRIVATE+KEY+{name}+{id:08x}+{}",
            BASE64_STANDARD.encode(encoded_private)
        );
        Self::from_private_text(&private_text)
    }

    /// Reads a private key written by [`LogKey::private_text`].
    pub fn from_private_text(text: &str) -> Result<Self, EvidenceError> {
        let text = text.trim();
        let signer = StandardSigner::new(text)
            .map_err(|e| EvidenceError::MalformedKey(format!("private key: {e}")))?;
        // `PRIVATE+KEY+<name>+<id>+<base64>`: the base64 may itself hold '+'.
        let seed = text
            .splitn(5, '+')
            .nth(4)
            .and_then(|b64| BASE64_STANDARD.decode(b64).ok())
            .filter(|k| k.len() == 33)
            .ok_or_else(|| EvidenceError::MalformedKey("private key: not Ed25519".into()))?;
        let seed: [u8; 32] = seed[1..].try_into().expect("33 bytes checked");
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let mut encoded_public = vec![ED25519];
        encoded_public.extend_from_slice(&public);
        let public_text = format!(
            "{}+{:08x}+{}",
            signer.name(),
            signer.key_id(),
            BASE64_STANDARD.encode(encoded_public)
        );
        Ok(Self {
            signer,
            private_text: text.to_owned(),
            public_text,
        })
    }

    pub fn name(&self) -> &str {
        self.signer.name()
    }

    pub fn id(&self) -> u32 {
        self.signer.key_id()
    }

    /// `<name>+<id>`: how checkpoints and messages name the key.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name(), self.id())
    }

    /// The private key, for the key file only.
    pub fn private_text(&self) -> &str {
        &self.private_text
    }

    /// The public (verifier) key: what a bundle carries and a third party pins.
    pub fn public_text(&self) -> &str {
        &self.public_text
    }

    pub(super) fn signer(&self) -> &StandardSigner {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_verify() {
        // Seeds whose base64 holds '+' and '/' too.
        for seed in 0..=255u8 {
            let key = LogKey::from_seed("portcullis.test", [seed; 32]).unwrap();
            let again = LogKey::from_private_text(key.private_text()).unwrap();
            assert_eq!(again.public_text(), key.public_text());
        }
        let key = LogKey::from_seed("portcullis.test", [9; 32]).unwrap();
        let again = LogKey::from_private_text(key.private_text()).unwrap();
        assert_eq!(again.public_text(), key.public_text());
        assert_eq!(again.id(), key.id());
        // The public text is what signed-note verifiers take.
        signed_note::StandardVerifier::new(key.public_text()).unwrap();
        assert!(key.public_text().starts_with(&key.label()));
    }

    #[test]
    fn refuses_bad_names_and_garbled_keys() {
        assert!(LogKey::from_seed("has space", [1; 32]).is_err());
        assert!(LogKey::from_seed("a+b", [1; 32]).is_err());
        let key = LogKey::from_seed("ok", [1; 32]).unwrap();
        let garbled = key.private_text().replace("+ok+", "+other+");
        assert!(LogKey::from_private_text(&garbled).is_err());
        assert!(LogKey::from_private_text("PRIVATE+KEY+x").is_err());
    }
}
