//! An append-only list in shared chunks: a clone copies one pointer per chunk, not the items,
//! and a push after a clone copies at most the last chunk. A server that extends the version
//! index on every new tip, while the previous snapshot still serves from it, pays for the new
//! commits only.

use std::sync::Arc;

/// Items per chunk.
const CHUNK: usize = 256;

/// An append-only list whose clones share their full chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Chunked<T> {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// The number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `item` at the end.
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => Arc::make_mut(last).push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push(Arc::new(chunk));
            }
        }
        self.len += 1;
    }

    /// The item at `index`.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    /// Every item, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter())
    }

    /// The first `n` items (all of them when there are fewer), sharing the full chunks.
    pub fn prefix(&self, n: usize) -> Chunked<T> {
        let n = n.min(self.len);
        let full = n / CHUNK;
        let mut chunks: Vec<Arc<Vec<T>>> = self.chunks[..full].to_vec();
        let rest = n % CHUNK;
        if rest > 0 {
            if let Some(chunk) = self.chunks.get(full) {
                chunks.push(Arc::new(chunk[..rest].to_vec()));
            }
        }
        Chunked { chunks, len: n }
    }
}

impl<T: Clone> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Chunked<T> {
        let mut list = Chunked::default();
        for item in items {
            list.push(item);
        }
        list
    }
}

impl<T: Clone> std::ops::Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, index: usize) -> &T {
        // Indexes come from the version index itself (a version's commit), never from input.
        &self.chunks[index / CHUNK][index % CHUNK]
    }
}

impl<T: Clone> std::ops::IndexMut<usize> for Chunked<T> {
    /// The item at `index`, for changing it: its chunk is copied first when a clone shares it.
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[index / CHUNK])[index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use crate::history::chunked::*;

    #[test]
    fn clones_share_chunks_and_pushes_copy_at_most_one() {
        let mut list: Chunked<u32> = (0..600).collect();
        assert_eq!(list.len(), 600);
        assert_eq!(
            (list[0], list[255], list[256], list[599]),
            (0, 255, 256, 599)
        );
        assert_eq!(list.get(600), None);
        let before = list.clone();
        list.push(600);
        // The two full chunks are shared; only the last, partial one was copied.
        assert!(Arc::ptr_eq(&list.chunks[0], &before.chunks[0]));
        assert!(Arc::ptr_eq(&list.chunks[1], &before.chunks[1]));
        assert!(!Arc::ptr_eq(&list.chunks[2], &before.chunks[2]));
        assert_eq!(before.len(), 600);
        assert_eq!(
            list.iter().copied().collect::<Vec<_>>(),
            (0..601).collect::<Vec<_>>()
        );
        let cut = list.prefix(300);
        assert_eq!(
            cut.iter().copied().collect::<Vec<_>>(),
            (0..300).collect::<Vec<_>>()
        );
        assert!(Arc::ptr_eq(&cut.chunks[0], &list.chunks[0]));
        assert_eq!(list.prefix(1000).len(), 601);
        assert!(list.prefix(0).is_empty());
        let mut grown = list.prefix(512);
        grown.push(7);
        assert_eq!((grown.len(), grown[512]), (513, 7));
        // Changing an item copies its chunk only: the list it came from keeps its own.
        grown[3] = 30;
        assert_eq!((grown[3], list[3]), (30, 3));
        assert!(Arc::ptr_eq(&grown.chunks[1], &list.chunks[1]));
    }
}
