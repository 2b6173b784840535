//! A cache bounded by entries and by bytes, for what the server keeps (compiled prompts,
//! response bodies, answers).

use std::collections::HashMap;

/// A cache bounded by entries and by bytes: when one more value would pass either bound, it
/// starts again empty (as the count-bounded caches did). Values are shared (`Arc`, `Bytes`), so
/// one dropped here stays alive for the requests that still hold it.
pub(crate) struct Bounded<K, V> {
    map: HashMap<K, V>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl<K: std::hash::Hash + Eq, V: Clone> Bounded<K, V> {
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Bounded<K, V> {
        Bounded {
            map: HashMap::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.get(key).cloned()
    }

    /// Keeps `value`, which takes about `size` bytes; a value larger than the whole budget is
    /// not kept.
    pub(crate) fn insert(&mut self, key: K, value: V, size: usize) {
        if size > self.max_bytes {
            return;
        }
        if self.map.len() >= self.max_entries || self.bytes.saturating_add(size) > self.max_bytes {
            self.map.clear();
            self.bytes = 0;
        }
        if self.map.insert(key, value).is_none() {
            self.bytes = self.bytes.saturating_add(size);
        }
    }

    /// The bytes kept, about.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use crate::serve::bounded::Bounded;

    #[test]
    fn a_cache_is_bounded_by_bytes_as_well_as_entries() {
        // 150 values of 1 MB in a cache of 8 MB never hold more than 8 MB.
        let mut cache: Bounded<u32, u32> = Bounded::new(4096, 8 << 20);
        for i in 0..150 {
            cache.insert(i, i, 1 << 20);
            assert!(cache.bytes() <= 8 << 20, "{}", cache.bytes());
        }
        assert_eq!(cache.get(&149), Some(149));
        assert_eq!(cache.get(&0), None);
        // A value larger than the whole budget is not kept; the same key twice counts once.
        cache.insert(1000, 1, 9 << 20);
        assert_eq!(cache.get(&1000), None);
        let before = cache.bytes();
        cache.insert(149, 149, 1 << 20);
        assert_eq!(cache.bytes(), before);
        // And by entries.
        let mut small: Bounded<u32, u32> = Bounded::new(3, usize::MAX);
        for i in 0..10 {
            small.insert(i, i, 1);
        }
        assert!(small.get(&9).is_some());
        assert!(small.get(&0).is_none());
    }
}
