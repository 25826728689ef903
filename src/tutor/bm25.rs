//! Okapi BM25 over a handful of documents (a lesson's sections).
//!
//! Hand-written: it is twenty lines, and the search crates (tantivy, bm25) bring indexes,
//! tokenizers and dependencies sized for corpora, not for ranking ten sections per request.

use std::collections::{HashMap, HashSet};

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// An index of tokenised documents.
#[derive(Debug)]
pub struct Bm25 {
    docs: Vec<HashMap<String, usize>>,
    lengths: Vec<usize>,
    df: HashMap<String, usize>,
    avg_len: f64,
}

impl Bm25 {
    /// Indexes `docs` (each a list of tokens).
    pub fn new(docs: &[Vec<String>]) -> Self {
        let mut df: HashMap<String, usize> = HashMap::new();
        let tf: Vec<HashMap<String, usize>> = docs
            .iter()
            .map(|doc| {
                let mut counts = HashMap::new();
                for t in doc {
                    *counts.entry(t.clone()).or_insert(0) += 1;
                }
                for t in counts.keys() {
                    *df.entry(t.clone()).or_insert(0) += 1;
                }
                counts
            })
            .collect();
        let lengths: Vec<usize> = docs.iter().map(Vec::len).collect();
        let avg_len = lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64;
        Self {
            docs: tf,
            lengths,
            df,
            avg_len: avg_len.max(1.0),
        }
    }

    /// The score of every document for `query` (distinct query terms), in document order.
    pub fn scores(&self, query: &[String]) -> Vec<f64> {
        let n = self.docs.len() as f64;
        let terms: HashSet<&String> = query.iter().collect();
        self.docs
            .iter()
            .zip(&self.lengths)
            .map(|(tf, &len)| {
                terms
                    .iter()
                    .filter_map(|t| Some((tf.get(*t)?, self.df.get(*t)?)))
                    .map(|(&f, &df)| {
                        let idf = (1.0 + (n - df as f64 + 0.5) / (df as f64 + 0.5)).ln();
                        let f = f as f64;
                        idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len as f64 / self.avg_len))
                    })
                    .sum()
            })
            .collect()
    }

    /// The best-scoring document with a positive score (the earliest on a tie).
    pub fn best(&self, query: &[String]) -> Option<(usize, f64)> {
        self.scores(query)
            .into_iter()
            .enumerate()
            .filter(|(_, s)| *s > 0.0)
            .fold(None, |best: Option<(usize, f64)>, (i, s)| match best {
                Some((_, b)) if b >= s => best,
                _ => Some((i, s)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tutor::text::tokens;

    fn index(docs: &[&str]) -> Bm25 {
        Bm25::new(&docs.iter().map(|d| tokens(d)).collect::<Vec<_>>())
    }

    #[test]
    fn the_section_about_the_query_ranks_first() {
        let idx = index(&[
            "Variables hold values. Variables are immutable by default.",
            "Closures capture variables from their environment. A closure is a function.",
            "Traits define shared behaviour.",
        ]);
        assert_eq!(
            idx.best(&tokens("what is a closure?")).map(|b| b.0),
            Some(1)
        );
        assert_eq!(idx.best(&tokens("traits")).map(|b| b.0), Some(2));
    }

    #[test]
    fn rare_terms_outweigh_common_ones() {
        let idx = index(&["rust memory rust", "rust ownership", "rust traits"]);
        let s = idx.scores(&tokens("rust ownership"));
        assert!(s[1] > s[0] && s[1] > s[2], "{s:?}");
    }

    #[test]
    fn no_match_means_no_best_document() {
        let idx = index(&["alpha beta", "gamma"]);
        assert_eq!(idx.best(&tokens("delta")), None);
        assert_eq!(index(&[]).best(&tokens("x")), None);
    }
}
