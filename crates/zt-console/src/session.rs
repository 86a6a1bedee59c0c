//! A console session: the current menu, the print numbers of each menu, and command execution.

use std::collections::HashMap;

use crate::backend::{Backend, Item};
use crate::duration::parse_duration_ms;
use crate::error::ConsoleError;
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

/// One console session over a backend.
pub struct Console<B> {
    backend: B,
    current: &'static Menu,
    /// Per menu path: the item ids of the last print, indexed by print number.
    numbers: HashMap<&'static str, Vec<String>>,
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
                let numbers = self
                    .numbers
                    .entry(menu.path)
                    .or_insert_with(|| Self::numbering(menu, items));
                part.parse::<usize>()
                    .ok()
                    .and_then(|n| numbers.get(n))
                    .filter(|id| items.iter().any(|i| &i.id == *id))
                    .cloned()
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
        let items = self.list(menu)?;
        self.resolve(menu, &items, value)
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
        let items = self.list_for_showing(menu, show_sensitive)?;
        if menu.is_singleton() && invocation.condition.is_none() && invocation.arguments.is_empty()
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
        let rows: Vec<PrintRow<'_>> = items
            .iter()
            .filter(|item| match &invocation.condition {
                None => true,
                Some(condition) => condition
                    .matches(&|name| item.get(name).map(|_| display_value(menu, item, name))),
            })
            .map(|item| PrintRow {
                number: numbering.iter().position(|id| *id == item.id),
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
                for property in menu.settable() {
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
        let missing: Vec<&str> = menu
            .settable()
            .filter(|p| p.required && !properties.iter().any(|(k, _)| k == p.name))
            .map(|p| p.name)
            .collect();
        if !missing.is_empty() {
            return Err(ConsoleError::missing(&missing));
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
        let items = self.list(menu)?;
        let item = ids
            .first()
            .and_then(|id| items.iter().find(|i| &i.id == id))
            .ok_or_else(ConsoleError::no_such_item)?;
        let value = match name {
            Some(name) => item
                .get(&name)
                .map_or(ScriptValue::Nothing, |v| ScriptValue::Text(v.to_string())),
            None => {
                let properties: Vec<String> =
                    item.properties.iter().map(|(k, _)| k.clone()).collect();
                ScriptValue::Records(format::records(&[item], &properties))
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
        let items = self.list(menu)?;
        let ids = items
            .iter()
            .filter(|item| {
                filters
                    .iter()
                    .all(|(name, value)| display_value(menu, item, name) == *value)
            })
            .filter(|item| match &invocation.condition {
                None => true,
                Some(condition) => condition
                    .matches(&|name| item.get(name).map(|_| display_value(menu, item, name))),
            })
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
