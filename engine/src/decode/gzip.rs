//! CloudTrail log files as CloudTrail writes them to S3: gzip-compressed JSON. Exporters that
//! forward those objects to Kafka unchanged put the compressed bytes on the topic.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::DecodeError;

/// Whether `payload` starts with the gzip magic bytes (RFC 1952): JSON never does.
pub(crate) fn is_gzip(payload: &[u8]) -> bool {
    payload.starts_with(&[0x1f, 0x8b])
}

/// Inflates `payload`, refusing as soon as the output would pass `limit` bytes: a small
/// compressed message must not become an unbounded allocation.
pub(crate) fn inflate(payload: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    // Concatenated members are one stream, as `gzip -d` reads them.
    let reader = MultiGzDecoder::new(payload);
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::with_capacity(payload.len().saturating_mul(4).min(limit));
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::BadGzip(e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::InflatedTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::{write::GzEncoder, Compression};

    use super::*;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn inflates_within_the_limit_and_refuses_past_it() {
        let body = br#"{"Records": []}"#;
        let packed = gz(body);
        assert!(is_gzip(&packed) && !is_gzip(body));
        assert_eq!(inflate(&packed, body.len()).unwrap(), body);
        assert_eq!(
            inflate(&packed, body.len() - 1),
            Err(DecodeError::InflatedTooLarge {
                limit: body.len() - 1
            })
        );
        // A bomb: a megabyte of zeros in about a kilobyte stops at the limit.
        let bomb = gz(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        assert_eq!(
            inflate(&bomb, 1000),
            Err(DecodeError::InflatedTooLarge { limit: 1000 })
        );
    }

    #[test]
    fn concatenated_members_are_one_stream_and_a_cut_one_is_refused() {
        let mut two = gz(b"{\"Rec");
        two.extend(gz(b"ords\": []}"));
        assert_eq!(inflate(&two, 100).unwrap(), br#"{"Records": []}"#);
        let packed = gz(br#"{"Records": []}"#);
        assert!(matches!(
            inflate(&packed[..packed.len() - 6], 100),
            Err(DecodeError::BadGzip(_))
        ));
    }
}
