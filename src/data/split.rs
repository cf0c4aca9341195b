//! Stratified, seeded splits that keep copies of one picture together, so a copy never lands on both
//! sides of a split. A group is byte-identical copies (the Kaggle set has 155 such groups in Training/
//! alone) joined with near copies (re-encoded, resized, re-exposed: `dupes::near_groups`).

use crate::rng::Rng;
use std::collections::{BTreeMap, HashSet};

/// Indices into an `ImageSet` for each split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    /// Test-folder images dropped because a byte-identical copy is in the training pool.
    pub test_duplicates_dropped: usize,
    /// Test-folder images dropped because a near copy (same group, other bytes) is in the training pool.
    pub test_near_duplicates_dropped: usize,
    /// Groups that join near copies (images with different bytes); set by the caller that grouped them.
    pub near_groups: usize,
}

/// Group indices by group key; each group is labelled by its first member.
fn groups(indices: &[usize], hashes: &[u64]) -> Vec<Vec<usize>> {
    let mut by_hash: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut order = Vec::new();
    for &i in indices {
        let g = by_hash.entry(hashes[i]).or_default();
        if g.is_empty() {
            order.push(hashes[i]);
        }
        g.push(i);
    }
    order.into_iter().map(|h| by_hash.remove(&h).unwrap()).collect()
}

/// Take whole groups per class until each share reaches its target, stratified by class.
fn carve(pool: &[usize], labels: &[usize], hashes: &[u64], n_classes: usize, fraction: f64, rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let mut rest = Vec::new();
    let mut taken = Vec::new();
    let gs = groups(pool, hashes);
    for c in 0..n_classes {
        let mut class_groups: Vec<&Vec<usize>> = gs.iter().filter(|g| labels[g[0]] == c).collect();
        let total: usize = class_groups.iter().map(|g| g.len()).sum();
        let target = (total as f64 * fraction).round() as usize;
        rng.shuffle(&mut class_groups);
        let mut n = 0;
        for g in class_groups {
            if n < target {
                n += g.len();
                taken.extend(g);
            } else {
                rest.extend(g);
            }
        }
    }
    taken.sort_unstable();
    rest.sort_unstable();
    (rest, taken)
}

/// Build train / val / test. `content` are content hashes; `groups` a group key per image (equal keys
/// never straddle a split; pass `content` again to group byte copies only). With a `Testing/` folder,
/// test is that folder minus copies of training images (exact, then near); otherwise a stratified
/// `test_fraction` of the pool.
pub fn make_split(
    labels: &[usize],
    content: &[u64],
    groups: &[u64],
    from_test_folder: &[bool],
    n_classes: usize,
    val_fraction: f64,
    test_fraction: f64,
    seed: u64,
) -> Split {
    let mut rng = Rng::new(seed);
    let pool: Vec<usize> = (0..labels.len()).filter(|&i| !from_test_folder[i]).collect();
    let (rest, test, exact, near) = if from_test_folder.iter().any(|t| *t) {
        let pool_content: HashSet<u64> = pool.iter().map(|&i| content[i]).collect();
        let pool_groups: HashSet<u64> = pool.iter().map(|&i| groups[i]).collect();
        let (mut test, mut exact, mut near) = (vec![], 0, 0);
        for i in (0..labels.len()).filter(|&i| from_test_folder[i]) {
            if pool_content.contains(&content[i]) {
                exact += 1;
            } else if pool_groups.contains(&groups[i]) {
                near += 1;
            } else {
                test.push(i);
            }
        }
        (pool, test, exact, near)
    } else {
        let (rest, test) = carve(&pool, labels, groups, n_classes, test_fraction, &mut rng);
        (rest, test, 0, 0)
    };
    let (train, val) = carve(&rest, labels, groups, n_classes, val_fraction, &mut rng);
    Split { train, val, test, test_duplicates_dropped: exact, test_near_duplicates_dropped: near, near_groups: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (Vec<usize>, Vec<u64>) {
        // 4 classes × 100 images; every 10th image has a byte-identical twin (same hash).
        let mut labels = vec![];
        let mut hashes = vec![];
        for c in 0..4 {
            for i in 0..100u64 {
                labels.push(c);
                hashes.push(c as u64 * 1000 + i);
                if i % 10 == 0 {
                    labels.push(c);
                    hashes.push(c as u64 * 1000 + i);
                }
            }
        }
        (labels, hashes)
    }

    #[test]
    fn stratified_disjoint_and_complete() {
        let (labels, hashes) = fixture();
        let s = make_split(&labels, &hashes, &hashes, &vec![false; labels.len()], 4, 0.1, 0.2, 3);
        let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
        all.sort();
        assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
        for c in 0..4 {
            let n = |v: &Vec<usize>| v.iter().filter(|&&i| labels[i] == c).count();
            // 110 per class: test ≈ 22, val ≈ 10% of the remaining 88 ≈ 9; groups of two may overshoot by one.
            assert!((22..=23).contains(&n(&s.test)), "class {c} test {}", n(&s.test));
            assert!((9..=10).contains(&n(&s.val)), "class {c} val {}", n(&s.val));
        }
    }

    #[test]
    fn duplicates_never_straddle_a_split() {
        let (labels, hashes) = fixture();
        for seed in 0..20 {
            let s = make_split(&labels, &hashes, &hashes, &vec![false; labels.len()], 4, 0.1, 0.2, seed);
            let side = |i: usize| {
                if s.train.contains(&i) {
                    0
                } else if s.val.contains(&i) {
                    1
                } else {
                    2
                }
            };
            for i in 0..labels.len() {
                for j in i + 1..labels.len() {
                    if hashes[i] == hashes[j] {
                        assert_eq!(side(i), side(j), "seed {seed}: twins {i},{j} split apart");
                    }
                }
            }
        }
    }

    #[test]
    fn seeded_and_reproducible() {
        let (labels, hashes) = fixture();
        let f = vec![false; labels.len()];
        assert_eq!(make_split(&labels, &hashes, &hashes, &f, 4, 0.1, 0.2, 9), make_split(&labels, &hashes, &hashes, &f, 4, 0.1, 0.2, 9));
        assert_ne!(
            make_split(&labels, &hashes, &hashes, &f, 4, 0.1, 0.2, 9).val,
            make_split(&labels, &hashes, &hashes, &f, 4, 0.1, 0.2, 10).val
        );
    }

    #[test]
    fn testing_folder_is_the_test_set_minus_copies_of_training() {
        let labels = vec![0, 0, 1, 1, 0, 1, 1];
        let hashes = vec![1, 2, 3, 4, 5, 3, 6];
        let test = vec![false, false, false, false, true, true, true];
        let s = make_split(&labels, &hashes, &hashes, &test, 2, 0.0, 0.2, 1);
        assert_eq!(s.test, vec![4, 6]);
        assert_eq!(s.test_duplicates_dropped, 1);
        assert_eq!(s.train, vec![0, 1, 2, 3]);
    }

    #[test]
    fn near_copies_in_the_test_folder_are_dropped_and_counted_apart() {
        let labels = vec![0, 0, 1, 1, 0, 1, 1, 0];
        let content = vec![1, 2, 3, 4, 5, 3, 6, 7];
        // Image 7 (test) is a near copy of image 1 (train): same group key, other bytes.
        let groups = vec![0, 1, 2, 3, 4, 2, 6, 1];
        let test = vec![false, false, false, false, true, true, true, true];
        let s = make_split(&labels, &content, &groups, &test, 2, 0.0, 0.2, 1);
        assert_eq!(s.test, vec![4, 6]);
        assert_eq!((s.test_duplicates_dropped, s.test_near_duplicates_dropped), (1, 1));
    }

    #[test]
    fn near_groups_never_straddle_a_carved_split() {
        // 4 classes × 60 images in near groups of three (distinct bytes, one group key).
        let labels: Vec<usize> = (0..240).map(|i| i / 60).collect();
        let content: Vec<u64> = (0..240).collect();
        let groups: Vec<u64> = (0..240).map(|i| i / 3).collect();
        for seed in 0..10 {
            let s = make_split(&labels, &content, &groups, &[false; 240], 4, 0.1, 0.2, seed);
            for part in [&s.train, &s.val, &s.test] {
                for &i in part.iter() {
                    for j in 0..240 {
                        if groups[j] == groups[i] {
                            assert!(part.contains(&j), "seed {seed}: {i} and {j} split apart");
                        }
                    }
                }
            }
        }
    }
}
