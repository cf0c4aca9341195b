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
    /// Cross-validation: (folds, the fold validated on), and the fold of every pool image (`None` for
    /// test images); `None` and empty for a carved validation split.
    pub folds: Option<(usize, usize)>,
    pub fold_of: Vec<Option<usize>>,
    /// DICOM/NIfTI: each image's salted patient key (empty for a set without any); set by the caller.
    pub patient_of: Vec<Option<u64>>,
    /// Patients kept on one side (set by the caller that grouped them).
    pub patients: usize,
    /// Test-folder images left out because their patient is also in the training pool.
    pub test_patients_dropped: usize,
    /// Images in the largest group (set by the caller that grouped them): patients joined through
    /// copies can make one group too large for the shares to come out as asked.
    pub largest_group: usize,
}

/// How the validation images are chosen from the training pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Holdout {
    /// A stratified, grouped share of the pool.
    Fraction(f64),
    /// Fold `index` of `k` grouped, stratified folds.
    Fold { k: usize, index: usize },
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

/// Deal whole groups of `pool` into `k` folds, class by class: groups shuffled (seeded), each given to
/// the fold that has the fewest images of its class so far (the lowest index on a tie), so every fold
/// gets a near-equal share of every class and no group straddles two folds.
pub fn assign_folds(pool: &[usize], labels: &[usize], groups_of: &[u64], n_classes: usize, k: usize, rng: &mut Rng) -> Vec<Option<usize>> {
    let mut fold_of = vec![None; labels.len()];
    let gs = groups(pool, groups_of);
    for c in 0..n_classes {
        let mut class_groups: Vec<&Vec<usize>> = gs.iter().filter(|g| labels[g[0]] == c).collect();
        rng.shuffle(&mut class_groups);
        // Larger groups first (stable, so the shuffle decides among equals): the greedy fill stays even.
        class_groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
        let mut filled = vec![0usize; k];
        for g in class_groups {
            let f = (0..k).min_by_key(|&f| (filled[f], f)).unwrap_or(0);
            filled[f] += g.len();
            for &i in g {
                fold_of[i] = Some(f);
            }
        }
    }
    fold_of
}

/// The number of copy groups of the smallest class in `pool` (folds above it would leave a fold
/// without that class).
pub fn smallest_class_groups(pool: &[usize], labels: &[usize], groups_of: &[u64], n_classes: usize) -> usize {
    let gs = groups(pool, groups_of);
    (0..n_classes).map(|c| gs.iter().filter(|g| labels[g[0]] == c).count()).min().unwrap_or(0)
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
    make_split_with(labels, content, groups, from_test_folder, n_classes, Holdout::Fraction(val_fraction), test_fraction, seed)
}

/// `make_split` with the validation images chosen by `holdout`. The test images do not depend on it:
/// every fold of one seed has the same test set.
#[allow(clippy::too_many_arguments)]
pub fn make_split_with(
    labels: &[usize],
    content: &[u64],
    groups: &[u64],
    from_test_folder: &[bool],
    n_classes: usize,
    holdout: Holdout,
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
    let mut split = Split { test, test_duplicates_dropped: exact, test_near_duplicates_dropped: near, ..Split::default() };
    match holdout {
        Holdout::Fraction(f) => (split.train, split.val) = carve(&rest, labels, groups, n_classes, f, &mut rng),
        Holdout::Fold { k, index } => {
            split.fold_of = assign_folds(&rest, labels, groups, n_classes, k, &mut rng);
            (split.val, split.train) = rest.iter().partition(|&&i| split.fold_of[i] == Some(index));
            split.folds = Some((k, index));
        }
    }
    split
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
    fn every_pool_image_is_in_exactly_one_fold_and_no_group_straddles_folds() {
        // 4 classes × 60 images in near groups of 1 to 4 (group key), with byte twins inside groups.
        let labels: Vec<usize> = (0..240).map(|i| i / 60).collect();
        let groups: Vec<u64> = (0..240u64).map(|i| (i / 60) * 1000 + (i % 60) / (1 + (i / 7) % 4)).collect();
        // Byte twins are always inside one group (the grouping joins byte copies first).
        let content: Vec<u64> =
            (0..240u64).map(|i| if i % 5 == 1 && groups[i as usize] == groups[i as usize - 1] { i - 1 } else { i }).collect();
        let f = [false; 240];
        for seed in 0..5 {
            let mut val_seen = vec![0usize; 240];
            let base = make_split_with(&labels, &content, &groups, &f, 4, Holdout::Fold { k: 5, index: 0 }, 0.2, seed);
            for index in 0..5 {
                let s = make_split_with(&labels, &content, &groups, &f, 4, Holdout::Fold { k: 5, index }, 0.2, seed);
                assert_eq!(s.test, base.test, "one test set for every fold");
                assert_eq!(s.fold_of, base.fold_of, "one fold assignment for every fold");
                let mut all: Vec<usize> = s.train.iter().chain(&s.val).chain(&s.test).copied().collect();
                all.sort();
                assert_eq!(all, (0..240).collect::<Vec<_>>());
                for &i in &s.val {
                    val_seen[i] += 1;
                }
                for c in 0..4 {
                    let n = s.val.iter().filter(|&&i| labels[i] == c).count();
                    let pool = 60 - s.test.iter().filter(|&&i| labels[i] == c).count();
                    assert!(n.abs_diff(pool / 5) <= 4, "seed {seed} fold {index} class {c}: {n} of {pool}");
                }
            }
            for i in 0..240 {
                let in_test = base.test.contains(&i);
                assert_eq!(val_seen[i], usize::from(!in_test), "seed {seed}: image {i} validated {} times", val_seen[i]);
                for j in 0..240 {
                    if groups[i] == groups[j] || content[i] == content[j] {
                        assert_eq!(base.fold_of[i], base.fold_of[j], "seed {seed}: {i} and {j} in two folds");
                    }
                }
            }
        }
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
