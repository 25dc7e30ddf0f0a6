//! For tests, the library's and the integration suite's alike: not part of the engine.

/// Whether a test may go on where the machine lacks what it needs (`available` false). A test
/// never passes for want of its feature: it fails, saying what is missing, unless the feature is
/// named in `PORTCULLIS_TEST_SKIP` (comma-separated), and then it prints that it skipped.
/// Returns `available`, for the test to leave out what it cannot check.
pub fn require(feature: &str, available: bool, why: &str) -> bool {
    if available {
        return true;
    }
    let skip = std::env::var("PORTCULLIS_TEST_SKIP").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == feature) {
        eprintln!("SKIPPED ({feature}): {why}");
        return false;
    }
    panic!("{why}; to run the suite without it, set PORTCULLIS_TEST_SKIP={feature}");
}
