//! The transcripts of the RouterOS ZeroTier manual (shared/seed/000_6ec9a4f8782902b8.txt),
//! replayed against the in-memory model. The router-maintained state (MAC addresses, statuses,
//! peers, addresses, routes) is published the way the daemon would publish it; every command
//! typed in the manual is typed here, and every output must equal the manual's (RouterOS pads
//! the last column; we compare with trailing spaces removed).
//!
//! The one deliberate difference: the manual's route legend `c, y - COPY` is a RouterOS quirk;
//! we print the long form `c - CONNECT` for the flags present (ROUTEROS.md §3.1 rule 1).

use zt_console::{Console, MemoryBackend};

fn trimmed(text: &str) -> String {
    text.lines()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn run(console: &mut Console<MemoryBackend>, line: &str) -> String {
    console
        .execute(line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn assert_output(console: &mut Console<MemoryBackend>, line: &str, expected: &str) {
    assert_eq!(run(console, line), trimmed(expected), "output of {line}");
}

const SEED_IDENTITY: &str = "879c0b5265:0:d5fd2d17805e011d9b93ce8779385e427c8f405e520eea9284809d8444de0335a817xxb21aa4ba153bfbc229ca34d94e08de96d925a4aaa19b252da546693a28";

#[test]
fn first_steps_with_zerotier_central() {
    let mut console = Console::new(MemoryBackend::with_default_instance());
    assert_eq!(console.prompt(), "[admin@MikroTik] > ");
    assert_eq!(run(&mut console, "zerotier/enable zt1"), "");
    assert_eq!(
        run(
            &mut console,
            "zerotier/interface/add network=1d71939404912b40 instance=zt1"
        ),
        ""
    );
    // What the daemon learns from the network controller.
    let interface = console.backend().items("/zerotier/interface")[0].id.clone();
    console
        .backend_mut()
        .publish(
            "/zerotier/interface",
            &interface,
            &[
                ("mac-address", "42:AC:0D:0F:C6:F6"),
                ("network-name", "modest_metcalfe"),
                ("status", "OK"),
                ("running", "true"),
            ],
        )
        .unwrap();
    assert_output(
        &mut console,
        "zerotier/interface/print",
        "Flags: R - RUNNING
Columns: NAME, MAC-ADDRESS, NETWORK, NETWORK-NAME, STATUS
#   NAME       MAC-ADDRESS        NETWORK           NETWORK-NAME     STATUS
0 R zerotier1  42:AC:0D:0F:C6:F6  1d71939404912b40  modest_metcalfe  OK
",
    );

    // The router's other addresses come first; the ZeroTier one is dynamic.
    let backend = console.backend_mut();
    for (address, network, interface) in [
        ("192.168.88.1/24", "192.168.88.0", "bridge"),
        ("10.0.0.2/30", "10.0.0.0", "ether1"),
        ("10.0.1.2/30", "10.0.1.0", "ether2"),
    ] {
        backend
            .insert(
                "/ip/address",
                &[
                    ("address", address),
                    ("network", network),
                    ("interface", interface),
                ],
            )
            .unwrap();
    }
    backend
        .insert(
            "/ip/address",
            &[
                ("address", "192.168.192.105/24"),
                ("network", "192.168.192.0"),
                ("interface", "zerotier1"),
                ("dynamic", "true"),
            ],
        )
        .unwrap();
    assert_output(
        &mut console,
        "ip/address/print where interface~\"zero\"",
        "Flags: D - DYNAMIC
Columns: ADDRESS, NETWORK, INTERFACE
#   ADDRESS             NETWORK        INTERFACE
3 D 192.168.192.105/24  192.168.192.0  zerotier1
",
    );
}

#[test]
fn peer_list() {
    let mut console = Console::new(MemoryBackend::with_default_instance());
    console.identity = "Home".into();
    for (address, latency, role, path) in [
        (
            "61d294b9cb",
            "186ms",
            "PLANET",
            "active,preferred,50.7.73.34/9993,recvd:4s526ms",
        ),
        (
            "62f865ae71",
            "270ms",
            "PLANET",
            "active,preferred,50.7.252.138/9993,recvd:4s440ms,sent:9s766ms",
        ),
        (
            "778cde7190",
            "132ms",
            "PLANET",
            "active,preferred,103.195.103.66/9993,recvd:4s579ms,sent:9s766ms",
        ),
        (
            "992fcf1db7",
            "34ms",
            "PLANET",
            "active,preferred,195.181.173.159/9993,recvd:4s675ms,sent:4s712ms",
        ),
        (
            "159924d630",
            "130ms",
            "LEAF",
            "active,preferred,34.121.192.xx/21002,recvd:3s990ms,sent:3s990ms",
        ),
    ] {
        console
            .backend_mut()
            .insert(
                "/zerotier/peer",
                &[
                    ("instance", "zt1"),
                    ("zt-address", address),
                    ("latency", latency),
                    ("role", role),
                    ("path", path),
                ],
            )
            .unwrap();
    }
    assert_output(
        &mut console,
        "zerotier/peer/print",
        "Columns: INSTANCE, ZT-ADDRESS, LATENCY, ROLE, PATH
# INSTANCE  ZT-ADDRESS  LATENCY  ROLE    PATH
0 zt1       61d294b9cb  186ms    PLANET  active,preferred,50.7.73.34/9993,recvd:4s526ms
1 zt1       62f865ae71  270ms    PLANET  active,preferred,50.7.252.138/9993,recvd:4s440ms,sent:9s766ms
2 zt1       778cde7190  132ms    PLANET  active,preferred,103.195.103.66/9993,recvd:4s579ms,sent:9s766ms
3 zt1       992fcf1db7  34ms     PLANET  active,preferred,195.181.173.159/9993,recvd:4s675ms,sent:4s712ms
4 zt1       159924d630  130ms    LEAF    active,preferred,34.121.192.xx/21002,recvd:3s990ms,sent:3s990ms
",
    );
    assert_output(
        &mut console,
        "/zerotier/peer/print count-only where role=PLANET",
        "4\n",
    );
    assert_output(
        &mut console,
        "/zerotier/peer/print where latency<150ms",
        "Columns: INSTANCE, ZT-ADDRESS, LATENCY, ROLE, PATH
# INSTANCE  ZT-ADDRESS  LATENCY  ROLE    PATH
2 zt1       778cde7190  132ms    PLANET  active,preferred,103.195.103.66/9993,recvd:4s579ms,sent:9s766ms
3 zt1       992fcf1db7  34ms     PLANET  active,preferred,195.181.173.159/9993,recvd:4s675ms,sent:4s712ms
4 zt1       159924d630  130ms    LEAF    active,preferred,34.121.192.xx/21002,recvd:3s990ms,sent:3s990ms
",
    );
}

/// The "RouterOS Home" controller walk-through, then the "Office" side.
#[test]
fn own_controller_home_and_office() {
    let mut home = Console::new(MemoryBackend::with_default_instance());
    home.identity = "Home".into();
    home.backend_mut()
        .publish("/zerotier", "*1", &[("identity.public", SEED_IDENTITY)])
        .unwrap();
    run(&mut home, "/zerotier/enable zt1");
    run(&mut home, "/zerotier");
    assert_eq!(home.prompt(), "[admin@Home] /zerotier> ");
    assert_output(
        &mut home,
        "print",
        &format!(
            "Columns: NAME, PORT, IDENTITY.PUBLIC
# NAME  PORT  IDENTITY.PUBLIC
;;; ZeroTier Central controller - https://my.zerotier.com/
0 zt1   9993  {SEED_IDENTITY}
"
        ),
    );

    run(
        &mut home,
        "controller/add name=ZT-private instance=zt1 ip-range=172.27.27.10-172.27.27.20 private=yes routes=172.27.27.0/24",
    );
    // The router drew network number a99e4b; ours counts from 1. Use the manual's.
    let controller = home.backend().items("/zerotier/controller")[0].clone();
    assert_eq!(controller.get("network"), Some("879c0b5265000001"));
    home.backend_mut()
        .publish(
            "/zerotier/controller",
            &controller.id,
            &[("network", "879c0b5265a99e4b")],
        )
        .unwrap();
    assert_output(
        &mut home,
        "controller/print",
        "Columns: INSTANCE, NAME, NETWORK, PRIVATE
# INSTANCE  NAME        NETWORK           PRIVATE
0 zt1       ZT-private  879c0b5265a99e4b  yes
",
    );

    run(
        &mut home,
        "interface/add network=879c0b5265a99e4b name=myZeroTier instance=zt1",
    );
    let interface = home.backend().items("/zerotier/interface")[0].id.clone();
    home.backend_mut()
        .publish(
            "/zerotier/interface",
            &interface,
            &[
                ("mac-address", "4A:19:35:6E:00:6E"),
                ("status", "ACCESS_DENIED"),
            ],
        )
        .unwrap();
    let reply = home.execute_reply("interface/print interval=1").unwrap();
    assert_eq!(reply.interval_ms, Some(1000));
    assert_eq!(
        reply.output,
        trimmed(
            "Columns: NAME, MAC-ADDRESS, NETWORK, STATUS
# NAME        MAC-ADDRESS        NETWORK           STATUS
0 myZeroTier  4A:19:35:6E:00:6E  879c0b5265a99e4b  ACCESS_DENIED
"
        )
    );

    // The node asked to join: the controller created the member.
    let member = "/zerotier/controller/member";
    home.backend_mut()
        .insert(
            member,
            &[
                ("network", "ZT-private"),
                ("zt-address", "879a0b5265"),
                ("authorized", "false"),
            ],
        )
        .unwrap();
    assert_output(
        &mut home,
        "controller/member/print",
        "Columns: NETWORK, ZT-ADDRESS
#  NETWORK     ZT-ADDRESS
0  ZT-private  879a0b5265
",
    );
    assert_eq!(run(&mut home, "controller/member/set 0 authorized=yes"), "");
    let first = home.backend().items(member)[0].id.clone();
    home.backend_mut()
        .publish(member, &first, &[("ip-address", "172.27.27.15")])
        .unwrap();

    // The laptop, the phone and the Office router join; the Office one is not yet authorized.
    for (address, ip, authorized) in [
        ("554a914c7f", "172.27.27.17", "true"),
        ("a83ac6032a", "172.27.27.10", "true"),
        ("deba5dc5b1", "172.27.27.13", "false"),
    ] {
        home.backend_mut()
            .insert(
                member,
                &[
                    ("network", "ZT-private"),
                    ("zt-address", address),
                    ("authorized", authorized),
                    ("ip-address", ip),
                ],
            )
            .unwrap();
    }
    let office = home.backend().items(member)[3].id.clone();
    home.backend_mut()
        .publish(member, &office, &[("last-seen", "3s348ms")])
        .unwrap();
    assert_output(
        &mut home,
        "controller/member/print",
        "Flags: A - AUTHORIZED
Columns: NETWORK, ZT-ADDRESS, IP-ADDRESS, LAST-SEEN
#    NETWORK     ZT-ADDRESS  IP-ADDRESS    LAST-SEEN
0 A  ZT-private  879a0b5265  172.27.27.15
1 A  ZT-private  554a914c7f  172.27.27.17
2 A  ZT-private  a83ac6032a  172.27.27.10
3    ZT-private  deba5dc5b1  172.27.27.13  3s348ms
",
    );
    assert_eq!(run(&mut home, "controller/member/set 3 authorized=yes"), "");
    home.backend_mut()
        .publish(member, &office, &[("last-seen", "4s55ms")])
        .unwrap();
    assert_output(
        &mut home,
        "controller/member/print",
        "Flags: A - AUTHORIZED
Columns: NETWORK, ZT-ADDRESS, IP-ADDRESS, LAST-SEEN
#    NETWORK     ZT-ADDRESS  IP-ADDRESS    LAST-SEEN
0 A  ZT-private  879a0b5265  172.27.27.15
1 A  ZT-private  554a914c7f  172.27.27.17
2 A  ZT-private  a83ac6032a  172.27.27.10
3 A  ZT-private  deba5dc5b1  172.27.27.13  4s55ms
",
    );

    // Addresses and routes installed from the network configuration.
    let backend = home.backend_mut();
    for (address, network, interface) in [
        ("192.168.88.1/24", "192.168.88.0", "bridge"),
        ("10.0.0.2/30", "10.0.0.0", "ether1"),
        ("10.0.1.2/30", "10.0.1.0", "ether2"),
        ("10.0.2.2/30", "10.0.2.0", "ether3"),
    ] {
        backend
            .insert(
                "/ip/address",
                &[
                    ("address", address),
                    ("network", network),
                    ("interface", interface),
                ],
            )
            .unwrap();
    }
    backend
        .insert(
            "/ip/address",
            &[
                ("address", "172.27.27.15/24"),
                ("network", "172.27.27.0"),
                ("interface", "myZeroTier"),
                ("dynamic", "true"),
            ],
        )
        .unwrap();
    backend
        .insert(
            "/ip/route",
            &[
                ("dst-address", "0.0.0.0/0"),
                ("gateway", "10.0.0.1"),
                ("distance", "1"),
                ("active", "true"),
                ("static", "true"),
            ],
        )
        .unwrap();
    backend
        .insert(
            "/ip/route",
            &[
                ("dst-address", "172.27.27.0/24"),
                ("gateway", "myZeroTier"),
                ("distance", "0"),
                ("dynamic", "true"),
                ("active", "true"),
                ("connect", "true"),
            ],
        )
        .unwrap();
    assert_output(
        &mut home,
        "/ip/address/print where interface~\"Zero\"",
        "Flags: D - DYNAMIC
Columns: ADDRESS, NETWORK, INTERFACE
#   ADDRESS          NETWORK      INTERFACE
4 D 172.27.27.15/24  172.27.27.0  myZeroTier
",
    );
    assert_output(
        &mut home,
        "/ip/route/pr where gateway~\"Zero\"",
        "Flags: D - DYNAMIC; A - ACTIVE; c - CONNECT
Columns: DST-ADDRESS, GATEWAY, DISTANCE
    DST-ADDRESS     GATEWAY     DISTANCE
DAc 172.27.27.0/24  myZeroTier         0
",
    );
    // The static route has a number, the dynamic one has none (v7).
    assert_output(
        &mut home,
        "/ip/route/print",
        "Flags: D - DYNAMIC; A - ACTIVE; c - CONNECT, s - STATIC
Columns: DST-ADDRESS, GATEWAY, DISTANCE
#     DST-ADDRESS     GATEWAY     DISTANCE
0  As 0.0.0.0/0       10.0.0.1           1
  DAc 172.27.27.0/24  myZeroTier         0
",
    );
    assert_eq!(home.current_path(), "/zerotier");

    // Office side.
    let mut office_console = Console::new(MemoryBackend::with_default_instance());
    office_console.identity = "office".into();
    run(&mut office_console, "/zerotier");
    run(
        &mut office_console,
        "interface/add network=879c0b5265a99e4b instance=zt1 name=ZT-interface",
    );
    let interface = office_console.backend().items("/zerotier/interface")[0]
        .id
        .clone();
    office_console
        .backend_mut()
        .publish(
            "/zerotier/interface",
            &interface,
            &[
                ("mac-address", "4A:40:1C:38:97:BA"),
                ("status", "ACCESS_DENIED"),
            ],
        )
        .unwrap();
    assert_output(
        &mut office_console,
        "interface/print interval=1",
        "Columns: NAME, MAC-ADDRESS, NETWORK, STATUS
# NAME          MAC-ADDRESS        NETWORK           STATUS
0 ZT-interface  4A:40:1C:38:97:BA  879c0b5265a99e4b  ACCESS_DENIED
",
    );
    let backend = office_console.backend_mut();
    backend
        .insert(
            "/ip/address",
            &[
                ("address", "172.27.27.13/24"),
                ("network", "172.27.27.0"),
                ("interface", "ZT-interface"),
                ("dynamic", "true"),
            ],
        )
        .unwrap();
    backend
        .insert(
            "/ip/route",
            &[
                ("dst-address", "172.27.27.0/24"),
                ("gateway", "ZT-interface"),
                ("distance", "0"),
                ("dynamic", "true"),
                ("active", "true"),
                ("connect", "true"),
            ],
        )
        .unwrap();
    assert_output(
        &mut office_console,
        "/ip/address/print where interface~\"ZT\"",
        "Flags: D - DYNAMIC
Columns: ADDRESS, NETWORK, INTERFACE
#   ADDRESS          NETWORK      INTERFACE
0 D 172.27.27.13/24  172.27.27.0  ZT-interface
",
    );
    assert_output(
        &mut office_console,
        "/ip/route/print where gateway~\"ZT\"",
        "Flags: D - DYNAMIC; A - ACTIVE; c - CONNECT
Columns: DST-ADDRESS, GATEWAY, DISTANCE
    DST-ADDRESS     GATEWAY       DISTANCE
DAc 172.27.27.0/24  ZT-interface         0
",
    );
}
