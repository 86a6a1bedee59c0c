//! RouterOS API query words (`.query` in `POST …/print`, ROUTEROS.md §7.4): a stack machine
//! of tests on one record, the record matching when every value left on the stack is true.
use std::cmp::Ordering;

use crate::menu::{CommandError, Record};
use crate::model::ItemId;

/// Evaluate `words` against `record`.
pub fn matches(words: &[String], record: &Record) -> Result<bool, CommandError> {
    let invalid = || CommandError::refused("invalid query");
    let mut stack: Vec<bool> = Vec::new();
    for word in words {
        if let Some(ops) = word.strip_prefix('#') {
            let mut chars = ops.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '|' | '&' => {
                        let b = stack.pop().ok_or_else(invalid)?;
                        let a = stack.pop().ok_or_else(invalid)?;
                        stack.push(if c == '|' { a || b } else { a && b });
                    }
                    '!' => {
                        let top = stack.last_mut().ok_or_else(invalid)?;
                        *top = !*top;
                    }
                    '.' => {
                        let top = *stack.last().ok_or_else(invalid)?;
                        stack.push(top);
                    }
                    d if d.is_ascii_digit() => {
                        let mut index = d.to_digit(10).unwrap_or(0) as usize;
                        while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                            index = index * 10 + next as usize;
                            chars.next();
                        }
                        let value = *stack.get(index).ok_or_else(invalid)?;
                        stack.push(value);
                    }
                    _ => return Err(invalid()),
                }
            }
        } else if let Some(name) = word.strip_prefix('-') {
            stack.push(!record.contains_key(name));
        } else if let Some(test) = word.strip_prefix('<') {
            stack.push(compare(record, test)? == Some(Ordering::Less));
        } else if let Some(test) = word.strip_prefix('>') {
            stack.push(compare(record, test)? == Some(Ordering::Greater));
        } else if let Some((name, value)) = word.split_once('=') {
            stack.push(record.get(name).map(String::as_str) == Some(value));
        } else {
            stack.push(record.contains_key(word.as_str()));
        }
    }
    Ok(stack.into_iter().all(|v| v))
}

/// The `name=value` tests every record matching `words` passes: all of them when the query
/// has no operators (`#…`; then every test must hold), none otherwise. A menu can look those
/// up by key before the query runs on what it found.
pub fn required_equalities(words: &[String]) -> Vec<(String, String)> {
    if words.iter().any(|w| w.starts_with('#')) {
        return Vec::new();
    }
    words
        .iter()
        .filter(|w| !w.starts_with(['-', '<', '>']))
        .filter_map(|w| w.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// The id `below` when the query is the single word `<.id=<below>`: the question the console
/// asks with `count-only` for an item's print number, which menus answer by counting
/// ([`crate::menu::Menu::count_below`]).
pub fn only_ids_below(words: &[String]) -> Option<ItemId> {
    match words {
        [word] => word.strip_prefix("<.id=")?.parse().ok(),
        _ => None,
    }
}

/// `name=value` → ordering of the record's value against `value` (ids by their number,
/// numeric when both are integers); `None` if the record lacks the property.
fn compare(record: &Record, test: &str) -> Result<Option<Ordering>, CommandError> {
    let (name, value) = test
        .split_once('=')
        .ok_or_else(|| CommandError::refused("invalid query"))?;
    Ok(record.get(name).map(|have| {
        if let (Ok(a), Ok(b)) = (have.parse::<ItemId>(), value.parse::<ItemId>()) {
            return a.cmp(&b);
        }
        match (have.parse::<i64>(), value.parse::<i64>()) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => have.as_str().cmp(value),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Record {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn q(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn manual_example_neither_ether_nor_vlan() {
        let words = q(&["type=ether", "type=vlan", "#|!"]);
        assert!(!matches(&words, &rec(&[("type", "ether")])).unwrap());
        assert!(!matches(&words, &rec(&[("type", "vlan")])).unwrap());
        assert!(matches(&words, &rec(&[("type", "bridge")])).unwrap());
    }

    #[test]
    fn default_is_and_and_presence_tests() {
        let r = rec(&[("name", "zt1"), ("port", "9993")]);
        assert!(matches(&q(&["name=zt1", "port=9993"]), &r).unwrap());
        assert!(!matches(&q(&["name=zt1", "port=1"]), &r).unwrap());
        assert!(matches(&q(&["comment", "#!"]), &r).unwrap());
        assert!(matches(&q(&["-comment"]), &r).unwrap());
        assert!(matches(&q(&[">port=1000", "<port=10000"]), &r).unwrap());
        assert!(matches(&q(&[]), &r).unwrap());
    }

    #[test]
    fn only_queries_without_operators_require_their_equalities() {
        let pairs = |words: &[&str]| required_equalities(&q(words));
        assert_eq!(
            pairs(&[
                "network=net",
                "-comment",
                ">port=1",
                "zt-address=0a00000001"
            ]),
            [
                ("network".to_string(), "net".to_string()),
                ("zt-address".to_string(), "0a00000001".to_string())
            ]
        );
        assert!(pairs(&["type=ether", "type=vlan", "#|"]).is_empty());
        assert!(pairs(&["name"]).is_empty());
    }

    #[test]
    fn ids_compare_by_number() {
        let r = rec(&[(".id", "*A")]);
        assert!(matches(&q(&[">.id=*9"]), &r).unwrap());
        assert!(matches(&q(&["<.id=*10"]), &r).unwrap());
        assert!(!matches(&q(&["<.id=*a"]), &r).unwrap());
        assert_eq!(only_ids_below(&q(&["<.id=*1F"])), Some(ItemId(0x1f)));
        assert_eq!(only_ids_below(&q(&["<.id=1F"])), None);
        assert_eq!(only_ids_below(&q(&["<.id=*1", "name=x"])), None);
        assert_eq!(only_ids_below(&q(&[">.id=*1"])), None);
    }

    #[test]
    fn stack_underflow_is_refused() {
        assert!(matches(&q(&["#|"]), &rec(&[])).is_err());
        assert!(matches(&q(&["#x"]), &rec(&[])).is_err());
    }
}
