//! Policy distribution to edge agents (seed 000), the pure parts: segment ids, which segments
//! an agent's groups put it in, the signed envelope a segment policy version travels in, and the
//! rule by which an agent applies versions in order with no gap.

mod envelope;
mod ordering;
mod policy_document;
mod segment;
mod segmentation;

pub use envelope::{
    pae, EnvelopeError, EnvelopeSignature, PolicySigner, SignedEnvelope, TrustedKeys,
    SEGMENT_POLICY_TYPE,
};
pub use ordering::{offer, Offer};
pub use policy_document::{SegmentPolicy, SEGMENT_POLICY_PROTOCOL};
pub use segment::{SegmentId, SegmentIdError};
pub use segmentation::{SegmentRule, Segmentation};
