//! Hash-consing of path attribute sets.

use std::collections::HashSet;
use std::sync::Arc;

use crate::types::PathAttrs;

/// Interns [`PathAttrs`]: equal sets come back as the same `Arc`, so a table of a
/// million routes sharing a hundred attribute sets holds a hundred `PathAttrs` and a
/// pointer per route, and equality of interned sets is a pointer comparison.
///
/// The interner keeps one reference of its own; [`AttrInterner::gc`] drops the sets
/// nobody else holds any more. Call it now and then (after a peer goes down, or every
/// so many UPDATEs); between two calls unused sets only cost their memory.
#[derive(Debug, Default)]
pub struct AttrInterner {
    set: HashSet<Arc<PathAttrs>>,
}

impl AttrInterner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `attrs`, normalized first ([`PathAttrs::normalize`]) so
    /// that sets differing only in community order are one set.
    pub fn intern(&mut self, mut attrs: PathAttrs) -> Arc<PathAttrs> {
        attrs.normalize();
        if let Some(a) = self.set.get(&attrs) {
            return Arc::clone(a);
        }
        let a = Arc::new(attrs);
        self.set.insert(Arc::clone(&a));
        a
    }

    /// Like [`AttrInterner::intern`] for a set already in an `Arc` (kept as the shared
    /// copy when it is new). The set must already be normalized.
    pub fn intern_arc(&mut self, attrs: Arc<PathAttrs>) -> Arc<PathAttrs> {
        if let Some(a) = self.set.get(&*attrs) {
            return Arc::clone(a);
        }
        self.set.insert(Arc::clone(&attrs));
        attrs
    }

    /// Drop every set only the interner still holds; returns how many were dropped.
    pub fn gc(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        before - self.set.len()
    }

    /// Number of distinct sets held (including unused ones not yet collected).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
