//! State shared per key (a tenant's alert feed or its share of the pool, a
//! credential's request slots or sockets): made on first use and dropped
//! with its last holder. The map keeps only weak references, and prunes the
//! dead ones whenever it adds one, so it holds no more keys than are in use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

#[derive(Debug)]
pub struct Keyed<V> {
    map: Mutex<HashMap<Arc<str>, Weak<V>>>,
}

impl<V> Default for Keyed<V> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<V> Keyed<V> {
    /// `key`'s value, made with `make` (under the map's lock) if it has none.
    pub fn get_or_insert_with(&self, key: &str, make: impl FnOnce() -> V) -> Arc<V> {
        let mut map = self.map.lock().expect("keyed lock");
        if let Some(value) = map.get(key).and_then(Weak::upgrade) {
            return value;
        }
        let value = Arc::new(make());
        map.retain(|_, value| value.strong_count() > 0);
        map.insert(Arc::from(key), Arc::downgrade(&value));
        value
    }

    /// `key`'s value, if someone holds it.
    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.map
            .lock()
            .expect("keyed lock")
            .get(key)
            .and_then(Weak::upgrade)
    }

    /// Every value someone holds.
    pub fn values(&self) -> Vec<Arc<V>> {
        self.map
            .lock()
            .expect("keyed lock")
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_live_as_long_as_their_holders() {
        let keyed = Keyed::default();
        let a = keyed.get_or_insert_with("a", || 1);
        assert!(Arc::ptr_eq(&a, &keyed.get_or_insert_with("a", || 2)));
        assert_eq!(keyed.values().len(), 1);
        drop(a);
        assert!(keyed.get("a").is_none());
        assert_eq!(*keyed.get_or_insert_with("a", || 3), 3);
        let _b = keyed.get_or_insert_with("b", || 4);
        assert_eq!(
            keyed.map.lock().unwrap().len(),
            1,
            "the dead `a` was pruned"
        );
    }
}
