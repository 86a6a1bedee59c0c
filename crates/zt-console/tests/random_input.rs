//! Random command lines never panic the parser, the completer or the console, parse errors
//! point inside the line, and any text survives quoting. A seeded generator keeps failures reproducible.

use zt_console::format::quote;
use zt_console::parser::{completion_context, parse_line};
use zt_console::schema::MENUS;
use zt_console::{Console, ConsoleError, MemoryBackend};

/// xorshift64*: small, seeded, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const FRAGMENTS: &[&str] = &[
    "/",
    "/",
    "..",
    " ",
    " ",
    " ",
    "=",
    "\"",
    "\\",
    "[",
    "]",
    "(",
    ")",
    ";",
    "!",
    "~",
    "<",
    ">",
    "&&",
    "||",
    ",",
    "*",
    "$",
    "#",
    ":",
    ":put",
    "zerotier",
    "interface",
    "controller",
    "member",
    "peer",
    "ip",
    "address",
    "route",
    "print",
    "add",
    "set",
    "remove",
    "enable",
    "disable",
    "get",
    "export",
    "comment",
    "find",
    "unset",
    "where",
    "and",
    "or",
    "not",
    "in",
    "detail",
    "terse",
    "count-only",
    "as-value",
    "interval=1",
    "proplist=name",
    "copy-from=0",
    "name",
    "network",
    "instance",
    "authorized",
    "disabled",
    "comment",
    "0",
    "1",
    "0,1",
    "*1",
    "*A",
    "zt1",
    "yes",
    "no",
    "1d71939404912b40",
    "deba5dc5b1",
    "10.0.0.0/8",
    "\\48",
    "\\_",
    "é",
    "\u{0}",
    "\t",
];

fn random_line(rng: &mut Rng) -> String {
    let length = rng.below(14);
    (0..length).map(|_| rng.pick(FRAGMENTS)).collect()
}

fn random_text(rng: &mut Rng) -> String {
    let length = rng.below(12);
    (0..length)
        .map(|_| match rng.below(6) {
            0 => char::from_u32(rng.below(0x80) as u32).unwrap_or('?'),
            1 => ['"', '\\', '$', '?', ' ', '\n', ';', '[', ']'][rng.below(9)],
            2 => char::from_u32(0x80 + rng.below(0x2000) as u32).unwrap_or('é'),
            _ => char::from(b'a' + rng.below(26) as u8),
        })
        .collect()
}

fn check_error_column(line: &str, error: &ConsoleError) {
    if let ConsoleError::Syntax {
        line: l, column, ..
    } = error
    {
        assert_eq!(*l, 1);
        assert!(
            *column >= 1 && *column <= line.chars().count() + 1,
            "{line:?}: column {column}"
        );
    }
}

#[test]
fn random_lines_never_panic_the_parser() {
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..20_000 {
        let line = random_line(&mut rng);
        for menu in MENUS {
            if let Err(error) = parse_line(&line, menu) {
                check_error_column(&line, &error);
            }
            let (start, partial, _) = completion_context(&line, menu);
            assert!(start <= line.chars().count(), "{line:?}");
            assert!(line.ends_with(&partial), "{line:?}");
        }
    }
}

#[test]
fn random_lines_never_panic_the_console() {
    let mut rng = Rng(0x5EED_0002);
    let mut backend = MemoryBackend::with_default_instance();
    backend
        .publish(
            "/zerotier",
            "*1",
            &[("identity.public", "879c0b5265:0:d5fd2d17")],
        )
        .unwrap();
    let mut console = Console::new(backend);
    for setup in [
        "/zerotier/interface/add network=1d71939404912b40",
        "/zerotier/controller/add name=net",
        "/zerotier/controller/member/add network=net zt-address=deba5dc5b1",
    ] {
        console.execute(setup).unwrap();
    }
    let mut accepted = 0;
    for _ in 0..5_000 {
        let line = random_line(&mut rng);
        let (start, _) = console.complete(&line);
        assert!(start <= line.chars().count(), "{line:?}");
        match console.execute(&line) {
            Ok(_) => accepted += 1,
            Err(error) => check_error_column(&line, &error),
        }
    }
    // The generator reaches past the parser, not only into its errors.
    assert!(accepted > 100, "only {accepted} lines ran");
}

#[test]
fn any_text_survives_quoting() {
    let mut rng = Rng(0x5EED_0003);
    let mut console = Console::new(MemoryBackend::with_default_instance());
    for _ in 0..2_000 {
        let text = random_text(&mut rng);
        let line = format!("/zerotier/set zt1 comment={}", quote(&text));
        console
            .execute(&line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let stored = console.backend().items("/zerotier")[0].get("comment");
        assert_eq!(stored, Some(text.as_str()), "{line:?}");
    }
}
