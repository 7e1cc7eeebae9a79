//! What the benchmarks share: the median of timings (`command.rs`: a timed run of a
//! command, for those that start programs).

/// The median of `samples` (the upper one of an even count).
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
