//! The subscription list: a trie of subject tokens with `*` and `>` wildcards, and a cache of
//! match results per literal subject.
//!
//! # Matching
//!
//! A literal subject `a.b.c` matches subscriptions on `a.b.c`, `a.*.c`, `*.b.*`, `a.>`, `>`
//! and so on. The trie walks each token into the literal child, the `*` child and the `>`
//! child (which matches one or more remaining tokens).
//!
//! # Cache
//!
//! Fan-out workloads publish to few subjects many times, so the result of a match is cached
//! per subject (`Arc<Matches>`, shared by concurrent publishers). Any insert or remove clears
//! the cache; the cache is bounded and cleared when full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::client::Subscription;

/// Entries the match cache holds before it is cleared.
const MAX_CACHED_SUBJECTS: usize = 4096;

/// The subscriptions a subject matched.
#[derive(Default)]
pub struct Matches {
    /// Subscriptions without a queue group: each gets the message.
    pub plain: Vec<Arc<Subscription>>,
    /// Queue groups: one member of each gets the message.
    pub groups: Vec<QueueGroup>,
}

/// Members of one queue group that matched a subject.
pub struct QueueGroup {
    /// The group name.
    pub name: Bytes,
    /// The members (at least one).
    pub members: Vec<Arc<Subscription>>,
    /// Round-robin cursor for picking a member.
    cursor: AtomicUsize,
}

impl QueueGroup {
    /// The next member to try, round robin.
    pub fn next_start(&self) -> usize {
        self.cursor.fetch_add(1, Ordering::Relaxed) % self.members.len()
    }
}

#[derive(Default)]
struct Node {
    literal: HashMap<Bytes, Node>,
    star: Option<Box<Node>>,
    full: Vec<Arc<Subscription>>,
    subs: Vec<Arc<Subscription>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.star.is_none()
            && self.full.is_empty()
            && self.subs.is_empty()
    }
}

#[derive(Default)]
struct Inner {
    root: Node,
    cache: HashMap<Bytes, Arc<Matches>>,
    count: usize,
}

/// The subscription list shared by every connection.
#[derive(Default)]
pub struct Sublist {
    inner: RwLock<Inner>,
}

fn tokens(subject: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    let mut start = 0;
    let len = subject.len();
    std::iter::from_fn(move || {
        if start > len {
            return None;
        }
        let end = memchr_dot(&subject[start..]).map_or(len, |i| start + i);
        let tok = subject.slice(start..end);
        start = end + 1;
        Some(tok)
    })
}

fn memchr_dot(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'.')
}

impl Sublist {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.inner.read().count
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add a subscription (its subject must be valid).
    pub fn insert(&self, sub: Arc<Subscription>) {
        let mut inner = self.inner.write();
        let mut node = &mut inner.root;
        let toks: Vec<Bytes> = tokens(&sub.subject).collect();
        let last = toks.len() - 1;
        for (i, tok) in toks.into_iter().enumerate() {
            if i == last && &tok[..] == b">" {
                node.full.push(sub.clone());
                inner.cache.clear();
                inner.count += 1;
                return;
            }
            node = if &tok[..] == b"*" {
                node.star.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(tok).or_default()
            };
        }
        node.subs.push(sub);
        inner.cache.clear();
        inner.count += 1;
    }

    /// Remove a subscription; returns whether it was present.
    pub fn remove(&self, sub: &Arc<Subscription>) -> bool {
        let mut inner = self.inner.write();
        let toks: Vec<Bytes> = tokens(&sub.subject).collect();
        let removed = remove_from(&mut inner.root, &toks, sub);
        if removed {
            inner.cache.clear();
            inner.count -= 1;
        }
        removed
    }

    /// The subscriptions matching a literal subject.
    pub fn matches(&self, subject: &Bytes) -> Arc<Matches> {
        if let Some(hit) = self.inner.read().cache.get(subject) {
            return hit.clone();
        }
        let mut inner = self.inner.write();
        if let Some(hit) = inner.cache.get(subject) {
            return hit.clone();
        }
        let mut found = Vec::new();
        let toks: Vec<Bytes> = tokens(subject).collect();
        collect(&inner.root, &toks, &mut found);
        let result = Arc::new(group(found));
        if inner.cache.len() >= MAX_CACHED_SUBJECTS {
            inner.cache.clear();
        }
        inner.cache.insert(subject.clone(), result.clone());
        result
    }
}

fn remove_from(node: &mut Node, toks: &[Bytes], sub: &Arc<Subscription>) -> bool {
    let take = |v: &mut Vec<Arc<Subscription>>| {
        v.iter()
            .position(|s| Arc::ptr_eq(s, sub))
            .map(|i| v.swap_remove(i))
            .is_some()
    };
    match toks {
        [] => take(&mut node.subs),
        [last] if &last[..] == b">" => take(&mut node.full),
        [tok, rest @ ..] => {
            if &tok[..] == b"*" {
                let Some(child) = node.star.as_deref_mut() else {
                    return false;
                };
                let removed = remove_from(child, rest, sub);
                if child.is_empty() {
                    node.star = None;
                }
                removed
            } else {
                let Some(child) = node.literal.get_mut(tok) else {
                    return false;
                };
                let removed = remove_from(child, rest, sub);
                if child.is_empty() {
                    node.literal.remove(tok);
                }
                removed
            }
        }
    }
}

fn collect(node: &Node, toks: &[Bytes], out: &mut Vec<Arc<Subscription>>) {
    let Some((tok, rest)) = toks.split_first() else {
        out.extend(node.subs.iter().cloned());
        return;
    };
    out.extend(node.full.iter().cloned());
    if let Some(child) = node.literal.get(tok) {
        collect(child, rest, out);
    }
    if let Some(child) = node.star.as_deref() {
        collect(child, rest, out);
    }
}

fn group(found: Vec<Arc<Subscription>>) -> Matches {
    let mut matches = Matches::default();
    for sub in found {
        match &sub.queue {
            None => matches.plain.push(sub),
            Some(name) => match matches.groups.iter_mut().find(|g| g.name == name) {
                Some(g) => g.members.push(sub),
                None => matches.groups.push(QueueGroup {
                    name: name.clone(),
                    members: vec![sub],
                    cursor: AtomicUsize::new(0),
                }),
            },
        }
    }
    matches
}
