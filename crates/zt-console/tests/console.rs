//! Console behaviour: navigation, item numbers, quoting, `where`, scripting values, detail,
//! export, and every refusal, all through [`Console::execute`] on the in-memory model.

use zt_console::{Backend, Console, ConsoleError, MemoryBackend};

fn fresh_console() -> Console<MemoryBackend> {
    let mut backend = MemoryBackend::with_default_instance();
    backend
        .publish(
            "/zerotier",
            "*1",
            &[("identity.public", "879c0b5265:0:d5fd2d17")],
        )
        .unwrap();
    Console::new(backend)
}

fn run(console: &mut Console<MemoryBackend>, line: &str) -> String {
    console
        .execute(line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn fail(console: &mut Console<MemoryBackend>, line: &str) -> String {
    match console.execute(line) {
        Ok(output) => panic!("{line} succeeded: {output:?}"),
        Err(error) => error.to_string(),
    }
}

/// Run an export: section lines set the menu, `\` joins continuation lines.
fn import(console: &mut Console<MemoryBackend>, export: &str) {
    let mut pending = String::new();
    for line in export.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.strip_suffix('\\') {
            pending.push_str(rest.trim_start());
            continue;
        }
        let line = format!("{pending}{}", line.trim_start());
        pending.clear();
        run(console, &line);
    }
}

fn with_networks(networks: &[&str]) -> Console<MemoryBackend> {
    let mut console = fresh_console();
    for network in networks {
        run(
            &mut console,
            &format!("/zerotier/interface/add network={network}"),
        );
    }
    console
}

fn names(console: &Console<MemoryBackend>) -> Vec<String> {
    console
        .backend()
        .items("/zerotier/interface")
        .iter()
        .map(|i| i.get("name").unwrap_or_default().to_string())
        .collect()
}

#[test]
fn navigation_and_relative_paths() {
    let mut console = fresh_console();
    run(&mut console, "zerotier");
    assert_eq!(console.prompt(), "[admin@MikroTik] /zerotier> ");
    run(&mut console, "controller member");
    assert_eq!(console.current_path(), "/zerotier/controller/member");
    run(&mut console, "..");
    assert_eq!(console.current_path(), "/zerotier/controller");
    // A command elsewhere does not move the session.
    run(&mut console, "../interface/add network=1d71939404912b40");
    run(&mut console, "/zerotier/interface/print");
    assert_eq!(console.current_path(), "/zerotier/controller");
    run(&mut console, "../..");
    assert_eq!(console.current_path(), "/");
    run(&mut console, "/zerotier/peer/");
    assert_eq!(console.current_path(), "/zerotier/peer");
    run(&mut console, "/");
    assert_eq!(console.prompt(), "[admin@MikroTik] > ");
    assert_eq!(names(&console), ["zerotier1"]);
}

#[test]
fn item_numbers_follow_the_last_print_of_each_menu() {
    let mut console = with_networks(&["1d71939404912b40", "1d71939404912b41", "1d71939404912b42"]);
    assert_eq!(names(&console), ["zerotier1", "zerotier2", "zerotier3"]);
    // Numbers work before any print, as if print had run.
    run(&mut console, "/zerotier/interface/set 0 name=a");
    run(&mut console, "/zerotier/interface/print");
    // A print of another menu does not renumber this one.
    run(&mut console, "/zerotier/print");
    run(&mut console, "/zerotier/interface/remove 1");
    // Number 2 still means the third item; number 1 is gone.
    run(&mut console, "/zerotier/interface/set 2 name=c");
    assert_eq!(names(&console), ["a", "c"]);
    assert_eq!(
        fail(&mut console, "/zerotier/interface/set 1 name=b"),
        "no such item"
    );
    // A new print renumbers.
    run(&mut console, "/zerotier/interface/print");
    run(&mut console, "/zerotier/interface/set 1 name=b");
    assert_eq!(names(&console), ["a", "b"]);
    // Lists, names and internal ids select too.
    run(&mut console, "/zerotier/interface/disable 0,b");
    let disabled: Vec<bool> = console
        .backend()
        .items("/zerotier/interface")
        .iter()
        .map(|i| i.is_true("disabled"))
        .collect();
    assert_eq!(disabled, [true, true]);
    let id = console.backend().items("/zerotier/interface")[1].id.clone();
    run(&mut console, &format!("/zerotier/interface/enable {id}"));
    run(
        &mut console,
        &format!("/zerotier/interface/set {} comment=x", id.to_lowercase()),
    );
    assert_eq!(
        console.backend().items("/zerotier/interface")[1].get("comment"),
        Some("x")
    );
    assert_eq!(
        fail(&mut console, "/zerotier/interface/set *FF name=z"),
        "no such item"
    );
    assert_eq!(
        fail(&mut console, "/zerotier/interface/set 7 name=z"),
        "no such item"
    );
    assert_eq!(
        fail(&mut console, "/zerotier/interface/set nobody name=z"),
        "no such item"
    );
    assert_eq!(
        run(&mut console, "/zerotier/interface/print"),
        "Flags: X - DISABLED
Columns: NAME, NETWORK
#   NAME  NETWORK
0 X a     1d71939404912b40
;;; x
1   b     1d71939404912b42
"
    );
}

#[test]
fn quoting_and_escaping_round_trip() {
    let mut console = with_networks(&["1d71939404912b40"]);
    run(
        &mut console,
        r#"/zerotier/interface/set 0 comment="say \"hi\" \\ to\_all\21""#,
    );
    let item = &console.backend().items("/zerotier/interface")[0];
    assert_eq!(item.get("comment"), Some(r#"say "hi" \ to all!"#));
    // detail and export quote it so that it reads back unchanged.
    let detail = run(&mut console, "/zerotier/interface/print detail");
    assert!(detail.contains(r#";;; say "hi" \ to all!"#), "{detail}");
    let export = run(&mut console, "/zerotier/interface/export");
    assert!(
        export.contains(r#"comment="say \"hi\" \\ to all!""#),
        "{export}"
    );
    let mut fresh = fresh_console();
    import(&mut fresh, &export);
    assert_eq!(
        fresh.backend().items("/zerotier/interface")[0].get("comment"),
        Some(r#"say "hi" \ to all!"#)
    );
}

#[test]
fn where_expressions_select_rows() {
    let mut console = fresh_console();
    run(
        &mut console,
        "/zerotier/controller/add name=net1 ip-range=10.0.0.1-10.0.0.9",
    );
    let member = "/zerotier/controller/member";
    for (address, ip, authorized) in [
        ("879a0b5265", "10.0.0.1", "yes"),
        ("554a914c7f", "10.0.0.2", "no"),
        ("deba5dc5b1", "10.1.0.3", "no"),
    ] {
        run(
            &mut console,
            &format!("{member}/add network=net1 zt-address={address} ip-address={ip} authorized={authorized}"),
        );
    }
    let mut addresses = |expression: &str| -> Vec<String> {
        let line = format!(":put [{member}/print as-value proplist=zt-address where {expression}]");
        let text = run(&mut console, &line);
        text.trim_end()
            .split(';')
            .filter_map(|pair| pair.strip_prefix("zt-address="))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(addresses("authorized"), ["879a0b5265"]);
    assert_eq!(addresses("!authorized"), ["554a914c7f", "deba5dc5b1"]);
    assert_eq!(addresses("not authorized"), ["554a914c7f", "deba5dc5b1"]);
    assert_eq!(
        addresses("authorized=no and zt-address~\"^de\""),
        ["deba5dc5b1"]
    );
    assert_eq!(
        addresses("authorized || zt-address=554a914c7f"),
        ["879a0b5265", "554a914c7f"]
    );
    assert_eq!(
        addresses("(authorized=yes or ip-address in 10.1.0.0/16) && zt-address!=879a0b5265"),
        ["deba5dc5b1"]
    );
    assert_eq!(
        addresses("(zt-address~\"^5\")=false"),
        ["879a0b5265", "deba5dc5b1"]
    );
    assert_eq!(addresses("\"zt-address\"=\"554a914c7f\""), ["554a914c7f"]);
    assert_eq!(addresses("authorized=\"false\""), Vec::<String>::new());
    assert_eq!(
        addresses("ip-address>10.0.0.1"),
        ["554a914c7f", "deba5dc5b1"]
    );
}

#[test]
fn scripting_values() {
    let mut console = with_networks(&["1d71939404912b40"]);
    assert_eq!(run(&mut console, ":put [/zerotier get zt1 port]"), "9993\n");
    assert_eq!(run(&mut console, "/zerotier get zt1 port"), "");
    assert_eq!(
        run(&mut console, ":put [/zerotier get zt1 disabled]"),
        "true\n"
    );
    assert_eq!(run(&mut console, ":put \"a b\""), "a b\n");
    assert_eq!(
        run(&mut console, ":put [/zerotier/interface/print as-value]"),
        ".id=*1;name=zerotier1;network=1d71939404912b40\n"
    );
    assert_eq!(run(&mut console, "/zerotier/interface/print as-value"), "");
    assert_eq!(run(&mut console, ":put [/zerotier/interface/find]"), "*1\n");
    assert_eq!(
        run(&mut console, ":put [/zerotier/interface/find name=nobody]"),
        "\n"
    );
    assert_eq!(
        run(
            &mut console,
            ":put [/zerotier/interface/add network=1d71939404912b41]"
        ),
        "*2\n"
    );
    run(
        &mut console,
        "/zerotier/interface/set [find network=1d71939404912b41] name=second",
    );
    assert_eq!(names(&console), ["zerotier1", "second"]);
    run(
        &mut console,
        "/zerotier/interface/remove [find where name~\"^zero\"]",
    );
    assert_eq!(names(&console), ["second"]);
    assert_eq!(
        run(&mut console, "/zerotier/interface/print count-only"),
        "1\n"
    );
    assert_eq!(
        run(&mut console, ":put [/zerotier/interface/print count-only]"),
        "1\n"
    );
}

#[test]
fn detail_and_terse() {
    let mut console = with_networks(&["1d71939404912b40"]);
    run(
        &mut console,
        "/zerotier/interface/comment 0 \"office link\"",
    );
    console
        .backend_mut()
        .publish(
            "/zerotier/interface",
            "*1",
            &[("running", "true"), ("mtu", "2800")],
        )
        .unwrap();
    assert_eq!(
        run(&mut console, "/zerotier/interface/print detail"),
        "Flags: D - dynamic; X - disabled; R - running
 0   R ;;; office link
       name=\"zerotier1\" network=1d71939404912b40 instance=zt1 allow-managed=yes
       allow-global=no allow-default=no allow-dns=no arp-timeout=auto
       disable-running-check=no mtu=2800

"
    );
    assert_eq!(
        run(&mut console, "/zerotier/interface/print terse"),
        "0   R comment=\"office link\" name=\"zerotier1\" network=1d71939404912b40 instance=zt1 allow-managed=yes allow-global=no allow-default=no allow-dns=no arp-timeout=auto disable-running-check=no mtu=2800\n"
    );
    // The private identity stays hidden unless asked for.
    console
        .backend_mut()
        .publish("/zerotier", "*1", &[("identity", "879c0b5265:0:aa:bb")])
        .unwrap();
    let detail = run(&mut console, "/zerotier/print detail");
    assert!(!detail.contains("identity=\""), "{detail}");
    let detail = run(&mut console, "/zerotier/print detail show-sensitive");
    assert!(
        detail.contains("identity=\"879c0b5265:0:aa:bb\""),
        "{detail}"
    );
}

#[test]
fn export_writes_what_differs_from_defaults() {
    let mut console = fresh_console();
    run(&mut console, "/zerotier/enable zt1");
    run(
        &mut console,
        "/zerotier/interface/add network=1d71939404912b40 allow-global=yes",
    );
    run(
        &mut console,
        "/zerotier/controller/add name=ZT-private ip-range=172.27.27.10-172.27.27.20 routes=172.27.27.0/24",
    );
    run(
        &mut console,
        "/zerotier/controller/member/add network=ZT-private zt-address=deba5dc5b1 authorized=yes",
    );
    console.export_header = Some("# by zt".into());
    let expected = "# by zt
/zerotier
set zt1 comment=\"ZeroTier Central controller - https://my.zerotier.com/\" \\
    disabled=no
/zerotier interface
add allow-global=yes instance=zt1 name=zerotier1 network=1d71939404912b40
/zerotier controller
add instance=zt1 ip-range=172.27.27.10-172.27.27.20 name=ZT-private network=\\
    879c0b5265000001 routes=172.27.27.0/24
/zerotier controller member
add authorized=yes network=ZT-private zt-address=deba5dc5b1
";
    assert_eq!(run(&mut console, "/export"), expected);
    assert_eq!(run(&mut console, "/zerotier/export"), expected);
    assert_eq!(
        run(&mut console, "/zerotier/interface/export terse"),
        "# by zt\n/zerotier interface add allow-global=yes instance=zt1 name=zerotier1 network=1d71939404912b40\n"
    );
    // The export reads back into an equal model.
    let mut copy = fresh_console();
    import(&mut copy, expected);
    for path in [
        "/zerotier",
        "/zerotier/interface",
        "/zerotier/controller",
        "/zerotier/controller/member",
    ] {
        let mut original = console.backend_mut().list(path).unwrap();
        let mut copied = copy.backend_mut().list(path).unwrap();
        for item in original.iter_mut().chain(copied.iter_mut()) {
            item.id.clear();
        }
        assert_eq!(original, copied, "{path}");
    }
}

#[test]
fn set_unset_comment_copy_from() {
    let mut console = with_networks(&["1d71939404912b40"]);
    run(&mut console, "/zerotier/set zt1 port=9994 route-distance=5");
    run(&mut console, "/zerotier/set zt1 !port");
    run(&mut console, "/zerotier/unset zt1 route-distance");
    let zt1 = &console.backend().items("/zerotier")[0];
    assert_eq!(
        (zt1.get("port"), zt1.get("route-distance")),
        (Some("9993"), Some("1"))
    );
    run(
        &mut console,
        "/zerotier/interface/set 0 allow-default=yes arp-timeout=30s",
    );
    run(
        &mut console,
        "/zerotier/interface/add copy-from=0 name=twin network=1d71939404912b41",
    );
    let twin = &console.backend().items("/zerotier/interface")[1];
    assert_eq!(twin.get("name"), Some("twin"));
    assert_eq!(twin.get("allow-default"), Some("true"));
    assert_eq!(twin.get("arp-timeout"), Some("30s"));
    assert_eq!(
        fail(
            &mut console,
            "/zerotier/interface/add copy-from=0 network=1d71939404912b42"
        ),
        "failure: already have such entry"
    );
}

#[test]
fn refusals_are_worded_like_routeros_and_change_nothing() {
    let mut console = with_networks(&["1d71939404912b40"]);
    let before = console.backend().clone();
    let cases: &[(&str, &str)] = &[
        (
            "/zerotier/interface/add network=1d71939404912b41 foo=bar",
            "expected end of command (line 1 column 50)",
        ),
        (
            "/zerotier/interface/set 0 mac-address=00:00:00:00:00:01",
            "expected end of command (line 1 column 27)",
        ),
        (
            "/zerotier/interface/set 0 allow-global=maybe",
            "input does not match any value of allow-global",
        ),
        (
            "/zerotier/interface/set 0 instance=zt9",
            "input does not match any value of instance",
        ),
        (
            "/zerotier/interface/set 0 network=xyz",
            "invalid value for argument network",
        ),
        (
            "/zerotier/set zt1 port=65536",
            "value of port is out of range (1 .. 65535)",
        ),
        (
            "/zerotier/interface/add",
            "missing value(s) of argument(s) network",
        ),
        (
            "/zerotier/controller/member/add",
            "missing value(s) of argument(s) network, zt-address",
        ),
        (
            "/zerotier/interface/set",
            "missing value(s) of argument(s) numbers",
        ),
        ("/zerotier/interface/set 5 name=x", "no such item"),
        (
            "/zerotier/get zt1 foo",
            "input does not match any value of value-name",
        ),
        (
            "/zerotier/interface/print proplist=name,bogus",
            "input does not match any value of proplist",
        ),
        (
            "/zerotier/interface/print interval=soon",
            "invalid value for argument interval",
        ),
        (
            "/zerotier/interface/bogus",
            "bad command name bogus (line 1 column 21)",
        ),
        (
            "/zerotier/peer/add",
            "bad command name add (line 1 column 16)",
        ),
        (
            "/ip/address/remove 0",
            "bad command name remove (line 1 column 13)",
        ),
        (
            "/zerotier/export show-sensitive=yes",
            "expected end of command (line 1 column 32)",
        ),
        (
            "/zerotier/interface/print detail=yes",
            "expected end of command (line 1 column 33)",
        ),
        (
            "/zerotier/interface/set 0 name=\"open",
            "syntax error (line 1 column 37)",
        ),
        (
            "/zerotier/interface/print where (name=x",
            "syntax error (line 1 column 40)",
        ),
        (
            "/zerotier/interface/print where running=true",
            "expected yes or no (line 1 column 41)",
        ),
        // The first command parses, the second does not: nothing runs.
        (
            "/zerotier/interface/set 0 name=renamed; /zerotier/bogus",
            "bad command name bogus (line 1 column 51)",
        ),
        // Valid values for both items are checked before either changes.
        (
            "/zerotier/interface/set 0 name=renamed port=1",
            "expected end of command (line 1 column 40)",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(&fail(&mut console, line), expected, "{line}");
        assert_eq!(
            console.backend().items("/zerotier/interface"),
            before.items("/zerotier/interface"),
            "{line}"
        );
        assert_eq!(
            console.backend().items("/zerotier"),
            before.items("/zerotier"),
            "{line}"
        );
    }
    // Errors from the backend carry the REST detail text.
    let error = console
        .execute("/zerotier/interface/add network=1d71939404912b41 name=zerotier1")
        .unwrap_err();
    assert_eq!(error.to_string(), "failure: already have such entry");
    assert!(matches!(error, ConsoleError::Backend(b) if b.status == 400));
}

#[test]
fn scripts_report_the_failing_line() {
    let mut console = fresh_console();
    let script = "# comment\n/zerotier interface\nadd network=1d71939404912b40 \\\n    name=first\n\nadd network=1d71939404912b41 bogus=1\nadd network=1d71939404912b42\n";
    assert_eq!(
        console.run_script(script).unwrap_err().to_string(),
        "expected end of command (line 6 column 30)"
    );
    assert_eq!(names(&console), ["first"]);
    assert_eq!(console.current_path(), "/");
    assert_eq!(
        console
            .run_script(
                "/zerotier/interface/set first name=again\n/zerotier/interface/set 9 name=x"
            )
            .unwrap_err()
            .to_string(),
        "no such item"
    );
    assert_eq!(names(&console), ["again"]);
}

#[test]
fn completion_offers_values_from_the_model() {
    let mut console = with_networks(&["1d71939404912b40"]);
    assert_eq!(
        console.complete("/zerotier/interface/set 0 instance="),
        (35, vec!["zt1".to_string()])
    );
    assert_eq!(
        console.complete("/zerotier/interface/set 0 allow-global=y"),
        (39, vec!["yes".to_string()])
    );
    assert_eq!(
        console.complete("/zerotier/interface/set numbers=zer"),
        (32, vec!["zerotier1".to_string()])
    );
    run(&mut console, "/zerotier/controller");
    assert_eq!(console.complete("member/p"), (7, vec!["print".to_string()]));
}

#[test]
fn print_show_ids_shows_internal_ids_in_the_number_column() {
    let mut console = with_networks(&["1d71939404912b40", "1d71939404912b41"]);
    let numbered = run(&mut console, "/zerotier/interface/print proplist=name");
    let with_ids = run(
        &mut console,
        "/zerotier/interface/print show-ids proplist=name",
    );
    let ids: Vec<String> = console
        .backend()
        .items("/zerotier/interface")
        .iter()
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
    let rows: Vec<&str> = with_ids
        .lines()
        .skip_while(|l| !l.starts_with('#'))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 2, "{with_ids}");
    for (row, id) in rows.iter().zip(&ids) {
        assert!(row.starts_with(&format!("{id} ")), "{with_ids}");
    }
    assert!(numbered.lines().any(|l| l.starts_with("0 ")), "{numbered}");
    // Ids select items as numbers do.
    run(
        &mut console,
        &format!("/zerotier/interface/set {} comment=x", ids[1]),
    );
}

#[test]
fn question_mark_and_help_list_the_menu_and_a_commands_arguments() {
    let mut console = fresh_console();
    let root = run(&mut console, "?");
    assert_eq!(run(&mut console, "help"), root);
    let lines: Vec<&str> = root.lines().collect();
    assert_eq!(lines[0], "/");
    for entry in ["ip/", "system/", "zerotier/", "export", "ping"] {
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with(&format!("{entry} "))),
            "{entry} in {root}"
        );
    }
    run(&mut console, "/zerotier");
    let menu = run(&mut console, "?");
    assert!(menu.starts_with("/zerotier\n  ..  "), "{menu}");
    assert!(menu.contains("\n  interface/  "), "{menu}");
    assert!(menu.contains("\n  add  "), "{menu}");
    assert_eq!(
        run(&mut console, "interface ?"),
        run(&mut console, "/zerotier/interface ?")
    );
    let add = run(&mut console, "interface/add ?");
    assert!(
        add.starts_with("/zerotier/interface/add: create an item\n"),
        "{add}"
    );
    let network = add
        .lines()
        .find(|l| l.starts_with("  network= "))
        .unwrap_or_default();
    assert!(
        network.contains("16 hex digits") && network.ends_with(" (required)"),
        "{add}"
    );
    let allow_global = add
        .lines()
        .find(|l| l.starts_with("  allow-global= "))
        .unwrap_or_default();
    assert!(allow_global.ends_with(" yes | no (default: no)"), "{add}");
    let print = run(&mut console, "/zerotier/peer/print ?");
    assert!(print.contains("\n  detail "), "{print}");
    // Asking for help changes nothing and a `?` inside a value is no help request.
    assert_eq!(console.current_path(), "/zerotier");
    assert!(fail(&mut console, "nosuch ?").starts_with("bad command name nosuch"));
}

#[test]
fn member_numbers_are_counted_by_the_router_with_the_numbering_of_a_whole_print() {
    const MEMBERS: [&str; 5] = [
        "0a00000001",
        "0a00000002",
        "0a00000003",
        "0a00000004",
        "0a00000005",
    ];
    let member = "/zerotier/controller/member";
    let mut setup = fresh_console();
    run(&mut setup, "/zerotier/controller/add name=net1");
    run(&mut setup, "/zerotier/controller/add name=net2");
    for address in MEMBERS {
        run(
            &mut setup,
            &format!("{member}/add network=net1 zt-address={address}"),
        );
    }
    run(
        &mut setup,
        &format!("{member}/add network=net2 zt-address=0b00000001"),
    );
    let mut console = setup;
    let lists_before = console.backend().whole_lists(member);
    let comments = |console: &Console<MemoryBackend>| -> Vec<String> {
        console
            .backend()
            .items(member)
            .iter()
            .map(|i| i.get("comment").unwrap_or("-").to_string())
            .collect()
    };
    let run_in_menu = |console: &mut Console<MemoryBackend>, text: &str| {
        run(console, &format!("{member}/{text}"))
    };
    let fail_in_menu = |console: &mut Console<MemoryBackend>, text: &str| {
        fail(console, &format!("{member}/{text}"))
    };

    // A number before any print: as if print had run (0..4 in net1, 5 in net2).
    run_in_menu(&mut console, "set 1 comment=b");
    run_in_menu(&mut console, "set 5 comment=f");
    assert_eq!(
        fail_in_menu(&mut console, "set 6 comment=x"),
        "no such item"
    );
    // Removed through the session: the numbers after it stay.
    run_in_menu(&mut console, "remove 1");
    assert_eq!(
        fail_in_menu(&mut console, "set 1 comment=x"),
        "no such item"
    );
    run_in_menu(&mut console, "set 2 comment=c");
    run_in_menu(&mut console, "set 4 comment=e");
    assert_eq!(comments(&console), ["-", "c", "-", "e", "f"]);

    // `print where` numbers its rows as a whole print would: 0a00000004 is third now.
    let printed = run_in_menu(&mut console, "print where zt-address=0a00000004");
    assert!(printed.ends_with("\n2  net1     0a00000004\n"), "{printed}");
    // Numbers it did not show stand for the items a whole print would have shown there; one
    // removed by id keeps its number too.
    let third = console.backend().items(member)[1].id.clone();
    run_in_menu(&mut console, "set 2 comment=d");
    run_in_menu(&mut console, &format!("remove {third}"));
    run_in_menu(&mut console, "set 3 comment=e2");
    run_in_menu(&mut console, "set 0 comment=a");
    assert_eq!(
        fail_in_menu(&mut console, "set 1 comment=x"),
        "no such item"
    );
    let mut put = |text: &str| run(&mut console, &format!(":put [{member}/{text}]"));
    assert_eq!(put("get 3 comment"), "e2\n");
    let found = put("find where network=net2");
    // A print renumbers: net2's member is fourth now.
    assert_eq!(put("print count-only where network=net2"), "1\n");
    assert_eq!(put("get 3 zt-address"), "0b00000001\n");
    assert_eq!(comments(&console), ["a", "d", "e2", "f"]);
    assert!(found.trim().starts_with('*'), "{found}");
    assert_eq!(console.backend().whole_lists(member), lists_before);

    // A print matching by a boolean lists the menu, with the same numbers.
    let unauthorized = run_in_menu(&mut console, "print where authorized=no");
    assert_eq!(console.backend().whole_lists(member), lists_before + 1);
    let whole = run_in_menu(&mut console, "print");
    assert_eq!(unauthorized, whole);
    assert!(whole.ends_with("\n3  net2     0b00000001\n"), "{whole}");
}
