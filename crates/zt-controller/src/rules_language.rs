//! ZeroTier's rules language (the `rulesSource` text of ztncui, zero-ui, ZTNet and ZeroTier
//! Central), compiled into network rules, capabilities and tags.
//!
//! The UIs compile the text with ZeroTier's JavaScript rule compiler and post both the text and
//! the result; some post only the text, and the RouterOS face takes only text. So the text must
//! mean here what it means there: a source that compiles there compiles here to the same rules,
//! and one that fails there fails here, at the same line and column. The cases in
//! `tests/data/rules_language.json` were produced by that compiler and hold us to it; the few
//! deliberate differences are listed in `tests/rules_language.rs`. In short, where the JS
//! compiler passes on a value the wire cannot carry (a VLAN of 70000, an address that is not
//! hexadecimal, an IP that is not an IP), and zerotier-one would then quietly store something
//! else, we refuse it with an error instead.
//!
//! The language, as that compiler reads it:
//! - words are separated by spaces, tabs and line ends; `#` at the start of a word comments out
//!   the rest of the line; a word ending in `;` closes the open block;
//! - `drop`, `accept`, `break` (optionally followed by matches), `tee LENGTH ADDRESS [matches]`,
//!   `watch LENGTH ADDRESS [matches]` and `redirect ADDRESS [matches]` are actions; the matches
//!   before an action all have to hold for it to apply (`or` and `not` modify the next match);
//! - `macro NAME($a,$b) ... ;` defines rules to paste with `include NAME(x,y)`; `$a` stands for
//!   a match argument;
//! - `tag NAME id N [default V] [enum VALUE NAME]... [flag BIT[,BIT] NAME]... ;` defines a tag
//!   and names for its values;
//! - `cap NAME id N [default] RULES... ;` defines a capability with its own rules.
//!
//! One trap, kept because the reference has it: an action written with its `;` attached and
//! no matches (`accept;`) closes nothing and opens a block that takes in what follows, so
//! `accept; drop;` fails (`drop` is not a match). Such an action belongs last, as the UIs'
//! default `...; accept;` has it.
//!
//! The compiler takes untrusted text: it never panics, its tree is flat (no recursion over
//! nesting), and macro expansion is bounded in depth and in total work.
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use zt_crypto::Address;
use zt_wire::mac::Mac;
use zt_wire::rules::{Forward, Rule, RuleKind, TagOp, MAX_CAPABILITY_RULES, MAX_NETWORK_RULES};

/// What a rules source defines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    /// The network's rules, in order.
    pub rules: Vec<Rule>,
    /// Capabilities, in the order they are defined.
    pub capabilities: Vec<NamedCapability>,
    /// Tags, in the order they are defined.
    pub tags: Vec<NamedTag>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedCapability {
    /// Lower case, as the language compares names.
    pub name: String,
    pub id: u32,
    /// `default` given: every member gets it.
    pub default: bool,
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedTag {
    /// Lower case, as the language compares names.
    pub name: String,
    pub id: u32,
    pub default: Option<u32>,
    /// `enum VALUE NAME` names, in definition order.
    pub enums: Vec<(String, u32)>,
    /// `flag BITS NAME` names with their masks, in definition order.
    pub flags: Vec<(String, u32)>,
}

/// Why a source does not compile, and where (1-based line and column, counted in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct CompileError {
    pub line: usize,
    pub column: usize,
    pub reason: String,
}

/// How deep `include`s may nest: far beyond any real rule set, and it stops a macro that
/// includes itself.
const MAX_INCLUDE_DEPTH: usize = 32;

/// How many words the rule rendering may visit in all. Macros that include each other twice
/// per level expand exponentially even when they produce no rules; this bounds the time.
const MAX_RENDER_STEPS: usize = 1_000_000;

/// Words after which a new block starts (closed by a word ending in `;`). Compared as written,
/// not lowercased, as the reference compiler does.
const BLOCK_OPENERS: [&str; 10] = [
    "macro", "tag", "cap", "drop", "accept", "tee", "watch", "redirect", "break", "priority",
];

/// Words that may not be names or match arguments (compared as written).
const RESERVED_WORDS: [&str; 50] = [
    "macro",
    "tag",
    "cap",
    "default",
    "drop",
    "accept",
    "tee",
    "watch",
    "redirect",
    "break",
    "priority",
    "ztsrc",
    "ztdest",
    "vlan",
    "vlanpcp",
    "vlandei",
    "ethertype",
    "macsrc",
    "macdest",
    "ipsrc",
    "ipdest",
    "iptos",
    "ipprotocol",
    "icmp",
    "sport",
    "dport",
    "chr",
    "framesize",
    "random",
    "tand",
    "tor",
    "txor",
    "tdiff",
    "teq",
    "tseq",
    "treq",
    "type",
    "enum",
    "class",
    "define",
    "import",
    "include",
    "log",
    "not",
    "xor",
    "or",
    "and",
    "set",
    "var",
    "let",
];

const ETHERTYPE_NAMES: [(&str, u16); 9] = [
    ("ipv4", 0x0800),
    ("arp", 0x0806),
    ("wol", 0x0842),
    ("rarp", 0x8035),
    ("ipv6", 0x86dd),
    ("atalk", 0x809b),
    ("aarp", 0x80f3),
    ("ipx_a", 0x8137),
    ("ipx_b", 0x8138),
];

const IP_PROTOCOL_NAMES: [(&str, u8); 17] = [
    ("icmp", 1),
    ("icmp4", 1),
    ("icmpv4", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("udp", 17),
    ("rdp", 27),
    ("esp", 50),
    ("ah", 51),
    ("icmp6", 58),
    ("icmpv6", 58),
    ("l2tp", 115),
    ("sctp", 132),
    ("udplite", 136),
];

/// Names of the bits of `chr` (bit 0 is the least significant of the 64-bit mask).
const CHARACTERISTIC_NAMES: [(&str, u32); 17] = [
    ("inbound", 63),
    ("multicast", 62),
    ("broadcast", 61),
    ("ipauth", 60),
    ("macauth", 59),
    ("tcp_fin", 0),
    ("tcp_syn", 1),
    ("tcp_rst", 2),
    ("tcp_psh", 3),
    ("tcp_ack", 4),
    ("tcp_urg", 5),
    ("tcp_ece", 6),
    ("tcp_cwr", 7),
    ("tcp_ns", 8),
    ("tcp_rs2", 9),
    ("tcp_rs1", 10),
    ("tcp_rs0", 11),
];

/// Compiles a rules source.
pub fn compile(source: &str) -> Result<Compiled, CompileError> {
    let tree = Tree::parse(source);
    let definitions = Definitions::read(&tree)?;
    let mut steps = 0;
    let mut capabilities = Vec::with_capacity(definitions.capabilities.len());
    // Capabilities render before the network rules, so their errors come first (as in the
    // reference compiler, whatever the order in the text).
    for cap in &definitions.capabilities {
        let mut renderer = Renderer {
            tree: &tree,
            definitions: &definitions,
            rules: Vec::new(),
            max_rules: MAX_CAPABILITY_RULES,
            what: "capability",
            steps: &mut steps,
        };
        renderer.actions(&cap.body, &HashMap::new(), 0)?;
        capabilities.push(NamedCapability {
            name: cap.name.clone(),
            id: cap.id,
            default: cap.default,
            rules: renderer.rules,
        });
    }
    let mut renderer = Renderer {
        tree: &tree,
        definitions: &definitions,
        rules: Vec::new(),
        max_rules: MAX_NETWORK_RULES,
        what: "network",
        steps: &mut steps,
    };
    renderer.actions(&definitions.network_rules, &HashMap::new(), 0)?;
    Ok(Compiled {
        rules: renderer.rules,
        capabilities,
        tags: definitions.tags,
    })
}

// ----- pass 1: words into blocks ---------------------------------------------------------------

struct Word {
    text: String,
    line: usize,
    column: usize,
}

/// A block's entry: a word, or a nested block (indices into [`Tree`]). A block always starts
/// with a word.
#[derive(Clone, Copy, Debug)]
enum Node {
    Word(usize),
    Block(usize),
}

/// The source as nested blocks of words, stored flat so that deep nesting costs no recursion.
struct Tree {
    words: Vec<Word>,
    blocks: Vec<Vec<Node>>,
}

impl Tree {
    fn parse(source: &str) -> Tree {
        let mut tree = Tree {
            words: Vec::new(),
            blocks: vec![Vec::new()],
        };
        // Blocks still open, innermost last; block 0 is the whole source.
        let mut open: Vec<usize> = vec![0];
        let mut word = String::new();
        let mut word_at = (0, 0);
        let mut in_comment = false;
        let (mut line, mut column) = (1, 0);
        for ch in source.chars() {
            column += 1;
            let here = (line, column);
            if ch == '\n' {
                line += 1;
                column = 0;
            }
            if in_comment {
                in_comment = !matches!(ch, '\r' | '\n');
                continue;
            }
            match ch {
                ' ' | '\t' | '\r' | '\n' => {
                    if !word.is_empty() {
                        tree.end_word(&mut open, std::mem::take(&mut word), word_at);
                    }
                }
                '#' if word.is_empty() => in_comment = true,
                _ => {
                    if word.is_empty() {
                        word_at = here;
                    }
                    word.push(ch);
                }
            }
        }
        // The last word of the source only counts as a word: its `;` closes nothing.
        let last = word.strip_suffix(';').unwrap_or(&word);
        if !last.is_empty() {
            let node = tree.add_word(last.to_string(), word_at);
            tree.append(&open, node);
        }
        // Blocks left open end with the source; an empty one (opened by the very last word)
        // stops the closing, and what is inside the blocks below it is lost, as in the
        // reference compiler.
        while open.len() > 1 && open.last().is_some_and(|&b| !tree.blocks[b].is_empty()) {
            tree.close(&mut open);
        }
        tree
    }

    fn end_word(&mut self, open: &mut Vec<usize>, mut text: String, at: (usize, usize)) {
        let closes_block = text.ends_with(';');
        if closes_block {
            text.pop();
        }
        let opens_block = BLOCK_OPENERS.contains(&text.as_str());
        if !text.is_empty() {
            let node = self.add_word(text, at);
            self.append(open, node);
        }
        let innermost_has_words = open.last().is_some_and(|&b| !self.blocks[b].is_empty());
        if closes_block && open.len() > 1 && innermost_has_words {
            self.close(open);
        } else if opens_block {
            self.blocks.push(Vec::new());
            open.push(self.blocks.len() - 1);
        }
    }

    fn add_word(&mut self, text: String, (line, column): (usize, usize)) -> Node {
        self.words.push(Word { text, line, column });
        Node::Word(self.words.len() - 1)
    }

    fn append(&mut self, open: &[usize], node: Node) {
        if let Some(&b) = open.last() {
            self.blocks[b].push(node);
        }
    }

    /// Closes the innermost open block into the one around it.
    fn close(&mut self, open: &mut Vec<usize>) {
        if let Some(inner) = open.pop() {
            self.append(open, Node::Block(inner));
        }
    }

    fn word(&self, node: Node) -> Option<&Word> {
        match node {
            Node::Word(w) => self.words.get(w),
            Node::Block(_) => None,
        }
    }

    fn block(&self, node: Node) -> Option<&[Node]> {
        match node {
            Node::Block(b) => self.blocks.get(b).map(Vec::as_slice),
            Node::Word(_) => None,
        }
    }

    /// Where a node starts: a block at its first word.
    fn position(&self, node: Node) -> (usize, usize) {
        let mut node = node;
        // Blocks start with a word; the bound only guards against a malformed tree.
        for _ in 0..self.blocks.len() + 1 {
            match node {
                Node::Word(w) => return self.words.get(w).map_or((0, 0), |w| (w.line, w.column)),
                Node::Block(b) => match self.blocks.get(b).and_then(|b| b.first()) {
                    Some(&first) => node = first,
                    None => return (0, 0),
                },
            }
        }
        (0, 0)
    }

    fn error(&self, node: Node, reason: impl Into<String>) -> CompileError {
        let (line, column) = self.position(node);
        CompileError {
            line,
            column,
            reason: reason.into(),
        }
    }
}

// ----- pass 2: definitions ---------------------------------------------------------------------

struct Macro {
    /// `$name` to the index of the include argument that replaces it.
    params: Vec<(String, usize)>,
    body: Vec<Node>,
}

struct CapabilitySource {
    name: String,
    id: u32,
    default: bool,
    body: Vec<Node>,
}

struct Definitions {
    macros: HashMap<String, Macro>,
    capabilities: Vec<CapabilitySource>,
    tags: Vec<NamedTag>,
    network_rules: Vec<Node>,
}

impl Definitions {
    fn read(tree: &Tree) -> Result<Definitions, CompileError> {
        let mut d = Definitions {
            macros: HashMap::new(),
            capabilities: Vec::new(),
            tags: Vec::new(),
            network_rules: Vec::new(),
        };
        let top = tree.blocks.first().map(Vec::as_slice).unwrap_or_default();
        let mut i = 0;
        while i < top.len() {
            let node = top[i];
            let keyword = tree.word(node).map(|w| w.text.to_lowercase());
            let kind = match keyword.as_deref() {
                Some(k @ ("macro" | "tag" | "cap")) => k,
                _ => {
                    d.network_rules.push(node);
                    i += 1;
                    continue;
                }
            };
            // The definition is the block after the keyword; its first word is the name.
            let Some(block) = top.get(i + 1).and_then(|&n| tree.block(n)) else {
                return Err(tree.error(node, format!("{kind} needs a name and a body")));
            };
            i += 2;
            match kind {
                "macro" => d.read_macro(tree, block)?,
                "tag" => d.read_tag(tree, block)?,
                _ => d.read_capability(tree, block)?,
            }
        }
        Ok(d)
    }

    fn read_macro(&mut self, tree: &Tree, block: &[Node]) -> Result<(), CompileError> {
        let (name_node, name_word) = first_word(tree, block)?;
        let mut name = name_word.text.to_lowercase();
        let mut params = Vec::new();
        if let Some(paren) = name.find('(').filter(|&p| p > 0) {
            // A parameter's number is its place in the list, counting empty places.
            for (index, param) in split_runs(&name[paren + 1..], &[',', ')'])
                .into_iter()
                .enumerate()
            {
                if !param.is_empty() {
                    params.retain(|(p, _): &(String, usize)| p != param);
                    params.push((param.to_string(), index));
                }
            }
            name.truncate(paren);
        }
        check_name(tree, name_node, &name, "macro")?;
        if self.macros.contains_key(&name) {
            return Err(tree.error(name_node, format!("macro {name} is defined twice")));
        }
        let body = block.get(1..).unwrap_or_default().to_vec();
        self.macros.insert(name, Macro { params, body });
        Ok(())
    }

    fn read_tag(&mut self, tree: &Tree, block: &[Node]) -> Result<(), CompileError> {
        let (name_node, name_word) = first_word(tree, block)?;
        let name = name_word.text.to_lowercase();
        check_name(tree, name_node, &name, "tag")?;
        if self.tags.iter().any(|t| t.name == name) {
            return Err(tree.error(name_node, format!("tag {name} is defined twice")));
        }
        let mut tag = NamedTag {
            name,
            id: 0,
            default: None,
            enums: Vec::new(),
            flags: Vec::new(),
        };
        let mut id = None;
        let mut default_text: Option<&str> = None;
        let mut k = 1;
        while k < block.len() {
            let node = block[k];
            let keyword = word_text(tree, node, "a tag keyword (id, default, enum, flag)")?;
            // The arguments a keyword needs, as words.
            let argument = |n: usize, what: &str| -> Result<(Node, &str), CompileError> {
                match block.get(k + n) {
                    Some(&arg) => Ok((arg, word_text(tree, arg, what)?)),
                    None => Err(tree.error(node, format!("{keyword} needs {what}"))),
                }
            };
            match keyword.to_lowercase().as_str() {
                "id" => {
                    if id.is_some() {
                        return Err(tree.error(node, "the tag has two ids"));
                    }
                    let (arg, text) = argument(1, "a number")?;
                    id = Some(number_in(text, 0xffff_ffff).ok_or_else(|| {
                        tree.error(arg, format!("tag id {text:?} is not a number 0-4294967295"))
                    })? as u32);
                    k += 2;
                }
                "default" => {
                    if default_text.is_some() {
                        return Err(tree.error(node, "the tag has two defaults"));
                    }
                    default_text = Some(argument(1, "a value")?.1);
                    k += 2;
                }
                "flag" => {
                    // `flag BIT[,BIT|,FLAG...] NAME`
                    if block.len() <= k + 2 {
                        return Err(tree.error(node, "flag needs bit numbers and a name"));
                    }
                    let (bits_node, bits) = argument(1, "bit numbers")?;
                    let mut mask = 0u32;
                    for bit in split_runs(bits, &[',']) {
                        let bit = bit.to_lowercase();
                        if let Some(flag) = lookup(&tag.flags, &bit) {
                            mask |= flag;
                        } else {
                            let index = number_in(&bit, 31).ok_or_else(|| {
                                tree.error(
                                    bits_node,
                                    format!("{bit:?} is neither a bit number 0-31 nor a flag defined above"),
                                )
                            })?;
                            mask |= 1 << index;
                        }
                    }
                    let (flag_node, flag_name) = argument(2, "a name")?;
                    let flag_name = new_value_name(tree, flag_node, flag_name, &tag.flags, "flag")?;
                    tag.flags.push((flag_name, mask));
                    k += 3;
                }
                "enum" => {
                    if block.len() <= k + 2 {
                        return Err(tree.error(node, "enum needs a value and a name"));
                    }
                    let (value_node, value) = argument(1, "a value")?;
                    let value = number_in(value, 0xffff_ffff).ok_or_else(|| {
                        tree.error(
                            value_node,
                            format!("enum value {value:?} is not a number 0-4294967295"),
                        )
                    })? as u32;
                    let (enum_node, enum_name) = argument(2, "a name")?;
                    let enum_name = new_value_name(tree, enum_node, enum_name, &tag.enums, "enum")?;
                    tag.enums.push((enum_name, value));
                    k += 3;
                }
                _ => {
                    return Err(tree.error(
                        node,
                        format!("{keyword:?} is not a tag keyword (id, default, enum, flag)"),
                    ))
                }
            }
        }
        let Some(id) = id else {
            return Err(tree.error(name_node, format!("tag {} has no id", tag.name)));
        };
        tag.id = id;
        // A default names an enum or a flag (as written: names were lowercased, so `Sales`
        // names nothing), or is a number; anything else reads as 0, as in the reference.
        tag.default = default_text.map(|text| {
            lookup(&tag.enums, text)
                .or_else(|| lookup(&tag.flags, text))
                .unwrap_or_else(|| {
                    let n = js_parse_int(text, None).unwrap_or(0);
                    (n.unsigned_abs() & 0xffff_ffff) as u32
                })
        });
        self.tags.push(tag);
        Ok(())
    }

    fn read_capability(&mut self, tree: &Tree, block: &[Node]) -> Result<(), CompileError> {
        let (name_node, name_word) = first_word(tree, block)?;
        let name = name_word.text.to_lowercase();
        check_name(tree, name_node, &name, "capability")?;
        if self.capabilities.iter().any(|c| c.name == name) {
            return Err(tree.error(name_node, format!("capability {name} is defined twice")));
        }
        let mut id = None;
        let mut default = false;
        let mut body = Vec::new();
        let mut k = 1;
        while k < block.len() {
            let node = block[k];
            match tree.word(node).map(|w| w.text.to_lowercase()).as_deref() {
                Some("id") => {
                    if id.is_some() {
                        return Err(tree.error(node, "the capability has two ids"));
                    }
                    let Some(&arg) = block.get(k + 1) else {
                        return Err(tree.error(node, "id needs a number"));
                    };
                    let n = tree
                        .word(arg)
                        .and_then(|w| number_in(&w.text, 0xffff_ffff))
                        .ok_or_else(|| {
                            tree.error(node, "capability id is not a number 0-4294967295")
                        })? as u32;
                    if let Some(other) = self.capabilities.iter().find(|c| c.id == n) {
                        return Err(tree.error(
                            node,
                            format!("capability id {n} is already used by {}", other.name),
                        ));
                    }
                    id = Some(n);
                    k += 2;
                    continue;
                }
                Some("default") => default = true,
                _ => body.push(node),
            }
            k += 1;
        }
        let Some(id) = id else {
            return Err(tree.error(name_node, format!("capability {name} has no id")));
        };
        self.capabilities.push(CapabilitySource {
            name,
            id,
            default,
            body,
        });
        Ok(())
    }
}

/// The lowercased name of a new enum or flag of a tag: valid, and not yet in `defined`.
fn new_value_name(
    tree: &Tree,
    node: Node,
    name: &str,
    defined: &[(String, u32)],
    what: &str,
) -> Result<String, CompileError> {
    let name = name.to_lowercase();
    if !is_valid_name(&name) {
        return Err(tree.error(node, format!("{name:?} is not a valid {what} name")));
    }
    if lookup(defined, &name).is_some() {
        return Err(tree.error(node, format!("{what} {name} is defined twice")));
    }
    Ok(name)
}

fn first_word<'t>(tree: &'t Tree, block: &[Node]) -> Result<(Node, &'t Word), CompileError> {
    match block.first() {
        Some(&node) => match tree.word(node) {
            Some(w) => Ok((node, w)),
            None => Err(tree.error(node, "expected a name")),
        },
        None => Err(CompileError {
            line: 0,
            column: 0,
            reason: "expected a name".into(),
        }),
    }
}

fn word_text<'t>(tree: &'t Tree, node: Node, what: &str) -> Result<&'t str, CompileError> {
    tree.word(node)
        .map(|w| w.text.as_str())
        .ok_or_else(|| tree.error(node, format!("expected {what}, found a nested block")))
}

fn check_name(tree: &Tree, node: Node, name: &str, what: &str) -> Result<(), CompileError> {
    if !is_valid_name(name) {
        return Err(tree.error(
            node,
            format!("{name:?} is not a valid {what} name (letters, digits and _, not starting with a digit)"),
        ));
    }
    if RESERVED_WORDS.contains(&name) {
        return Err(tree.error(
            node,
            format!("{name:?} is a reserved word, not a {what} name"),
        ));
    }
    Ok(())
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| !c.is_ascii_digit() && is_name_char(c))
        && chars.all(is_name_char)
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_digit() || c.is_alphabetic()
}

fn lookup<V: Copy>(table: &[(String, V)], name: &str) -> Option<V> {
    table.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn named<V: Copy>(table: &[(&str, V)], name: &str) -> Option<V> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Splits at runs of separators (`"a,,b"` is `a`, `b`; `",a"` is ``, `a`), as a JavaScript
/// split on `/[..]+/` does.
fn split_runs<'s>(text: &'s str, separators: &[char]) -> Vec<&'s str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_run = false;
    for (i, c) in text.char_indices() {
        if separators.contains(&c) {
            if !in_run {
                parts.push(&text[start..i]);
                in_run = true;
            }
            start = i + c.len_utf8();
        } else {
            in_run = false;
        }
    }
    parts.push(&text[start..]);
    parts
}

// ----- numbers, as the reference reads them ---------------------------------------------------

/// A number as written in the language: decimal, or hexadecimal after `0x`. Like JavaScript's
/// `parseInt`, the leading digits count and the rest of the word is ignored (`22abc` is 22).
fn number(text: &str) -> Option<i128> {
    let lower = text.to_lowercase();
    match lower.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() => js_parse_int(hex, Some(16)),
        _ => js_parse_int(&lower, Some(10)),
    }
}

/// [`number`], if it lies in `0..=max`.
fn number_in(text: &str, max: i128) -> Option<i128> {
    number(text).filter(|n| (0..=max).contains(n))
}

/// JavaScript's `parseInt(text, radix)`; `None` is its NaN. Without a radix, `0x` means
/// hexadecimal. Magnitudes saturate far above anything the language accepts.
fn js_parse_int(text: &str, radix: Option<u32>) -> Option<i128> {
    let text = text.trim_start_matches(is_js_whitespace);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let hex_prefix = text.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("0x"));
    let (radix, digits) = match radix {
        Some(16) | None if hex_prefix => (16, &text[2..]),
        Some(r) => (r, text),
        None => (10, text),
    };
    let mut value: i128 = 0;
    let mut any = false;
    for d in digits.chars().map_while(|c| c.to_digit(radix)) {
        any = true;
        value = value
            .saturating_mul(i128::from(radix))
            .saturating_add(i128::from(d));
    }
    any.then_some(if negative { -value } else { value })
}

fn is_js_whitespace(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// JavaScript's `parseFloat`: the longest prefix that reads as a decimal number; `None` is NaN.
fn js_parse_float(text: &str) -> Option<f64> {
    let text = text.trim_start_matches(is_js_whitespace);
    let bytes = text.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    if text[end..].starts_with("Infinity") {
        let infinity = f64::INFINITY;
        return Some(if bytes.first() == Some(&b'-') {
            -infinity
        } else {
            infinity
        });
    }
    let digits_from = |i: usize| bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
    let whole = digits_from(end);
    end += whole;
    let mut fraction = 0;
    if bytes.get(end) == Some(&b'.') {
        fraction = digits_from(end + 1);
        if whole + fraction > 0 {
            end += 1 + fraction;
        }
    }
    if whole + fraction == 0 {
        return None;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits_from(end + 1 + sign);
        if exponent > 0 {
            end += 1 + sign + exponent;
        }
    }
    text[..end].parse().ok()
}

// ----- pass 3: rules ---------------------------------------------------------------------------

/// A match argument: its text (after `$name` substitution) and the word it came from.
struct Argument<'a> {
    text: &'a str,
    node: Node,
}

/// `$name` to its text, inside one macro expansion.
type Params<'a> = HashMap<&'a str, &'a str>;

struct Renderer<'t, 's> {
    tree: &'t Tree,
    definitions: &'t Definitions,
    rules: Vec<Rule>,
    max_rules: usize,
    /// "network" or "capability", for the too-many-rules error.
    what: &'static str,
    steps: &'s mut usize,
}

impl<'t> Renderer<'t, '_> {
    fn step(&mut self, node: Node) -> Result<(), CompileError> {
        *self.steps += 1;
        if *self.steps > MAX_RENDER_STEPS {
            return Err(self.tree.error(
                node,
                "the rules expand to too much (macros including each other too often)",
            ));
        }
        Ok(())
    }

    /// The node at `*k` (with its word, if it is one), counted against the work bound; `None`
    /// past the end.
    fn next_node(
        &mut self,
        nodes: &[Node],
        k: &mut usize,
    ) -> Result<Option<(Node, Option<&'t Word>)>, CompileError> {
        let Some(&node) = nodes.get(*k) else {
            return Ok(None);
        };
        *k += 1;
        self.step(node)?;
        Ok(Some((node, self.tree.word(node))))
    }

    fn push(&mut self, rule: Rule, at: Node) -> Result<(), CompileError> {
        if self.rules.len() >= self.max_rules {
            return Err(self.tree.error(
                at,
                format!(
                    "too many rules: a {} may have at most {}",
                    self.what, self.max_rules
                ),
            ));
        }
        self.rules.push(rule);
        Ok(())
    }

    fn actions(
        &mut self,
        nodes: &[Node],
        params: &Params<'t>,
        depth: usize,
    ) -> Result<(), CompileError> {
        let tree = self.tree;
        let mut k = 0;
        while let Some((node, word)) = self.next_node(nodes, &mut k)? {
            // A block where an action belongs says nothing; the reference skips it too.
            let Some(word) = word else { continue };
            let action = word.text.to_lowercase();
            // The block after the action: its arguments and matches.
            let next_block = nodes.get(k).and_then(|&n| tree.block(n));
            match action.as_str() {
                "include" => {
                    let Some(&name_node) = nodes.get(k) else {
                        return Err(tree.error(node, "include needs a macro name"));
                    };
                    k += 1;
                    // The macro gets its own parameters; the caller's do not pass into it.
                    self.include(name_node, depth)?;
                }
                "drop" | "accept" | "break" => {
                    if let Some(matches) = next_block {
                        k += 1;
                        self.matches(matches, params)?;
                    }
                    let kind = match action.as_str() {
                        "drop" => RuleKind::Drop,
                        "accept" => RuleKind::Accept,
                        _ => RuleKind::Break,
                    };
                    self.push(Rule::new(kind), node)?;
                }
                "tee" | "watch" => {
                    let Some(block) = next_block.filter(|b| b.len() >= 2) else {
                        return Err(tree.error(
                            node,
                            format!("{action} needs a length (0 for the whole frame) and a ZeroTier address"),
                        ));
                    };
                    k += 1;
                    let (length_node, length_text) = (block[0], word_text(tree, block[0], "a length")?);
                    let length = match number(length_text) {
                        // -1 means no limit: the reference passes it on and zerotier-one
                        // reads it as 65535, which is what we store.
                        Some(-1) => 0xffff,
                        Some(n) if (0..=0xffff).contains(&n) => n as u16,
                        _ => {
                            return Err(tree.error(
                                length_node,
                                format!("{action} length {length_text:?} is not a number 0-65535 (0 for the whole frame)"),
                            ))
                        }
                    };
                    let address = forward_target(tree, block[1], &action)?;
                    self.matches(&block[2..], params)?;
                    let forward = Forward {
                        address,
                        flags: 0,
                        length,
                    };
                    let kind = if action == "tee" {
                        RuleKind::Tee(forward)
                    } else {
                        RuleKind::Watch(forward)
                    };
                    self.push(Rule::new(kind), node)?;
                }
                "redirect" => {
                    let Some((&target, matches)) = next_block.and_then(<[Node]>::split_first) else {
                        return Err(tree.error(node, "redirect needs a ZeroTier address"));
                    };
                    k += 1;
                    let address = forward_target(tree, target, &action)?;
                    self.matches(matches, params)?;
                    let forward = Forward {
                        address,
                        flags: 0,
                        length: 0,
                    };
                    self.push(Rule::new(RuleKind::Redirect(forward)), node)?;
                }
                _ => {
                    return Err(tree.error(
                        node,
                        format!("{:?} is not an action (drop, accept, break, tee, watch, redirect, include)", word.text),
                    ))
                }
            }
        }
        Ok(())
    }

    fn include(&mut self, name_node: Node, depth: usize) -> Result<(), CompileError> {
        let tree = self.tree;
        let call = word_text(tree, name_node, "a macro name")?;
        // `name(arg,arg)`; the name is compared as written (definitions are lowercased).
        let (name, args) = match call.find('(').filter(|&p| p > 0) {
            Some(paren) => {
                let args: Vec<&str> = split_runs(&call[paren + 1..], &[',', ')'])
                    .into_iter()
                    .filter(|a| !a.is_empty())
                    .collect();
                (&call[..paren], args)
            }
            None => (call, Vec::new()),
        };
        let Some(definition) = self.definitions.macros.get(name) else {
            return Err(tree.error(name_node, format!("no macro named {name:?}")));
        };
        let mut inner = Params::new();
        for (param, index) in &definition.params {
            let Some(arg) = args.get(*index) else {
                return Err(tree.error(
                    name_node,
                    format!("macro {name} needs {} arguments", index + 1),
                ));
            };
            inner.insert(param.as_str(), arg);
        }
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(tree.error(
                name_node,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} (does macro {name} include itself?)"),
            ));
        }
        self.actions(&definition.body, &inner, depth + 1)
    }

    fn matches(&mut self, nodes: &[Node], params: &Params<'t>) -> Result<(), CompileError> {
        let tree = self.tree;
        let (mut not, mut or) = (false, false);
        let mut k = 0;
        while let Some((node, word)) = self.next_node(nodes, &mut k)? {
            // A block among matches is skipped, as by the reference.
            let Some(word) = word else { continue };
            let name = word.text.to_lowercase();
            match name.as_str() {
                "and" => continue,
                "not" => {
                    not = true;
                    continue;
                }
                "or" => {
                    or = true;
                    continue;
                }
                _ => {}
            }
            let Some(count) = match_argument_count(&name) else {
                return Err(tree.error(node, format!("{:?} is not a match", word.text)));
            };
            let mut args = Vec::with_capacity(count);
            for _ in 0..count {
                // Errors about a missing argument point at the word before it.
                let before = nodes[k - 1];
                let missing = || tree.error(before, format!("{name} needs {count} argument(s)"));
                let arg_node = *nodes.get(k).ok_or_else(missing)?;
                k += 1;
                let text = match tree.word(arg_node) {
                    Some(w) if !w.text.is_empty() && !RESERVED_WORDS.contains(&w.text.as_str()) => {
                        w.text.as_str()
                    }
                    Some(w) => {
                        return Err(tree.error(
                            before,
                            format!(
                                "{name} needs {count} argument(s); {:?} is a reserved word",
                                w.text
                            ),
                        ))
                    }
                    None => return Err(missing()),
                };
                let text = if text.starts_with('$') {
                    *params.get(text).ok_or_else(|| {
                        tree.error(arg_node, format!("{text} is not a parameter of this macro"))
                    })?
                } else {
                    text
                };
                args.push(Argument {
                    text,
                    node: arg_node,
                });
            }
            let kind = self.match_kind(node, &name, &args)?;
            self.push(Rule { not, or, kind }, node)?;
            not = false;
            or = false;
        }
        Ok(())
    }

    /// The rule of match `name` (the word `at`) with its arguments (as many as it takes).
    fn match_kind(
        &self,
        at: Node,
        name: &str,
        args: &[Argument<'_>],
    ) -> Result<RuleKind, CompileError> {
        let tree = self.tree;
        let fail = |arg: &Argument<'_>, reason: String| Err(tree.error(arg.node, reason));
        let (Some(first), second) = (args.first(), args.get(1)) else {
            return Err(tree.error(at, format!("{name} needs an argument")));
        };
        let second = second.unwrap_or(first);
        let text = first.text;
        Ok(match name {
            "ztsrc" | "ztdest" => {
                // Separators and other non-hex characters are ignored: 89e9:2e:c8:95 works.
                let hex: String = text
                    .to_lowercase()
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .collect();
                let address = (hex.len() == 10)
                    .then(|| u64::from_str_radix(&hex, 16).ok().and_then(Address::new))
                    .flatten();
                let Some(address) = address else {
                    return fail(
                        first,
                        format!("{text:?} is not a ZeroTier address (10 hex digits)"),
                    );
                };
                if name == "ztsrc" {
                    RuleKind::SourceZeroTierAddress(address)
                } else {
                    RuleKind::DestZeroTierAddress(address)
                }
            }
            "vlan" | "vlanpcp" | "vlandei" | "ethertype" | "ipprotocol" => {
                let known = match name {
                    "ethertype" => named(&ETHERTYPE_NAMES, text).map(i128::from),
                    "ipprotocol" => named(&IP_PROTOCOL_NAMES, text).map(i128::from),
                    _ => None,
                };
                let Some(n) = known.or_else(|| number_in(text, 0xffff_ffff)) else {
                    return fail(first, format!("{name}: {text:?} is not a number"));
                };
                // The reference allows any 32-bit number here; the rule field is narrower and
                // zerotier-one would cut the number down to a different one.
                let max: i128 = if matches!(name, "vlan" | "ethertype") {
                    0xffff
                } else {
                    0xff
                };
                if n > max {
                    return fail(
                        first,
                        format!("{name}: {n} is out of range (at most {max})"),
                    );
                }
                match name {
                    "vlan" => RuleKind::VlanId(n as u16),
                    "vlanpcp" => RuleKind::VlanPcp(n as u8),
                    "vlandei" => RuleKind::VlanDei(n as u8),
                    "ethertype" => RuleKind::Ethertype(n as u16),
                    _ => RuleKind::IpProtocol(n as u8),
                }
            }
            "random" => {
                let p = js_parse_float(text).filter(|p| !p.is_nan()).unwrap_or(0.0);
                let p = p.clamp(0.0, 1.0);
                RuleKind::Random((4_294_967_295.0 * p).floor() as u32)
            }
            "macsrc" | "macdest" => {
                // The first twelve hex digits, whatever separates them.
                let digits: Vec<u8> = text
                    .chars()
                    .filter_map(|c| c.to_digit(16))
                    .take(12)
                    .map(|d| d as u8)
                    .collect();
                if digits.len() != 12 {
                    return fail(first, format!("{text:?} is not a MAC address"));
                }
                let mut octets = [0u8; 6];
                for (octet, pair) in octets.iter_mut().zip(digits.chunks(2)) {
                    *octet = pair[0] << 4 | pair[1];
                }
                if name == "macsrc" {
                    RuleKind::MacSource(Mac(octets))
                } else {
                    RuleKind::MacDest(Mac(octets))
                }
            }
            "ipsrc" | "ipdest" => {
                let Some((ip, bits)) = text.split_once('/').filter(|(ip, _)| !ip.is_empty()) else {
                    return fail(
                        first,
                        format!("{text:?} needs a /bits netmask length, e.g. 10.0.0.0/8"),
                    );
                };
                let bits_of = |max: u8| {
                    bits.parse::<u8>()
                        .ok()
                        .filter(|b| *b <= max && bits.bytes().all(|c| c.is_ascii_digit()))
                };
                let source = name == "ipsrc";
                if let Ok(ip) = ip.parse::<Ipv6Addr>() {
                    let Some(bits) = bits_of(128) else {
                        return fail(first, format!("{text:?}: the netmask length must be 0-128"));
                    };
                    if source {
                        RuleKind::Ipv6Source { ip, bits }
                    } else {
                        RuleKind::Ipv6Dest { ip, bits }
                    }
                } else if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                    let Some(bits) = bits_of(32) else {
                        return fail(first, format!("{text:?}: the netmask length must be 0-32"));
                    };
                    if source {
                        RuleKind::Ipv4Source { ip, bits }
                    } else {
                        RuleKind::Ipv4Dest { ip, bits }
                    }
                } else {
                    return fail(first, format!("{ip:?} is not an IPv4 or IPv6 address"));
                }
            }
            "icmp" => {
                let Some(icmp_type) = number_in(text, 0xff) else {
                    return fail(first, format!("icmp type {text:?} is not a number 0-255"));
                };
                // A code that is not a number (or is negative, like -1) matches any code.
                let (code, flags) = match number(second.text) {
                    Some(c) if c > 0xff => {
                        return fail(
                            second,
                            format!("icmp code {c} is out of range (0-255, or -1 for any)"),
                        )
                    }
                    Some(c) if c >= 0 => (c as u8, 0x01),
                    _ => (0, 0),
                };
                RuleKind::Icmp {
                    icmp_type: icmp_type as u8,
                    code,
                    flags,
                }
            }
            "sport" | "dport" | "framesize" => {
                let Some((start, end)) = range(text, 0xffff) else {
                    return fail(
                        first,
                        format!("{name}: {text:?} is not a number or range within 0-65535"),
                    );
                };
                let (start, end) = (start as u16, end as u16);
                match name {
                    "sport" => RuleKind::IpSourcePortRange { start, end },
                    "dport" => RuleKind::IpDestPortRange { start, end },
                    _ => RuleKind::FrameSizeRange { start, end },
                }
            }
            "iptos" => {
                let Some(mask) = number_in(text, 0xff) else {
                    return fail(first, format!("iptos mask {text:?} is not a number 0-255"));
                };
                let Some((start, end)) = range(second.text, 0xff) else {
                    return fail(
                        second,
                        format!(
                            "iptos: {:?} is not a number or range within 0-255",
                            second.text
                        ),
                    );
                };
                RuleKind::IpTos {
                    mask: mask as u8,
                    start: start as u8,
                    end: end as u8,
                }
            }
            "chr" => {
                let mut mask = 0u64;
                for bit in text.split(',').filter(|b| !b.is_empty()) {
                    let index = named(&CHARACTERISTIC_NAMES, bit)
                        .map(i128::from)
                        .or_else(|| number_in(bit, 63));
                    let Some(index) = index else {
                        return fail(first, format!("chr: {bit:?} is neither a bit number 0-63 nor a characteristic name"));
                    };
                    mask |= 1u64 << (index as u32);
                }
                RuleKind::Characteristics(mask)
            }
            _ => {
                let Some(op) = tag_op(name) else {
                    return fail(first, format!("{name:?} is not a match"));
                };
                // A tag by name (its enum and flag names then stand for values), or by number.
                let tag = self.definitions.tags.iter().find(|t| t.name == text);
                let id = match tag {
                    Some(t) => Some(i128::from(t.id)),
                    None => number_in(text, 0xffff_ffff),
                };
                let Some(id) = id else {
                    return fail(
                        first,
                        format!("{text:?} is neither a tag defined here nor a tag id"),
                    );
                };
                let named_value = tag.and_then(|t| {
                    lookup(&t.flags, second.text).or_else(|| lookup(&t.enums, second.text))
                });
                let value = named_value
                    .map(i128::from)
                    .or_else(|| number_in(second.text, 0xffff_ffff));
                let Some(value) = value else {
                    return fail(
                        second,
                        format!(
                            "{:?} is neither a number nor a flag or enum of the tag",
                            second.text
                        ),
                    );
                };
                RuleKind::Tags {
                    op,
                    id: id as u32,
                    value: value as u32,
                }
            }
        })
    }
}

fn forward_target(tree: &Tree, node: Node, action: &str) -> Result<Address, CompileError> {
    let text = word_text(tree, node, "a ZeroTier address")?;
    let address = (text.len() == 10 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(text, 16).ok().and_then(Address::new))
        .flatten();
    address.ok_or_else(|| {
        tree.error(
            node,
            format!("{action}: {text:?} is not a ZeroTier address (10 hex digits)"),
        )
    })
}

/// `N` or `N-M` with both ends in `0..=max` and `N <= M`.
fn range(text: &str, max: i128) -> Option<(i128, i128)> {
    let (start, end) = match text.find('-').filter(|&dash| dash > 0) {
        Some(_) => {
            let mut ends = text.split('-');
            match (ends.next(), ends.next(), ends.next()) {
                (Some(a), Some(b), None) => (number(a)?, number(b)?),
                _ => return None,
            }
        }
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    ((0..=max).contains(&start) && (0..=max).contains(&end) && start <= end).then_some((start, end))
}

fn match_argument_count(name: &str) -> Option<usize> {
    match name {
        "ztsrc" | "ztdest" | "vlan" | "vlanpcp" | "vlandei" | "ethertype" | "macsrc"
        | "macdest" | "ipsrc" | "ipdest" | "ipprotocol" | "sport" | "dport" | "chr"
        | "framesize" | "random" => Some(1),
        "iptos" | "icmp" => Some(2),
        _ => tag_op(name).map(|_| 2),
    }
}

fn tag_op(name: &str) -> Option<TagOp> {
    Some(match name {
        "tand" => TagOp::BitwiseAnd,
        "tor" => TagOp::BitwiseOr,
        "txor" => TagOp::BitwiseXor,
        "tdiff" => TagOp::Difference,
        "teq" => TagOp::Equal,
        "tseq" => TagOp::Sender,
        "treq" => TagOp::Receiver,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(source: &str) -> CompileError {
        compile(source).expect_err(source)
    }

    #[test]
    fn the_default_rule_set_of_the_uis_compiles() {
        let c = compile(
            "# allow IPv4, ARP and IPv6\ndrop\n\tnot ethertype ipv4\n\tand not ethertype arp\n\tand not ethertype ipv6\n;\naccept;\n",
        )
        .unwrap();
        let ethertype_not = |e| Rule::new(RuleKind::Ethertype(e)).negated();
        assert_eq!(
            c.rules,
            [
                ethertype_not(0x0800),
                ethertype_not(0x0806),
                ethertype_not(0x86dd),
                Rule::drop(),
                Rule::accept()
            ]
        );
    }

    #[test]
    fn numbers_read_like_parse_int() {
        assert_eq!(number("22"), Some(22));
        assert_eq!(number("22abc"), Some(22));
        assert_eq!(number("0x1F"), Some(31));
        assert_eq!(number("0x"), Some(0));
        assert_eq!(number("-1"), Some(-1));
        assert_eq!(number("abc"), None);
        assert_eq!(number(""), None);
        assert_eq!(number(&"9".repeat(100)), Some(i128::MAX));
        assert_eq!(js_parse_float("0.5x"), Some(0.5));
        assert_eq!(js_parse_float(".25"), Some(0.25));
        assert_eq!(js_parse_float("1e-1"), Some(0.1));
        assert_eq!(js_parse_float("1e"), Some(1.0));
        assert_eq!(js_parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(js_parse_float("."), None);
        assert_eq!(split_runs(",a,,b)", &[',', ')']), ["", "a", "b", ""]);
    }

    #[test]
    fn errors_say_where() {
        let e = error("drop ethertype arp;\ndrop\n  ethertype banana;\n");
        assert_eq!((e.line, e.column), (3, 13));
        assert!(
            e.to_string().starts_with("line 3, column 13: ethertype"),
            "{e}"
        );
    }

    #[test]
    fn self_including_macros_and_expansion_bombs_stop() {
        let e = error("macro m include m; ; include m");
        assert!(e.reason.contains("nest deeper"), "{e}");
        let mut bomb = String::from("macro m0 break;\n");
        for i in 1..12 {
            bomb += &format!("macro m{i} include m{} include m{} ;\n", i - 1, i - 1);
        }
        bomb += "include m11";
        let e = error(&bomb);
        assert!(e.reason.contains("too many rules"), "{e}");
        // Macros that expand to nothing still take time: bounded too.
        let mut bomb = String::from("macro e0 ;\nmacro m0 include e0 ;\n");
        for i in 1..40 {
            bomb += &format!("macro m{i} include m{} include m{} ;\n", i - 1, i - 1);
        }
        bomb += "include m39";
        assert!(compile(&bomb).is_err());
    }

    #[test]
    fn too_many_rules_are_refused() {
        // Two rules each (an action opened by `accept;` would swallow the next action).
        let pair = "accept ethertype arp; ";
        assert_eq!(compile(&pair.repeat(512)).unwrap().rules.len(), 1024);
        let e = error(&pair.repeat(513));
        assert!(e.reason.contains("at most 1024"), "{e}");
    }

    #[test]
    fn deep_nesting_costs_no_recursion() {
        // Every `drop` opens a block inside the one before; `x` makes them all close at the end.
        let deep = "drop ".repeat(200_000) + "x";
        assert!(compile(&deep).is_err());
    }
}
