//! Which segments an agent belongs to: a tenant's rules map groups to segments, as seed 000's
//! "agents in the HR group get the HR segment's policy".

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::segment::SegmentId;

/// Agents in `group` get `segment`'s policy.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SegmentRule {
    pub group: String,
    pub segment: SegmentId,
}

/// A tenant's segmentation rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segmentation {
    rules: BTreeSet<SegmentRule>,
}

impl Segmentation {
    pub fn new(rules: impl IntoIterator<Item = SegmentRule>) -> Self {
        Self {
            rules: rules.into_iter().collect(),
        }
    }

    /// The segments of an agent in `groups`, each once, in order. Group names compare exactly.
    pub fn segments_for<S: AsRef<str>>(&self, groups: &[S]) -> BTreeSet<SegmentId> {
        self.rules
            .iter()
            .filter(|r| groups.iter().any(|g| g.as_ref() == r.group))
            .map(|r| r.segment.clone())
            .collect()
    }

    /// The groups whose agents get `segment`: who a new version of it goes to.
    pub fn groups_of(&self, segment: &SegmentId) -> BTreeSet<&str> {
        self.rules
            .iter()
            .filter(|r| &r.segment == segment)
            .map(|r| r.group.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(group: &str, segment: &str) -> SegmentRule {
        SegmentRule {
            group: group.into(),
            segment: SegmentId::parse(segment).unwrap(),
        }
    }

    #[test]
    fn an_agents_groups_give_its_segments_each_once() {
        let s = Segmentation::new([
            rule("HR", "hr"),
            rule("HR-EU", "hr"),
            rule("HR-EU", "eu"),
            rule("Finance", "finance"),
        ]);
        let names =
            |set: BTreeSet<SegmentId>| set.into_iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(names(s.segments_for(&["HR-EU", "HR"])), ["eu", "hr"]);
        assert_eq!(names(s.segments_for(&["Finance"])), ["finance"]);
        assert!(
            s.segments_for(&["hr"]).is_empty(),
            "group names compare exactly"
        );
        assert!(s.segments_for::<&str>(&[]).is_empty());
        let hr = SegmentId::parse("hr").unwrap();
        assert_eq!(s.groups_of(&hr), BTreeSet::from(["HR", "HR-EU"]));
    }
}
