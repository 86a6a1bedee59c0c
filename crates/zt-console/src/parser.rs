//! Command-line parser: menu paths, command words, arguments, quoting and `where` expressions.
//!
//! RouterOS parses with the menu tree in hand (a word is a menu, a command or an error depending
//! on where it appears), so this parser resolves menus and command words while it reads. It never
//! touches the backend: item selectors and values are checked later, by the session.

use crate::error::ConsoleError;
use crate::expr::{CompareOp, Expr};
use crate::schema::{self, Command, Menu, ValueType};

/// A parsed argument value.
#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    /// `[ command ]`: replaced by the command's return value when run.
    Substitution(Box<Invocation>),
}

/// One `name=value`, `!name` (unset), flag, or positional argument, by canonical name.
#[derive(Debug, Clone)]
pub struct Argument {
    pub name: String,
    /// `None` for flags (`detail`) and unsets (`!port`).
    pub value: Option<Value>,
    /// `!name`: unset the property.
    pub unset: bool,
}

/// A resolved command: which menu, which verb, and its arguments.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub menu: &'static Menu,
    pub command: Command,
    pub arguments: Vec<Argument>,
    pub condition: Option<Expr>,
}

impl Invocation {
    pub fn argument(&self, name: &str) -> Option<&Argument> {
        self.arguments.iter().rev().find(|a| a.name == name)
    }

    pub fn has_flag(&self, name: &str) -> bool {
        self.argument(name).is_some()
    }
}

/// One command of a line (lines may hold several, separated by `;`).
#[derive(Debug, Clone)]
pub enum Statement {
    /// Nothing to do (empty command, or a `#` chat line).
    Empty,
    /// A bare menu path: change the current menu.
    Navigate(&'static Menu),
    Command(Invocation),
    /// `:put value`.
    Put(Option<Value>),
}

/// Which arguments a command takes.
struct ArgumentSpec {
    /// Arguments taking no value (`detail`).
    flags: Vec<&'static str>,
    /// Arguments taking a value (`name=x`).
    named: Vec<&'static str>,
    /// Names filled, in order, by bare values (`set 0`, `get zt1 port`).
    positional: &'static [&'static str],
}

const PRINT_FLAGS: &[&str] = &[
    "as-value",
    "brief",
    "count-only",
    "detail",
    "show-ids",
    "show-sensitive",
    "terse",
    "without-paging",
];
const EXPORT_FLAGS: &[&str] = &[
    "compact",
    "hide-sensitive",
    "show-sensitive",
    "terse",
    "verbose",
];

fn argument_spec(menu: &Menu, command: Command) -> ArgumentSpec {
    let settable = || menu.settable().map(|p| p.name);
    match command {
        Command::Print => ArgumentSpec {
            flags: PRINT_FLAGS.to_vec(),
            named: vec!["interval", "proplist"],
            positional: &[],
        },
        Command::Export => ArgumentSpec {
            flags: EXPORT_FLAGS.to_vec(),
            named: vec!["file"],
            positional: &[],
        },
        Command::Add => ArgumentSpec {
            flags: vec![],
            named: settable().chain(["copy-from"]).collect(),
            positional: &[],
        },
        Command::Set if menu.is_singleton() => ArgumentSpec {
            flags: vec![],
            named: settable().collect(),
            positional: &[],
        },
        Command::Set => ArgumentSpec {
            flags: vec![],
            named: settable().chain(["numbers"]).collect(),
            positional: &["numbers"],
        },
        Command::Remove | Command::Enable | Command::Disable => ArgumentSpec {
            flags: vec![],
            named: vec!["numbers"],
            positional: &["numbers"],
        },
        Command::Get => ArgumentSpec {
            flags: vec![],
            named: vec!["number", "value-name"],
            positional: &["number", "value-name"],
        },
        Command::Comment => ArgumentSpec {
            flags: vec![],
            named: vec!["numbers", "comment"],
            positional: &["numbers", "comment"],
        },
        Command::Unset => ArgumentSpec {
            flags: vec![],
            named: vec!["numbers", "value-name"],
            positional: &["numbers", "value-name"],
        },
        Command::Ping => ArgumentSpec {
            flags: vec![],
            named: vec!["address", "count", "interval", "size"],
            positional: &["address"],
        },
        Command::Find => ArgumentSpec {
            flags: vec![],
            named: menu.properties.iter().map(|p| p.name).collect(),
            positional: &[],
        },
    }
}

/// The arguments a command takes, for help: flags (no value) and named arguments, sorted.
pub fn argument_names(menu: &Menu, command: Command) -> (Vec<&'static str>, Vec<&'static str>) {
    let spec = argument_spec(menu, command);
    let mut flags = spec.flags;
    let mut named = spec.named;
    flags.sort_unstable();
    named.sort_unstable();
    named.dedup();
    (flags, named)
}

/// Pick the one candidate equal to `word`, else the one it is a prefix of.
/// `Err(true)` = several candidates match (ambiguous), `Err(false)` = none.
fn pick<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str> + Clone,
) -> Result<&'a str, bool> {
    if let Some(exact) = candidates.clone().find(|c| *c == word) {
        return Ok(exact);
    }
    let mut matching = candidates.filter(|c| c.starts_with(word));
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one),
        (Some(_), Some(_)) => Err(true),
        _ => Err(false),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Characters that end a bare (unquoted) token.
fn ends_bare_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, ';' | '[' | ']' | '"')
}

/// Parse a whole command line relative to the menu `current`.
pub fn parse_line(line: &str, current: &'static Menu) -> Result<Vec<Statement>, ConsoleError> {
    let mut parser = Parser {
        chars: line.chars().collect(),
        pos: 0,
        expression_parts: 0,
        expression_depth: 0,
    };
    parser.skip_whitespace();
    if parser.peek() == Some('#') {
        // An interactive `#` line is a chat message to other users, never a command.
        return Ok(vec![Statement::Empty]);
    }
    let mut statements = Vec::new();
    // A menu change applies to the commands after it on the same line.
    let mut current = current;
    loop {
        let statement = parser.statement(current, false)?;
        if let Statement::Navigate(menu) = statement {
            current = menu;
        }
        statements.push(statement);
        parser.skip_whitespace();
        match parser.peek() {
            None => break,
            Some(';') => parser.pos += 1,
            Some(_) => return Err(ConsoleError::expected_end_of_command(parser.column())),
        }
    }
    Ok(statements)
}

/// What may complete the last word of a partly typed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompletionContext {
    /// Fixed words: menus (ending in `/`), commands, argument names (ending in `=`), flags.
    Words(Vec<String>),
    /// The value of an argument of a command of `menu`; the caller may know the candidates
    /// (item names) from the backend.
    Value {
        menu: &'static Menu,
        argument: String,
    },
    /// Nothing can follow here.
    Nothing,
}

/// Candidates for completing the last word of `line`: the char index where that word starts,
/// the word typed so far, and the context that says what it can become.
pub fn completion_context(
    line: &str,
    current: &'static Menu,
) -> (usize, String, CompletionContext) {
    let chars: Vec<char> = line.chars().collect();
    let token_start = chars
        .iter()
        .rposition(|c| c.is_whitespace())
        .map_or(0, |p| p + 1);
    let token: String = chars[token_start..].iter().collect();
    let prefix_of = |end: usize| -> String { chars[..end].iter().collect() };
    if let Some(equals) = token.find('=') {
        let name = &token[..equals];
        let partial = token[equals + 1..].to_string();
        let start = token_start + name.chars().count() + 1;
        let context = match last_statement(&prefix_of(token_start), current) {
            Some(Statement::Command(invocation)) => {
                let spec = argument_spec(invocation.menu, invocation.command);
                match pick(name, spec.named.iter().copied()) {
                    Ok(argument) => CompletionContext::Value {
                        menu: invocation.menu,
                        argument: argument.to_string(),
                    },
                    Err(_) => CompletionContext::Nothing,
                }
            }
            _ => CompletionContext::Nothing,
        };
        return (start, partial, context);
    }
    let (start, partial) = match token.rfind('/') {
        Some(slash) => {
            let slash_chars = token[..slash].chars().count();
            (
                token_start + slash_chars + 1,
                token[slash + 1..].to_string(),
            )
        }
        None => (token_start, token),
    };
    let prefix = prefix_of(start);
    let menu_words = |menu: &'static Menu| -> Vec<String> {
        schema::children(menu)
            .map(|m| format!("{}/", m.word()))
            .chain(menu.commands.iter().map(|c| c.word().to_string()))
            .collect()
    };
    let words = match last_statement(&prefix, current) {
        None => return (start, partial, CompletionContext::Nothing),
        Some(Statement::Empty) => menu_words(current),
        Some(Statement::Navigate(menu)) => menu_words(menu),
        Some(Statement::Put(_)) => Vec::new(),
        Some(Statement::Command(invocation)) => {
            if invocation.condition.is_some() {
                Vec::new()
            } else {
                let spec = argument_spec(invocation.menu, invocation.command);
                let mut words: Vec<String> = spec
                    .named
                    .iter()
                    .filter(|n| invocation.argument(n).is_none())
                    .map(|n| format!("{n}="))
                    .chain(spec.flags.iter().map(|f| f.to_string()))
                    .collect();
                if matches!(invocation.command, Command::Print | Command::Find) {
                    words.push("where".into());
                }
                words
            }
        }
    };
    let mut words: Vec<String> = words
        .into_iter()
        .filter(|w| w.starts_with(&partial))
        .collect();
    words.sort();
    words.dedup();
    (start, partial, CompletionContext::Words(words))
}

/// The last statement of a line prefix, if the prefix parses.
fn last_statement(prefix: &str, current: &'static Menu) -> Option<Statement> {
    if prefix.trim().is_empty() {
        return Some(Statement::Empty);
    }
    // A prefix that is only `/` means the root menu.
    if prefix.trim() == "/" {
        return Some(Statement::Navigate(schema::root()));
    }
    parse_line(prefix, current).ok()?.pop()
}

pub(crate) struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Tests, operators and parentheses of the `where` expression being read: bounded, so a
    /// hostile script cannot nest or chain deep enough to exhaust the stack when the
    /// expression is parsed, evaluated or dropped.
    expression_parts: usize,
    /// Parentheses and negations open around the current position (the parser recurses
    /// into each).
    expression_depth: usize,
}

/// Most tests, operators and parentheses in one `where` expression.
pub const MAX_EXPRESSION_PARTS: usize = 1000;
/// Deepest nesting of parentheses and negations in one `where` expression.
pub const MAX_EXPRESSION_DEPTH: usize = 64;

impl Parser {
    pub(crate) fn column(&self) -> usize {
        self.pos + 1
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    pub(crate) fn advance(&mut self, count: usize) {
        self.pos = (self.pos + count).min(self.chars.len());
    }

    pub(crate) fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// At the end of the current command: end of line, `;`, or `]` inside brackets.
    pub(crate) fn at_command_end(&self, nested: bool) -> bool {
        match self.peek() {
            None | Some(';') => true,
            Some(']') => nested,
            _ => false,
        }
    }

    /// A run of menu/argument name characters.
    pub(crate) fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A run of characters up to whitespace, `;`, brackets or a quote.
    pub(crate) fn bare(&mut self, also_ends: &[char]) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !ends_bare_token(c) && !also_ends.contains(&c))
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// A `"..."` string with RouterOS escapes; the cursor is on the opening quote. `\XX` gives
    /// one byte, so `"\C3\A9"` is `é`; byte sequences that are not UTF-8 are replaced.
    pub(crate) fn quoted(&mut self) -> Result<String, ConsoleError> {
        self.pos += 1;
        let mut bytes: Vec<u8> = Vec::new();
        let push = |bytes: &mut Vec<u8>, c: char| {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
        };
        loop {
            let column = self.column();
            match self.peek() {
                None => return Err(ConsoleError::syntax_error(column)),
                Some('"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8(bytes)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
                }
                // `$name` is variable substitution; this console has no variables.
                Some('$') => return Err(ConsoleError::syntax_error(column)),
                Some('\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('$') => '$',
                        Some('?') => '?',
                        Some('_') => ' ',
                        Some('a') => '\u{7}',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('v') => '\u{b}',
                        Some(high) if is_upper_hex(high) => {
                            let low = self.peek_at(1).filter(|c| is_upper_hex(*c));
                            let Some(low) = low else {
                                return Err(ConsoleError::syntax_error(column));
                            };
                            self.pos += 2;
                            bytes.push(hex_value(high) * 16 + hex_value(low));
                            continue;
                        }
                        _ => return Err(ConsoleError::syntax_error(column)),
                    };
                    self.pos += 1;
                    push(&mut bytes, escaped);
                }
                Some(c) => {
                    self.pos += 1;
                    push(&mut bytes, c);
                }
            }
        }
    }

    fn statement(
        &mut self,
        current: &'static Menu,
        nested: bool,
    ) -> Result<Statement, ConsoleError> {
        self.skip_whitespace();
        if self.at_command_end(nested) {
            return Ok(Statement::Empty);
        }
        if self.peek() == Some(':') {
            self.pos += 1;
            let column = self.column();
            let word = self.word();
            if word != "put" {
                return Err(ConsoleError::bad_command_name(&word, column));
            }
            self.skip_whitespace();
            if self.at_command_end(nested) {
                return Ok(Statement::Put(None));
            }
            let value = self.value(current, nested)?;
            return Ok(Statement::Put(Some(value)));
        }
        let mut menu = current;
        let mut moved = false;
        if self.peek() == Some('/') {
            self.pos += 1;
            menu = schema::root();
            moved = true;
        }
        loop {
            while self.peek() == Some('/') {
                self.pos += 1;
            }
            self.skip_whitespace();
            if self.at_command_end(nested) {
                if nested || !moved {
                    return Err(ConsoleError::syntax_error(self.column()));
                }
                return Ok(Statement::Navigate(menu));
            }
            let column = self.column();
            let word = self.word();
            if word.is_empty() {
                return Err(ConsoleError::syntax_error(column));
            }
            if !self.at_command_end(nested)
                && !self.peek().is_some_and(|c| c.is_whitespace() || c == '/')
            {
                return Err(ConsoleError::expected_end_of_command(self.column()));
            }
            if word == ".." {
                menu = schema::menu(menu.parent_path()).unwrap_or(schema::root());
                moved = true;
                continue;
            }
            let children: Vec<&'static Menu> = schema::children(menu).collect();
            let candidates = children
                .iter()
                .map(|m| m.word())
                .chain(menu.commands.iter().map(|c| c.word()));
            match pick(&word, candidates) {
                Ok(found) => {
                    if let Some(child) = children.iter().find(|m| m.word() == found) {
                        menu = child;
                        moved = true;
                        continue;
                    }
                    let command = menu
                        .commands
                        .iter()
                        .copied()
                        .find(|c| c.word() == found)
                        .ok_or_else(|| ConsoleError::bad_command_name(&word, column))?;
                    return self
                        .arguments(menu, command, nested)
                        .map(Statement::Command);
                }
                Err(true) => {
                    return Err(ConsoleError::syntax(
                        format!("ambiguous command name {word}"),
                        column,
                    ))
                }
                Err(false) => return Err(ConsoleError::bad_command_name(&word, column)),
            }
        }
    }

    /// A value: `"quoted"`, `[command]` or a bare token.
    fn value(&mut self, menu: &'static Menu, nested: bool) -> Result<Value, ConsoleError> {
        let value = match self.peek() {
            Some('"') => Value::Text(self.quoted()?),
            Some('[') => {
                self.pos += 1;
                let statement = self.statement(menu, true)?;
                self.skip_whitespace();
                let Statement::Command(invocation) = statement else {
                    return Err(ConsoleError::syntax_error(self.column()));
                };
                if self.peek() != Some(']') {
                    return Err(ConsoleError::syntax_error(self.column()));
                }
                self.pos += 1;
                Value::Substitution(Box::new(invocation))
            }
            _ => {
                let column = self.column();
                let text = self.bare(&[]);
                if text.is_empty() {
                    return Err(ConsoleError::syntax_error(column));
                }
                Value::Text(text)
            }
        };
        // A value must be followed by a separator: `a"b"` or `"a"b` is malformed.
        if !self.at_command_end(nested) && !self.peek().is_some_and(char::is_whitespace) {
            return Err(ConsoleError::syntax_error(self.column()));
        }
        Ok(value)
    }

    fn arguments(
        &mut self,
        menu: &'static Menu,
        command: Command,
        nested: bool,
    ) -> Result<Invocation, ConsoleError> {
        let spec = argument_spec(menu, command);
        let mut invocation = Invocation {
            menu,
            command,
            arguments: Vec::new(),
            condition: None,
        };
        let mut next_positional = 0;
        loop {
            self.skip_whitespace();
            if self.at_command_end(nested) {
                return Ok(invocation);
            }
            let column = self.column();
            match self.peek() {
                Some('!') if command == Command::Set => {
                    self.pos += 1;
                    let name = self.word();
                    let found = pick(&name, spec.named.iter().copied())
                        .ok()
                        .filter(|n| *n != "numbers")
                        .ok_or_else(|| ConsoleError::expected_end_of_command(column))?;
                    invocation.arguments.push(Argument {
                        name: found.to_string(),
                        value: None,
                        unset: true,
                    });
                    continue;
                }
                Some('"') | Some('[') => {
                    let name = *spec
                        .positional
                        .get(next_positional)
                        .ok_or_else(|| ConsoleError::expected_end_of_command(column))?;
                    next_positional += 1;
                    let value = self.value(menu, nested)?;
                    invocation.arguments.push(Argument {
                        name: name.to_string(),
                        value: Some(value),
                        unset: false,
                    });
                    continue;
                }
                _ => {}
            }
            let token = self.bare(&['=']);
            if self.peek() == Some('=') {
                let equals_column = self.column();
                if token.is_empty() || !token.chars().all(is_word_char) {
                    return Err(ConsoleError::syntax_error(column));
                }
                let candidates = spec.named.iter().chain(spec.flags.iter()).copied();
                let name = pick(&token, candidates)
                    .map_err(|_| ConsoleError::expected_end_of_command(column))?;
                if spec.flags.contains(&name) {
                    return Err(ConsoleError::expected_end_of_command(equals_column));
                }
                self.pos += 1;
                let value = if self.at_command_end(nested)
                    || self.peek().is_some_and(char::is_whitespace)
                {
                    // `comment=` gives an empty value.
                    Value::Text(String::new())
                } else {
                    self.value(menu, nested)?
                };
                invocation.arguments.push(Argument {
                    name: name.to_string(),
                    value: Some(value),
                    unset: false,
                });
                continue;
            }
            if token.is_empty() {
                return Err(ConsoleError::syntax_error(column));
            }
            if token == "where" && matches!(command, Command::Print | Command::Find) {
                let condition = self.expression(menu, nested)?;
                invocation.condition = Some(condition);
                self.skip_whitespace();
                if !self.at_command_end(nested) {
                    return Err(ConsoleError::syntax_error(self.column()));
                }
                return Ok(invocation);
            }
            if let Ok(flag) = pick(&token, spec.flags.iter().copied()) {
                invocation.arguments.push(Argument {
                    name: flag.to_string(),
                    value: None,
                    unset: false,
                });
                continue;
            }
            let name = *spec
                .positional
                .get(next_positional)
                .ok_or_else(|| ConsoleError::expected_end_of_command(column))?;
            next_positional += 1;
            if !self.at_command_end(nested) && !self.peek().is_some_and(char::is_whitespace) {
                return Err(ConsoleError::syntax_error(self.column()));
            }
            invocation.arguments.push(Argument {
                name: name.to_string(),
                value: Some(Value::Text(token)),
                unset: false,
            });
        }
    }

    // ---- where expressions -------------------------------------------------------------

    fn expression(&mut self, menu: &'static Menu, nested: bool) -> Result<Expr, ConsoleError> {
        self.skip_whitespace();
        if self.at_command_end(nested) {
            return Err(ConsoleError::syntax_error(self.column()));
        }
        self.expression_parts = 0;
        self.expression_depth = 0;
        self.disjunction(menu, nested)
    }

    /// Reads what `inner` reads one nesting level deeper; refuses beyond the bound.
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, ConsoleError>,
    ) -> Result<T, ConsoleError> {
        if self.expression_depth >= MAX_EXPRESSION_DEPTH {
            return Err(ConsoleError::syntax(
                format!("expression nested too deep (at most {MAX_EXPRESSION_DEPTH} levels)"),
                self.column(),
            ));
        }
        self.expression_depth += 1;
        let read = inner(self);
        self.expression_depth -= 1;
        read
    }

    /// Counts one more part of the expression; refuses an expression beyond the bound.
    fn expression_part(&mut self) -> Result<(), ConsoleError> {
        self.expression_parts += 1;
        if self.expression_parts > MAX_EXPRESSION_PARTS {
            return Err(ConsoleError::syntax(
                format!("expression too long (at most {MAX_EXPRESSION_PARTS} parts)"),
                self.column(),
            ));
        }
        Ok(())
    }

    fn keyword(&mut self, words: &[&str]) -> bool {
        self.skip_whitespace();
        for word in words {
            let len = word.chars().count();
            let matches = word
                .chars()
                .enumerate()
                .all(|(i, c)| self.peek_at(i) == Some(c));
            let symbolic = !word.chars().all(|c| c.is_ascii_alphabetic());
            let boundary = symbolic || !self.peek_at(len).is_some_and(is_word_char);
            if matches && boundary {
                self.advance(len);
                return true;
            }
        }
        false
    }

    fn disjunction(&mut self, menu: &'static Menu, nested: bool) -> Result<Expr, ConsoleError> {
        let mut left = self.conjunction(menu, nested)?;
        while self.keyword(&["or", "||"]) {
            let right = self.conjunction(menu, nested)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self, menu: &'static Menu, nested: bool) -> Result<Expr, ConsoleError> {
        let mut left = self.unary(menu, nested)?;
        loop {
            if self.keyword(&["and", "&&"]) {
                let right = self.unary(menu, nested)?;
                left = Expr::And(Box::new(left), Box::new(right));
                continue;
            }
            // Two tests side by side are taken as both required.
            self.skip_whitespace();
            let continues = self
                .peek()
                .is_some_and(|c| c == '(' || c == '!' || c == '"' || is_word_char(c))
                && !self.keyword_ahead(&["or"]);
            if !continues {
                return Ok(left);
            }
            let right = self.unary(menu, nested)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn keyword_ahead(&self, words: &[&str]) -> bool {
        words.iter().any(|word| {
            let len = word.chars().count();
            word.chars()
                .enumerate()
                .all(|(i, c)| self.peek_at(i) == Some(c))
                && !self.peek_at(len).is_some_and(is_word_char)
        })
    }

    fn unary(&mut self, menu: &'static Menu, nested: bool) -> Result<Expr, ConsoleError> {
        self.skip_whitespace();
        self.expression_part()?;
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            let inner = self.nested(|p| p.unary(menu, nested))?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.keyword(&["not"]) {
            let inner = self.nested(|p| p.unary(menu, nested))?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary(menu, nested)
    }

    fn primary(&mut self, menu: &'static Menu, nested: bool) -> Result<Expr, ConsoleError> {
        self.skip_whitespace();
        let column = self.column();
        if self.peek() == Some('(') {
            self.pos += 1;
            let inner = self.nested(|p| p.disjunction(menu, nested))?;
            self.skip_whitespace();
            if self.peek() != Some(')') {
                return Err(ConsoleError::syntax_error(self.column()));
            }
            self.pos += 1;
            // `(test)=false` / `(test)=no` negates the test; `=yes`/`=true` keeps it.
            if self.peek() == Some('=') {
                self.pos += 1;
                let value_column = self.column();
                return match self.word().as_str() {
                    "yes" | "true" => Ok(inner),
                    "no" | "false" => Ok(Expr::Not(Box::new(inner))),
                    _ => Err(ConsoleError::syntax_error(value_column)),
                };
            }
            return Ok(inner);
        }
        let name = match self.peek() {
            Some('"') => self.quoted()?,
            _ => self.word(),
        };
        if name.is_empty() {
            return Err(ConsoleError::syntax_error(column));
        }
        let property = menu.property(&name);
        if property.is_none() && name != ".id" {
            return Err(ConsoleError::syntax_error(column));
        }
        self.skip_whitespace();
        let operator = if self.keyword_ahead(&["in"]) {
            self.advance(2);
            Some(CompareOp::In)
        } else {
            let two: String = [self.peek(), self.peek_at(1)].iter().flatten().collect();
            let (op, len) = match (two.chars().next(), two.chars().nth(1)) {
                (Some('!'), Some('=')) => (Some(CompareOp::NotEqual), 2),
                (Some('<'), Some('=')) => (Some(CompareOp::LessOrEqual), 2),
                (Some('>'), Some('=')) => (Some(CompareOp::GreaterOrEqual), 2),
                (Some('='), _) => (Some(CompareOp::Equal), 1),
                (Some('<'), _) => (Some(CompareOp::Less), 1),
                (Some('>'), _) => (Some(CompareOp::Greater), 1),
                (Some('~'), _) => (Some(CompareOp::Matches), 1),
                _ => (None, 0),
            };
            self.advance(len);
            op
        };
        let Some(operator) = operator else {
            return Ok(Expr::Present(name));
        };
        self.skip_whitespace();
        let value_column = self.column();
        let (value, quoted) = match self.peek() {
            Some('"') => (self.quoted()?, true),
            _ => (self.bare(&[')', '&', '|']), false),
        };
        if value.is_empty() && !quoted {
            return Err(ConsoleError::syntax_error(value_column));
        }
        if !quoted
            && property.is_some_and(|p| p.kind == ValueType::YesNo)
            && !matches!(value.as_str(), "yes" | "no")
        {
            return Err(ConsoleError::syntax("expected yes or no", value_column));
        }
        Expr::compare(name, operator, value).map_err(|_| ConsoleError::syntax_error(value_column))
    }
}

fn is_upper_hex(c: char) -> bool {
    c.is_ascii_digit() || ('A'..='F').contains(&c)
}

fn hex_value(c: char) -> u8 {
    // Only called on `is_upper_hex` characters.
    c.to_digit(16).map_or(0, |d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Menu {
        schema::root()
    }

    fn one(line: &str) -> Statement {
        let mut statements = parse_line(line, root()).unwrap();
        assert_eq!(statements.len(), 1, "{line}");
        statements.remove(0)
    }

    fn error(line: &str) -> String {
        parse_line(line, root()).unwrap_err().to_string()
    }

    #[test]
    fn path_forms_are_equivalent() {
        for line in [
            "/zerotier/interface/print",
            "/zerotier interface print",
            "/zerotier/interface print",
            "zerotier/interface/print",
            "/zero/int/pr",
        ] {
            match one(line) {
                Statement::Command(inv) => {
                    assert_eq!(inv.menu.path, "/zerotier/interface", "{line}");
                    assert_eq!(inv.command, Command::Print);
                }
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn navigation() {
        assert!(matches!(one("/zerotier"), Statement::Navigate(m) if m.path == "/zerotier"));
        assert!(matches!(one("zerotier/"), Statement::Navigate(m) if m.path == "/zerotier"));
        assert!(matches!(one("/"), Statement::Navigate(m) if m.path == "/"));
        let member = schema::menu("/zerotier/controller/member").unwrap();
        let up = parse_line("..", member).unwrap();
        assert!(matches!(up[0], Statement::Navigate(m) if m.path == "/zerotier/controller"));
        let sibling = parse_line("../../peer/print", member).unwrap();
        assert!(matches!(&sibling[0], Statement::Command(i) if i.menu.path == "/zerotier/peer"));
        assert!(matches!(one(""), Statement::Empty));
        assert!(matches!(one("# hello all"), Statement::Empty));
    }

    #[test]
    fn quoting_and_escapes() {
        let Statement::Command(inv) =
            one(r#"/zerotier/set zt1 comment="a \"b\" \\ c\_d\48\49 \$x \C3\A9""#)
        else {
            panic!()
        };
        let Some(Value::Text(text)) = &inv.argument("comment").unwrap().value else {
            panic!()
        };
        assert_eq!(text, "a \"b\" \\ c dHI $x é");
        assert!(
            matches!(&inv.argument("numbers").unwrap().value, Some(Value::Text(t)) if t == "zt1")
        );
    }

    #[test]
    fn positional_and_named_arguments() {
        let Statement::Command(inv) = one("/zerotier/controller/member/set 0,1 authorized=yes")
        else {
            panic!()
        };
        assert!(
            matches!(&inv.argument("numbers").unwrap().value, Some(Value::Text(t)) if t == "0,1")
        );
        assert!(
            matches!(&inv.argument("authorized").unwrap().value, Some(Value::Text(t)) if t == "yes")
        );
        let Statement::Command(inv) = one("/zerotier get zt1 port") else {
            panic!()
        };
        assert!(
            matches!(&inv.argument("value-name").unwrap().value, Some(Value::Text(t)) if t == "port")
        );
        let Statement::Command(inv) = one("/zerotier/interface/add net=1d71939404912b40 inst=zt1")
        else {
            panic!()
        };
        assert!(inv.argument("network").is_some() && inv.argument("instance").is_some());
        let Statement::Command(inv) = one("/zerotier/set zt1 !port") else {
            panic!()
        };
        assert!(inv.argument("port").unwrap().unset);
        let Statement::Command(inv) = one("/zerotier/interface/print det") else {
            panic!()
        };
        assert!(inv.has_flag("detail"));
    }

    #[test]
    fn substitution() {
        let Statement::Command(inv) =
            one("/zerotier/controller/member/set [find zt-address=deba5dc5b1] authorized=yes")
        else {
            panic!()
        };
        let Some(Value::Substitution(inner)) = &inv.argument("numbers").unwrap().value else {
            panic!()
        };
        assert_eq!(inner.menu.path, "/zerotier/controller/member");
        assert_eq!(inner.command, Command::Find);
    }

    #[test]
    fn several_commands_per_line() {
        let statements = parse_line("/zerotier/print; /zerotier/peer/print", root()).unwrap();
        assert_eq!(statements.len(), 2);
        let statements = parse_line("/zerotier; interface print", root()).unwrap();
        assert!(
            matches!(&statements[1], Statement::Command(i) if i.menu.path == "/zerotier/interface")
        );
    }

    #[test]
    fn error_texts_and_columns() {
        assert_eq!(error("/ttt"), "bad command name ttt (line 1 column 2)");
        assert_eq!(
            error("/zerotier/bogus"),
            "bad command name bogus (line 1 column 11)"
        );
        assert_eq!(
            error("/zerotier/peer/add"),
            "bad command name add (line 1 column 16)"
        );
        assert_eq!(
            error("/zerotier/interface/add foo=bar"),
            "expected end of command (line 1 column 25)"
        );
        assert_eq!(
            error("/export show-sensitive=yes"),
            "expected end of command (line 1 column 23)"
        );
        assert_eq!(
            error("/zerotier/interface/enable 0 1"),
            "expected end of command (line 1 column 30)"
        );
        assert_eq!(
            error("/zerotier/interface/add name=\"x"),
            "syntax error (line 1 column 32)"
        );
        assert_eq!(
            error("/zerotier/set zt1 comment=\"\\q\""),
            "syntax error (line 1 column 28)"
        );
        assert_eq!(
            error("/zerotier/set zt1 comment=\"$v\""),
            "syntax error (line 1 column 28)"
        );
        assert_eq!(
            error("/zerotier/p"),
            "ambiguous command name p (line 1 column 11)"
        );
        assert_eq!(
            error("/zerotier/print where"),
            "syntax error (line 1 column 22)"
        );
        assert_eq!(
            error("/zerotier/print where (name=a"),
            "syntax error (line 1 column 30)"
        );
        assert_eq!(
            error("/zerotier/print where nosuch=1"),
            "syntax error (line 1 column 23)"
        );
        assert_eq!(
            error("/zerotier/print where disabled=false"),
            "expected yes or no (line 1 column 32)"
        );
        assert_eq!(
            error(":frobnicate"),
            "bad command name frobnicate (line 1 column 2)"
        );
        assert_eq!(
            error("/zerotier/print ]"),
            "syntax error (line 1 column 17)"
        );
        assert_eq!(
            error("/zerotier/set [find"),
            "syntax error (line 1 column 20)"
        );
        assert_eq!(
            error("/zerotier/set zt1 comment=a\"b\""),
            "syntax error (line 1 column 28)"
        );
        assert_eq!(
            error("/zerotier/print where name~\"(\""),
            "syntax error (line 1 column 28)"
        );
    }

    #[test]
    fn completion_contexts() {
        let words = |line: &str| match completion_context(line, root()) {
            (_, _, CompletionContext::Words(words)) => words,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(words("/zerotier/int"), ["interface/"]);
        assert_eq!(words("/zerotier/p"), ["peer/", "print"]);
        assert_eq!(words("zero"), ["zerotier/"]);
        assert_eq!(
            words("/"),
            ["export", "ip/", "ping", "system/", "zerotier/"]
        );
        assert_eq!(words("/zerotier/interface/add network=1 in"), ["instance="]);
        assert_eq!(words("/zerotier/interface/print d"), ["detail"]);
        assert_eq!(words("/zerotier/peer/print w"), ["where", "without-paging"]);
        let (start, partial, context) =
            completion_context("/zerotier/interface/set 0 inst=z", root());
        assert_eq!((start, partial.as_str()), (31, "z"));
        assert!(
            matches!(context, CompletionContext::Value { argument, .. } if argument == "instance")
        );
        assert_eq!(
            completion_context("/bogus/x", root()).2,
            CompletionContext::Nothing
        );
    }

    #[test]
    fn where_expressions() {
        let Statement::Command(inv) = one(
            "/zerotier/interface/print where (name~\"zero\" and !disabled) or network=1d71939404912b40 || (running)=false",
        ) else {
            panic!()
        };
        assert!(inv.condition.is_some());
        let Statement::Command(inv) = one("/ip/address/print where address in 10.0.0.0/8") else {
            panic!()
        };
        assert!(inv.condition.is_some());
    }

    /// A hostile script's 100,000-deep nesting or chaining is refused with a clear error
    /// instead of overflowing the stack (while parsing, evaluating or dropping).
    #[test]
    fn deep_or_long_expressions_are_refused() {
        let n = 100_000;
        let nested = format!(
            "/zerotier/interface/print where {}name=a{}",
            "(".repeat(n),
            ")".repeat(n)
        );
        let negated = format!("/zerotier/interface/print where {}name=a", "!".repeat(n));
        let chained = format!(
            "/zerotier/interface/print where name=a{}",
            " and name=a".repeat(n)
        );
        for line in [nested, negated] {
            let message = error(&line);
            assert!(message.contains("at most 64 levels"), "{message}");
        }
        let message = error(&chained);
        assert!(message.contains("at most 1000 parts"), "{message}");
        // The bound leaves room for any expression a person writes.
        let long = format!(
            "/zerotier/interface/print where name=a{}",
            " or name=b".repeat(400)
        );
        assert!(matches!(one(&long), Statement::Command(_)));
    }
}
