//! A tree hash as bundles and the API write it: standard base64, as checkpoints do.

use base64::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tlog_tiles::Hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashText(pub [u8; 32]);

impl From<Hash> for HashText {
    fn from(h: Hash) -> Self {
        Self(h.0)
    }
}

impl From<HashText> for Hash {
    fn from(h: HashText) -> Self {
        Hash(h.0)
    }
}

impl std::fmt::Display for HashText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&BASE64_STANDARD.encode(self.0))
    }
}

impl std::str::FromStr for HashText {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = BASE64_STANDARD
            .decode(s)
            .map_err(|e| format!("not base64: {e}"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("a hash is 32 bytes, got {}", b.len()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for HashText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HashText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_wrong_lengths() {
        let h = HashText([7; 32]);
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<HashText>(&text).unwrap(), h);
        assert!(serde_json::from_str::<HashText>("\"AAAA\"").is_err());
        assert!(serde_json::from_str::<HashText>("\"not base64!\"").is_err());
    }
}
