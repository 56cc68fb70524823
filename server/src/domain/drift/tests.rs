//! The conformance fixture (`tests/fixtures/drift`, produced by scipy and
//! Evidently) against the exact samples.

use serde_json::Value;

use super::*;

const FIXTURE: &str = include_str!("../../../../tests/fixtures/drift/conformance.json");

/// The fixture's signals and their scales.
pub const SIGNALS: [(&str, Scale); 5] = [
    ("violationProbability", Scale::Unit),
    ("confidenceScore", Scale::Unit),
    ("riskScore", Scale::Unit),
    ("inferenceTimeMs", Scale::Open),
    ("shap", Scale::Open),
];

/// A sample as single values with their counts.
fn cells(values: &Value) -> Vec<Cell> {
    let mut values: Vec<f64> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let mut out: Vec<Cell> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some(c) if c.lower == v => c.count += 1,
            _ => out.push(Cell::point(v, 1)),
        }
    }
    out
}

fn close(got: f64, expected: f64, what: &str) {
    assert!(
        (got - expected).abs() <= 1e-6,
        "{what}: expected {expected}, got {got}"
    );
}

#[test]
fn exact_samples_match_scipy_and_evidently() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        for (signal, scale) in SIGNALS {
            let what = format!("{} / {signal}", case["name"]);
            let expected = &case["expected"][signal];
            let comparison = Comparison::new(
                &cells(&case["reference"][signal]),
                &cells(&case["current"][signal]),
                scale,
            );
            assert!(comparison.exact());
            let bins = comparison.bins();
            let counts: Vec<(u64, u64)> = bins.iter().map(|b| (b.reference, b.current)).collect();
            let expected_counts: Vec<(u64, u64)> = expected["bins"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (b[1].as_u64().unwrap(), b[2].as_u64().unwrap()))
                .collect();
            assert_eq!(counts, expected_counts, "{what}: bins");
            let ks = comparison.ks();
            assert_eq!(ks.error_bound, 0.0);
            close(
                ks.value,
                expected["ks"].as_f64().unwrap(),
                &format!("{what} KS"),
            );
            let p = comparison.ks_p_value(ks.value);
            let expected_p = expected["ksPValue"].as_f64().unwrap();
            assert!(
                (p - expected_p).abs() <= 1e-6 * expected_p.max(1e-300)
                    || (p - expected_p).abs() <= 1e-12,
                "{what} KS p-value: expected {expected_p}, got {p}"
            );
            let w = comparison.wasserstein();
            assert_eq!(w.error_bound, 0.0);
            close(
                w.value,
                expected["wasserstein"].as_f64().unwrap(),
                &format!("{what} Wasserstein"),
            );
            close(
                comparison.psi(&bins),
                expected["psi"].as_f64().unwrap(),
                &format!("{what} PSI"),
            );
            close(
                comparison.jensen_shannon(&bins),
                expected["jensenShannon"].as_f64().unwrap(),
                &format!("{what} JS"),
            );
            close(
                comparison.hellinger(&bins),
                expected["hellinger"].as_f64().unwrap(),
                &format!("{what} Hellinger"),
            );
        }
    }
}

/// The same samples in 1 %-wide bins (as the PostgreSQL rollups keep
/// unit-interval signals): the binned methods are unchanged, KS and
/// Wasserstein within their bounds.
#[test]
fn binned_samples_stay_within_their_bounds() {
    let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
    for case in fixture["cases"].as_array().unwrap() {
        for signal in ["violationProbability", "confidenceScore", "riskScore"] {
            let what = format!("{} / {signal}", case["name"]);
            let expected = &case["expected"][signal];
            let to_bins = |values: &Value| -> Vec<Cell> {
                cells(values)
                    .into_iter()
                    .map(|c| {
                        let bin = (c.lower * 100.0 + 1e-9).floor();
                        if bin >= 100.0 {
                            Cell::point(1.0, c.count)
                        } else {
                            Cell {
                                lower: bin / 100.0,
                                upper: (bin + 1.0) / 100.0,
                                count: c.count,
                            }
                        }
                    })
                    .collect()
            };
            let comparison = Comparison::new(
                &to_bins(&case["reference"][signal]),
                &to_bins(&case["current"][signal]),
                Scale::Unit,
            );
            assert!(!comparison.exact());
            let bins = comparison.bins();
            close(
                comparison.psi(&bins),
                expected["psi"].as_f64().unwrap(),
                &format!("{what} PSI"),
            );
            close(
                comparison.hellinger(&bins),
                expected["hellinger"].as_f64().unwrap(),
                &format!("{what} Hellinger"),
            );
            for (estimate, key) in [
                (comparison.ks(), "ks"),
                (comparison.wasserstein(), "wasserstein"),
            ] {
                let exact = expected[key].as_f64().unwrap();
                assert!(
                    (estimate.value - exact).abs() <= estimate.error_bound + 1e-9,
                    "{what} {key}: {} ± {} does not hold {exact}",
                    estimate.value,
                    estimate.error_bound
                );
                assert!(
                    estimate.error_bound < 0.25,
                    "{what} {key}: bound {}",
                    estimate.error_bound
                );
            }
        }
    }
}

#[test]
fn psi_fills_empty_bins_as_evidently_does() {
    let mut shares = vec![0.5, 0.0, 0.5];
    fill_zeros(&mut shares);
    assert_eq!(shares, vec![0.5, 0.0001, 0.5]);
    let mut tiny = vec![0.99995, 0.00005, 0.0];
    fill_zeros(&mut tiny);
    assert_eq!(tiny[2], 0.00005 / 1e6);
}
