//! Keyset pagination shared by every list: a position in an order (the sort key and a
//! unique tie-breaker), a request for the rows after or before it, and the page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::models::sql::{Bind, Sql};
use crate::models::storable;

/// A sort key value as a cursor carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "d")]
    Time(DateTime<Utc>),
    #[serde(rename = "s")]
    Text(String),
}

/// The type of an order's sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Int,
    Time,
    Text,
}

impl Key {
    pub const fn key_type(&self) -> KeyType {
        match self {
            Key::Int(_) => KeyType::Int,
            Key::Time(_) => KeyType::Time,
            Key::Text(_) => KeyType::Text,
        }
    }

    pub fn bind(&self) -> Bind {
        match self {
            Key::Int(v) => Bind::Int(*v),
            Key::Time(v) => Bind::Time(*v),
            Key::Text(v) => Bind::Text(v.clone()),
        }
    }
}

/// The unique tie-breaker of a row: a case number or an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tie {
    #[serde(rename = "n")]
    Number(i64),
    #[serde(rename = "u")]
    Id(Uuid),
}

impl Tie {
    pub fn bind(&self) -> Bind {
        match self {
            Tie::Number(v) => Bind::Int(*v),
            Tie::Id(v) => Bind::Uuid(*v),
        }
    }
}

/// A position in one order of one list. Opaque to clients: base64 of JSON naming the
/// order, so a cursor from another order is refused instead of silently misread.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "o")]
    pub order: String,
    #[serde(rename = "k")]
    pub key: Key,
    #[serde(rename = "t")]
    pub tie: Tie,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// The cursor in `text` when it was made for `order`, whose keys are of `key_type`
    /// and whose tie-breakers are numbers (`by_number`) or ids. A key no stored row can
    /// have (text with a NUL, a time beyond RFC 3339's years) makes no cursor: bound to
    /// the page's statement, the database would refuse it.
    pub fn decode(text: &str, order: &str, key_type: KeyType, by_number: bool) -> Option<Self> {
        if text.len() > 1024 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
        let tie_ok =
            matches!((&cursor.tie, by_number), (Tie::Number(_), true) | (Tie::Id(_), false));
        let storable = match &cursor.key {
            Key::Int(_) => true,
            Key::Time(time) => storable::time(time),
            Key::Text(text) => storable::text(text),
        };
        (cursor.order == order && cursor.key.key_type() == key_type && tie_ok && storable)
            .then_some(cursor)
    }
}

/// Which way the scan goes through the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub const fn sql(self) -> &'static str {
        match self {
            Direction::Asc => "ASC",
            Direction::Desc => "DESC",
        }
    }

    pub const fn reverse(self) -> Self {
        match self {
            Direction::Asc => Direction::Desc,
            Direction::Desc => Direction::Asc,
        }
    }

    /// The comparison that finds rows after a position when scanning this way.
    pub const fn after_op(self) -> &'static str {
        match self {
            Direction::Asc => ">",
            Direction::Desc => "<",
        }
    }
}

/// One page to fetch: up to `limit` rows after `cursor` in the order, or, when
/// `backward`, the last `limit` rows before it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageRequest {
    pub limit: i64,
    pub cursor: Option<Cursor>,
    pub backward: bool,
}

/// The rows of a page in list order, and whether rows exist beyond it on the side it was
/// fetched towards (one extra row is read to know).
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub more: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self { rows: Vec::new(), more: false }
    }
}

impl<T> Page<T> {
    /// Builds the page from rows fetched in scan order with `limit + 1` as the limit.
    pub fn from_scan(mut rows: Vec<T>, request: &PageRequest) -> Self {
        let limit = usize::try_from(request.limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if request.backward {
            rows.reverse();
        }
        Page { rows, more }
    }
}

/// The direction the rows of a request are read in.
pub const fn scan_direction(direction: Direction, request: &PageRequest) -> Direction {
    if request.backward { direction.reverse() } else { direction }
}

/// Appends `AND (key, tie) > (k, t)` (or `<`) for the request's cursor. `key` and `tie`
/// are SQL expressions of the list's order.
pub fn push_after(
    sql: &mut Sql,
    key: &str,
    tie: &str,
    direction: Direction,
    request: &PageRequest,
) {
    if let Some(cursor) = &request.cursor {
        let op = scan_direction(direction, request).after_op();
        sql.push(&format!(" AND ({key}, {tie}) {op} ("))
            .bind(cursor.key.bind())
            .push(", ")
            .bind(cursor.tie.bind())
            .push(")");
    }
}

/// Appends the keyset condition, then the ORDER BY and LIMIT of the scan.
pub fn push_keyset(
    sql: &mut Sql,
    key: &str,
    tie: &str,
    direction: Direction,
    request: &PageRequest,
) {
    push_after(sql, key, tie, direction, request);
    let dir = scan_direction(direction, request).sql();
    sql.push(&format!(" ORDER BY {key} {dir}, {tie} {dir} LIMIT "))
        .bind(Bind::Int(request.limit + 1));
}

/// Turns `SELECT <columns> FROM … WHERE …` (`inner`, with its keyset condition) into one
/// page per parent: rows are numbered within each value of `parent` in scan order and
/// the first `limit + 1` of each are kept. Rows carry `parent_key` (the parent as text).
pub fn window(
    mut inner: Sql,
    select: &str,
    parent: &str,
    key: &str,
    tie: &str,
    direction: Direction,
    request: &PageRequest,
) -> Sql {
    let dir = scan_direction(direction, request).sql();
    let head = format!(
        "SELECT * FROM (SELECT {select}, ({parent})::text AS parent_key, row_number() OVER \
         (PARTITION BY {parent} ORDER BY {key} {dir}, {tie} {dir}) AS rn "
    );
    inner.prepend(&head);
    inner.push(") ranked WHERE rn <= ").bind(Bind::Int(request.limit + 1));
    inner.push(" ORDER BY parent_key, rn");
    inner
}

/// Splits rows of several parents (in scan order per parent) into one page per parent.
pub fn pages_by_parent<T>(
    rows: Vec<(String, T)>,
    request: &PageRequest,
) -> std::collections::HashMap<String, Page<T>> {
    let mut grouped: std::collections::HashMap<String, Vec<T>> = std::collections::HashMap::new();
    for (parent, row) in rows {
        grouped.entry(parent).or_default().push(row);
    }
    grouped.into_iter().map(|(parent, rows)| (parent, Page::from_scan(rows, request))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_another_order_or_garbage() {
        let cursor =
            Cursor { order: "NAME".into(), key: Key::Text("abc".into()), tie: Tie::Number(7) };
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text, "NAME", KeyType::Text, true), Some(cursor));
        assert_eq!(Cursor::decode(&text, "NUMBER", KeyType::Text, true), None);
        assert_eq!(Cursor::decode(&text, "NAME", KeyType::Time, true), None);
        assert_eq!(Cursor::decode(&text, "NAME", KeyType::Text, false), None);
        assert_eq!(Cursor::decode("garbage!", "NAME", KeyType::Text, true), None);
        let time =
            Cursor { order: "T".into(), key: Key::Time(Utc::now()), tie: Tie::Id(Uuid::nil()) };
        assert_eq!(Cursor::decode(&time.encode(), "T", KeyType::Time, false), Some(time));
    }

    #[test]
    fn a_cursor_whose_key_the_database_cannot_hold_is_refused() {
        let nul =
            Cursor { order: "N".into(), key: Key::Text("a\u{0}".into()), tie: Tie::Number(1) };
        assert_eq!(Cursor::decode(&nul.encode(), "N", KeyType::Text, true), None);
        let ancient = "-10000-01-01T00:00:00Z".parse::<DateTime<Utc>>().expect("a time");
        let old = Cursor { order: "T".into(), key: Key::Time(ancient), tie: Tie::Number(1) };
        assert_eq!(Cursor::decode(&old.encode(), "T", KeyType::Time, true), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(512) }
        }

        fn key() -> impl Strategy<Value = Key> {
            prop_oneof![
                any::<i64>().prop_map(Key::Int),
                (-8_000_000_000_000_i64..8_000_000_000_000).prop_filter_map("a time", |s| {
                    DateTime::from_timestamp(s, 0).map(Key::Time)
                }),
                any::<String>().prop_map(Key::Text),
            ]
        }

        fn tie() -> impl Strategy<Value = Tie> {
            prop_oneof![
                any::<i64>().prop_map(Tie::Number),
                any::<u128>().prop_map(|u| Tie::Id(Uuid::from_u128(u))),
            ]
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_text_is_a_cursor_or_none(text in any::<String>(), by_number in any::<bool>()) {
                for key_type in [KeyType::Int, KeyType::Time, KeyType::Text] {
                    let _ = Cursor::decode(&text, "o", key_type, by_number);
                }
            }

            #[test]
            fn base64_of_any_bytes_or_json_is_a_cursor_or_none(
                bytes in prop::collection::vec(any::<u8>(), 0..200),
                json in "[{}\\[\\]\":,a-z0-9 .+-]{0,80}",
            ) {
                for text in [URL_SAFE_NO_PAD.encode(&bytes), URL_SAFE_NO_PAD.encode(&json)] {
                    for key_type in [KeyType::Int, KeyType::Time, KeyType::Text] {
                        let _ = Cursor::decode(&text, "o", key_type, true);
                    }
                }
            }

            #[test]
            fn a_cursor_is_read_back_only_for_its_own_order_and_types(
                key in key(),
                tie in tie(),
                order in "[a-z:_A-Z]{0,20}",
            ) {
                let cursor = Cursor { order: order.clone(), key, tie };
                let text = cursor.encode();
                let by_number = matches!(cursor.tie, Tie::Number(_));
                let key_type = cursor.key.key_type();
                let decoded = Cursor::decode(&text, &order, key_type, by_number);
                let storable = match &cursor.key {
                    Key::Int(_) => true,
                    Key::Time(time) => storable::time(time),
                    Key::Text(text) => storable::text(text),
                };
                prop_assert_eq!(decoded, storable.then(|| cursor.clone()));
                prop_assert_eq!(Cursor::decode(&text, &format!("{order}x"), key_type, by_number), None);
                prop_assert_eq!(Cursor::decode(&text, &order, key_type, !by_number), None);
            }
        }
    }

    #[test]
    fn a_backward_page_is_returned_in_list_order() {
        let request = PageRequest { limit: 2, cursor: None, backward: true };
        let page = Page::from_scan(vec![9, 8, 7], &request);
        assert_eq!(page.rows, vec![8, 9]);
        assert!(page.more);
    }
}
