//! Sets of offsets inside one allocatable range: a dense two-level bitmap for IPv4 and a
//! sparse set of merged intervals for IPv6 (and for very large IPv4 ranges).
//!
//! Offsets are relative to the start of the range, `0..=last`. Both structures answer "lowest
//! offset not in the set" without scanning the set: the bitmap keeps a summary of full words
//! and a hint to the first summary word that may have a free bit; the interval set keeps
//! merged runs, so the lowest free offset is either 0 or the end of the first run plus one.

use std::collections::BTreeMap;

/// Largest range that gets a dense bitmap (2^24 addresses, an IPv4 /8: 2 MiB of bits).
pub(crate) const DENSE_MAX_LEN: u128 = 1 << 24;

/// A set of offsets in `0..=last`.
#[derive(Debug, Clone)]
pub(crate) enum Space {
    Dense(Bitmap),
    Sparse(IntervalSet),
}

impl Space {
    /// A dense space for `len` offsets (`1..=DENSE_MAX_LEN`).
    pub(crate) fn dense(len: u128) -> Self {
        debug_assert!((1..=DENSE_MAX_LEN).contains(&len));
        Space::Dense(Bitmap::new(len as u64))
    }

    /// A sparse space for offsets `0..=last`.
    pub(crate) fn sparse(last: u128) -> Self {
        Space::Sparse(IntervalSet::new(last))
    }

    /// The largest offset in the space.
    pub(crate) fn last(&self) -> u128 {
        match self {
            Space::Dense(b) => u128::from(b.len - 1),
            Space::Sparse(s) => s.last,
        }
    }

    /// Number of offsets in the set.
    pub(crate) fn count(&self) -> u128 {
        match self {
            Space::Dense(b) => u128::from(b.ones),
            Space::Sparse(s) => s.count,
        }
    }

    pub(crate) fn contains(&self, off: u128) -> bool {
        if off > self.last() {
            return false;
        }
        match self {
            Space::Dense(b) => b.get(off as u64),
            Space::Sparse(s) => s.contains(off),
        }
    }

    /// Adds `off`; returns false if it was already in the set. `off` must be `<= last`.
    pub(crate) fn insert(&mut self, off: u128) -> bool {
        debug_assert!(off <= self.last());
        match self {
            Space::Dense(b) => b.insert(off as u64),
            Space::Sparse(s) => s.insert_range(off, off) == 1,
        }
    }

    /// Removes `off`; returns false if it was not in the set.
    pub(crate) fn remove(&mut self, off: u128) -> bool {
        if off > self.last() {
            return false;
        }
        match self {
            Space::Dense(b) => b.remove(off as u64),
            Space::Sparse(s) => s.remove_range(off, off) == 1,
        }
    }

    /// Adds every offset of `a..=b` (`a <= b <= last`).
    pub(crate) fn insert_range(&mut self, a: u128, b: u128) {
        debug_assert!(a <= b && b <= self.last());
        match self {
            Space::Dense(bm) => bm.fill(a as u64, b as u64, true),
            Space::Sparse(s) => {
                s.insert_range(a, b);
            }
        }
    }

    /// Removes every offset of `a..=b` (`a <= b <= last`).
    pub(crate) fn remove_range(&mut self, a: u128, b: u128) {
        debug_assert!(a <= b && b <= self.last());
        match self {
            Space::Dense(bm) => bm.fill(a as u64, b as u64, false),
            Space::Sparse(s) => {
                s.remove_range(a, b);
            }
        }
    }

    /// The lowest offset not in the set, if any.
    pub(crate) fn first_free(&mut self) -> Option<u128> {
        match self {
            Space::Dense(b) => b.first_free().map(u128::from),
            Space::Sparse(s) => s.first_free(),
        }
    }

    /// The lowest offset of `a..=b` that is in the set, if any (`a <= b <= last`).
    pub(crate) fn first_set_in(&self, a: u128, b: u128) -> Option<u128> {
        debug_assert!(a <= b && b <= self.last());
        match self {
            Space::Dense(bm) => bm
                .next_with(a as u64, true)
                .map(u128::from)
                .filter(|&o| o <= b),
            Space::Sparse(s) => s.first_set_in(a, b),
        }
    }

    /// The set as sorted, disjoint, non-adjacent inclusive runs.
    pub(crate) fn runs(&self) -> Vec<(u128, u128)> {
        match self {
            Space::Dense(b) => b
                .runs()
                .into_iter()
                .map(|(s, e)| (u128::from(s), u128::from(e)))
                .collect(),
            Space::Sparse(s) => s.map.iter().map(|(&s, &e)| (s, e)).collect(),
        }
    }
}

/// A dense bitmap of `len` bits with a summary level (one bit per full word) and a hint to
/// the first summary word that may still have a free bit.
///
/// Padding bits past `len` (in the last word and in the last summary word) are kept set, so
/// they are never found free.
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    /// Bit `i` is set iff `words[i]` is all ones.
    full: Vec<u64>,
    len: u64,
    /// Number of set bits below `len`.
    ones: u64,
    /// Every summary word before `hint` is all ones.
    hint: usize,
}

impl Bitmap {
    pub(crate) fn new(len: u64) -> Self {
        let nwords = len.div_ceil(64) as usize;
        let mut words = vec![0u64; nwords];
        if !len.is_multiple_of(64) {
            words[nwords - 1] = !0u64 << (len % 64);
        }
        let nsum = nwords.div_ceil(64);
        let mut full = vec![0u64; nsum];
        if !nwords.is_multiple_of(64) {
            full[nsum - 1] = !0u64 << (nwords % 64);
        }
        Bitmap {
            words,
            full,
            len,
            ones: 0,
            hint: 0,
        }
    }

    fn get(&self, off: u64) -> bool {
        self.words[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    /// Stores a new value for word `w`, keeping the count, summary and hint right.
    fn set_word(&mut self, w: usize, new: u64) {
        let old = self.words[w];
        if old == new {
            return;
        }
        // Padding bits are set in both, so they cancel out of the difference.
        self.ones = self.ones + u64::from(new.count_ones()) - u64::from(old.count_ones());
        self.words[w] = new;
        let (s, bit) = (w / 64, 1u64 << (w % 64));
        if new == u64::MAX {
            self.full[s] |= bit;
        } else {
            self.full[s] &= !bit;
            self.hint = self.hint.min(s);
        }
    }

    fn insert(&mut self, off: u64) -> bool {
        let w = (off / 64) as usize;
        let bit = 1u64 << (off % 64);
        if self.words[w] & bit != 0 {
            return false;
        }
        self.set_word(w, self.words[w] | bit);
        true
    }

    fn remove(&mut self, off: u64) -> bool {
        let w = (off / 64) as usize;
        let bit = 1u64 << (off % 64);
        if self.words[w] & bit == 0 {
            return false;
        }
        self.set_word(w, self.words[w] & !bit);
        true
    }

    /// Sets (`value`) or clears every bit of `a..=b`.
    fn fill(&mut self, a: u64, b: u64, value: bool) {
        let (wa, wb) = ((a / 64) as usize, (b / 64) as usize);
        for w in wa..=wb {
            let lo = if w == wa { a % 64 } else { 0 };
            let hi = if w == wb { b % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            let new = if value {
                self.words[w] | mask
            } else {
                self.words[w] & !mask
            };
            self.set_word(w, new);
        }
    }

    fn first_free(&mut self) -> Option<u64> {
        if self.ones == self.len {
            return None;
        }
        for s in self.hint..self.full.len() {
            let summary = self.full[s];
            if summary != u64::MAX {
                self.hint = s;
                let w = s * 64 + summary.trailing_ones() as usize;
                let off = w as u64 * 64 + u64::from(self.words[w].trailing_ones());
                return (off < self.len).then_some(off);
            }
        }
        None
    }

    /// The first offset `>= from` whose bit equals `value`.
    fn next_with(&self, from: u64, value: bool) -> Option<u64> {
        if from >= self.len {
            return None;
        }
        let mut w = (from / 64) as usize;
        let pick = |x: u64| if value { x } else { !x };
        let mut word = pick(self.words[w]) & (u64::MAX << (from % 64));
        loop {
            if word != 0 {
                let off = w as u64 * 64 + u64::from(word.trailing_zeros());
                return (off < self.len).then_some(off);
            }
            w += 1;
            if w == self.words.len() {
                return None;
            }
            word = pick(self.words[w]);
        }
    }

    fn runs(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(start) = self.next_with(pos, true) {
            let end = self.next_with(start, false).unwrap_or(self.len);
            out.push((start, end - 1));
            pos = end;
        }
        out
    }
}

/// A set of offsets in `0..=last` kept as merged inclusive runs (`start -> end`): no two runs
/// overlap or touch.
#[derive(Debug, Clone)]
pub(crate) struct IntervalSet {
    map: BTreeMap<u128, u128>,
    last: u128,
    count: u128,
}

impl IntervalSet {
    fn new(last: u128) -> Self {
        IntervalSet {
            map: BTreeMap::new(),
            last,
            count: 0,
        }
    }

    /// The run containing `off`, if any.
    fn run_of(&self, off: u128) -> Option<(u128, u128)> {
        self.map
            .range(..=off)
            .next_back()
            .filter(|&(_, &e)| e >= off)
            .map(|(&s, &e)| (s, e))
    }

    fn contains(&self, off: u128) -> bool {
        self.run_of(off).is_some()
    }

    /// Adds `a..=b`; returns how many offsets were new.
    fn insert_range(&mut self, a: u128, b: u128) -> u128 {
        let before = self.count;
        let (mut start, mut end) = (a, b);
        // A run that starts at or before `a` and reaches `a - 1` or further merges in.
        if let Some((&s, &e)) = self.map.range(..=a).next_back()
            && e.saturating_add(1) >= a
        {
            start = s;
            end = end.max(e);
            self.map.remove(&s);
            self.count -= e - s + 1;
        }
        // Runs that start inside `a..=b + 1` merge in too.
        let upper = b.saturating_add(1);
        let inside: Vec<(u128, u128)> = self.map.range(a..=upper).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in inside {
            end = end.max(e);
            self.map.remove(&s);
            self.count -= e - s + 1;
        }
        self.map.insert(start, end);
        self.count += end - start + 1;
        self.count - before
    }

    /// Removes `a..=b`; returns how many offsets were removed.
    fn remove_range(&mut self, a: u128, b: u128) -> u128 {
        let before = self.count;
        let mut hit: Vec<(u128, u128)> = Vec::new();
        if let Some((&s, &e)) = self.map.range(..a).next_back()
            && e >= a
        {
            hit.push((s, e));
        }
        hit.extend(self.map.range(a..=b).map(|(&s, &e)| (s, e)));
        for (s, e) in hit {
            self.map.remove(&s);
            self.count -= e - s + 1;
            if s < a {
                self.map.insert(s, a - 1);
                self.count += a - s;
            }
            if e > b {
                self.map.insert(b + 1, e);
                self.count += e - b;
            }
        }
        before - self.count
    }

    fn first_free(&self) -> Option<u128> {
        match self.map.first_key_value() {
            None => Some(0),
            Some((&0, &e)) => (e < self.last).then(|| e + 1),
            Some(_) => Some(0),
        }
    }

    fn first_set_in(&self, a: u128, b: u128) -> Option<u128> {
        if self.contains(a) {
            return Some(a);
        }
        self.map.range(a..=b).next().map(|(&s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn both(len: u128) -> [Space; 2] {
        [Space::dense(len), Space::sparse(len - 1)]
    }

    #[test]
    fn first_free_walks_up_and_back() {
        for mut s in both(200) {
            for i in 0..200 {
                assert_eq!(s.first_free(), Some(i));
                assert!(s.insert(i));
            }
            assert_eq!(s.first_free(), None);
            assert_eq!(s.count(), 200);
            assert!(s.remove(130));
            assert!(!s.remove(130));
            assert_eq!(s.first_free(), Some(130));
            assert!(s.remove(3));
            assert_eq!(s.first_free(), Some(3));
            assert_eq!(s.count(), 198);
        }
    }

    #[test]
    fn ranges_and_runs() {
        for mut s in both(300) {
            s.insert_range(10, 140);
            s.insert_range(141, 141);
            s.insert(200);
            s.remove_range(64, 70);
            assert_eq!(s.runs(), vec![(10, 63), (71, 141), (200, 200)]);
            assert_eq!(s.count(), 54 + 71 + 1);
            assert_eq!(s.first_set_in(0, 9), None);
            assert_eq!(s.first_set_in(0, 299), Some(10));
            assert_eq!(s.first_set_in(64, 299), Some(71));
            assert_eq!(s.first_set_in(142, 199), None);
            assert_eq!(s.first_set_in(142, 200), Some(200));
            assert_eq!(s.first_free(), Some(0));
            s.insert_range(0, 9);
            assert_eq!(s.first_free(), Some(64));
            s.insert_range(0, 299);
            assert_eq!(s.runs(), vec![(0, 299)]);
            assert_eq!(s.first_free(), None);
            s.remove_range(0, 299);
            assert!(s.runs().is_empty());
            assert_eq!(s.count(), 0);
        }
    }

    #[test]
    fn sparse_handles_huge_spaces() {
        let last = (1u128 << 64) - 1;
        let mut s = Space::sparse(last);
        s.insert_range(0, last - 1);
        assert_eq!(s.first_free(), Some(last));
        s.insert(last);
        assert_eq!(s.first_free(), None);
        assert_eq!(s.count(), 1u128 << 64);
        s.remove(1 << 40);
        assert_eq!(s.first_free(), Some(1 << 40));
        assert_eq!(s.runs(), vec![(0, (1 << 40) - 1), ((1 << 40) + 1, last)]);
    }

    proptest::proptest! {
        #[test]
        fn matches_a_btreeset(
            len in 1u128..300,
            ops in proptest::collection::vec((0u8..5, 0u128..300, 0u128..40), 0..200),
        ) {
            for mut s in both(len) {
                let mut model = BTreeSet::new();
                for &(op, x, n) in &ops {
                    let a = x % len;
                    let b = (a + n).min(len - 1);
                    match op {
                        0 => proptest::prop_assert_eq!(s.insert(a), model.insert(a)),
                        1 => proptest::prop_assert_eq!(s.remove(a), model.remove(&a)),
                        2 => {
                            s.insert_range(a, b);
                            model.extend(a..=b);
                        }
                        3 => {
                            s.remove_range(a, b);
                            for o in a..=b {
                                model.remove(&o);
                            }
                        }
                        _ => {
                            let want = (0..len).find(|o| !model.contains(o));
                            proptest::prop_assert_eq!(s.first_free(), want);
                            if let Some(o) = want {
                                s.insert(o);
                                model.insert(o);
                            }
                        }
                    }
                    proptest::prop_assert_eq!(s.count(), model.len() as u128);
                    proptest::prop_assert_eq!(
                        s.first_set_in(a, b),
                        model.range(a..=b).next().copied()
                    );
                }
                let mut runs: Vec<(u128, u128)> = Vec::new();
                for &o in &model {
                    match runs.last_mut() {
                        Some(r) if r.1 + 1 == o => r.1 = o,
                        _ => runs.push((o, o)),
                    }
                }
                proptest::prop_assert_eq!(s.runs(), runs);
                for o in 0..len {
                    proptest::prop_assert_eq!(s.contains(o), model.contains(&o));
                }
            }
        }
    }
}
