//! Checkpoints: a log's size and root, signed. The body is C2SP tlog-checkpoint
//! (<https://c2sp.org/tlog-checkpoint>, as of its 2024 text: origin, size, base64 root, then
//! extension lines) with one extension line, `time <RFC 3339>`, the signing time; the
//! signature is a C2SP signed note (<https://c2sp.org/signed-note>) with an Ed25519 key.

use chrono::{DateTime, SecondsFormat, Utc};
use signed_note::{Note, NoteError, Signature, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use super::{EvidenceError, LogKey};

const TIME_PREFIX: &str = "time ";

#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointBody {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: DateTime<Utc>,
}

/// A checkpoint whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedCheckpoint {
    pub body: CheckpointBody,
    /// `<name>+<id>` of the key that signed it.
    pub signed_by: String,
}

/// The signed note for `body`, as text.
pub fn sign_checkpoint(body: &CheckpointBody, key: &LogKey) -> Result<String, EvidenceError> {
    let time = body.time.to_rfc3339_opts(SecondsFormat::Millis, true);
    let text = Checkpoint::new(
        &body.origin,
        body.size,
        body.root,
        &format!("{TIME_PREFIX}{time}\n"),
    )
    .map_err(|e| EvidenceError::MalformedCheckpoint(format!("{e} (origin {:?})", body.origin)))?
    .to_bytes();
    let mut note = Note::new(&text, &[]).map_err(malformed)?;
    note.add_sigs(&[key.signer()]).map_err(malformed)?;
    String::from_utf8(note.to_bytes()).map_err(|e| malformed(e.to_string()))
}

/// The verifiers for public key texts (`<name>+<id>+<base64>`).
pub fn verifiers(public_keys: &[String]) -> Result<VerifierList, EvidenceError> {
    let mut list: Vec<Box<dyn signed_note::Verifier>> = Vec::new();
    for key in public_keys {
        let v = StandardVerifier::new(key.trim())
            .map_err(|e| EvidenceError::MalformedKey(format!("{key:?}: {e}")))?;
        list.push(Box::new(v));
    }
    Ok(VerifierList::new(list))
}

/// Parses and checks a signed checkpoint against `known` keys.
pub fn open_checkpoint(
    note: &str,
    known: &VerifierList,
) -> Result<OpenedCheckpoint, EvidenceError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(malformed)?;
    let verified = match parsed.verify(known) {
        Ok((verified, _)) => verified,
        Err(NoteError::InvalidSignature { name, id }) => {
            return Err(EvidenceError::BadSignature(format!("{name}+{id:08x}")))
        }
        Err(NoteError::UnverifiedNote) => {
            return Err(EvidenceError::UnknownKey(signers_named(note).join(", ")))
        }
        Err(e) => return Err(malformed(e)),
    };
    let checkpoint = Checkpoint::from_bytes(parsed.text()).map_err(malformed)?;
    let time = checkpoint
        .extension()
        .lines()
        .find_map(|l| l.strip_prefix(TIME_PREFIX))
        .ok_or_else(|| malformed("no `time` line"))?;
    let time = DateTime::parse_from_rfc3339(time)
        .map_err(|e| malformed(format!("time: {e}")))?
        .with_timezone(&Utc);
    Ok(OpenedCheckpoint {
        body: CheckpointBody {
            origin: checkpoint.origin().to_owned(),
            size: checkpoint.size(),
            root: *checkpoint.hash(),
            time,
        },
        signed_by: verified
            .first()
            .map(|s| format!("{}+{:08x}", s.name(), s.id()))
            .unwrap_or_default(),
    })
}

/// `<name>+<id>` of every signature line of `note`, verified or not.
fn signers_named(note: &str) -> Vec<String> {
    note.lines()
        .filter_map(|l| Signature::from_bytes(l.as_bytes()).ok())
        .map(|s| format!("{}+{:08x}", s.name(), s.id()))
        .collect()
}

fn malformed(e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::MalformedCheckpoint(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> CheckpointBody {
        CheckpointBody {
            origin: "portcullis.test/receipts/acme".into(),
            size: 3,
            root: Hash([5; 32]),
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn signs_a_c2sp_note_that_opens_with_its_key_only() {
        let key = LogKey::from_seed("portcullis.test", [3; 32]).unwrap();
        let note = sign_checkpoint(&body(), &key).unwrap();
        assert!(note.starts_with("portcullis.test/receipts/acme\n3\n"));
        assert!(note.contains("\ntime 2023-11-14T22:13:20.000Z\n\n— portcullis.test "));
        let known = verifiers(&[key.public_text().to_owned()]).unwrap();
        let opened = open_checkpoint(&note, &known).unwrap();
        assert_eq!(opened.body, body());
        assert_eq!(opened.signed_by, key.label());

        let other = LogKey::from_seed("portcullis.test", [4; 32]).unwrap();
        let strangers = verifiers(&[other.public_text().to_owned()]).unwrap();
        match open_checkpoint(&note, &strangers) {
            Err(EvidenceError::UnknownKey(who)) => assert_eq!(who, key.label()),
            other => panic!("expected an unknown key, got {other:?}"),
        }
    }

    #[test]
    fn an_altered_body_fails_its_signature() {
        let key = LogKey::from_seed("portcullis.test", [3; 32]).unwrap();
        let note = sign_checkpoint(&body(), &key).unwrap();
        let forged = note.replacen("\n3\n", "\n4\n", 1);
        let known = verifiers(&[key.public_text().to_owned()]).unwrap();
        assert!(matches!(
            open_checkpoint(&forged, &known),
            Err(EvidenceError::BadSignature(_))
        ));
        assert!(matches!(
            open_checkpoint("not a note", &known),
            Err(EvidenceError::MalformedCheckpoint(_))
        ));
    }
}
