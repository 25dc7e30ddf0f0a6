//! How an agent takes a segment policy version: in order, once, never across a gap.
//!
//! Every version carries the segment's whole policy, but agents promise more than "the latest
//! wins": each applies every version in order, so what it enforced when is provable, and an
//! update lost on the way (OPAL's known failure) is noticed and fetched, not skipped.

use std::ops::RangeInclusive;

/// What to do with version `incoming` of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The next version (or the first one this agent gets, at bootstrap): apply it.
    Apply,
    /// Already applied (a redelivery, or an old version replayed): ignore it.
    AlreadyHave,
    /// Versions are missing before it: ask for these, apply them in order, then this one.
    Gap { missing: RangeInclusive<u64> },
}

/// `applied`: the version this agent enforces now, if any.
pub fn offer(applied: Option<u64>, incoming: u64) -> Offer {
    match applied {
        None => Offer::Apply,
        Some(n) if incoming <= n => Offer::AlreadyHave,
        Some(n) if incoming == n + 1 => Offer::Apply,
        Some(n) => Offer::Gap {
            missing: n + 1..=incoming - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_apply_in_order_once_and_never_across_a_gap() {
        assert_eq!(offer(None, 7), Offer::Apply);
        assert_eq!(offer(Some(3), 4), Offer::Apply);
        assert_eq!(offer(Some(3), 3), Offer::AlreadyHave);
        assert_eq!(offer(Some(3), 1), Offer::AlreadyHave);
        assert_eq!(offer(Some(3), 5), Offer::Gap { missing: 4..=4 });
        assert_eq!(offer(Some(3), 9), Offer::Gap { missing: 4..=8 });
        assert_eq!(offer(Some(u64::MAX), 0), Offer::AlreadyHave);
    }

    #[test]
    fn an_agent_offered_versions_in_any_order_ends_with_all_applied_in_order() {
        // Deliveries out of order and repeated; the agent applies what is next and fetches
        // the missing ones (here: from the same list, as the engine would answer).
        let published: Vec<u64> = (1..=6).collect();
        let arrivals = [1, 3, 3, 2, 6, 1, 4, 5, 6];
        let (mut applied, mut log) = (None::<u64>, Vec::new());
        for v in arrivals {
            match offer(applied, v) {
                Offer::Apply => {
                    log.push(v);
                    applied = Some(v);
                }
                Offer::AlreadyHave => {}
                Offer::Gap { missing } => {
                    for m in missing.chain([v]) {
                        assert!(published.contains(&m));
                        assert_eq!(offer(applied, m), Offer::Apply);
                        log.push(m);
                        applied = Some(m);
                    }
                }
            }
        }
        assert_eq!(log, published, "every version once, in order");
    }
}
