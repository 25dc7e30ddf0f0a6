//! The average path length of an unsuccessful search in a binary search tree, `c(n)` in Liu, Ting
//! and Zhou's "Isolation Forest" (2008): what a leaf holding `n` points adds to the depth at which
//! it was reached, and the normaliser of the anomaly score.

/// The Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `c(n) = 2 H(n − 1) − 2 (n − 1) / n`, with `H(i) ≈ ln i + γ`; `c(1) = 0` and `c(2) = 1`.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_known_values() {
        assert_eq!(average_path_length(0), 0.0);
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // 2 (ln 255 + γ) − 2 · 255 / 256, as scikit-learn's `_average_path_length(256)`.
        assert!((average_path_length(256) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn grows_like_a_logarithm() {
        let mut previous = 0.0;
        for n in 3..10_000 {
            let c = average_path_length(n);
            assert!(
                c > previous,
                "c({n}) = {c} not above c({}) = {previous}",
                n - 1
            );
            previous = c;
        }
        assert!(average_path_length(1 << 20) < 2.0 * 20.0_f64 * std::f64::consts::LN_2 + 1.2);
    }
}
