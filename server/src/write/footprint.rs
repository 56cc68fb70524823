//! What a parsed value costs in memory: an estimate, from above, of the
//! heap bytes it owns. A load that holds parsed items until its end (drift
//! metrics) bounds itself by this rather than by the text it read, because
//! parsing multiplies: a `0,` of two bytes becomes a 32-byte `Value`, and a
//! two-key object a whole B-tree node.

use serde_json::Value as Json;
use std::mem::size_of;

/// Keys and values of one node of the `BTreeMap` behind a JSON object
/// (std's B-tree keeps up to 11 per node, allocated whole).
const NODE_CAPACITY: usize = 11;
/// A leaf node: its entries, parent pointer, index and length.
const LEAF_BYTES: usize = NODE_CAPACITY * (size_of::<String>() + size_of::<Json>()) + 16;
/// An internal node: a leaf plus its child pointers.
const INTERNAL_BYTES: usize = LEAF_BYTES + (NODE_CAPACITY + 1) * size_of::<usize>();
/// Fewest entries in a node other than the root (half full, rounded down).
const MIN_ENTRIES: usize = NODE_CAPACITY / 2;

/// Heap bytes `value` owns (not counting the `Value` itself, which its
/// owner holds inline).
pub fn json(value: &Json) -> usize {
    // Iterative: a value is as deep as its parser allowed, and this must
    // not be what overflows the stack.
    let mut total = 0;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Json::Null | Json::Bool(_) | Json::Number(_) => {}
            Json::String(s) => total += s.capacity(),
            Json::Array(items) => {
                total += items.capacity() * size_of::<Json>();
                stack.extend(items);
            }
            Json::Object(map) => {
                total += map_nodes(map.len());
                for (key, item) in map {
                    total += key.capacity();
                    stack.push(item);
                }
            }
        }
    }
    total
}

/// Bytes of the nodes of a B-tree of `entries`, counting every node as
/// filled as sparsely as the tree allows.
fn map_nodes(entries: usize) -> usize {
    if entries == 0 {
        return 0;
    }
    let leaves = entries.div_ceil(MIN_ENTRIES).max(1);
    let mut bytes = leaves * LEAF_BYTES;
    let mut level = leaves;
    while level > 1 {
        level = level.div_ceil(MIN_ENTRIES + 1);
        bytes += level * INTERNAL_BYTES;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts the bytes this thread holds, so the estimates can be checked
    /// against what parsing really allocates.
    struct Counting;

    thread_local! {
        static HELD: Cell<isize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            HELD.with(|h| h.set(h.get() + layout.size() as isize));
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            HELD.with(|h| h.set(h.get() - layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn held() -> isize {
        HELD.with(|h| h.get())
    }

    /// Parses `text` and returns (bytes it really holds, the estimate).
    fn parsed(text: &str) -> (usize, usize) {
        let before = held();
        let value: Json = serde_json::from_str(text).unwrap();
        let actual = (held() - before) as usize;
        let estimate = json(&value);
        drop(value);
        (actual, estimate)
    }

    #[test]
    fn estimates_are_at_least_what_parsing_allocates() {
        let zeros = format!("[{}0]", "0,".repeat(100_000));
        let small_objects = format!("[{}{{}}]", r#"{"a":1,"b":[2]},"#.repeat(10_000));
        let contributions = json!((0..20)
            .map(|i| (format!("feature_{i}"), json!(0.1 * i as f64)))
            .collect::<serde_json::Map<_, _>>())
        .to_string();
        let wide = json!((0..5_000)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>())
        .to_string();
        let nested = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let strings = format!("[{}\"\"]", "\"some text here\",".repeat(1000));
        for text in [
            zeros.as_str(),
            &small_objects,
            &contributions,
            &wide,
            &nested,
            &strings,
            "{}",
            "null",
        ] {
            let (actual, estimate) = parsed(text);
            assert!(
                estimate >= actual,
                "{}…: estimated {estimate} < {actual} allocated",
                &text[..text.len().min(40)]
            );
            // From above, but not wildly: the budget means what it says.
            assert!(
                estimate <= actual * 4 + 64,
                "{}…: estimated {estimate} for {actual} allocated",
                &text[..text.len().min(40)]
            );
        }
    }

    #[test]
    fn parsing_multiplies_the_text() {
        let text = format!("[{}0]", "0,".repeat(100_000));
        let (_, estimate) = parsed(&text);
        assert!(estimate > 10 * text.len(), "{estimate} for {}", text.len());
    }
}
