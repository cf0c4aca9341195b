//! Copies of the same picture: exact (same bytes) and near (a perceptual hash of the decoded image
//! within a Hamming threshold: the same slice re-encoded, resized or re-exposed). Shared by `audit`,
//! the splits (which keep every group on one side) and `eval --exclude-near-duplicates`.

use image::{DynamicImage, RgbImage};
use image_hasher::{HashAlg, HasherConfig};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

pub use crate::config::{DEFAULT_NEAR_THRESHOLD, HASH_BITS};

pub type Phash = [u64; 4];

pub fn distance(a: &Phash, b: &Phash) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The 256-bit gradient hash of a decoded image (brightness, re-encoding and size barely move it).
pub fn perceptual_hash(img: &DynamicImage) -> Phash {
    let h = HasherConfig::new().hash_alg(HashAlg::Gradient).hash_size(16, 16).to_hasher().hash_image(img);
    let b = h.as_bytes();
    let mut out = [0u64; 4];
    for (k, chunk) in b.chunks(8).take(4).enumerate() {
        out[k] = chunk.iter().fold(0u64, |acc, x| (acc << 8) | *x as u64);
    }
    out
}

/// Perceptual hashes of square HWC RGB images stored back to back (an `ImageSet`'s pixels).
pub fn hash_pixels(pixels: &[u8], size: u32) -> Vec<Phash> {
    let per = (size * size * 3) as usize;
    if per == 0 {
        return vec![];
    }
    pixels
        .par_chunks(per)
        .map(|px| {
            let img = RgbImage::from_raw(size, size, px.to_vec()).expect("chunk holds one image");
            perceptual_hash(&DynamicImage::ImageRgb8(img))
        })
        .collect()
}

pub struct UnionFind(Vec<usize>);

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind((0..n).collect())
    }

    pub fn find(&mut self, i: usize) -> usize {
        let mut r = i;
        while self.0[r] != r {
            r = self.0[r];
        }
        let mut j = i;
        while self.0[j] != r {
            let next = self.0[j];
            self.0[j] = r;
            j = next;
        }
        r
    }

    /// Joins two groups; the smaller index becomes the root, so roots are stable and deterministic.
    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb)] = ra.min(rb);
        }
    }

    /// Groups of more than one member, each sorted, in order of their smallest member.
    pub fn groups(&mut self) -> Vec<Vec<usize>> {
        let n = self.0.len();
        let mut by_root: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            by_root.entry(self.find(i)).or_default().push(i);
        }
        by_root.into_values().filter(|g| g.len() > 1).collect()
    }
}

/// Exact groups: the same content hash.
pub fn exact_groups(content: &[u64]) -> UnionFind {
    let mut uf = UnionFind::new(content.len());
    let mut first: HashMap<u64, usize> = HashMap::new();
    for (k, h) in content.iter().enumerate() {
        match first.get(h) {
            Some(&j) => uf.union(j, k),
            None => {
                first.insert(*h, k);
            }
        }
    }
    uf
}

/// Near groups: exact copies, joined with every pair of perceptual hashes within `threshold` bits
/// (0: exact copies only). All pairs are compared: 7 000 images take well under a second.
pub fn near_groups(content: &[u64], phashes: &[Phash], threshold: u32) -> UnionFind {
    let n = content.len();
    let mut exact = exact_groups(content);
    let mut near = UnionFind::new(n);
    for k in 0..n {
        let r = exact.find(k);
        near.union(r, k);
    }
    if threshold > 0 && phashes.len() == n {
        let pairs: Vec<(usize, usize)> = (0..n)
            .into_par_iter()
            .flat_map_iter(|a| (a + 1..n).filter(move |&b| distance(&phashes[a], &phashes[b]) <= threshold).map(move |b| (a, b)))
            .collect();
        for (a, b) in pairs {
            near.union(a, b);
        }
    }
    near
}

/// A group key per image: the smallest index of its group.
pub fn group_keys(uf: &mut UnionFind) -> Vec<u64> {
    (0..uf.0.len()).map(|i| uf.find(i) as u64).collect()
}

/// Which of `candidates` are copies of an image in `reference`: `(exact, near)` where `exact` are
/// byte copies and `near` are the other members of a near group holding a reference image.
pub fn copies_of(
    content: &[u64],
    phashes: &[Phash],
    threshold: u32,
    reference: &[usize],
    candidates: &[usize],
) -> (Vec<usize>, Vec<usize>) {
    let exact_ref: std::collections::HashSet<u64> = reference.iter().map(|&i| content[i]).collect();
    let mut uf = near_groups(content, phashes, threshold);
    let near_ref: std::collections::HashSet<usize> = reference.iter().map(|&i| uf.find(i)).collect();
    let mut exact = vec![];
    let mut near = vec![];
    for &i in candidates {
        if exact_ref.contains(&content[i]) {
            exact.push(i);
        } else if near_ref.contains(&uf.find(i)) {
            near.push(i);
        }
    }
    (exact, near)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_groups() {
        let mut uf = UnionFind::new(6);
        uf.union(0, 3);
        uf.union(3, 5);
        uf.union(1, 2);
        assert_eq!(uf.groups(), vec![vec![0, 3, 5], vec![1, 2]]);
    }

    #[test]
    fn near_groups_join_close_hashes_and_exact_copies() {
        let content = [1, 2, 1, 3, 4];
        let p = |bits: u64| [bits, 0, 0, 0];
        // 0 and 2 are byte copies; 1 is 2 bits from 3; 4 is far from all.
        let ph = [p(0), p(0b11), p(0), p(0), p(u64::MAX)];
        assert_eq!(near_groups(&content, &ph, 0).groups(), vec![vec![0, 2]]);
        assert_eq!(near_groups(&content, &ph, 2).groups(), vec![vec![0, 1, 2, 3]]);
        let (exact, near) = copies_of(&content, &ph, 2, &[0], &[2, 1, 4]);
        assert_eq!((exact, near), (vec![2], vec![1]));
    }
}
