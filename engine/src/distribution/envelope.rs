//! The signed envelope a segment policy version travels in, after DSSE (the Dead Simple
//! Signing Envelope): what is signed is `PAE(payloadType, payload)`, never the JSON around it,
//! so the signature covers exactly the bytes and their declared type and nothing is re-encoded
//! before checking. Ed25519, with a key id so keys can rotate: agents trust a set of key ids,
//! old and new both during an overlap.
//!
//! JSON shape (DSSE's): `{"payloadType": …, "payload": base64, "signatures": [{"keyid": …,
//! "sig": base64}]}`.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The payload type of a segment policy version.
pub const SEGMENT_POLICY_TYPE: &str = "application/vnd.portcullis.segment-policy+json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEnvelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    #[serde(with = "b64")]
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    pub keyid: String,
    #[serde(with = "b64")]
    pub sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the envelope carries {found:?}, not {expected:?}")]
    PayloadType { expected: String, found: String },
    #[error("the envelope has no signature by a trusted key (key ids: {0})")]
    Untrusted(String),
    #[error("the signature by key {0:?} does not match the payload")]
    BadSignature(String),
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key id of an Ed25519 public key: `ed25519:` and the first 16 hex digits of its
/// SHA-256. Derived, never chosen, so two keys cannot share an id and an agent given only a
/// public key knows its id.
pub fn key_id_of(public: &[u8; 32]) -> String {
    let digest = Sha256::digest(public);
    format!("ed25519:{}", hex::encode(&digest[..8]))
}

/// A public key as operators pass it around: standard base64 of its 32 bytes.
pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("an Ed25519 public key is 32 bytes, not {}", b.len()))?;
    VerifyingKey::from_bytes(&key).map_err(|e| format!("not an Ed25519 public key: {e}"))?;
    Ok(key)
}

/// Standard base64 of a public key, as [`parse_public_key`] reads it.
pub fn encode_public_key(public: &[u8; 32]) -> String {
    STANDARD.encode(public)
}

/// Signs envelopes with one key.
pub struct PolicySigner {
    key_id: String,
    key: SigningKey,
}

impl PolicySigner {
    /// A signer from a 32-byte Ed25519 secret key (generated and kept by the operator).
    pub fn new(key_id: impl Into<String>, secret: &[u8; 32]) -> Self {
        Self {
            key_id: key_id.into(),
            key: SigningKey::from_bytes(secret),
        }
    }

    /// A signer whose key id is derived from its public key ([`key_id_of`]).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        Self {
            key_id: key_id_of(&key.verifying_key().to_bytes()),
            key,
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key agents are configured to trust.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, payload_type: &str, payload: Vec<u8>) -> SignedEnvelope {
        let sig = self.key.sign(&pae(payload_type, &payload));
        SignedEnvelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures: vec![EnvelopeSignature {
                keyid: self.key_id.clone(),
                sig: sig.to_bytes().to_vec(),
            }],
        }
    }
}

/// The keys an agent accepts policy from, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Trusts `public` under `key_id`; refuses bytes that are not an Ed25519 public key.
    pub fn trust(&mut self, key_id: impl Into<String>, public: &[u8; 32]) -> Result<(), String> {
        let key = VerifyingKey::from_bytes(public).map_err(|e| e.to_string())?;
        self.keys.insert(key_id.into(), key);
        Ok(())
    }

    /// Trusts `public` under its derived id ([`key_id_of`]); returns that id.
    pub fn trust_public(&mut self, public: &[u8; 32]) -> Result<String, String> {
        let id = key_id_of(public);
        self.trust(id.clone(), public)?;
        Ok(id)
    }

    /// The key ids trusted now.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Stops trusting `key_id` (the end of a rotation's overlap).
    pub fn distrust(&mut self, key_id: &str) {
        self.keys.remove(key_id);
    }

    /// The payload, if the envelope has the expected type and at least one valid signature by
    /// a trusted key. A signature by an unknown key is passed over; a bad one by a trusted key
    /// is an error (the payload was altered, or the key misused).
    pub fn verify<'e>(
        &self,
        envelope: &'e SignedEnvelope,
        expected_type: &str,
    ) -> Result<&'e [u8], EnvelopeError> {
        if envelope.payload_type != expected_type {
            return Err(EnvelopeError::PayloadType {
                expected: expected_type.to_owned(),
                found: envelope.payload_type.clone(),
            });
        }
        let message = pae(&envelope.payload_type, &envelope.payload);
        for s in &envelope.signatures {
            let Some(key) = self.keys.get(&s.keyid) else {
                continue;
            };
            let valid = Signature::from_slice(&s.sig)
                .ok()
                .is_some_and(|sig| key.verify_strict(&message, &sig).is_ok());
            return if valid {
                Ok(&envelope.payload)
            } else {
                Err(EnvelopeError::BadSignature(s.keyid.clone()))
            };
        }
        Err(EnvelopeError::Untrusted(
            envelope
                .signatures
                .iter()
                .map(|s| s.keyid.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }
}

mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = SEGMENT_POLICY_TYPE;

    fn signer(id: &str, seed: u8) -> PolicySigner {
        PolicySigner::new(id, &[seed; 32])
    }

    fn trusting(signers: &[&PolicySigner]) -> TrustedKeys {
        let mut keys = TrustedKeys::default();
        for s in signers {
            keys.trust(s.key_id(), &s.public_key()).unwrap();
        }
        keys
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(pae("t", b"hi"), b"DSSEv1 1 t 2 hi".to_vec());
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ".to_vec());
    }

    #[test]
    fn a_signed_envelope_verifies_after_a_json_round_trip() {
        let k1 = signer("k1", 1);
        let env = k1.sign(T, br#"{"version": 3}"#.to_vec());
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains("\"payloadType\"") && json.contains("\"keyid\":\"k1\""));
        let back: SignedEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(
            trusting(&[&k1]).verify(&back, T).unwrap(),
            br#"{"version": 3}"#
        );
    }

    #[test]
    fn forged_altered_or_untrusted_envelopes_are_refused() {
        let (k1, mallory) = (signer("k1", 1), signer("k1", 66));
        let keys = trusting(&[&k1]);
        // Altered payload.
        let mut env = k1.sign(T, b"v3".to_vec());
        env.payload = b"v4".to_vec();
        assert_eq!(
            keys.verify(&env, T),
            Err(EnvelopeError::BadSignature("k1".into()))
        );
        // The type is signed too.
        let mut env = k1.sign(T, b"v3".to_vec());
        env.payload_type = "text/plain".into();
        assert!(matches!(
            keys.verify(&env, "text/plain"),
            Err(EnvelopeError::BadSignature(_))
        ));
        assert!(matches!(
            keys.verify(&env, T),
            Err(EnvelopeError::PayloadType { .. })
        ));
        // Signed by another key under a trusted key id.
        let env = mallory.sign(T, b"v3".to_vec());
        assert_eq!(
            keys.verify(&env, T),
            Err(EnvelopeError::BadSignature("k1".into()))
        );
        // Unsigned, or signed by an unknown key id.
        let mut env = k1.sign(T, b"v3".to_vec());
        env.signatures.clear();
        assert!(matches!(
            keys.verify(&env, T),
            Err(EnvelopeError::Untrusted(_))
        ));
        let env = signer("k9", 9).sign(T, b"v3".to_vec());
        assert_eq!(
            keys.verify(&env, T),
            Err(EnvelopeError::Untrusted("k9".into()))
        );
        // A truncated signature.
        let mut env = k1.sign(T, b"v3".to_vec());
        env.signatures[0].sig.truncate(10);
        assert!(matches!(
            keys.verify(&env, T),
            Err(EnvelopeError::BadSignature(_))
        ));
    }

    #[test]
    fn derived_key_ids_name_the_public_key_and_round_trip_as_base64() {
        let s = PolicySigner::from_secret(&[7; 32]);
        assert!(s.key_id().starts_with("ed25519:") && s.key_id().len() == 24);
        assert_eq!(s.key_id(), key_id_of(&s.public_key()));
        assert_ne!(s.key_id(), PolicySigner::from_secret(&[8; 32]).key_id());
        let text = encode_public_key(&s.public_key());
        assert_eq!(
            parse_public_key(&format!(" {text}\n")).unwrap(),
            s.public_key()
        );
        let mut keys = TrustedKeys::default();
        assert_eq!(keys.trust_public(&s.public_key()).unwrap(), s.key_id());
        assert!(keys.verify(&s.sign(T, b"p".to_vec()), T).is_ok());
        assert!(parse_public_key("AAAA").unwrap_err().contains("32 bytes"));
        assert!(parse_public_key("not base64!").is_err());
    }

    #[test]
    fn during_a_rotation_old_and_new_keys_are_both_accepted() {
        let (old, new) = (signer("2026-11", 1), signer("2026-12", 2));
        let mut keys = trusting(&[&old]);
        keys.trust(new.key_id(), &new.public_key()).unwrap();
        for s in [&old, &new] {
            assert!(
                keys.verify(&s.sign(T, b"p".to_vec()), T).is_ok(),
                "{}",
                s.key_id()
            );
        }
        keys.distrust(old.key_id());
        assert!(keys.verify(&old.sign(T, b"p".to_vec()), T).is_err());
        assert!(keys.verify(&new.sign(T, b"p".to_vec()), T).is_ok());
    }
}
