//! Static menu definitions: which menus exist, their properties, commands, print columns and flags.
//!
//! Everything the console knows about a menu lives here as data, so that a fact learned about
//! RouterOS (a default, a column, a flag letter) is changed in exactly one place. The sources of
//! each fact are tagged in `shared/ROUTEROS.md` §8.

/// How a property's value is checked and shown. [`crate::values::parse`] turns text of each
/// type into a typed [`crate::values::Value`]; every face (console, RouterOS REST, the
/// zerotier JSON API) checks values through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Free text; shown quoted in `detail`/`export` when it needs quotes.
    Text,
    /// A name that becomes an OS object (a directory, a network interface): at most
    /// `max_len` bytes, no `/`, `,`, `:`, blanks or control characters, not starting with `.`
    /// or `*` (item ids). `limit` says why the length is limited.
    Name { max_len: usize, limit: &'static str },
    /// An integer in an inclusive range.
    Number { min: i64, max: i64 },
    /// `yes`/`no` on the console, `true`/`false` over REST.
    YesNo,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// The `name` of an item of another menu (e.g. `instance` → `/zerotier`).
    Reference(&'static str),
    /// A ZeroTier network ID: 16 hexadecimal digits.
    NetworkId,
    /// A ZeroTier address: 10 hexadecimal digits.
    ZtAddress,
    /// An IPv4 address.
    Ipv4,
    /// An IPv4 address with an optional `/prefix`.
    Ipv4Prefix,
    /// Comma-separated `first-last` ranges (or single addresses) of one address family.
    IpRanges(IpFamily),
    /// Comma-separated IPv4 or IPv6 addresses.
    IpList,
    /// Comma-separated `dst[@gw]` routes, IPv4 or IPv6 (the gateway of the route's family).
    RouteList,
    /// `auto` or a RouterOS time (`30s`, `1m`, `4s526ms`).
    AutoOrTime,
    /// A RouterOS time.
    Time,
    /// Comma-separated words (e.g. interface list names).
    WordList,
}

/// The address family of [`ValueType::IpRanges`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

impl ValueType {
    /// What a value looks like, for `add ?`.
    pub fn describe(self) -> String {
        match self {
            ValueType::Text => "text".into(),
            ValueType::Number { min, max } => format!("integer {min}..{max}"),
            ValueType::YesNo => "yes | no".into(),
            ValueType::Enum(words) => words.join(" | "),
            ValueType::Reference(path) => format!("name of an item of {path}"),
            ValueType::Name { max_len, .. } => format!("name of at most {max_len} characters"),
            ValueType::NetworkId => "network ID (16 hex digits)".into(),
            ValueType::ZtAddress => "ZeroTier address (10 hex digits)".into(),
            ValueType::Ipv4 => "IPv4 address".into(),
            ValueType::Ipv4Prefix => "IPv4 address[/prefix]".into(),
            ValueType::IpRanges(IpFamily::V4) => "first-last IPv4 ranges, comma-separated".into(),
            ValueType::IpRanges(IpFamily::V6) => "first-last IPv6 ranges, comma-separated".into(),
            ValueType::IpList => "IPv4 or IPv6 addresses, comma-separated".into(),
            ValueType::RouteList => "dst[@gateway] IPv4 or IPv6 routes, comma-separated".into(),
            ValueType::AutoOrTime => "auto | time (30s, 1m)".into(),
            ValueType::Time => "time (30s, 1m)".into(),
            ValueType::WordList => "words, comma-separated".into(),
        }
    }

    /// Whether values of this type are written inside double quotes by `print detail`/`export`.
    pub fn is_quoted(self) -> bool {
        matches!(self, ValueType::Text | ValueType::Name { .. })
    }

    /// Whether table cells of this type are right-aligned (RouterOS aligns numbers right).
    pub fn is_numeric(self) -> bool {
        matches!(self, ValueType::Number { .. })
    }
}

/// One property of a menu's items.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    pub name: &'static str,
    pub kind: ValueType,
    /// The value an item has when `add` does not give one (REST form, e.g. `"false"`).
    pub default: Option<&'static str>,
    /// `add` fails without it (`missing value(s) of argument(s) ...`).
    pub required: bool,
    /// Shown by the router but not settable from the console.
    pub read_only: bool,
    /// Hidden by `print`/`export` unless `show-sensitive` is given (private identities).
    pub sensitive: bool,
    /// Says which item this is (`name`, `instance`): exported even when equal to the default.
    pub key: bool,
    /// Taken over by `add copy-from=`. Off for what identifies an item on the network (a
    /// controller's network ID): a copy with the same ID would be the same network, so the
    /// copy gets a new one, as an `add` without `network=` does.
    pub copied: bool,
    /// Given by `add` and fixed from then on (which controller a network belongs to, a
    /// member's address): `set` refuses it with [`Property::change_refusal`].
    pub create_only: bool,
}

impl Property {
    /// Why `set` refuses a [`Property::create_only`] property.
    pub fn change_refusal(&self) -> String {
        format!(
            "failure: {} of an existing item can not be changed",
            self.name
        )
    }
}

/// A property only `add` sets (see [`Property::create_only`]).
const fn create_only(property: Property) -> Property {
    Property {
        create_only: true,
        ..property
    }
}

/// A property `copy-from` does not copy (see [`Property::copied`]).
const fn not_copied(property: Property) -> Property {
    Property {
        copied: false,
        ..property
    }
}

/// Mark a property as a key (see [`Property::key`]).
const fn key(property: Property) -> Property {
    Property {
        key: true,
        ..property
    }
}

/// An optional, settable property: also the arguments of commands that are not menus
/// (`/ping count=`), checked with [`crate::values::parse`] like any property.
pub const fn prop(name: &'static str, kind: ValueType) -> Property {
    Property {
        name,
        kind,
        default: None,
        required: false,
        read_only: false,
        sensitive: false,
        key: false,
        copied: true,
        create_only: false,
    }
}

const fn with_default(name: &'static str, kind: ValueType, default: &'static str) -> Property {
    Property {
        name,
        kind,
        default: Some(default),
        required: false,
        read_only: false,
        sensitive: false,
        key: false,
        copied: true,
        create_only: false,
    }
}

const fn required(name: &'static str, kind: ValueType) -> Property {
    Property {
        name,
        kind,
        default: None,
        required: true,
        read_only: false,
        sensitive: false,
        key: false,
        copied: true,
        create_only: false,
    }
}

const fn read_only(name: &'static str, kind: ValueType) -> Property {
    Property {
        name,
        kind,
        default: None,
        required: false,
        read_only: true,
        sensitive: false,
        key: false,
        copied: true,
        create_only: false,
    }
}

/// A one-letter flag shown in print output, derived from a boolean property of the item.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub letter: char,
    /// Legend word (`RUNNING`); printed upper case in tables, lower case in `detail`.
    pub name: &'static str,
    /// The REST property whose value `true` sets the flag.
    pub property: &'static str,
    /// Flags of one group are mutually exclusive and share one character slot; the legend
    /// separates groups with `; ` and flags inside a group with `, `.
    pub group: u8,
}

const fn flag(letter: char, name: &'static str, property: &'static str, group: u8) -> Flag {
    Flag {
        letter,
        name,
        property,
        group,
    }
}

/// The console verbs a menu may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Print,
    Add,
    Set,
    Remove,
    Enable,
    Disable,
    Get,
    Export,
    Comment,
    Find,
    Unset,
    /// `/ping ADDRESS count=N`: run by the router, not the console host.
    Ping,
}

impl Command {
    pub fn word(self) -> &'static str {
        match self {
            Command::Print => "print",
            Command::Add => "add",
            Command::Set => "set",
            Command::Remove => "remove",
            Command::Enable => "enable",
            Command::Disable => "disable",
            Command::Get => "get",
            Command::Export => "export",
            Command::Comment => "comment",
            Command::Find => "find",
            Command::Unset => "unset",
            Command::Ping => "ping",
        }
    }

    /// One line for `?` / `help`.
    pub fn summary(self) -> &'static str {
        match self {
            Command::Print => "print the items",
            Command::Add => "create an item",
            Command::Set => "change properties of items",
            Command::Remove => "remove items",
            Command::Enable => "enable items",
            Command::Disable => "disable items",
            Command::Get => "return the value of a property",
            Command::Export => "print the configuration as a script",
            Command::Comment => "set the comment of items",
            Command::Find => "return the ids of matching items",
            Command::Unset => "remove a property's value",
            Command::Ping => "send ICMP echo requests from the router",
        }
    }
}

const CONFIG_COMMANDS: &[Command] = &[
    Command::Add,
    Command::Comment,
    Command::Disable,
    Command::Enable,
    Command::Export,
    Command::Find,
    Command::Get,
    Command::Print,
    Command::Remove,
    Command::Set,
    Command::Unset,
];

const READ_ONLY_COMMANDS: &[Command] = &[Command::Find, Command::Get, Command::Print];

/// How the flag column of a table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagColumn {
    /// Shown only when a printed row has a flag; one slot per distinct letter present.
    WhenPresent,
    /// Always shown (even empty), with one blank slot after the letters once any is present.
    /// This reproduces the seed's `/zerotier/controller/member/print` transcripts exactly
    /// (`#  NETWORK` with no flags, `0 A  ZT-private` with `A`); the reason is unknown.
    AlwaysWithSpareSlot,
}

/// A menu: a directory of the command tree, possibly holding items.
#[derive(Debug)]
pub struct Menu {
    /// Slash form, `/zerotier/interface`; the root is `/`.
    pub path: &'static str,
    pub properties: &'static [Property],
    pub commands: &'static [Command],
    /// `print` table columns (property names, upper-cased for headers).
    pub columns: &'static [&'static str],
    /// Flags in legend order.
    pub flags: &'static [Flag],
    pub flag_column: FlagColumn,
    /// Items that exist by default and are exported as `set <name>` instead of `add`.
    pub default_items: &'static [&'static str],
    /// Dynamic items get no print number (v7 `/ip/route`).
    pub dynamic_unnumbered: bool,
    /// Items are listed in ascending `.id` order and may be many (controller members): an
    /// item's print number is the count of items with a lower id, which the console asks
    /// the router for item by item instead of listing the whole menu.
    pub listed_by_id: bool,
}

/// Menus are identified by their path.
impl PartialEq for Menu {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for Menu {}

impl Menu {
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn flag_for_property(&self, name: &str) -> Option<&'static Flag> {
        self.flags.iter().find(|f| f.property == name)
    }

    pub fn allows(&self, command: Command) -> bool {
        self.commands.contains(&command)
    }

    /// Whether the menu holds items (directories like `/ip` only hold menus).
    pub fn has_items(&self) -> bool {
        !self.properties.is_empty()
    }

    /// Whether the menu is one unnamed item ([`SINGLETON_MENUS`]).
    pub fn is_singleton(&self) -> bool {
        SINGLETON_MENUS.contains(&self.path)
    }

    /// Whether items are addressed by `name` (`enable zt1`).
    pub fn has_names(&self) -> bool {
        self.property("name").is_some()
    }

    /// The last path word (`interface`), empty for the root.
    pub fn word(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// The parent menu path; the root is its own parent.
    pub fn parent_path(&self) -> &'static str {
        match self.path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.path[..i],
        }
    }

    /// Export section header: path in space form (`/zerotier interface`).
    pub fn export_header(&self) -> String {
        format!("/{}", self.path.trim_start_matches('/').replace('/', " "))
    }

    /// What `add` refuses to run without, given which properties it has: the text of the
    /// refusal (`missing value(s) of argument(s) network`), `None` when nothing is missing.
    pub fn missing_required(&self, given: impl Fn(&str) -> bool) -> Option<String> {
        let missing: Vec<&str> = self
            .settable()
            .filter(|p| p.required && !given(p.name))
            .map(|p| p.name)
            .collect();
        (!missing.is_empty())
            .then(|| format!("missing value(s) of argument(s) {}", missing.join(", ")))
    }

    /// Properties settable by `add`/`set` (plus the generic `disabled`/`comment` when present).
    pub fn settable(&self) -> impl Iterator<Item = &'static Property> {
        self.properties.iter().filter(|p| !p.read_only)
    }
}

const YES_NO: ValueType = ValueType::YesNo;
const TEXT: ValueType = ValueType::Text;
const PORT: ValueType = ValueType::Number { min: 1, max: 65535 };
/// Instance names become directory names in the home directory.
const INSTANCE_NAME: ValueType = ValueType::Name {
    max_len: 64,
    limit: "it names the instance's directory",
};
/// Interface names are the names of the TAP devices: Linux's IFNAMSIZ is 16 bytes with the
/// terminating NUL.
const INTERFACE_NAME: ValueType = ValueType::Name {
    max_len: 15,
    limit: "Linux interface names have at most 15 characters",
};

static ROOT: Menu = Menu {
    path: "/",
    properties: &[],
    commands: &[Command::Export, Command::Ping],
    columns: &[],
    flags: &[],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

/// A menu that only holds menus (`/ip`, `/system`).
const fn directory(path: &'static str) -> Menu {
    Menu {
        path,
        properties: &[],
        commands: &[Command::Export],
        columns: &[],
        flags: &[],
        flag_column: FlagColumn::WhenPresent,
        default_items: &[],
        dynamic_unnumbered: false,
        listed_by_id: false,
    }
}

static IP: Menu = directory("/ip");

static ZEROTIER: Menu = Menu {
    path: "/zerotier",
    properties: &[
        key(with_default("name", INSTANCE_NAME, "zt1")),
        with_default("port", PORT, "9993"),
        // ztd's own (PROTOCOL.md §9.1): the second UDP port; random when unset.
        prop("secondary-port", PORT),
        // ztd's own: the TCP port on which the instance serves as a TCP relay (zerotier-one's
        // tcp-proxy) for nodes whose UDP is blocked; unset: no relay.
        prop("tcp-relay", PORT),
        Property {
            sensitive: true,
            ..prop("identity", TEXT)
        },
        read_only("identity.public", TEXT),
        // ztd's own: the world ID of the planet in use and its roots' addresses.
        read_only("planet", TEXT),
        read_only("planet-roots", TEXT),
        with_default("interfaces", ValueType::WordList, "all"),
        // RouterOS route distances are 1..255 (0 is only shown on connected routes).
        with_default(
            "route-distance",
            ValueType::Number { min: 1, max: 255 },
            "1",
        ),
        // zerotier-one's portMappingEnabled (NAT-PMP or UPnP-IGD on the gateway), on unless
        // turned off; with it the instance binds a third, random UDP port (`tertiary-port`,
        // as zerotier-one's tertiaryPort), which is the one the gateway forwards, from
        // `mapped-address`.
        with_default("port-mapping", YES_NO, "true"),
        read_only("tertiary-port", PORT),
        read_only("mapped-address", TEXT),
        read_only("state", TEXT),
        read_only("moons", ValueType::WordList),
        read_only("online", YES_NO),
        read_only("tcp-fallback", YES_NO),
        with_default("disabled", YES_NO, "true"),
        prop("comment", TEXT),
    ],
    commands: CONFIG_COMMANDS,
    columns: &["name", "port", "identity.public"],
    flags: &[
        flag('X', "disabled", "disabled", 0),
        flag('R', "online", "online", 1),
        flag('F', "tcp-fallback", "tcp-fallback", 2),
    ],
    flag_column: FlagColumn::WhenPresent,
    default_items: &["zt1"],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

static ZEROTIER_INTERFACE: Menu = Menu {
    path: "/zerotier/interface",
    properties: &[
        key(with_default("name", INTERFACE_NAME, "zerotier1")),
        read_only("mac-address", TEXT),
        required("network", ValueType::NetworkId),
        read_only("network-name", TEXT),
        read_only("status", TEXT),
        read_only("type", TEXT),
        key(with_default(
            "instance",
            ValueType::Reference("/zerotier"),
            "zt1",
        )),
        // ZeroTier One's own defaults; RouterOS's are unverified (ROUTEROS.md §9.7).
        with_default("allow-managed", YES_NO, "true"),
        with_default("allow-global", YES_NO, "false"),
        with_default("allow-default", YES_NO, "false"),
        with_default("allow-dns", YES_NO, "false"),
        with_default("arp-timeout", ValueType::AutoOrTime, "auto"),
        with_default("disable-running-check", YES_NO, "false"),
        read_only("mtu", ValueType::Number { min: 0, max: 65535 }),
        read_only("bridge", YES_NO),
        read_only("dhcp", YES_NO),
        read_only("dynamic", YES_NO),
        read_only("running", YES_NO),
        with_default("disabled", YES_NO, "false"),
        prop("comment", TEXT),
    ],
    commands: CONFIG_COMMANDS,
    columns: &["name", "mac-address", "network", "network-name", "status"],
    flags: &[
        flag('D', "dynamic", "dynamic", 0),
        flag('X', "disabled", "disabled", 1),
        flag('R', "running", "running", 2),
    ],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

static ZEROTIER_CONTROLLER: Menu = Menu {
    path: "/zerotier/controller",
    properties: &[
        create_only(key(with_default(
            "instance",
            ValueType::Reference("/zerotier"),
            "zt1",
        ))),
        required("name", TEXT),
        create_only(not_copied(prop("network", ValueType::NetworkId))),
        with_default("private", YES_NO, "true"),
        with_default("broadcast", YES_NO, "true"),
        with_default(
            "mtu",
            ValueType::Number {
                min: 1280,
                max: 10000,
            },
            "2800",
        ),
        with_default(
            "multicast-limit",
            ValueType::Number {
                min: 0,
                max: 4_294_967_295,
            },
            "32",
        ),
        prop("ip-range", ValueType::IpRanges(IpFamily::V4)),
        prop("ip6-range", ValueType::IpRanges(IpFamily::V6)),
        with_default("ip6-rfc4193", YES_NO, "false"),
        with_default("ip6-6plane", YES_NO, "false"),
        prop("routes", ValueType::RouteList),
        prop("rules", TEXT),
        read_only("inactive", YES_NO),
        with_default("disabled", YES_NO, "false"),
        prop("comment", TEXT),
    ],
    commands: CONFIG_COMMANDS,
    columns: &["instance", "name", "network", "private"],
    flags: &[
        flag('X', "disabled", "disabled", 0),
        flag('I', "inactive", "inactive", 1),
    ],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

static ZEROTIER_CONTROLLER_MEMBER: Menu = Menu {
    path: "/zerotier/controller/member",
    properties: &[
        create_only(required(
            "network",
            ValueType::Reference("/zerotier/controller"),
        )),
        create_only(required("zt-address", ValueType::ZtAddress)),
        prop("name", TEXT),
        with_default("authorized", YES_NO, "false"),
        with_default("bridge", YES_NO, "false"),
        prop("ip-address", ValueType::IpList),
        read_only("last-seen", ValueType::Time),
        read_only("inactive", YES_NO),
        with_default("disabled", YES_NO, "false"),
        prop("comment", TEXT),
    ],
    commands: CONFIG_COMMANDS,
    columns: &["network", "zt-address", "ip-address", "last-seen"],
    flags: &[
        flag('X', "disabled", "disabled", 0),
        flag('I', "inactive", "inactive", 0),
        flag('A', "authorized", "authorized", 1),
        flag('B', "bridge", "bridge", 2),
    ],
    flag_column: FlagColumn::AlwaysWithSpareSlot,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: true,
};

static ZEROTIER_PEER: Menu = Menu {
    path: "/zerotier/peer",
    properties: &[
        read_only("instance", TEXT),
        read_only("zt-address", ValueType::ZtAddress),
        read_only("version", TEXT),
        read_only("latency", ValueType::Time),
        read_only("role", TEXT),
        read_only("path", ValueType::WordList),
        // yes: an active direct path; no: traffic goes through a root (RELAY).
        read_only("direct", YES_NO),
        read_only("bonded", YES_NO),
    ],
    commands: READ_ONLY_COMMANDS,
    columns: &["instance", "zt-address", "latency", "role", "path"],
    flags: &[flag('B', "bonded", "bonded", 0)],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

static IP_ADDRESS: Menu = Menu {
    path: "/ip/address",
    properties: &[
        read_only("address", ValueType::Ipv4Prefix),
        read_only("network", ValueType::Ipv4),
        read_only("interface", TEXT),
        read_only("actual-interface", TEXT),
        read_only("disabled", YES_NO),
        read_only("invalid", YES_NO),
        read_only("dynamic", YES_NO),
        read_only("slave", YES_NO),
        read_only("comment", TEXT),
    ],
    commands: READ_ONLY_COMMANDS,
    columns: &["address", "network", "interface"],
    flags: &[
        flag('X', "disabled", "disabled", 0),
        flag('I', "invalid", "invalid", 0),
        flag('D', "dynamic", "dynamic", 1),
        flag('S', "slave", "slave", 2),
    ],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

static IP_ROUTE: Menu = Menu {
    path: "/ip/route",
    properties: &[
        read_only("dst-address", ValueType::Ipv4Prefix),
        read_only("gateway", TEXT),
        read_only("distance", ValueType::Number { min: 0, max: 255 }),
        read_only("immediate-gw", TEXT),
        read_only("routing-table", TEXT),
        read_only("scope", ValueType::Number { min: 0, max: 255 }),
        read_only("target-scope", ValueType::Number { min: 0, max: 255 }),
        read_only("dynamic", YES_NO),
        read_only("active", YES_NO),
        read_only("connect", YES_NO),
        read_only("static", YES_NO),
        read_only("copy", YES_NO),
        read_only("ecmp", YES_NO),
        read_only("disabled", YES_NO),
        read_only("comment", TEXT),
    ],
    commands: READ_ONLY_COMMANDS,
    columns: &["dst-address", "gateway", "distance"],
    flags: &[
        flag('X', "disabled", "disabled", 0),
        flag('D', "dynamic", "dynamic", 1),
        flag('A', "active", "active", 2),
        flag('c', "connect", "connect", 3),
        flag('s', "static", "static", 3),
        flag('y', "copy", "copy", 3),
        flag('+', "ecmp", "ecmp", 4),
    ],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: true,
    listed_by_id: false,
};

static SYSTEM: Menu = directory("/system");

/// The router's name, shown in the prompt; one unnamed item (see [`SINGLETON_MENUS`]).
static SYSTEM_IDENTITY: Menu = Menu {
    path: "/system/identity",
    properties: &[with_default("name", TEXT, "MikroTik")],
    commands: &[Command::Export, Command::Print, Command::Set],
    columns: &["name"],
    flags: &[],
    flag_column: FlagColumn::WhenPresent,
    default_items: &[],
    dynamic_unnumbered: false,
    listed_by_id: false,
};

/// Menus of exactly one unnamed item: `set` takes no item, `print` shows `name: value`
/// lines, `export` writes `set …` when something differs from the default.
pub const SINGLETON_MENUS: &[&str] = &["/system/identity"];

/// Every menu, parents before children.
pub static MENUS: &[&Menu] = &[
    &ROOT,
    &IP,
    &IP_ADDRESS,
    &IP_ROUTE,
    &SYSTEM,
    &SYSTEM_IDENTITY,
    &ZEROTIER,
    &ZEROTIER_INTERFACE,
    &ZEROTIER_CONTROLLER,
    &ZEROTIER_CONTROLLER_MEMBER,
    &ZEROTIER_PEER,
];

/// The menu with this slash-form path.
pub fn menu(path: &str) -> Option<&'static Menu> {
    MENUS.iter().copied().find(|m| m.path == path)
}

/// The root menu `/`.
pub fn root() -> &'static Menu {
    &ROOT
}

/// The direct children of a menu.
pub fn children(parent: &Menu) -> impl Iterator<Item = &'static Menu> + '_ {
    MENUS
        .iter()
        .copied()
        .filter(move |m| m.path != "/" && m.parent_path() == parent.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_menu_is_consistent() {
        for menu in MENUS {
            for column in menu.columns {
                assert!(
                    menu.property(column).is_some(),
                    "{} column {column}",
                    menu.path
                );
            }
            for flag in menu.flags {
                assert!(
                    menu.property(flag.property).is_some(),
                    "{} flag {}",
                    menu.path,
                    flag.property
                );
            }
            if menu.path != "/" {
                assert!(super::menu(menu.parent_path()).is_some(), "{}", menu.path);
            }
        }
    }

    #[test]
    fn tree_shape() {
        let zerotier = menu("/zerotier").unwrap();
        let words: Vec<_> = children(zerotier).map(|m| m.word()).collect();
        assert_eq!(words, ["interface", "controller", "peer"]);
        assert_eq!(
            menu("/zerotier/controller/member").unwrap().parent_path(),
            "/zerotier/controller"
        );
        assert_eq!(zerotier.parent_path(), "/");
        assert_eq!(
            menu("/zerotier/controller/member").unwrap().export_header(),
            "/zerotier controller member"
        );
    }
}
