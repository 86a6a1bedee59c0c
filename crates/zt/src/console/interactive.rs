//! The interactive prompt: `[admin@HOST] /zerotier> ` with line editing, history in
//! `~/.zt_history` and Tab completion from [`Console::complete`](zt_console::Console::complete).
//!
//! When standard input is not a terminal, rustyline reads plain lines without a prompt, so
//! `zt < commands.txt` runs the lines in order like a script that goes on after errors.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{CompletionType, Config, Context, Editor, Helper};

use zt_console::schema;

use super::{run_line, CatchInterrupts, Connection};

const HISTORY_FILE: &str = ".zt_history";
const HISTORY_SIZE: usize = 1000;

/// Completion through the shared console session (completing a value may list items).
struct ConsoleHelper {
    connection: Rc<RefCell<Connection>>,
}

impl Completer for ConsoleHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let (start_char, words) = self.connection.borrow_mut().console.complete(before);
        // The console counts characters; rustyline wants a byte offset.
        let start = before
            .char_indices()
            .nth(start_char)
            .map_or(before.len(), |(byte, _)| byte);
        let candidates = words
            .into_iter()
            .map(|word| {
                // A finished word gets a space; a menu (`/`) or an argument name (`=`) goes on.
                let replacement = if word.ends_with('/') || word.ends_with('=') {
                    word.clone()
                } else {
                    format!("{word} ")
                };
                Pair {
                    display: word,
                    replacement,
                }
            })
            .collect();
        Ok((start, candidates))
    }
}

impl Hinter for ConsoleHelper {
    type Hint = String;
}
impl Highlighter for ConsoleHelper {}
/// A line ending in `\` goes on on the next line, as in RouterOS scripts and at its prompt.
impl Validator for ConsoleHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if ctx.input().trim_end().ends_with('\\') {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}
impl Helper for ConsoleHelper {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(HISTORY_FILE))
}

/// RouterOS keeps commands that carry sensitive values (an instance's `identity=`) out of the
/// history; so do we, by the schema's `sensitive` flag.
fn carries_sensitive_value(line: &str) -> bool {
    line.split_whitespace().any(|word| {
        word.split_once('=').is_some_and(|(name, _)| {
            schema::MENUS
                .iter()
                .flat_map(|menu| menu.properties.iter())
                .any(|property| property.sensitive && property.name == name)
        })
    })
}

/// Read, run, print until `/quit`, `quit` or Ctrl-D. Errors are printed and the session goes
/// on, as at a RouterOS prompt. Exits 1 only when the daemon cannot be used at the start.
pub fn run(mut connection: Connection) -> ExitCode {
    if let Err(message) = connection.probe() {
        eprintln!("{message}");
        return ExitCode::FAILURE;
    }
    // The prompt names the router as RouterOS does: its /system/identity.
    connection.console.load_identity();
    let typed = std::io::stdin().is_terminal();
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .history_ignore_space(true)
        .max_history_size(HISTORY_SIZE)
        .map(|builder| builder.build());
    let mut editor: Editor<ConsoleHelper, DefaultHistory> =
        match config.and_then(Editor::with_config) {
            Ok(editor) => editor,
            Err(e) => {
                eprintln!("zt: cannot start the line editor: {e}");
                return ExitCode::FAILURE;
            }
        };
    let connection = Rc::new(RefCell::new(connection));
    editor.set_helper(Some(ConsoleHelper {
        connection: connection.clone(),
    }));
    // Piped input is not typed history; only a terminal session reads and writes the file.
    let history = history_path().filter(|_| typed);
    if let Some(path) = &history {
        // A missing history file is the normal first run.
        let _ = editor.load_history(path);
    }
    // On a terminal, Ctrl-C while a command runs (the terminal is not in raw mode then)
    // interrupts that command's repetition, never the session. Piped input keeps the usual
    // Ctrl-C, except during a repeating print.
    let _catching = typed.then(CatchInterrupts::start);

    loop {
        let prompt = connection.borrow().console.prompt();
        match editor.readline(&prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if trimmed.is_empty() {
                    continue;
                }
                // A line typed with a leading space stays out of the history, as in shells.
                if typed && !carries_sensitive_value(trimmed) {
                    let _ = editor.add_history_entry(line.trim_end());
                }
                if matches!(trimmed, "/quit" | "quit") {
                    break;
                }
                let mut session = connection.borrow_mut();
                let result = if trimmed.contains('\n') {
                    // Continued lines: the console's script reader joins them.
                    session.console.run_script(trimmed).map(|output| {
                        let mut stdout = std::io::stdout().lock();
                        let _ = stdout.write_all(output.as_bytes());
                        let _ = stdout.flush();
                    })
                } else {
                    run_line(&mut session, trimmed)
                };
                if let Err(e) = result {
                    eprintln!("{}", session.error_text(&e));
                }
            }
            // Ctrl-C at the prompt drops the line, as RouterOS does.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("zt: cannot read the command line: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!("zt: cannot save the history to {}: {e}", path.display());
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_stay_out_of_history() {
        assert!(carries_sensitive_value(
            "/zerotier/set zt1 identity=0123456789:0:ab"
        ));
        assert!(!carries_sensitive_value("/zerotier/set zt1 port=9994"));
        assert!(!carries_sensitive_value("/zerotier/print"));
    }
}
