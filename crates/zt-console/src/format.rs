//! RouterOS v7 output layouts: print tables, `detail`, `terse`, `as-value`, `export`.
//!
//! Layout rules and their evidence are in ROUTEROS.md §3–4. Lines are emitted without the
//! trailing padding RouterOS leaves after the last column.

use std::collections::BTreeSet;

use crate::backend::Item;
use crate::schema::{Flag, FlagColumn, Menu};
use crate::values::console_form;

/// One printed item and its print number (`None`: printed without a number, e.g. dynamic routes).
#[derive(Debug, Clone, Copy)]
pub struct PrintRow<'a> {
    pub number: Option<usize>,
    pub item: &'a Item,
    /// `print show-ids`: the `#` column shows the internal id (`*1`) instead of the number.
    pub show_id: bool,
}

impl PrintRow<'_> {
    /// What the `#` column shows for this row.
    fn label(&self) -> Option<String> {
        if self.show_id {
            Some(self.item.id.clone())
        } else {
            self.number.map(|n| n.to_string())
        }
    }
}

/// The console form of an item's property (`yes`/`no` for booleans); empty when unset.
pub fn display_value(menu: &Menu, item: &Item, property: &str) -> String {
    let kind = menu.property(property).map(|p| p.kind);
    item.get(property)
        .map(|raw| console_form(kind, raw))
        .unwrap_or_default()
}

/// Whether a text must be quoted to be read back as one value.
pub fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || !text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '@' | ',')
        })
}

/// `"text"` with RouterOS escapes, so that the console reads it back unchanged. Control
/// characters become `\XX`; other characters, non-ASCII included, are written as they are.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '$' => quoted.push_str("\\$"),
            '?' => quoted.push_str("\\?"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                quoted.push_str(&format!("\\{:02X}", c as u32));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `text` as it may go to a terminal: control characters (other than line feed and tab) and
/// the Unicode bidi controls, which could rewrite or reorder what the operator sees, are
/// written as `\XX` escapes of their UTF-8 bytes, the console's own escape form. Names and
/// comments come from controllers and databases the operator does not control.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                safe.push_str(&format!("\\{b:02X}"));
            }
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

fn flags_of<'m>(menu: &'m Menu, item: &Item) -> Vec<&'m Flag> {
    menu.flags
        .iter()
        .filter(|f| item.is_true(f.property))
        .collect()
}

/// `Flags: D - DYNAMIC; A - ACTIVE; c - CONNECT` for the given flags, grouped by slot.
fn legend(flags: &[&Flag], upper: bool) -> String {
    let mut groups: Vec<(u8, Vec<String>)> = Vec::new();
    for flag in flags {
        let name = if upper {
            flag.name.to_uppercase()
        } else {
            flag.name.to_string()
        };
        let entry = format!("{} - {}", flag.letter, name);
        match groups.iter_mut().find(|(g, _)| *g == flag.group) {
            Some((_, entries)) => entries.push(entry),
            None => groups.push((flag.group, vec![entry])),
        }
    }
    let groups: Vec<String> = groups.into_iter().map(|(_, e)| e.join(", ")).collect();
    format!("Flags: {}", groups.join("; "))
}

/// The flag cell: one character per slot group, the set flag's letter or a blank.
fn flag_cell(menu: &Menu, item: &Item, groups: &[u8]) -> String {
    let set = flags_of(menu, item);
    groups
        .iter()
        .map(|g| set.iter().find(|f| f.group == *g).map_or(' ', |f| f.letter))
        .collect()
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

fn pad_left(text: &str, width: usize) -> String {
    format!("{text:>width$}")
}

fn pad_right(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

/// Which columns a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnChoice {
    /// The menu's brief columns: those whose values are all empty are left out, as RouterOS
    /// leaves out `NETWORK-NAME` before a network name is known.
    Brief,
    /// Columns the user listed (`proplist=`): all shown.
    Listed,
}

/// The table of `print`. Prints nothing for no rows.
pub fn table(
    menu: &Menu,
    rows: &[PrintRow<'_>],
    columns: &[String],
    choice: ColumnChoice,
) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let present: Vec<&Flag> = menu
        .flags
        .iter()
        .filter(|f| rows.iter().any(|r| r.item.is_true(f.property)))
        .collect();
    let groups: Vec<u8> = present
        .iter()
        .map(|f| f.group)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (show_flags, flag_width) = match menu.flag_column {
        FlagColumn::WhenPresent => (!groups.is_empty(), groups.len()),
        FlagColumn::AlwaysWithSpareSlot if groups.is_empty() => (true, 0),
        FlagColumn::AlwaysWithSpareSlot => (true, groups.len() + 1),
    };
    let mut shown: Vec<&String> = columns
        .iter()
        .filter(|c| {
            choice == ColumnChoice::Listed
                || rows
                    .iter()
                    .any(|r| !display_value(menu, r.item, c).is_empty())
        })
        .collect();
    if shown.is_empty() {
        shown.extend(columns.first());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            shown
                .iter()
                .map(|c| display_value(menu, r.item, c))
                .collect()
        })
        .collect();
    let headers: Vec<String> = shown.iter().map(|c| c.to_uppercase()).collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = shown
        .iter()
        .map(|c| menu.property(c).is_some_and(|p| p.kind.is_numeric()))
        .collect();
    let number_width = rows.iter().filter_map(|r| r.label()).map(|n| n.len()).max();

    if !present.is_empty() {
        push_line(&mut out, &legend(&present, true));
    }
    push_line(&mut out, &format!("Columns: {}", headers.join(", ")));
    let lead = |number: &str, flags: &str| {
        let mut text = String::new();
        if let Some(width) = number_width {
            text.push_str(number);
            text.push_str(&" ".repeat(width.saturating_sub(number.len())));
            text.push(' ');
        }
        if show_flags {
            text.push_str(&pad_right(flags, flag_width));
            text.push(' ');
        }
        text
    };
    let header_cells: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| pad_right(h, *w))
        .collect();
    push_line(
        &mut out,
        &format!("{}{}", lead("#", ""), header_cells.join("  ")),
    );
    for (row, values) in rows.iter().zip(&cells) {
        if let Some(comment) = row.item.get("comment").filter(|c| !c.is_empty()) {
            push_line(&mut out, &format!(";;; {comment}"));
        }
        let number = match (row.label(), number_width) {
            (Some(label), Some(width)) => pad_left(&label, width),
            _ => String::new(),
        };
        let flags = flag_cell(menu, row.item, &groups);
        let line: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if numeric[i] {
                    pad_left(v, widths[i])
                } else {
                    pad_right(v, widths[i])
                }
            })
            .collect();
        let text = format!("{}{}", lead(&number, &flags), line.join("  "));
        push_line(&mut out, &text);
    }
    out
}

/// `name=value` pairs of `detail`/`terse`, in the menu's property order: flags and the
/// comment are shown elsewhere, sensitive values only on request.
fn detail_pairs(menu: &Menu, item: &Item, show_sensitive: bool) -> Vec<String> {
    let mut pairs = Vec::new();
    for property in menu.properties {
        if property.name == "comment"
            || menu.flag_for_property(property.name).is_some()
            || (property.sensitive && !show_sensitive)
        {
            continue;
        }
        let Some(raw) = item.get(property.name) else {
            continue;
        };
        let value = console_form(Some(property.kind), raw);
        let value = if property.kind.is_quoted() {
            quote(&value)
        } else {
            value
        };
        pairs.push(format!("{}={}", property.name, value));
    }
    for (name, value) in &item.properties {
        if menu.property(name).is_none() {
            let value = if needs_quotes(value) {
                quote(value)
            } else {
                value.clone()
            };
            pairs.push(format!("{name}={value}"));
        }
    }
    pairs
}

fn all_groups(menu: &Menu) -> Vec<u8> {
    menu.flags
        .iter()
        .map(|f| f.group)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn detail_prefix(menu: &Menu, row: &PrintRow<'_>, number_width: usize, groups: &[u8]) -> String {
    let number = row.label().unwrap_or_default();
    let mut prefix = pad_left(&number, number_width);
    prefix.push(' ');
    if !groups.is_empty() {
        prefix.push_str(&flag_cell(menu, row.item, groups));
        prefix.push(' ');
    }
    prefix
}

/// `print detail`: a lower-case legend of all flags, then per item the number, flag slots,
/// `;;; comment`, and `name=value` pairs wrapped at `width` columns; a blank line after each.
pub fn detail(menu: &Menu, rows: &[PrintRow<'_>], width: usize, show_sensitive: bool) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let groups = all_groups(menu);
    if !menu.flags.is_empty() {
        let flags: Vec<&Flag> = menu.flags.iter().collect();
        push_line(&mut out, &legend(&flags, false));
    }
    let number_width = rows
        .iter()
        .filter_map(|r| r.label())
        .map(|n| n.len())
        .max()
        .unwrap_or(0)
        .max(2);
    for row in rows {
        let prefix = detail_prefix(menu, row, number_width, &groups);
        let indent = " ".repeat(prefix.chars().count());
        let mut line = prefix;
        let mut at_line_start = true;
        if let Some(comment) = row.item.get("comment").filter(|c| !c.is_empty()) {
            line.push_str(";;; ");
            line.push_str(comment);
            push_line(&mut out, &line);
            line = indent.clone();
        }
        for pair in detail_pairs(menu, row.item, show_sensitive) {
            let fits = line.chars().count() + 1 + pair.chars().count() <= width;
            if at_line_start {
                line.push_str(&pair);
                at_line_start = false;
            } else if fits {
                line.push(' ');
                line.push_str(&pair);
            } else {
                push_line(&mut out, &line);
                line = format!("{indent}{pair}");
            }
        }
        push_line(&mut out, &line);
        out.push('\n');
    }
    out
}

/// `print terse`: one unwrapped line per item; the comment is given as `comment=`.
pub fn terse(menu: &Menu, rows: &[PrintRow<'_>], show_sensitive: bool) -> String {
    let mut out = String::new();
    let groups = all_groups(menu);
    for row in rows {
        let mut line = detail_prefix(menu, row, 0, &groups);
        let mut pairs = Vec::new();
        if let Some(comment) = row.item.get("comment").filter(|c| !c.is_empty()) {
            pairs.push(format!("comment={}", quote(comment)));
        }
        pairs.extend(detail_pairs(menu, row.item, show_sensitive));
        line.push_str(&pairs.join(" "));
        push_line(&mut out, &line);
    }
    out
}

/// `print as-value` records: `.id` first, then the chosen properties alphabetically, in REST
/// form (`true`/`false`); unset properties are left out.
pub fn records(items: &[&Item], properties: &[String]) -> Vec<Vec<(String, String)>> {
    let mut names: Vec<&String> = properties.iter().filter(|p| *p != ".id").collect();
    names.sort();
    names.dedup();
    items
        .iter()
        .map(|item| {
            let mut record = vec![(".id".to_string(), item.id.clone())];
            for name in &names {
                if let Some(value) = item.get(name) {
                    record.push(((*name).clone(), value.to_string()));
                }
            }
            record
        })
        .collect()
}

/// Options of `export`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Every command on one line, prefixed with its menu path.
    pub terse: bool,
    /// Include values equal to the default.
    pub verbose: bool,
    pub show_sensitive: bool,
}

/// Longest exported line; continuation lines end with ` \`.
const EXPORT_WIDTH: usize = 80;

/// The `export` section of one menu: its path in space form, then `add`/`set` lines with
/// settable properties in alphabetical order, defaults left out. Empty when nothing to export.
pub fn export(menu: &Menu, items: &[Item], options: ExportOptions) -> String {
    let mut commands = Vec::new();
    for item in items.iter().filter(|i| !i.is_true("dynamic")) {
        let name = item.get("name").unwrap_or_default();
        let is_default_item = menu.default_items.contains(&name);
        let mut pairs: Vec<(String, String)> = Vec::new();
        for property in menu.settable() {
            if property.sensitive && !options.show_sensitive {
                continue;
            }
            let Some(raw) = item.get(property.name) else {
                continue;
            };
            // Compared in console form: a backend may answer `no` where the default is `false`.
            let is_default = match property.default {
                Some(default) => {
                    console_form(Some(property.kind), default)
                        == console_form(Some(property.kind), raw)
                }
                None => raw.is_empty(),
            };
            let keep_key = property.key && !is_default_item;
            if is_default && !options.verbose && !keep_key {
                continue;
            }
            let value = console_form(Some(property.kind), raw);
            let value = if property.kind.is_quoted() && needs_quotes(&value) {
                quote(&value)
            } else {
                value
            };
            pairs.push((property.name.to_string(), value));
        }
        pairs.sort();
        let verb = if menu.is_singleton() {
            if pairs.is_empty() {
                continue;
            }
            "set".to_string()
        } else if is_default_item {
            if pairs.is_empty() {
                continue;
            }
            let name = if needs_quotes(name) {
                quote(name)
            } else {
                name.to_string()
            };
            format!("set {name}")
        } else {
            "add".to_string()
        };
        commands.push((verb, pairs));
    }
    if commands.is_empty() {
        return String::new();
    }
    let header = menu.export_header();
    let mut out = String::new();
    if !options.terse {
        push_line(&mut out, &header);
    }
    for (verb, pairs) in commands {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(name, value)| (format!("{name}="), value))
            .collect();
        if options.terse {
            let joined: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}{v}")).collect();
            let mut line = format!("{header} {verb}");
            if !joined.is_empty() {
                line.push(' ');
                line.push_str(&joined.join(" "));
            }
            push_line(&mut out, &line);
            continue;
        }
        wrap_export_command(&mut out, verb, &pairs);
    }
    out
}

/// Greedy wrapping at [`EXPORT_WIDTH`]: a pair that does not fit moves to a continuation line,
/// or, when its `name=` still fits, is split after the `=` (both seen in real exports).
fn wrap_export_command(out: &mut String, verb: String, pairs: &[(String, String)]) {
    let mut line = verb;
    for (index, (name, value)) in pairs.iter().enumerate() {
        let last = index + 1 == pairs.len();
        let limit = if last { EXPORT_WIDTH } else { EXPORT_WIDTH - 2 };
        let length = line.chars().count();
        let pair_length = name.chars().count() + value.chars().count();
        if length + 1 + pair_length <= limit {
            line.push(' ');
            line.push_str(name);
            line.push_str(value);
        } else if length + 1 + name.chars().count() < EXPORT_WIDTH {
            line.push(' ');
            line.push_str(name);
            line.push('\\');
            push_line(out, &line);
            line = format!("    {value}");
        } else {
            line.push_str(" \\");
            push_line(out, &line);
            line = format!("    {name}{value}");
        }
    }
    push_line(out, &line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::menu;

    fn item(id: &str, pairs: &[(&str, &str)]) -> Item {
        Item {
            id: id.into(),
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"a "b" \ $c"#), r#""a \"b\" \\ \$c""#);
        assert_eq!(quote("x\ny\u{1}"), r#""x\ny\01""#);
        assert!(needs_quotes("two words"));
        assert!(needs_quotes(""));
        assert!(!needs_quotes("zerotier1"));
    }

    #[test]
    fn numbers_of_ten_and_more_are_right_aligned() {
        let peer = menu("/zerotier/peer").unwrap();
        let items: Vec<Item> = (0..11)
            .map(|n| {
                item(
                    &format!("*{n:X}"),
                    &[("instance", "zt1"), ("latency", "5ms")],
                )
            })
            .collect();
        let rows: Vec<PrintRow<'_>> = items
            .iter()
            .enumerate()
            .map(|(n, item)| PrintRow {
                number: Some(n),
                item,
                show_id: false,
            })
            .collect();
        let columns = vec!["instance".to_string(), "latency".to_string()];
        let printed = table(peer, &rows, &columns, ColumnChoice::Brief);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines[0], "Columns: INSTANCE, LATENCY");
        assert_eq!(lines[1], "#  INSTANCE  LATENCY");
        assert_eq!(lines[2], " 0 zt1       5ms");
        assert_eq!(lines[12], "10 zt1       5ms");
        assert_eq!(table(peer, &[], &columns, ColumnChoice::Brief), "");
        let listed = vec!["instance".to_string(), "role".to_string()];
        let printed = table(peer, &rows[..1], &listed, ColumnChoice::Listed);
        assert_eq!(
            printed,
            "Columns: INSTANCE, ROLE\n# INSTANCE  ROLE\n0 zt1\n"
        );
    }

    #[test]
    fn terminal_output_escapes_controls_and_bidi_overrides() {
        assert_eq!(terminal_safe("plain\tname\n"), "plain\tname\n");
        assert_eq!(terminal_safe("a\x1b[2Jb"), "a\\1B[2Jb");
        assert_eq!(
            terminal_safe("evil\u{202e}txt.exe"),
            "evil\\E2\\80\\AEtxt.exe"
        );
        assert_eq!(terminal_safe("x\u{9b}y"), "x\\C2\\9By");
        assert_eq!(terminal_safe("ünïcode ok"), "ünïcode ok");
    }

    #[test]
    fn controller_rules_export_as_one_quoted_value() {
        // Rules-language text has spaces, `;`, `$` and line ends: quoted, it reads back whole.
        let controller = menu("/zerotier/controller").unwrap();
        let network = item(
            "*1",
            &[
                ("name", "lab"),
                ("instance", "zt1"),
                ("rules", "drop vlan $v;\naccept;"),
            ],
        );
        assert_eq!(
            export(controller, &[network], ExportOptions::default()),
            "/zerotier controller\nadd instance=zt1 name=lab rules=\"drop vlan \\$v;\\naccept;\"\n"
        );
    }

    #[test]
    fn export_wraps_like_routeros() {
        // Both shapes of the real export in ROUTEROS.md §4.1, in verbose mode.
        let zerotier = menu("/zerotier").unwrap();
        let instance = item(
            "*1",
            &[
                ("name", "zt1"),
                ("port", "9993"),
                ("disabled", "false"),
                (
                    "comment",
                    "ZeroTier Central controller - https://my.zerotier.com/",
                ),
            ],
        );
        let options = ExportOptions {
            verbose: true,
            ..Default::default()
        };
        assert_eq!(
            export(zerotier, &[instance], options),
            "/zerotier\nset zt1 comment=\"ZeroTier Central controller - https://my.zerotier.com/\" \\\n    disabled=no name=zt1 port=9993\n"
        );
        let interface = menu("/zerotier/interface").unwrap();
        let network = item(
            "*1",
            &[
                ("name", "zerotier1"),
                ("network", "1d71939404d61032"),
                ("instance", "zt1"),
                ("allow-managed", "true"),
                ("allow-global", "false"),
                ("allow-default", "false"),
                ("disabled", "false"),
            ],
        );
        let exported = export(interface, std::slice::from_ref(&network), options);
        assert_eq!(
            exported,
            "/zerotier interface\nadd allow-default=no allow-global=no allow-managed=yes disabled=no instance=\\\n    zt1 name=zerotier1 network=1d71939404d61032\n"
        );
        // Compact (default) export leaves defaults out.
        assert_eq!(
            export(interface, &[network], ExportOptions::default()),
            "/zerotier interface\nadd instance=zt1 name=zerotier1 network=1d71939404d61032\n"
        );
    }
}

/// `print` of a singleton menu: one `name: value` line per property, names right-aligned
/// (`  name: MikroTik`).
pub fn singleton(menu: &Menu, item: &Item) -> String {
    let shown: Vec<&str> = menu
        .properties
        .iter()
        .filter(|p| !p.sensitive && item.get(p.name).is_some())
        .map(|p| p.name)
        .collect();
    let width = shown.iter().map(|n| n.len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for name in shown {
        let line = format!("{name:>width$}: {}", display_value(menu, item, name));
        push_line(&mut out, &line);
    }
    out
}

/// `/ping`'s output from the router's reply objects (REST `POST /rest/ping`): the header,
/// one row per sequence number (`timeout` in STATUS for a lost one), then the totals of the
/// last object.
pub fn ping(replies: &[Item]) -> String {
    let field = |item: &Item, name: &str| item.get(name).unwrap_or_default().to_string();
    let mut out = format!(
        "{:>5} {:<40} {:>4} {:>3} {:<10} STATUS\n",
        "SEQ", "HOST", "SIZE", "TTL", "TIME"
    );
    for reply in replies {
        let row = format!(
            "{:>5} {:<40} {:>4} {:>3} {:<10} {}",
            field(reply, "seq"),
            field(reply, "host"),
            field(reply, "size"),
            field(reply, "ttl"),
            field(reply, "time"),
            field(reply, "status"),
        );
        out.push_str(row.trim_end());
        out.push('\n');
    }
    if let Some(last) = replies.last() {
        let mut summary = format!(
            "    sent={} received={} packet-loss={}%",
            field(last, "sent"),
            field(last, "received"),
            field(last, "packet-loss")
        );
        for name in ["min-rtt", "avg-rtt", "max-rtt"] {
            if let Some(value) = last.get(name) {
                summary.push_str(&format!(" {name}={value}"));
            }
        }
        out.push_str(&summary);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod ping_tests {
    use super::*;

    fn reply(pairs: &[(&str, &str)]) -> Item {
        let mut item = Item::default();
        for (k, v) in pairs {
            item.set(k, *v);
        }
        item
    }

    #[test]
    fn ping_replies_are_laid_out_as_routeros_prints_them() {
        let totals = [("sent", "2"), ("received", "1"), ("packet-loss", "50")];
        let mut first = reply(&[
            ("seq", "0"),
            ("host", "172.27.27.13"),
            ("size", "56"),
            ("ttl", "64"),
            ("time", "407us"),
        ]);
        for (k, v) in [("sent", "1"), ("received", "1"), ("packet-loss", "0")] {
            first.set(k, v);
        }
        let mut second = reply(&[
            ("seq", "1"),
            ("host", "172.27.27.13"),
            ("status", "timeout"),
        ]);
        for (k, v) in totals.iter().chain(&[
            ("min-rtt", "407us"),
            ("avg-rtt", "407us"),
            ("max-rtt", "407us"),
        ]) {
            second.set(k, *v);
        }
        let text = ping(&[first, second]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "  SEQ HOST                                     SIZE TTL TIME       STATUS",
                "    0 172.27.27.13                               56  64 407us",
                "    1 172.27.27.13                                                 timeout",
                "    sent=2 received=1 packet-loss=50% min-rtt=407us avg-rtt=407us max-rtt=407us",
            ]
        );
    }
}
