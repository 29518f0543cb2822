//! The number index: which operator serves an MSISDN.
//!
//! Two tables, both held as sorted arrays of integer keys with a parallel array of small
//! operator indexes (10 bytes an entry, no per-entry allocation):
//!
//! * **ported numbers**: whole MSISDNs, looked up exactly (one binary search);
//! * **ranges**: prefixes of the numbering plan, looked up longest first: for each prefix
//!   length the index holds (a bit set of lengths), the MSISDN cut to that length is
//!   searched.
//!
//! A ported number beats every range. Digits are integers: a prefix or an MSISDN never
//! starts with `0`, so the integer names exactly one digit string, and cutting the last
//! `k` digits is a division by `10^k`.
//!
//! Operators are numbered locally (`u16`) in the order the builder first met them; the
//! index keeps their ids so its owner can map them to operator records, which lets the
//! owner keep an index of ten million entries across operator edits.

use mc_store::NumberKind;

/// The longest number (E.164).
pub const MAX_DIGITS: usize = 15;

const POW10: [u64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// Parses 1 to 15 digits without a leading zero (an optional leading `+` is dropped).
pub fn parse_digits(raw: &str) -> Option<u64> {
    let d = raw.strip_prefix('+').unwrap_or(raw);
    if d.is_empty() || d.len() > MAX_DIGITS || d.starts_with('0') {
        return None;
    }
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// How many decimal digits `n` has (`n > 0`).
pub fn digits_of(n: u64) -> usize {
    POW10.iter().position(|&p| p > n).unwrap_or(16)
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// Index into [`NumberIndex::operator_ids`].
    pub operator: u16,
    pub kind: NumberKind,
    /// Digits of the prefix that matched (the whole number for a ported one).
    pub prefix_len: usize,
}

/// The immutable index. Build it with [`NumberIndexBuilder`].
#[derive(Debug, Default)]
pub struct NumberIndex {
    operator_ids: Vec<String>,
    ported_keys: Vec<u64>,
    ported_ops: Vec<u16>,
    range_keys: Vec<u64>,
    range_ops: Vec<u16>,
    /// Bit `l` set when some range has `l` digits.
    range_lengths: u16,
}

impl NumberIndex {
    /// The operator ids, by local index.
    pub fn operator_ids(&self) -> &[String] {
        &self.operator_ids
    }

    pub fn ported_len(&self) -> usize {
        self.ported_keys.len()
    }

    pub fn ranges_len(&self) -> usize {
        self.range_keys.len()
    }

    /// Bytes held by the arrays (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.ported_keys.capacity() * 8
            + self.ported_ops.capacity() * 2
            + self.range_keys.capacity() * 8
            + self.range_ops.capacity() * 2
    }

    /// The operator of `msisdn` (digits as an integer): its ported entry, else its longest
    /// matching range.
    pub fn lookup(&self, msisdn: u64) -> Option<Match> {
        let len = digits_of(msisdn);
        if let Ok(i) = self.ported_keys.binary_search(&msisdn) {
            return Some(Match {
                operator: self.ported_ops[i],
                kind: NumberKind::Ported,
                prefix_len: len,
            });
        }
        for l in (1..=len.min(MAX_DIGITS)).rev() {
            if self.range_lengths & (1 << l) == 0 {
                continue;
            }
            let prefix = msisdn / POW10[len - l];
            if let Ok(i) = self.range_keys.binary_search(&prefix) {
                return Some(Match {
                    operator: self.range_ops[i],
                    kind: NumberKind::Range,
                    prefix_len: l,
                });
            }
        }
        None
    }
}

/// Collects entries, then sorts once.
#[derive(Debug, Default)]
pub struct NumberIndexBuilder {
    index: NumberIndex,
    sorted_ported: bool,
    sorted_ranges: bool,
    /// The operator of the previous entry (imports come grouped by operator).
    last_op: Option<u16>,
}

impl NumberIndexBuilder {
    /// Room for `ported` and `ranges` entries (avoids the doubling of a growing array,
    /// which at ten million entries would briefly need half as much memory again).
    pub fn with_capacity(ported: usize, ranges: usize) -> Self {
        let mut b = NumberIndexBuilder {
            sorted_ported: true,
            sorted_ranges: true,
            ..Default::default()
        };
        b.index.ported_keys.reserve_exact(ported);
        b.index.ported_ops.reserve_exact(ported);
        b.index.range_keys.reserve_exact(ranges);
        b.index.range_ops.reserve_exact(ranges);
        b
    }

    fn operator(&mut self, id: &str) -> Option<u16> {
        if let Some(last) = self.last_op
            && self.index.operator_ids[usize::from(last)] == id
        {
            return Some(last);
        }
        let found = self.find_or_add(id);
        self.last_op = found;
        found
    }

    fn find_or_add(&mut self, id: &str) -> Option<u16> {
        if let Some(i) = self.index.operator_ids.iter().position(|x| x == id) {
            return u16::try_from(i).ok();
        }
        let i = u16::try_from(self.index.operator_ids.len()).ok()?;
        self.index.operator_ids.push(id.to_owned());
        Some(i)
    }

    /// Adds one entry; false when the number is 0 or too long, or there are more than
    /// 65 536 operators. A later entry for the same number replaces an earlier one.
    pub fn push(&mut self, kind: NumberKind, number: u64, operator_id: &str) -> bool {
        if number == 0 || digits_of(number) > MAX_DIGITS {
            return false;
        }
        let Some(op) = self.operator(operator_id) else {
            return false;
        };
        let (keys, ops, sorted) = match kind {
            NumberKind::Ported => (
                &mut self.index.ported_keys,
                &mut self.index.ported_ops,
                &mut self.sorted_ported,
            ),
            NumberKind::Range => {
                self.index.range_lengths |= 1 << digits_of(number);
                (
                    &mut self.index.range_keys,
                    &mut self.index.range_ops,
                    &mut self.sorted_ranges,
                )
            }
        };
        if keys.last().is_some_and(|&last| last >= number) {
            *sorted = false;
        }
        keys.push(number);
        ops.push(op);
        true
    }

    pub fn build(mut self) -> NumberIndex {
        if !self.sorted_ported {
            sort_dedup(&mut self.index.ported_keys, &mut self.index.ported_ops);
        }
        if !self.sorted_ranges {
            sort_dedup(&mut self.index.range_keys, &mut self.index.range_ops);
        }
        self.index.ported_keys.shrink_to_fit();
        self.index.ported_ops.shrink_to_fit();
        self.index.range_keys.shrink_to_fit();
        self.index.range_ops.shrink_to_fit();
        self.index
    }
}

/// Sorts `keys` (and `ops` along) stably, keeping the last entry of each key.
fn sort_dedup(keys: &mut Vec<u64>, ops: &mut Vec<u16>) {
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_by_key(|&i| keys[i as usize]);
    let mut k = Vec::with_capacity(keys.len());
    let mut o = Vec::with_capacity(ops.len());
    for &i in &order {
        let i = i as usize;
        if k.last() == Some(&keys[i]) {
            // Stable sort: this is the later entry.
            if let Some(last) = o.last_mut() {
                *last = ops[i];
            }
            continue;
        }
        k.push(keys[i]);
        o.push(ops[i]);
    }
    *keys = k;
    *ops = o;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn index(entries: &[(NumberKind, u64, &str)]) -> NumberIndex {
        let mut b = NumberIndexBuilder::with_capacity(0, 0);
        for (k, n, op) in entries {
            assert!(b.push(*k, *n, op));
        }
        b.build()
    }

    fn op_of(ix: &NumberIndex, msisdn: u64) -> Option<(&str, NumberKind, usize)> {
        ix.lookup(msisdn).map(|m| {
            (
                ix.operator_ids()[m.operator as usize].as_str(),
                m.kind,
                m.prefix_len,
            )
        })
    }

    #[test]
    fn longest_prefix_wins() {
        use NumberKind::Range;
        let ix = index(&[
            (Range, 44, "uk-default"),
            (Range, 447, "uk-mobile"),
            (Range, 4477009, "op-b"),
            (Range, 447700900, "op-a"),
            (Range, 33, "fr"),
        ]);
        assert_eq!(
            op_of(&ix, 447_700_900_301),
            Some(("op-a", Range, 9)),
            "the 9-digit prefix beats the 7-digit one"
        );
        assert_eq!(op_of(&ix, 447_700_910_000), Some(("op-b", Range, 7)));
        assert_eq!(op_of(&ix, 447_911_123_456), Some(("uk-mobile", Range, 3)));
        assert_eq!(op_of(&ix, 442_071_234_567), Some(("uk-default", Range, 2)));
        assert_eq!(op_of(&ix, 33_612_345_678), Some(("fr", Range, 2)));
    }

    #[test]
    fn ported_numbers_override_every_range() {
        use NumberKind::{Ported, Range};
        let ix = index(&[
            (Range, 447700900, "op-a"),
            (Ported, 447_700_900_302, "op-c"),
            (Ported, 447_700_900_399, "op-b"),
        ]);
        assert_eq!(op_of(&ix, 447_700_900_302), Some(("op-c", Ported, 12)));
        assert_eq!(op_of(&ix, 447_700_900_399), Some(("op-b", Ported, 12)));
        assert_eq!(
            op_of(&ix, 447_700_900_303),
            Some(("op-a", Range, 9)),
            "a neighbour of a ported number stays with its range"
        );
        // A ported number is exact: a longer number that starts with it is not ported.
        assert_eq!(op_of(&ix, 4_477_009_003_021), Some(("op-a", Range, 9)));
    }

    #[test]
    fn unknown_numbers_find_nothing() {
        use NumberKind::{Ported, Range};
        let ix = index(&[
            (Range, 447700900, "op-a"),
            (Ported, 447_700_900_302, "op-c"),
        ]);
        assert_eq!(ix.lookup(447_800_000_000), None);
        assert_eq!(ix.lookup(12_025_550_100), None);
        assert_eq!(ix.lookup(4_477_009), None, "shorter than the prefix");
        assert_eq!(NumberIndex::default().lookup(447_700_900_301), None);
    }

    #[test]
    fn unsorted_input_and_duplicates_keep_the_last_entry() {
        use NumberKind::{Ported, Range};
        let ix = index(&[
            (Ported, 447_700_900_500, "x"),
            (Ported, 447_700_900_100, "y"),
            (Ported, 447_700_900_500, "z"),
            (Range, 4478, "r1"),
            (Range, 4477, "r2"),
            (Range, 4478, "r3"),
        ]);
        assert_eq!(ix.ported_len(), 2);
        assert_eq!(ix.ranges_len(), 2);
        assert_eq!(op_of(&ix, 447_700_900_500).unwrap().0, "z");
        assert_eq!(op_of(&ix, 447_700_900_100).unwrap().0, "y");
        assert_eq!(op_of(&ix, 447_800_000_000).unwrap().0, "r3");
        assert_eq!(op_of(&ix, 447_700_000_000).unwrap().0, "r2");
    }

    #[test]
    fn digits_parse_and_count() {
        assert_eq!(parse_digits("+447700900301"), Some(447_700_900_301));
        assert_eq!(parse_digits("44"), Some(44));
        for bad in ["", "+", "0447", "44a", "1234567890123456", "44 77"] {
            assert_eq!(parse_digits(bad), None, "{bad}");
        }
        assert_eq!(digits_of(1), 1);
        assert_eq!(digits_of(9), 1);
        assert_eq!(digits_of(10), 2);
        assert_eq!(digits_of(447_700_900_301), 12);
        assert_eq!(digits_of(999_999_999_999_999), 15);
    }

    #[test]
    fn rejects_what_cannot_be_a_number() {
        let mut b = NumberIndexBuilder::default();
        assert!(!b.push(NumberKind::Range, 0, "x"));
        assert!(!b.push(NumberKind::Ported, 1_000_000_000_000_000, "x"));
    }
}
