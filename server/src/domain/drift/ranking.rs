//! How much a feature ranking changed: nDCG@k of the current ranking with
//! the reference's attributions as relevance, as SageMaker Clarify's
//! feature attribution drift does: `DCG = Σ_{i=1..k} F(f_i) / log2(i+1)`
//! over the current top k features `f_i`, where `F` is a feature's
//! reference attribution (mean |SHAP|), divided by the same sum over the
//! reference's own top k. 1 when the order of what matters is unchanged.

/// Below this nDCG the ranking counts as drifted (SageMaker Clarify's
/// default).
pub const DEFAULT_NDCG_THRESHOLD: f64 = 0.9;

/// nDCG@k of `current` (features, best first) against `reference`
/// (feature, attribution) pairs; `None` when the reference's top k carry
/// no attribution.
pub fn ndcg(reference: &[(String, f64)], current: &[String], k: usize) -> Option<f64> {
    let relevance = |feature: &str| {
        reference
            .iter()
            .find(|(f, _)| f == feature)
            .map_or(0.0, |(_, v)| v.abs())
    };
    let discount = |i: usize| ((i + 2) as f64).log2();
    let mut ideal: Vec<f64> = reference.iter().map(|(_, v)| v.abs()).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, v)| v / discount(i))
        .sum();
    if idcg <= 0.0 {
        return None;
    }
    let dcg: f64 = current
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, f)| relevance(f) / discount(i))
        .sum();
    Some((dcg / idcg).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Vec<(String, f64)> {
        [("a", 0.5), ("b", 0.3), ("c", 0.1), ("d", 0.05)]
            .map(|(f, v)| (f.to_owned(), v))
            .to_vec()
    }

    fn ranking(features: &[&str]) -> Vec<String> {
        features.iter().map(|f| (*f).to_owned()).collect()
    }

    #[test]
    fn an_unchanged_ranking_scores_one_and_a_swap_less() {
        let same = ndcg(&reference(), &ranking(&["a", "b", "c", "d"]), 3).unwrap();
        assert!((same - 1.0).abs() < 1e-12);
        // Top two swapped: (0.3/1 + 0.5/log2 3 + 0.1/2) / (0.5 + 0.3/log2 3 + 0.05).
        let swapped = ndcg(&reference(), &ranking(&["b", "a", "c"]), 3).unwrap();
        let log3 = 3f64.log2();
        let expected = (0.3 + 0.5 / log3 + 0.1 / 2.0) / (0.5 + 0.3 / log3 + 0.1 / 2.0);
        assert!(
            (swapped - expected).abs() < 1e-12,
            "{swapped} vs {expected}"
        );
        assert!(swapped < 1.0);
        // A feature new to the current window carries no reference weight.
        let newcomer = ndcg(&reference(), &ranking(&["z", "a", "b"]), 3).unwrap();
        assert!(newcomer < swapped);
        assert_eq!(ndcg(&[], &ranking(&["a"]), 3), None);
    }
}
