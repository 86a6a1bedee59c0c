//! A console session: the current menu, the print numbers of each menu, and command execution.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::backend::{Backend, Item};
use crate::duration::parse_duration_ms;
use crate::error::ConsoleError;
use crate::expr::{CompareOp, Expr};
use crate::format::{self, display_value, ColumnChoice, ExportOptions, PrintRow};
use crate::parser::{
    completion_context, parse_line, CompletionContext, Invocation, Statement, Value,
};
use crate::schema::{self, Command, Menu, ValueType};
use crate::values::{console_form, validate};

/// What a command returns to a script (`:put [...]`), as opposed to what it prints.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ScriptValue {
    #[default]
    Nothing,
    Text(String),
    /// Internal ids, as `find` returns them.
    Ids(Vec<String>),
    /// `print as-value` / `get` without a property: `.id` first, then properties.
    Records(Vec<Vec<(String, String)>>),
}

impl ScriptValue {
    /// How `:put` shows the value: ids `;`-joined, records as `key=value;...` unquoted.
    pub fn to_put_string(&self) -> String {
        match self {
            ScriptValue::Nothing => String::new(),
            ScriptValue::Text(text) => text.clone(),
            ScriptValue::Ids(ids) => ids.join(";"),
            ScriptValue::Records(records) => records
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
        }
    }
}

/// The full result of one command line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// What the console prints.
    pub output: String,
    /// The value of the last command, for scripting callers.
    pub value: ScriptValue,
    /// `print interval=...`: the caller re-runs the line this often until interrupted.
    pub interval_ms: Option<u64>,
}

/// What a script did ([`Console::run_script_report`]).
#[derive(Debug, Default)]
pub struct ScriptRun {
    /// What the commands that ran printed.
    pub output: String,
    /// The script line (1-based) where each command that ran starts; their changes stay.
    pub ran: Vec<usize>,
    /// The command that failed; nothing after it ran.
    pub failure: Option<ScriptFailure>,
}

/// Where and why a script stopped.
#[derive(Debug)]
pub struct ScriptFailure {
    /// The script line where the failing command starts.
    pub line: usize,
    pub error: ConsoleError,
}

impl ScriptFailure {
    /// The error with its line: a parse error carries it already (`… (line 6 column 30)`),
    /// a runtime one gets `(line 6)`. `error_text` is how the caller words the error.
    pub fn text(&self, error_text: &str) -> String {
        match self.error {
            ConsoleError::Syntax { .. } => error_text.to_string(),
            _ => format!("{error_text} (line {})", self.line),
        }
    }
}

/// The commands of a script with the line each starts on: `#` comment lines skipped, lines
/// ending in `\` joined with the next (its leading indentation dropped).
fn script_commands(script: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut command = String::new();
    let mut first_line = 0;
    for (index, physical) in script.lines().enumerate() {
        if command.is_empty() {
            first_line = index + 1;
            if physical.trim_start().starts_with('#') {
                continue;
            }
        }
        let (text, continued) = match physical.strip_suffix('\\') {
            Some(head) => (head, true),
            None => (physical, false),
        };
        command.push_str(if command.is_empty() {
            text
        } else {
            text.trim_start()
        });
        if !continued {
            commands.push((first_line, std::mem::take(&mut command)));
        }
    }
    commands.push((first_line, command));
    // Blank lines are no commands (and never "took effect").
    commands.retain(|(_, text)| !text.trim().is_empty());
    commands
}

/// The print numbers of one menu (ROUTEROS.md §2): fixed by the menu's last print (or by the
/// first number used before any print, as if print had run then) and kept, across adds and
/// removes, until the next print.
#[derive(Debug)]
enum Numbering {
    /// The whole menu as it was listed: ids by print number.
    Listed(Vec<String>),
    /// A menu listed in id order that was not listed whole: the numbers learnt so far (a
    /// number is the count of items with a lower id), and which of them were removed through
    /// this session since (the items after them keep their numbers).
    Counted {
        known: BTreeMap<usize, String>,
        removed: BTreeSet<usize>,
    },
}

impl Numbering {
    fn counted() -> Numbering {
        Numbering::Counted {
            known: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }
}

/// A `print where` on a menu listed in id order counts the positions of at most this many
/// matching items one by one; more, and it lists the whole menu.
const COUNTED_PRINT_LIMIT: usize = 32;

/// Item ids are 32-bit on RouterOS: numbers below this.
const ID_LIMIT: u64 = 1 << 32;

/// The `name=value` tests every item matching `condition` passes, in REST form, for the
/// router to look the items up by: the equalities joined by `and` at the top of the
/// expression. Booleans (`yes` on the console, `true` over REST) and empty values (an unset
/// property shows as empty) are left to the console's own test.
fn required_equalities(menu: &Menu, condition: &Expr, into: &mut Vec<(String, String)>) {
    match condition {
        Expr::And(a, b) => {
            required_equalities(menu, a, into);
            required_equalities(menu, b, into);
        }
        Expr::Compare {
            property,
            op: CompareOp::Equal,
            value,
            ..
        } if !value.is_empty()
            && !matches!(
                menu.property(property).map(|p| p.kind),
                Some(ValueType::YesNo)
            ) =>
        {
            into.push((property.clone(), value.clone()));
        }
        _ => {}
    }
}

/// One console session over a backend.
pub struct Console<B> {
    backend: B,
    current: &'static Menu,
    /// Per menu path: what its print numbers stand for.
    numbers: HashMap<&'static str, Numbering>,
    /// Shown in the prompt: `[user@identity] /path> `.
    pub user: String,
    pub identity: String,
    /// Terminal width used to wrap `print detail`.
    pub width: usize,
    /// Lines put before `export` output (`# <date> by RouterOS ...`); the console has no clock.
    pub export_header: Option<String>,
}

impl<B: Backend> Console<B> {
    pub fn new(backend: B) -> Self {
        Console {
            backend,
            current: schema::root(),
            numbers: HashMap::new(),
            user: "admin".into(),
            identity: "MikroTik".into(),
            width: 80,
            export_header: None,
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Take the prompt's name from the router's `/system/identity` (kept as it is when the
    /// router does not answer).
    pub fn load_identity(&mut self) {
        if let Ok(items) = self.backend.list("/system/identity") {
            if let Some(name) = items.first().and_then(|i| i.get("name")) {
                self.identity = name.to_string();
            }
        }
    }

    /// The current menu path (`/zerotier`).
    pub fn current_path(&self) -> &'static str {
        self.current.path
    }

    /// `[admin@MikroTik] /zerotier> ` (root: `[admin@MikroTik] > `).
    pub fn prompt(&self) -> String {
        let path = if self.current.path == "/" {
            ""
        } else {
            self.current.path
        };
        if path.is_empty() {
            format!("[{}@{}] > ", self.user, self.identity)
        } else {
            format!("[{}@{}] {}> ", self.user, self.identity, path)
        }
    }

    /// Run a command line and return what the console prints.
    pub fn execute(&mut self, line: &str) -> Result<String, ConsoleError> {
        self.execute_reply(line).map(|reply| reply.output)
    }

    /// Completions of the last word of `line`: the char index where that word starts and the
    /// words it may become (menus end in `/`, named arguments in `=`). Values complete to
    /// `yes`/`no`, enum words, referenced item names, or the items' names for selectors.
    pub fn complete(&mut self, line: &str) -> (usize, Vec<String>) {
        let (start, partial, context) = completion_context(line, self.current);
        let words = match context {
            CompletionContext::Words(words) => words,
            CompletionContext::Nothing => Vec::new(),
            CompletionContext::Value { menu, argument } => {
                let names_of = |backend: &mut B, path: &str| -> Vec<String> {
                    backend
                        .list(path)
                        .map(|items| {
                            items
                                .iter()
                                .filter_map(|i| i.get("name").map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let mut values = match menu.property(&argument).map(|p| p.kind) {
                    Some(ValueType::YesNo) => vec!["no".to_string(), "yes".to_string()],
                    Some(ValueType::Enum(choices)) => {
                        choices.iter().map(|c| c.to_string()).collect()
                    }
                    Some(ValueType::Reference(path)) => names_of(&mut self.backend, path),
                    _ if matches!(argument.as_str(), "numbers" | "number" | "copy-from") => {
                        names_of(&mut self.backend, menu.path)
                    }
                    _ => Vec::new(),
                };
                values.retain(|v| v.starts_with(&partial));
                values.sort();
                values
            }
        };
        (start, words)
    }

    /// Run a script such as an export: `#` lines are comments, a line ending in `\\` continues
    /// on the next one. Runs until the first error; a parse error names the script line where
    /// the failing command starts. The session's current menu is restored afterwards.
    /// [`Console::run_script_report`] says more: which lines ran and where it stopped.
    pub fn run_script(&mut self, script: &str) -> Result<String, ConsoleError> {
        let run = self.run_script_report(script);
        match run.failure {
            Some(failure) => Err(failure.error),
            None => Ok(run.output),
        }
    }

    /// [`Console::run_script`], keeping the output of the commands that ran before a failure,
    /// their line numbers, and the line of the command that failed.
    pub fn run_script_report(&mut self, script: &str) -> ScriptRun {
        let saved = self.current;
        let mut run = ScriptRun::default();
        for (first_line, line) in script_commands(script) {
            match self.execute(&line) {
                Ok(text) => {
                    run.output.push_str(&text);
                    run.ran.push(first_line);
                }
                Err(error) => {
                    let error = match error {
                        ConsoleError::Syntax {
                            message, column, ..
                        } => ConsoleError::Syntax {
                            message,
                            line: first_line,
                            column,
                        },
                        other => other,
                    };
                    run.failure = Some(ScriptFailure {
                        line: first_line,
                        error,
                    });
                    break;
                }
            }
        }
        self.current = saved;
        run
    }

    /// Run a command line (one or more `;`-separated commands). Nothing runs if the line does
    /// not parse; commands run in order and the first failure stops the line.
    pub fn execute_reply(&mut self, line: &str) -> Result<Reply, ConsoleError> {
        if let Some(output) = self.help(line)? {
            return Ok(Reply {
                output,
                ..Reply::default()
            });
        }
        let statements = parse_line(line, self.current)?;
        let mut reply = Reply::default();
        for statement in statements {
            match statement {
                Statement::Empty => {}
                Statement::Navigate(menu) => self.current = menu,
                Statement::Put(value) => {
                    let text = match value {
                        None => String::new(),
                        Some(value) => self.evaluate(&value)?.to_put_string(),
                    };
                    reply.output.push_str(&text);
                    reply.output.push('\n');
                    reply.value = ScriptValue::Text(text);
                }
                Statement::Command(invocation) => {
                    let outcome = self.run(&invocation)?;
                    reply.output.push_str(&outcome.output);
                    reply.value = outcome.value;
                    if outcome.interval_ms.is_some() {
                        reply.interval_ms = outcome.interval_ms;
                    }
                }
            }
        }
        if let std::borrow::Cow::Owned(safe) = format::terminal_safe(&reply.output) {
            reply.output = safe;
        }
        Ok(reply)
    }

    /// `?` and `help` (alone, or `?` after a menu path or a command: `interface ?`,
    /// `add ?`): the menu's submenus and commands, or the command's arguments. `None` when
    /// the line asks for no help.
    fn help(&self, line: &str) -> Result<Option<String>, ConsoleError> {
        let trimmed = line.trim();
        let target = if trimmed == "help" {
            ""
        } else {
            match trimmed.strip_suffix('?') {
                Some(rest) if rest.is_empty() || rest.ends_with(char::is_whitespace) => rest,
                _ => return Ok(None),
            }
        };
        let statement = match target.trim() {
            "" => Statement::Navigate(self.current),
            words => parse_line(words, self.current)?
                .pop()
                .unwrap_or(Statement::Empty),
        };
        Ok(match statement {
            Statement::Navigate(menu) => Some(Self::menu_help(menu)),
            Statement::Command(invocation) => {
                Some(Self::command_help(invocation.menu, invocation.command))
            }
            _ => None,
        })
    }

    fn menu_help(menu: &'static Menu) -> String {
        let mut entries: Vec<(String, &str)> = Vec::new();
        if menu.path != "/" {
            entries.push(("..".into(), "go up one menu"));
        }
        for child in schema::children(menu) {
            entries.push((format!("{}/", child.word()), "menu"));
        }
        let mut commands: Vec<Command> = menu.commands.to_vec();
        commands.sort_by_key(|c| c.word());
        for command in commands {
            entries.push((command.word().to_string(), command.summary()));
        }
        let width = entries.iter().map(|(w, _)| w.len()).max().unwrap_or(0);
        let mut out = format!("{}\n", menu.path);
        for (word, text) in entries {
            out.push_str(&format!("  {word:<width$}  {text}\n"));
        }
        out
    }

    fn command_help(menu: &'static Menu, command: Command) -> String {
        let (flags, named) = crate::parser::argument_names(menu, command);
        let mut entries: Vec<(String, String)> = Vec::new();
        for name in named {
            let text = match menu.property(name) {
                Some(property) => {
                    let mut text = property.kind.describe();
                    if property.required && command == Command::Add {
                        text.push_str(" (required)");
                    } else if let Some(default) = property.default {
                        text.push_str(&format!(
                            " (default: {})",
                            console_form(Some(property.kind), default)
                        ));
                    }
                    text
                }
                None => match (command, name) {
                    (_, "numbers" | "number") => "items: print numbers, names or *ids".into(),
                    (_, "copy-from") => "an item to copy the properties of".into(),
                    (_, "value-name") => "a property name".into(),
                    (_, "proplist") => "properties to show, comma-separated".into(),
                    (Command::Print, "interval") => "print again this often (1s)".into(),
                    (_, "address") => "IPv4 or IPv6 address".into(),
                    (_, "count") => "how many requests (1..100, default 4)".into(),
                    (_, "interval") => "time between requests (default 1s)".into(),
                    (_, "size") => "bytes of echo data (default 56)".into(),
                    _ => String::new(),
                },
            };
            entries.push((format!("{name}="), text));
        }
        for flag in flags {
            entries.push((flag.to_string(), "flag".into()));
        }
        let width = entries.iter().map(|(w, _)| w.len()).max().unwrap_or(0);
        let path = if menu.path == "/" { "" } else { menu.path };
        let mut out = format!("{path}/{}: {}\n", command.word(), command.summary());
        for (word, text) in entries {
            out.push_str(format!("  {word:<width$}  {text}").trim_end());
            out.push('\n');
        }
        out
    }

    fn evaluate(&mut self, value: &Value) -> Result<ScriptValue, ConsoleError> {
        match value {
            Value::Text(text) => Ok(ScriptValue::Text(text.clone())),
            Value::Substitution(invocation) => Ok(self.run(invocation)?.value),
        }
    }

    fn text_argument(
        &mut self,
        invocation: &Invocation,
        name: &str,
    ) -> Result<Option<String>, ConsoleError> {
        match invocation.argument(name).and_then(|a| a.value.as_ref()) {
            None => Ok(None),
            Some(value) => Ok(Some(self.evaluate(value)?.to_put_string())),
        }
    }

    fn run(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        match invocation.command {
            Command::Print => self.print(invocation),
            Command::Add => self.add(invocation),
            Command::Set => self.set(invocation),
            Command::Remove => self.remove(invocation),
            Command::Enable => self.toggle(invocation, "enable"),
            Command::Disable => self.toggle(invocation, "disable"),
            Command::Get => self.get(invocation),
            Command::Comment => self.comment(invocation),
            Command::Find => self.find(invocation),
            Command::Unset => self.unset(invocation),
            Command::Ping => self.ping(invocation),
            Command::Export => self.export(invocation),
        }
    }

    fn list(&mut self, menu: &Menu) -> Result<Vec<Item>, ConsoleError> {
        Ok(self.backend.list(menu.path)?)
    }

    /// The items with their sensitive values only when the command asks (`show-sensitive`),
    /// so a secret travels from the router only to be shown.
    fn list_for_showing(
        &mut self,
        menu: &Menu,
        show_sensitive: bool,
    ) -> Result<Vec<Item>, ConsoleError> {
        if show_sensitive && menu.properties.iter().any(|p| p.sensitive) {
            Ok(self.backend.list_sensitive(menu.path)?)
        } else {
            self.list(menu)
        }
    }

    /// Ids in print-number order: dynamic items of some menus get no number.
    fn numbering(menu: &Menu, items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter(|i| !(menu.dynamic_unnumbered && i.is_true("dynamic")))
            .map(|i| i.id.clone())
            .collect()
    }

    /// Resolve an item selector (`0`, `0,1`, `zt1`, `*1`, `[find ...]`) to item ids.
    fn resolve(
        &mut self,
        menu: &'static Menu,
        items: &[Item],
        value: &Value,
    ) -> Result<Vec<String>, ConsoleError> {
        let parts: Vec<String> = match value {
            Value::Text(text) => text.split(',').map(|p| p.trim().to_string()).collect(),
            Value::Substitution(invocation) => match self.run(invocation)?.value {
                ScriptValue::Nothing => Vec::new(),
                ScriptValue::Text(text) => text.split([',', ';']).map(str::to_string).collect(),
                ScriptValue::Ids(ids) => ids,
                ScriptValue::Records(records) => records
                    .iter()
                    .filter_map(|r| r.first().map(|(_, id)| id.clone()))
                    .collect(),
            },
        };
        let mut ids: Vec<String> = Vec::new();
        for part in parts {
            let found = if let Some(hex) = part.strip_prefix('*') {
                items
                    .iter()
                    .find(|i| {
                        i.id.strip_prefix('*')
                            .is_some_and(|h| h.eq_ignore_ascii_case(hex))
                    })
                    .map(|i| i.id.clone())
            } else if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
                match part.parse::<usize>() {
                    Ok(number) => self.numbered(menu, number, Some(items))?,
                    Err(_) => None,
                }
            } else if menu.has_names() {
                items
                    .iter()
                    .find(|i| i.get("name") == Some(part.as_str()))
                    .map(|i| i.id.clone())
            } else {
                None
            };
            let id = found.ok_or_else(ConsoleError::no_such_item)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    fn selected(
        &mut self,
        invocation: &Invocation,
        argument: &str,
    ) -> Result<Vec<String>, ConsoleError> {
        let menu = invocation.menu;
        let Some(value) = invocation.argument(argument).and_then(|a| a.value.as_ref()) else {
            return Err(ConsoleError::missing(&[argument]));
        };
        if let Some(ids) = self.resolve_ids(menu, value)? {
            return Ok(ids);
        }
        if let Some(ids) = self.resolve_numbers(menu, value)? {
            return Ok(ids);
        }
        let items = self.list(menu)?;
        self.resolve(menu, &items, value)
    }

    /// A selector of print numbers alone (`0`, `0,3`) in a menu listed in id order: each
    /// number looked up by itself, so the menu is not listed. `None` for any other selector
    /// or menu.
    fn resolve_numbers(
        &mut self,
        menu: &'static Menu,
        value: &Value,
    ) -> Result<Option<Vec<String>>, ConsoleError> {
        if !menu.listed_by_id || menu.dynamic_unnumbered {
            return Ok(None);
        }
        let Value::Text(text) = value else {
            return Ok(None);
        };
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Ok(None);
        }
        let mut ids: Vec<String> = Vec::new();
        for part in parts {
            let id = match part.parse::<usize>() {
                Ok(number) => self.numbered(menu, number, None)?,
                Err(_) => None,
            }
            .ok_or_else(ConsoleError::no_such_item)?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(Some(ids))
    }

    /// The item print number `number` of `menu` stands for, if it still exists. A menu with
    /// no numbering yet gets one, as if print had run: of `listed` (the menu's items) when the
    /// caller has them, else counted in a menu listed in id order, else of the listed menu.
    fn numbered(
        &mut self,
        menu: &'static Menu,
        number: usize,
        listed: Option<&[Item]>,
    ) -> Result<Option<String>, ConsoleError> {
        if !self.numbers.contains_key(menu.path) {
            let numbering = match listed {
                Some(items) => Numbering::Listed(Self::numbering(menu, items)),
                None if menu.listed_by_id && !menu.dynamic_unnumbered => Numbering::counted(),
                None => Numbering::Listed(Self::numbering(menu, &self.list(menu)?)),
            };
            self.numbers.insert(menu.path, numbering);
        }
        let id = match self.numbers.get(menu.path) {
            None => None,
            Some(Numbering::Listed(ids)) => ids.get(number).cloned(),
            Some(Numbering::Counted { removed, .. }) if removed.contains(&number) => None,
            Some(Numbering::Counted { known, removed }) => match known.get(&number) {
                Some(id) => Some(id.clone()),
                None => {
                    // The items after a removed one moved up in the menu, keeping their numbers.
                    let position = number - removed.range(..number).count();
                    let id = self.id_at_position(menu, position)?;
                    if let (Some(id), Some(Numbering::Counted { known, .. })) =
                        (&id, self.numbers.get_mut(menu.path))
                    {
                        known.insert(number, id.clone());
                    }
                    id
                }
            },
        };
        let Some(id) = id else {
            return Ok(None);
        };
        let exists = match listed {
            Some(items) => items.iter().any(|i| i.id == id),
            None => self.backend.item(menu.path, &id)?.is_some(),
        };
        Ok(exists.then_some(id))
    }

    /// The id of the item at `position` (from 0) of a menu listed in id order, found by
    /// asking how many items lie below candidate ids: up from the least id that item can have
    /// in growing steps, then halving the gap. `None` when the menu has no item there.
    fn id_at_position(
        &mut self,
        menu: &Menu,
        position: usize,
    ) -> Result<Option<String>, ConsoleError> {
        let target = position as u64;
        let mut below = |id: u64| -> Result<u64, ConsoleError> {
            let count = self.backend.count_below(menu.path, &format!("*{id:X}"))?;
            Ok(count as u64)
        };
        // Ids are distinct and at least 1, so at most `position` items lie below
        // `position + 1`; throughout, below(low) <= target < below(high).
        let mut low = target + 1;
        if low >= ID_LIMIT {
            return Ok(None);
        }
        let mut step = 1;
        let mut high = loop {
            let candidate = (low + step).min(ID_LIMIT);
            if below(candidate)? > target {
                break candidate;
            }
            if candidate == ID_LIMIT {
                return Ok(None);
            }
            low = candidate;
            step *= 2;
        };
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if below(middle)? > target {
                high = middle;
            } else {
                low = middle;
            }
        }
        // One more item below `low + 1` than below `low`: the item `low` itself.
        Ok(Some(format!("*{low:X}")))
    }

    /// After `id` was removed through this session: in a counted numbering its number stays
    /// taken and the items after it keep theirs.
    fn note_removal(&mut self, menu: &Menu, id: &str) -> Result<(), ConsoleError> {
        let Some(Numbering::Counted { known, removed }) = self.numbers.get(menu.path) else {
            return Ok(());
        };
        let number = match known.iter().find(|(_, known_id)| known_id.as_str() == id) {
            Some((number, _)) => *number,
            None => {
                // Its position among the items left, moved past the numbers removed before.
                let earlier: Vec<usize> = removed.iter().copied().collect();
                let mut number = self.backend.count_below(menu.path, id)?;
                for taken in earlier {
                    if taken > number {
                        break;
                    }
                    number += 1;
                }
                number
            }
        };
        if let Some(Numbering::Counted { known, removed }) = self.numbers.get_mut(menu.path) {
            known.insert(number, id.to_string());
            removed.insert(number);
        }
        Ok(())
    }

    /// A selector of internal ids alone (`*1A`, `*1,*2`), each checked by fetching that one
    /// item, so naming items never lists the whole menu. `None` for any other selector.
    fn resolve_ids(
        &mut self,
        menu: &'static Menu,
        value: &Value,
    ) -> Result<Option<Vec<String>>, ConsoleError> {
        let Value::Text(text) = value else {
            return Ok(None);
        };
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let is_id = |p: &&str| {
            p.strip_prefix('*')
                .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        if !parts.iter().all(is_id) {
            return Ok(None);
        }
        let mut ids: Vec<String> = Vec::new();
        for part in parts {
            let item = self
                .backend
                .item(menu.path, &part.to_ascii_uppercase())?
                .ok_or_else(ConsoleError::no_such_item)?;
            if !ids.contains(&item.id) {
                ids.push(item.id);
            }
        }
        Ok(Some(ids))
    }

    /// Check the `name=value` arguments that set properties; returns REST-form pairs.
    fn checked_properties(
        &mut self,
        invocation: &Invocation,
    ) -> Result<Vec<(String, String)>, ConsoleError> {
        let menu = invocation.menu;
        let mut checked: Vec<(String, String)> = Vec::new();
        for argument in &invocation.arguments {
            let Some(property) = menu.property(&argument.name).filter(|p| !p.read_only) else {
                continue;
            };
            let Some(value) = &argument.value else {
                continue;
            };
            let text = self.evaluate(value)?.to_put_string();
            let backend = &mut self.backend;
            let rest = validate(property, &text, &mut |path| {
                Ok(backend
                    .list(path)?
                    .iter()
                    .filter_map(|i| i.get("name").map(str::to_string))
                    .collect())
            })?;
            checked.retain(|(k, _)| k != property.name);
            checked.push((property.name.to_string(), rest));
        }
        Ok(checked)
    }

    fn print(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        let interval_ms = match self.text_argument(invocation, "interval")? {
            None => None,
            Some(text) => Some(
                parse_duration_ms(&text)
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| ConsoleError::invalid_value("interval"))?,
            ),
        };
        let proplist: Option<Vec<String>> = match self.text_argument(invocation, "proplist")? {
            None => None,
            Some(text) => {
                let names: Vec<String> = text.split(',').map(str::to_string).collect();
                if names
                    .iter()
                    .any(|n| menu.property(n).is_none() && n != ".id")
                {
                    return Err(ConsoleError::no_match("proplist"));
                }
                Some(names)
            }
        };
        let show_sensitive = invocation.has_flag("show-sensitive");
        let show_id = invocation.has_flag("show-ids");
        let (shown, numbering) = match self.counted_print(invocation, show_sensitive)? {
            Some(counted) => counted,
            None => {
                let items = self.list_for_showing(menu, show_sensitive)?;
                if menu.is_singleton()
                    && invocation.condition.is_none()
                    && invocation.arguments.is_empty()
                {
                    let output = items
                        .first()
                        .map(|item| format::singleton(menu, item))
                        .unwrap_or_default();
                    return Ok(Reply {
                        output,
                        ..Reply::default()
                    });
                }
                let numbering = Self::numbering(menu, &items);
                let number_of: HashMap<&str, usize> = numbering
                    .iter()
                    .enumerate()
                    .map(|(number, id)| (id.as_str(), number))
                    .collect();
                let shown = items
                    .into_iter()
                    .filter(|item| Self::passes(menu, invocation.condition.as_ref(), item))
                    .map(|item| (number_of.get(item.id.as_str()).copied(), item))
                    .collect();
                (shown, Numbering::Listed(numbering))
            }
        };
        let rows: Vec<PrintRow<'_>> = shown
            .iter()
            .map(|(number, item)| PrintRow {
                number: *number,
                item,
                show_id,
            })
            .collect();
        let mut reply = Reply {
            interval_ms,
            ..Reply::default()
        };
        if invocation.has_flag("count-only") {
            reply.output = format!("{}\n", rows.len());
            reply.value = ScriptValue::Text(rows.len().to_string());
        } else if invocation.has_flag("as-value") {
            let properties: Vec<String> = match (&proplist, invocation.has_flag("detail")) {
                (Some(list), _) => list.clone(),
                (None, true) => menu
                    .properties
                    .iter()
                    .filter(|p| show_sensitive || !p.sensitive)
                    .map(|p| p.name.to_string())
                    .collect(),
                (None, false) => menu.columns.iter().map(|c| c.to_string()).collect(),
            };
            let selected: Vec<&Item> = rows.iter().map(|r| r.item).collect();
            reply.value = ScriptValue::Records(format::records(&selected, &properties));
        } else if invocation.has_flag("detail") {
            reply.output = format::detail(menu, &rows, self.width, show_sensitive);
        } else if invocation.has_flag("terse") {
            reply.output = format::terse(menu, &rows, show_sensitive);
        } else {
            let (columns, choice) = match proplist {
                Some(list) => (list, ColumnChoice::Listed),
                None => (
                    menu.columns.iter().map(|c| c.to_string()).collect(),
                    ColumnChoice::Brief,
                ),
            };
            reply.output = format::table(menu, &rows, &columns, choice);
        }
        self.numbers.insert(menu.path, numbering);
        Ok(reply)
    }

    /// Whether `item` passes a `where` condition (none: every item does).
    fn passes(menu: &Menu, condition: Option<&Expr>, item: &Item) -> bool {
        condition.is_none_or(|condition| {
            condition.matches(&|name| item.get(name).map(|_| display_value(menu, item, name)))
        })
    }

    /// `print where …` on a menu listed in id order whose condition names its items by
    /// equalities the router can look up, when few items match: those items with their print
    /// numbers, each counted by the router, so the menu is never listed whole. `None` when
    /// the print must list the menu.
    #[allow(clippy::type_complexity)]
    fn counted_print(
        &mut self,
        invocation: &Invocation,
        show_sensitive: bool,
    ) -> Result<Option<(Vec<(Option<usize>, Item)>, Numbering)>, ConsoleError> {
        let menu = invocation.menu;
        let Some(condition) = &invocation.condition else {
            return Ok(None);
        };
        if !menu.listed_by_id || menu.dynamic_unnumbered || show_sensitive {
            return Ok(None);
        }
        let mut equal = Vec::new();
        required_equalities(menu, condition, &mut equal);
        if equal.is_empty() {
            return Ok(None);
        }
        let mut found = self.backend.list_where(menu.path, &equal)?;
        found.retain(|item| Self::passes(menu, Some(condition), item));
        if found.len() > COUNTED_PRINT_LIMIT {
            return Ok(None);
        }
        let mut known = BTreeMap::new();
        let mut shown = Vec::with_capacity(found.len());
        for item in found {
            let number = self.backend.count_below(menu.path, &item.id)?;
            known.insert(number, item.id.clone());
            shown.push((Some(number), item));
        }
        let numbering = Numbering::Counted {
            known,
            removed: BTreeSet::new(),
        };
        Ok(Some((shown, numbering)))
    }

    fn add(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        let mut properties: Vec<(String, String)> = Vec::new();
        if let Some(source) = invocation
            .argument("copy-from")
            .and_then(|a| a.value.clone())
        {
            let items = self.list(menu)?;
            let ids = self.resolve(menu, &items, &source)?;
            let [id] = ids.as_slice() else {
                return Err(ConsoleError::no_such_item());
            };
            if let Some(original) = items.iter().find(|i| &i.id == id) {
                for property in menu.settable().filter(|p| p.copied) {
                    if let Some(value) = original.get(property.name) {
                        properties.push((property.name.to_string(), value.to_string()));
                    }
                }
            }
        }
        for (name, value) in self.checked_properties(invocation)? {
            properties.retain(|(k, _)| *k != name);
            properties.push((name, value));
        }
        if let Some(refusal) =
            menu.missing_required(|name| properties.iter().any(|(k, _)| k == name))
        {
            return Err(ConsoleError::Failure(refusal));
        }
        let id = self.backend.add(menu.path, &properties)?;
        Ok(Reply {
            value: ScriptValue::Text(id),
            ..Reply::default()
        })
    }

    fn set(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        if menu.is_singleton() {
            // The one item needs no selector: RouterOS REST `POST …/set`.
            let properties = self.checked_properties(invocation)?;
            self.backend.command(menu.path, "set", &properties)?;
            if menu.path == "/system/identity" {
                if let Some((_, name)) = properties.iter().find(|(k, _)| k == "name") {
                    self.identity = name.clone();
                }
            }
            return Ok(Reply::default());
        }
        let ids = self.selected(invocation, "numbers")?;
        let properties = self.checked_properties(invocation)?;
        let unsets: Vec<&str> = invocation
            .arguments
            .iter()
            .filter(|a| a.unset)
            .map(|a| a.name.as_str())
            .collect();
        for id in &ids {
            if !properties.is_empty() {
                self.backend.set(menu.path, id, &properties)?;
            }
            for name in &unsets {
                self.backend.command(
                    menu.path,
                    "unset",
                    &[
                        (".id".into(), id.clone()),
                        ("value-name".into(), name.to_string()),
                    ],
                )?;
            }
        }
        Ok(Reply::default())
    }

    fn remove(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let ids = self.selected(invocation, "numbers")?;
        for id in &ids {
            self.backend.remove(invocation.menu.path, id)?;
            self.note_removal(invocation.menu, id)?;
        }
        Ok(Reply::default())
    }

    fn toggle(&mut self, invocation: &Invocation, verb: &str) -> Result<Reply, ConsoleError> {
        let ids = self.selected(invocation, "numbers")?;
        if !ids.is_empty() {
            self.backend
                .command(invocation.menu.path, verb, &[(".id".into(), ids.join(","))])?;
        }
        Ok(Reply::default())
    }

    fn comment(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let ids = self.selected(invocation, "numbers")?;
        let comment = self
            .text_argument(invocation, "comment")?
            .ok_or_else(|| ConsoleError::missing(&["comment"]))?;
        for id in &ids {
            self.backend.set(
                invocation.menu.path,
                id,
                &[("comment".into(), comment.clone())],
            )?;
        }
        Ok(Reply::default())
    }

    fn unset(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        let ids = self.selected(invocation, "numbers")?;
        let name = self
            .text_argument(invocation, "value-name")?
            .ok_or_else(|| ConsoleError::missing(&["value-name"]))?;
        if !matches!(menu.property(&name), Some(p) if !p.read_only) {
            return Err(ConsoleError::no_match("value-name"));
        }
        for id in &ids {
            self.backend.command(
                menu.path,
                "unset",
                &[
                    (".id".into(), id.clone()),
                    ("value-name".into(), name.clone()),
                ],
            )?;
        }
        Ok(Reply::default())
    }

    fn get(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        let ids = self.selected(invocation, "number")?;
        let name = self.text_argument(invocation, "value-name")?;
        if let Some(name) = &name {
            if menu.property(name).is_none() && name != ".id" {
                return Err(ConsoleError::no_match("value-name"));
            }
        }
        let item = match ids.first() {
            Some(id) => self.backend.item(menu.path, id)?,
            None => None,
        }
        .ok_or_else(ConsoleError::no_such_item)?;
        let value = match name {
            Some(name) => item
                .get(&name)
                .map_or(ScriptValue::Nothing, |v| ScriptValue::Text(v.to_string())),
            None => {
                let properties: Vec<String> =
                    item.properties.iter().map(|(k, _)| k.clone()).collect();
                ScriptValue::Records(format::records(&[&item], &properties))
            }
        };
        Ok(Reply {
            value,
            ..Reply::default()
        })
    }

    fn find(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let menu = invocation.menu;
        let mut filters: Vec<(String, String)> = Vec::new();
        for argument in &invocation.arguments {
            if let Some(value) = &argument.value {
                let text = self.evaluate(value)?.to_put_string();
                let kind = menu.property(&argument.name).map(|p| p.kind);
                filters.push((argument.name.clone(), console_form(kind, &text)));
            }
        }
        // In a menu of many items, the router looks up what the filters name.
        let mut equal: Vec<(String, String)> = filters
            .iter()
            .filter(|(name, value)| {
                !value.is_empty()
                    && !matches!(menu.property(name).map(|p| p.kind), Some(ValueType::YesNo))
            })
            .cloned()
            .collect();
        if let Some(condition) = &invocation.condition {
            required_equalities(menu, condition, &mut equal);
        }
        let items = if menu.listed_by_id && !equal.is_empty() {
            self.backend.list_where(menu.path, &equal)?
        } else {
            self.list(menu)?
        };
        let ids = items
            .iter()
            .filter(|item| {
                filters
                    .iter()
                    .all(|(name, value)| display_value(menu, item, name) == *value)
            })
            .filter(|item| Self::passes(menu, invocation.condition.as_ref(), item))
            .map(|item| item.id.clone())
            .collect();
        Ok(Reply {
            value: ScriptValue::Ids(ids),
            ..Reply::default()
        })
    }

    /// `/ping`: the router pings (REST `POST /rest/ping`); the console lays the replies out.
    fn ping(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let mut arguments = Vec::new();
        for name in ["address", "count", "interval", "size"] {
            if let Some(value) = self.text_argument(invocation, name)? {
                arguments.push((name.to_string(), value));
            }
        }
        if !arguments.iter().any(|(name, _)| name == "address") {
            return Err(ConsoleError::missing(&["address"]));
        }
        let reply = self.backend.command("/", "ping", &arguments)?;
        let replies: Vec<Item> = reply
            .as_array()
            .map(|list| list.iter().filter_map(Item::from_json).collect())
            .unwrap_or_default();
        Ok(Reply {
            output: format::ping(&replies),
            ..Reply::default()
        })
    }

    fn export(&mut self, invocation: &Invocation) -> Result<Reply, ConsoleError> {
        let options = ExportOptions {
            terse: invocation.has_flag("terse"),
            verbose: invocation.has_flag("verbose"),
            show_sensitive: invocation.has_flag("show-sensitive"),
        };
        let base = invocation.menu.path;
        let mut output = String::new();
        if let Some(header) = &self.export_header {
            output.push_str(header);
            if !header.ends_with('\n') {
                output.push('\n');
            }
        }
        for menu in schema::MENUS.iter().copied() {
            let inside = base == "/"
                || menu.path == base
                || menu
                    .path
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/'));
            if !inside
                || !menu.has_items()
                || !(menu.allows(Command::Add) || menu.allows(Command::Set))
            {
                continue;
            }
            let items = self.list_for_showing(menu, options.show_sensitive)?;
            output.push_str(&format::export(menu, &items, options));
        }
        if let Some(file) = self.text_argument(invocation, "file")? {
            // As RouterOS: the script goes to the router's files as NAME.rsc, printing nothing.
            let name = if file.ends_with(".rsc") {
                file
            } else {
                format!("{file}.rsc")
            };
            self.backend.command(
                "/file",
                "add",
                &[("name".into(), name), ("contents".into(), output)],
            )?;
            return Ok(Reply::default());
        }
        Ok(Reply {
            output,
            ..Reply::default()
        })
    }
}
