//! The subscription table: exact subjects only, each mapped to its subscribers in the order
//! they subscribed.

use std::collections::HashMap;

use bytes::{BufMut, Bytes};

/// One subscription.
#[derive(Debug)]
pub(crate) struct Subscriber {
    /// The connection's slab index.
    pub conn: usize,
    pub sid: Bytes,
    /// `MSG <subject> <sid> `: the part of every message header that never changes.
    pub prefix: Box<[u8]>,
}

/// Subject -> subscribers.
#[derive(Debug, Default)]
pub(crate) struct Subjects {
    map: HashMap<Bytes, Vec<Subscriber>>,
}

impl Subjects {
    pub fn insert(&mut self, subject: Bytes, conn: usize, sid: Bytes) {
        let mut prefix = Vec::with_capacity(subject.len() + sid.len() + 6);
        prefix.put_slice(b"MSG ");
        prefix.put_slice(&subject);
        prefix.put_u8(b' ');
        prefix.put_slice(&sid);
        prefix.put_u8(b' ');
        self.map.entry(subject).or_default().push(Subscriber {
            conn,
            sid,
            prefix: prefix.into_boxed_slice(),
        });
    }

    pub fn remove(&mut self, subject: &[u8], conn: usize, sid: &[u8]) {
        if let Some(list) = self.map.get_mut(subject) {
            list.retain(|s| !(s.conn == conn && s.sid == sid));
            if list.is_empty() {
                self.map.remove(subject);
            }
        }
    }

    pub fn get(&self, subject: &[u8]) -> &[Subscriber] {
        self.map.get(subject).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_keep_their_order_and_leave_by_conn_and_sid() {
        let mut s = Subjects::default();
        let subject = Bytes::from_static(b"a.b");
        s.insert(subject.clone(), 1, Bytes::from_static(b"7"));
        s.insert(subject.clone(), 2, Bytes::from_static(b"7"));
        s.insert(subject.clone(), 1, Bytes::from_static(b"8"));
        let conns: Vec<_> = s.get(b"a.b").iter().map(|x| x.conn).collect();
        assert_eq!(conns, [1, 2, 1]);
        assert_eq!(&*s.get(b"a.b")[0].prefix, b"MSG a.b 7 ");
        s.remove(b"a.b", 1, b"7");
        let left: Vec<_> = s
            .get(b"a.b")
            .iter()
            .map(|x| (x.conn, x.sid.clone()))
            .collect();
        assert_eq!(
            left,
            [(2, Bytes::from_static(b"7")), (1, Bytes::from_static(b"8"))]
        );
        s.remove(b"a.b", 2, b"7");
        s.remove(b"a.b", 1, b"8");
        assert!(s.get(b"a.b").is_empty());
        assert!(s.map.is_empty(), "an empty subject is dropped");
    }
}
