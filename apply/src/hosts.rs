//! Loading files on nodes and routers: each checked by its own tool before it is loaded, and
//! loaded atomically where the tool allows.
//!
//! | file | check | load |
//! |---|---|---|
//! | `bird.cfg` | `bird -p -c` | `birdc configure "FILE" timeout N`, confirmed after the stage's barrier |
//! | `rules.nft` | `nft -c -f` | `nft -f` (one transaction that replaces calplan's tables) |
//! | `rules.iptables` | `iptables-restore --test` | `iptables-restore --noflush`, then duplicate and stale jumps into `CALPLAN-*` chains removed |
//! | `route-pins` | — | `ip route replace … proto kernel metric 4096`, then stale pins removed (both families) |
//! | `routes.sh` (router) | `sh -n` | `sh routes.sh` (it removes its own stale routes) |
//! | `frr.conf` (router) | `vtysh --dryrun -f` | `frr-reload.py --reload` |
//! | `routes` | — | recorded: BIRD programs these; barriers compare against them |
//!
//! Only `rules.nft` or `rules.iptables` is loaded on a node, as its inventory says; only the
//! file of a router's platform is loaded on it. BIRD is driven through `birdc -v`, whose
//! numbered replies tell success from failure without reading prose.

use crate::transport::{Host, Transport};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The route protocol number calplan's routes on routers carry, so that removing them can
/// never touch a route another program owns.
pub const ROUTE_PROTOCOL: &str = "252";
/// The route protocol of route pins on nodes: `kernel`, the one protocol BIRD (1.6, Calico's
/// fork, and 2) never learns. Under any other, calico-node's BIRD (`learn`) would take a pin
/// in as a route of its own and advertise it to its peers, and its withdrawal as the pins go
/// would make every reflector and node replace the route in the kernel, by deleting and
/// adding it on BIRD 1.6, which loses what arrives in between.
pub const PIN_PROTOCOL: &str = "kernel";
/// Pins sit below BIRD's routes (metric 0, or 32) and Felix's. With [`PIN_PROTOCOL`] this
/// metric is what tells a pin: the kernel makes its own routes at metric 0, 256 or 1024, and
/// never with a next hop or as a blackhole.
pub const PIN_METRIC: &str = "4096";
/// The protocol pins carried before [`PIN_PROTOCOL`]; such pins are removed as stale.
const LEGACY_PIN_PROTOCOL: &str = "252";
/// How long BIRD keeps a new configuration before undoing it unless confirmed, at the least.
pub const BIRD_CONFIRM_TIMEOUT: u32 = 600;
/// The chains of `rules.iptables` are calplan's by this prefix, as routes are by protocol.
pub const IPTABLES_CHAIN_PREFIX: &str = "CALPLAN-";

/// What loading a file did.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    Loaded,
    /// Kept on the host but not loaded (the other firewall, the expected routes).
    Recorded,
    /// No transport reaches this kind of device: a person pastes it.
    Manual(String),
    /// BIRD runs it on a timer: confirm once the barrier holds, or undo.
    AwaitsConfirm,
}

/// Loads (or removes, with `None`) one file on a host, with BIRD's confirmation timer at its
/// default.
pub fn load(transport: &Transport, host: &Host, file: &str, contents: Option<&str>, secrets: Option<&str>) -> Result<Loaded, String> {
    load_within(transport, host, file, contents, secrets, Duration::from_secs(u64::from(BIRD_CONFIRM_TIMEOUT)))
}

/// Loads (or removes, with `None`) one file on a host. A new BIRD configuration is undone by
/// BIRD itself unless confirmed within `confirm_within` (never less than
/// [`BIRD_CONFIRM_TIMEOUT`]): the caller makes it outlast the stage's barrier, or BIRD would
/// go back while the barrier is still being waited on.
pub fn load_within(
    transport: &Transport,
    host: &Host,
    file: &str,
    contents: Option<&str>,
    secrets: Option<&str>,
    confirm_within: Duration,
) -> Result<Loaded, String> {
    if let Some(loaded) = router_file(host, file)?
        && loaded != Loaded::Loaded
    {
        // Another platform's file: kept beside the router's own where calplan reaches it.
        if matches!(loaded, Loaded::Recorded) && reachable_platform(host) {
            match contents {
                Some(text) => transport.write_file(host, &host.path(file), text.as_bytes(), 0o644)?,
                None => transport.remove_file(host, &host.path(file))?,
            }
        }
        return Ok(loaded);
    }
    match (file, contents) {
        ("bird.cfg", Some(text)) => load_bird(transport, host, text, secrets, confirm_within),
        ("rules.nft", Some(text)) => {
            let path = host.path("rules.nft");
            if host.firewall() != "nft" {
                transport.write_file(host, &path, text.as_bytes(), 0o644)?;
                return Ok(Loaded::Recorded);
            }
            let staged = format!("{path}.calplan-check");
            transport.write_file(host, &staged, nft_replacing(text).as_bytes(), 0o644)?;
            transport.check(host, &["nft", "-c", "-f", &staged], None)?;
            transport.check(host, &["nft", "-f", &staged], None)?;
            transport.write_file(host, &path, text.as_bytes(), 0o644)?;
            transport.remove_file(host, &staged)?;
            Ok(Loaded::Loaded)
        }
        ("rules.nft", None) => {
            let path = host.path("rules.nft");
            if host.firewall() == "nft" {
                // The tables the last loaded file defined go with it.
                if let Some(previous) = transport.read_file(host, &path)? {
                    let tables = nft_tables(&previous);
                    if !tables.is_empty() {
                        let script: String = tables.iter().map(|table| format!("table {table}\ndelete table {table}\n")).collect();
                        let staged = format!("{path}.calplan-check");
                        transport.write_file(host, &staged, script.as_bytes(), 0o644)?;
                        transport.check(host, &["nft", "-f", &staged], None)?;
                        transport.remove_file(host, &staged)?;
                    }
                }
            }
            transport.remove_file(host, &path)?;
            Ok(Loaded::Loaded)
        }
        ("rules.iptables", contents) => {
            let path = host.path("rules.iptables");
            if host.firewall() != "iptables" {
                match contents {
                    Some(text) => transport.write_file(host, &path, text.as_bytes(), 0o644)?,
                    None => transport.remove_file(host, &path)?,
                }
                return Ok(Loaded::Recorded);
            }
            let previous = transport.read_file(host, &path)?.unwrap_or_default();
            let text = contents.unwrap_or("");
            if contents.is_some() {
                transport.check(host, &["iptables-restore", "--test"], Some(text.as_bytes()))?;
                transport.check(host, &["iptables-restore", "--noflush"], Some(text.as_bytes()))?;
            }
            tidy_iptables(transport, host, &previous, text)?;
            match contents {
                Some(text) => transport.write_file(host, &path, text.as_bytes(), 0o644)?,
                None => transport.remove_file(host, &path)?,
            }
            Ok(Loaded::Loaded)
        }
        ("route-pins", contents) => {
            pin_routes(transport, host, contents.unwrap_or(""))?;
            match contents {
                Some(text) => transport.write_file(host, &host.path("route-pins"), text.as_bytes(), 0o644)?,
                None => transport.remove_file(host, &host.path("route-pins"))?,
            }
            Ok(Loaded::Loaded)
        }
        ("routes.sh", Some(text)) => {
            let path = host.path("routes.sh");
            transport.write_file(host, &path, text.as_bytes(), 0o755)?;
            transport.check(host, &["sh", "-n", &path], None)?;
            transport.check(host, &["sh", &path], None)?;
            Ok(Loaded::Loaded)
        }
        ("routes.sh", None) => {
            for family in ["-4", "-6"] {
                // A host without IPv6 has no IPv6 routes to flush.
                let output = transport.run(host, &["ip", family, "route", "flush", "proto", ROUTE_PROTOCOL], None)?;
                if !output.success && family == "-4" {
                    return Err(format!(
                        "`ip -4 route flush proto {ROUTE_PROTOCOL}` failed on {}: {}",
                        transport.describe(host),
                        output.stderr.trim()
                    ));
                }
            }
            transport.remove_file(host, &host.path("routes.sh"))?;
            Ok(Loaded::Loaded)
        }
        ("frr.conf", Some(text)) => {
            let path = host.path("frr.conf");
            let staged = format!("{path}.calplan-check");
            // BGP passwords go into the router's copy only, which is then kept 0600.
            let (filled, mode) = match secrets {
                Some(secrets) => {
                    (calplan_targets::routers::fill_frr_passwords(text, &calplan_targets::routers::read_frr_secrets_file(secrets))?, 0o600)
                }
                None => (text.to_string(), 0o640),
            };
            let text = filled.as_str();
            transport.write_file(host, &staged, text.as_bytes(), mode)?;
            transport.check(host, &["vtysh", "--dryrun", "-f", &staged], None)?;
            let mut reload = vec!["/usr/lib/frr/frr-reload.py", "--reload"];
            let pathspace;
            if let Some(space) = &host.settings.frr_pathspace {
                pathspace = space.clone();
                reload.extend(["--pathspace", pathspace.as_str()]);
            }
            reload.push(staged.as_str());
            transport.check(host, &reload, None)?;
            transport.write_file(host, &path, text.as_bytes(), mode)?;
            transport.remove_file(host, &staged)?;
            Ok(Loaded::Loaded)
        }
        ("ios.cfg" | "junos.set", Some(_)) => Ok(Loaded::Manual(format!(
            "paste `routers/{}/{file}` into {}: calplan has no transport to that platform",
            host.name, host.name
        ))),
        (_, Some(text)) => {
            transport.write_file(host, &host.path(file), text.as_bytes(), 0o644)?;
            Ok(Loaded::Recorded)
        }
        (_, None) => {
            transport.remove_file(host, &host.path(file))?;
            Ok(Loaded::Recorded)
        }
    }
}

/// The router files, one per platform; a router loads its own platform's.
const ROUTER_FILES: [(&str, &str); 4] = [("linux", "routes.sh"), ("frr", "frr.conf"), ("ios", "ios.cfg"), ("junos", "junos.set")];

/// Whether calplan reaches the host at all (an IOS or Junos router is configured by a person).
fn reachable_platform(host: &Host) -> bool {
    !matches!(host.settings.platform.as_deref(), Some("ios" | "junos"))
}

/// For a router file: `None` when `file` is not one; `Loaded::Loaded` when it is the router's
/// own (load it); otherwise what becomes of it.
fn router_file(host: &Host, file: &str) -> Result<Option<Loaded>, String> {
    if !ROUTER_FILES.iter().any(|(_, name)| *name == file) {
        return Ok(None);
    }
    let Some(platform) = host.settings.platform.as_deref() else {
        return Err(format!(
            "router `{}`: which of its files to load depends on its platform, which calplan could not tell \
             (the intent the plan was made from is not readable): give `platform` in the inventory",
            host.name
        ));
    };
    let own = ROUTER_FILES.iter().find(|(owner, _)| *owner == platform).map(|(_, name)| *name);
    Ok(Some(if own == Some(file) { Loaded::Loaded } else { Loaded::Recorded }))
}

/// One numbered reply line of `birdc -v`: BIRD's four-digit code and its text. Codes 0xxx
/// report success or progress, 1xxx and 2xxx carry tables, 8xxx and 9xxx are errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BirdReply {
    pub code: u16,
    pub text: String,
}

/// Splits `birdc -v` output into replies; continuation lines (starting with a space) belong
/// to the reply before them.
pub fn parse_bird_replies(output: &str) -> Vec<BirdReply> {
    let mut replies: Vec<BirdReply> = Vec::new();
    for line in output.lines() {
        let bytes = line.as_bytes();
        let numbered = bytes.len() >= 4 && bytes[..4].iter().all(u8::is_ascii_digit) && matches!(bytes.get(4), None | Some(b' ' | b'-'));
        if numbered {
            let code = line[..4].parse().unwrap_or(0);
            replies.push(BirdReply { code, text: line.get(5..).unwrap_or("").trim().to_string() });
        } else if let Some(last) = replies.last_mut() {
            last.text.push('\n');
            last.text.push_str(line.trim());
        }
    }
    replies
}

/// Runs a `birdc -v` command against the host's BIRD: its replies, or an error carrying
/// BIRD's own message when it answered with an error code or could not be reached.
fn birdc(transport: &Transport, host: &Host, command: &[&str]) -> Result<Vec<BirdReply>, String> {
    let socket = host.bird_socket();
    let mut argv = vec!["birdc", "-v", "-s", socket.as_str()];
    argv.extend_from_slice(command);
    let output = transport.run(host, &argv, None)?;
    let replies = parse_bird_replies(&output.stdout);
    if let Some(error) = replies.iter().find(|reply| reply.code >= 8000) {
        return Err(format!("BIRD on {} refused `{}`: {}", transport.describe(host), command.join(" "), error.text));
    }
    if !output.success || replies.is_empty() {
        let detail = if output.stderr.trim().is_empty() { output.stdout.trim() } else { output.stderr.trim() };
        return Err(format!("`birdc {}` failed on {}: {detail}", command.join(" "), transport.describe(host)));
    }
    Ok(replies)
}

fn has(replies: &[BirdReply], codes: &[u16]) -> bool {
    replies.iter().any(|reply| codes.contains(&reply.code))
}

fn texts(replies: &[BirdReply]) -> String {
    replies.iter().filter(|reply| reply.code != 1).map(|reply| reply.text.as_str()).collect::<Vec<_>>().join("; ")
}

/// BIRD's answers that a reconfiguration was taken: done (0003), under way (0004), or queued
/// behind one under way (0005).
const RECONFIGURED: [u16; 3] = [3, 4, 5];

/// BIRD: check the new configuration, then load it on a timer that undoes it unless the
/// stage's barrier confirms it.
fn load_bird(transport: &Transport, host: &Host, text: &str, secrets: Option<&str>, confirm_within: Duration) -> Result<Loaded, String> {
    let path = host.path("bird.cfg");
    if text.contains(calplan_targets::bird::SECRETS_FILE) {
        let Some(secrets) = secrets else {
            return Err(format!(
                "`{}`'s bird.cfg needs BGP passwords: give `--secrets DIR` (DIR/<secret>/<key>, as Kubernetes mounts a Secret)",
                host.name
            ));
        };
        transport.write_file(host, &host.path(calplan_targets::bird::SECRETS_FILE), secrets.as_bytes(), 0o600)?;
    }
    let staged = format!("{path}.calplan-check");
    transport.write_file(host, &staged, text.as_bytes(), 0o644)?;
    transport.check(host, &["bird", "-p", "-c", &staged], None)?;
    transport.write_file(host, &path, text.as_bytes(), 0o644)?;
    transport.remove_file(host, &staged)?;
    let timeout = confirm_within.as_secs().max(u64::from(BIRD_CONFIRM_TIMEOUT)).to_string();
    // birdc joins its arguments into one command line, and BIRD's grammar wants the file name
    // as a quoted string; the path holds no quote (the transport allows plain names only).
    let quoted = format!("\"{path}\"");
    let replies = birdc(transport, host, &["configure", &quoted, "timeout", &timeout])?;
    // 0022 ("Undo scheduled in N s") says the timer runs; without it BIRD would keep the new
    // configuration even if the barrier never held.
    if !has(&replies, &RECONFIGURED) || !has(&replies, &[22]) {
        return Err(format!("BIRD on {} did not take the configuration on a timer: {}", transport.describe(host), texts(&replies)));
    }
    Ok(Loaded::AwaitsConfirm)
}

/// Keeps the new configuration BIRD runs on a timer.
pub fn confirm_bird(transport: &Transport, host: &Host) -> Result<(), String> {
    let replies = birdc(transport, host, &["configure", "confirm"])?;
    if has(&replies, &[18]) {
        return Ok(());
    }
    if has(&replies, &[19]) {
        // "Nothing to do": no timer ran, so BIRD already went back to the configuration it
        // ran before; the barrier may have seen the new one, but it is not what runs now.
        return Err(format!(
            "BIRD on {} had no configuration waiting for confirmation: its timer ran out and it went back to the previous one",
            transport.describe(host)
        ));
    }
    Err(format!("BIRD on {} did not confirm: {}", transport.describe(host), texts(&replies)))
}

/// Goes back to the configuration BIRD ran before (`configure undo`). BIRD keeps only one
/// configuration to go back to, so this is right only when nothing reconfigured it since.
pub fn undo_bird(transport: &Transport, host: &Host) -> Result<(), String> {
    let replies = birdc(transport, host, &["configure", "undo"])?;
    // 0019 "Nothing to do": the timer already ran out and BIRD went back by itself.
    if has(&replies, &RECONFIGURED) || has(&replies, &[19]) {
        Ok(())
    } else {
        Err(format!("BIRD on {} did not undo: {}", transport.describe(host), texts(&replies)))
    }
}

/// Rolls BIRD back to `previous`, the configuration it ran before the stage: written back and
/// loaded without a timer (which also cancels the pending one). `configure undo` is not
/// enough: BIRD can step back only once, so after an interrupted apply was run again (and
/// loaded the stage's configuration a second time) it would go back to the stage's own
/// configuration. With no previous file (the stage created it), BIRD's undo is all there is.
pub fn restore_bird(transport: &Transport, host: &Host, previous: Option<&str>) -> Result<(), String> {
    let Some(text) = previous else {
        return undo_bird(transport, host);
    };
    let path = host.path("bird.cfg");
    transport.write_file(host, &path, text.as_bytes(), 0o644)?;
    let quoted = format!("\"{path}\"");
    let replies = birdc(transport, host, &["configure", &quoted])?;
    if has(&replies, &RECONFIGURED) {
        Ok(())
    } else {
        Err(format!("BIRD on {} did not go back to its previous configuration: {}", transport.describe(host), texts(&replies)))
    }
}

/// Installs `routes` (lines as in `nodes/<node>/routes`) as pins, and removes every pin not
/// among them, in both address families.
fn pin_routes(transport: &Transport, host: &Host, routes: &str) -> Result<(), String> {
    let placed: Vec<ipnet::IpNet> = routes.lines().filter_map(calplan_plan::plan::placed_pins_pools).flatten().collect();
    let in_placed = |line: &str| {
        let key = RouteKey::parse(line);
        key.destination.parse::<ipnet::IpNet>().is_ok_and(|destination| calplan_model::ipam::is_block_in(&destination, &placed))
    };
    let mut wanted: Vec<Vec<String>> =
        routes.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#') && !in_placed(line)).map(pin_arguments).collect();
    if !placed.is_empty() {
        for family in ["-4", "-6"] {
            let output = transport.run(host, &["ip", family, "route", "show", "proto", "bird"], None)?;
            if output.success {
                wanted.extend(route_lines(&output.stdout).iter().filter(|route| in_placed(route)).map(|route| pin_arguments(route)));
            }
        }
    }
    // One `ip -batch` for all of them (one round trip over SSH); it stops at the first route
    // the kernel refuses and names its line. Words are checked first: a batch line is split
    // on whitespace by `ip`, so a word must not hold any.
    if let Some(word) = wanted.iter().flatten().find(|word| !word.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))) {
        return Err(format!("refusing the route word `{word}` for `{}`: not an address, prefix or keyword", host.name));
    }
    let batch = pin_batch(&wanted);
    if !batch.is_empty() {
        transport.check(host, &["ip", "-batch", "-"], Some(batch.as_bytes()))?;
    }
    let keep: BTreeSet<(String, String)> = wanted.iter().map(|arguments| RouteKey::parse(&arguments.join(" ")).identity()).collect();
    for family in ["-4", "-6"] {
        let mut stale = String::new();
        let none = BTreeSet::new();
        for (protocol, keep) in [(PIN_PROTOCOL, &keep), (LEGACY_PIN_PROTOCOL, &none)] {
            let output = transport.run(host, &["ip", family, "route", "show", "proto", protocol], None)?;
            if !output.success {
                // A host without IPv6 holds no IPv6 pins; IPv4 must answer.
                if family == "-4" {
                    return Err(format!("`ip -4 route show` failed on {}: {}", transport.describe(host), output.stderr.trim()));
                }
                break;
            }
            stale.push_str(&stale_pins(&output.stdout, protocol, keep));
        }
        if !stale.is_empty() {
            transport.check(host, &["ip", family, "-batch", "-"], Some(stale.as_bytes()))?;
        }
    }
    Ok(())
}

/// The `ip -batch` lines that pin `routes` (each a route's `ip route replace` arguments).
pub fn pin_batch(routes: &[Vec<String>]) -> String {
    routes
        .iter()
        .map(|arguments| {
            // Before any `nexthop`: iproute2 reads everything after the first as next hops.
            let at = arguments.iter().position(|word| word == "nexthop").unwrap_or(arguments.len());
            let (route, hops) = arguments.split_at(at);
            let mut line = format!("route replace {} proto {PIN_PROTOCOL} metric {PIN_METRIC}", route.join(" "));
            for hop in hops {
                line.push(' ');
                line.push_str(hop);
            }
            line.push('\n');
            line
        })
        .collect()
}

/// `ip route show` output as one line per route (a multipath route's next hops, printed on
/// lines of their own, joined to it).
fn route_lines(listing: &str) -> Vec<String> {
    let mut routes: Vec<String> = Vec::new();
    for line in listing.lines().filter(|line| !line.trim().is_empty()) {
        match routes.last_mut() {
            Some(route) if line.starts_with(char::is_whitespace) => {
                route.push(' ');
                route.push_str(line.trim());
            }
            _ => routes.push(line.trim().to_string()),
        }
    }
    routes
}

/// `ip -batch` lines that delete the pins of `listing` (`ip route show proto PROTOCOL`) not in
/// `keep`. A pin is at [`PIN_METRIC`] and has a next hop or is a blackhole (BIRD's routes, which
/// pins copy, always are); the kernel makes neither, so a route it made (protocol `kernel`
/// too, even at that metric, as `ip address add … metric 4096` makes one) is never touched.
fn stale_pins(listing: &str, protocol: &str, keep: &BTreeSet<(String, String)>) -> String {
    let mut stale = String::new();
    for route in &route_lines(listing) {
        let words: Vec<&str> = route.split_whitespace().collect();
        let key = RouteKey::parse(route);
        let at_pin_metric = words.windows(2).any(|pair| pair == ["metric", PIN_METRIC]);
        let pin = !key.gateways.is_empty() || matches!(key.kind.as_str(), "blackhole" | "unreachable" | "prohibit");
        if !at_pin_metric || !pin || key.destination.is_empty() || keep.contains(&key.identity()) {
            continue;
        }
        stale.push_str("route del ");
        if !key.kind.is_empty() {
            stale.push_str(&key.kind);
            stale.push(' ');
        }
        // As `ip` printed it: a host route has no `/32`, and `ip` takes it back that way.
        stale.push_str(words[usize::from(!key.kind.is_empty())]);
        stale.push_str(&format!(" proto {protocol} metric {PIN_METRIC}\n"));
    }
    stale
}

/// A route line without its protocol and metric, as `ip route replace` arguments.
pub fn pin_arguments(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut skip = false;
    for word in line.split_whitespace() {
        if skip {
            skip = false;
            continue;
        }
        if matches!(word, "proto" | "metric") {
            skip = true;
            continue;
        }
        words.push(word.to_string());
    }
    words
}

/// Route types `ip` prints before the destination.
const ROUTE_TYPES: [&str; 9] = ["unicast", "blackhole", "unreachable", "prohibit", "throw", "local", "broadcast", "multicast", "anycast"];

/// What identifies a route for calplan's comparisons: its type, its destination (always with
/// a prefix length; `ip` prints host routes without one), its next hops (one, or an ECMP
/// route's several) and, when the line names one, its protocol (by number).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteKey {
    pub kind: String,
    pub destination: String,
    pub gateways: BTreeSet<String>,
    pub protocol: Option<String>,
}

impl RouteKey {
    /// Reads an `ip route` line, a `routes` artifact line or a `routes.sh` route.
    pub fn parse(line: &str) -> RouteKey {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut key = RouteKey::default();
        let mut index = 0;
        if let Some(kind) = words.first().filter(|word| ROUTE_TYPES.contains(word)) {
            key.kind = if *kind == "unicast" { String::new() } else { kind.to_string() };
            index = 1;
        }
        if let Some(destination) = words.get(index) {
            key.destination = normalise_destination(destination);
        }
        while index < words.len() {
            match words[index] {
                "via" => {
                    if let Some(gateway) = words.get(index + 1) {
                        // `via inet6 ADDR` names the family first.
                        let gateway =
                            if matches!(*gateway, "inet" | "inet6") { words.get(index + 2).copied().unwrap_or("") } else { gateway };
                        key.gateways.insert(gateway.to_string());
                    }
                }
                "proto" => key.protocol = words.get(index + 1).map(|protocol| protocol_number(protocol)),
                _ => {}
            }
            index += 1;
        }
        key
    }

    /// An entry of `ip -j route show`.
    pub fn from_json(entry: &serde_json::Value) -> RouteKey {
        let text = |value: &serde_json::Value| value.as_str().map(str::to_string).or_else(|| value.as_u64().map(|n| n.to_string()));
        let kind = text(&entry["type"]).filter(|kind| kind != "unicast").unwrap_or_default();
        let mut gateways: BTreeSet<String> = text(&entry["gateway"]).into_iter().collect();
        for hop in entry["nexthops"].as_array().into_iter().flatten() {
            gateways.extend(text(&hop["gateway"]));
        }
        RouteKey {
            kind,
            destination: normalise_destination(&text(&entry["dst"]).unwrap_or_default()),
            gateways,
            protocol: text(&entry["protocol"]).map(|protocol| protocol_number(&protocol)),
        }
    }

    /// What `ip route replace` replaces: one route per type and destination.
    fn identity(&self) -> (String, String) {
        (self.kind.clone(), self.destination.clone())
    }

    /// The key as one line, the form [`crate::observe::kernel_routes`] returns.
    pub fn line(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        if !self.kind.is_empty() {
            words.push(self.kind.clone());
        }
        words.push(self.destination.clone());
        for gateway in &self.gateways {
            words.extend(["via".to_string(), gateway.clone()]);
        }
        if let Some(protocol) = &self.protocol {
            words.extend(["proto".to_string(), protocol.clone()]);
        }
        words.join(" ")
    }

    /// Whether a kernel route satisfies this expected one; a protocol is compared only when
    /// the expectation names one, so that a pin (252) never stands in for BIRD's route (12).
    fn satisfied_by(&self, kernel: &RouteKey) -> bool {
        self.kind == kernel.kind
            && self.destination == kernel.destination
            && self.gateways == kernel.gateways
            && self.protocol.as_ref().is_none_or(|protocol| Some(protocol) == kernel.protocol.as_ref())
    }
}

/// `default` and host routes as prefixes: `0.0.0.0/0`, `10.0.0.1/32`, `fd00::1/128`.
fn normalise_destination(destination: &str) -> String {
    match destination {
        "" => String::new(),
        "default" => "default".to_string(),
        text if text.contains('/') => text.to_string(),
        text if text.contains(':') => format!("{text}/128"),
        text => format!("{text}/32"),
    }
}

/// Route protocols by number, whatever names `rt_protos` gives them on this host.
fn protocol_number(protocol: &str) -> String {
    let number = match protocol {
        "redirect" => "1",
        "kernel" => "2",
        "boot" => "3",
        "static" => "4",
        "ra" => "9",
        "zebra" => "11",
        "bird" => "12",
        "dhcp" => "16",
        "keepalived" => "18",
        "babel" => "42",
        "bgp" => "186",
        "isis" => "187",
        "ospf" => "188",
        "rip" => "189",
        "eigrp" => "192",
        other => other,
    };
    number.to_string()
}

/// The routes of `expected` the kernel lacks (same type, destination, next hops, and the
/// protocol where the expected line names one).
pub fn routes_present(kernel: &[String], expected: &[String]) -> Vec<String> {
    routes_present_with(kernel, expected, true)
}

/// As [`routes_present`]; `compare_protocol: false` for a router whose routes are installed
/// by another program (FRR's zebra) under its own protocol.
pub fn routes_present_with(kernel: &[String], expected: &[String], compare_protocol: bool) -> Vec<String> {
    let present: Vec<RouteKey> = kernel.iter().map(|line| RouteKey::parse(line)).collect();
    expected
        .iter()
        .filter(|line| !line.trim().is_empty())
        .filter(|line| {
            let mut wanted = RouteKey::parse(line);
            if !compare_protocol {
                wanted.protocol = None;
            }
            !present.iter().any(|route| wanted.satisfied_by(route))
        })
        .cloned()
        .collect()
}

/// The `FAMILY NAME` of every table an nftables file declares at the top level (`table inet
/// x`, `add table ip x`, `table x` meaning `ip x`).
pub fn nft_tables(text: &str) -> BTreeSet<String> {
    const FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];
    let mut tables = BTreeSet::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().take_while(|word| !word.starts_with('#') && *word != "{").collect();
        let words = match words.first() {
            Some(&"add" | &"create") => &words[1..],
            _ => &words[..],
        };
        if words.first() != Some(&"table") {
            continue;
        }
        match (words.get(1), words.get(2)) {
            (Some(family), Some(name)) if FAMILIES.contains(family) => tables.insert(format!("{family} {}", name.trim_end_matches(';'))),
            (Some(name), _) => tables.insert(format!("ip {}", name.trim_end_matches(';'))),
            _ => false,
        };
    }
    tables
}

/// The ruleset as loaded: every table the file declares is created if missing and deleted
/// first, in the same transaction, unless the file does so itself. Loading the file again then
/// replaces its tables instead of adding a second copy of every rule.
fn nft_replacing(text: &str) -> String {
    let mut prefix = String::new();
    for table in nft_tables(text) {
        let deletes = text.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            matches!(words.first(), Some(&"delete" | &"destroy" | &"flush"))
                && words.get(1) == Some(&"table")
                && words[2..].join(" ") == table
        });
        if !deletes {
            prefix.push_str(&format!("table {table}\ndelete table {table}\n"));
        }
    }
    prefix + text
}

/// The chains an `iptables-restore` file declares, by table.
fn iptables_chains(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut chains: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_string();
            chains.entry(table.clone()).or_default();
        } else if let Some(declaration) = line.strip_prefix(':')
            && let Some(chain) = declaration.split_whitespace().next()
        {
            chains.entry(table.clone()).or_default().insert(chain.to_string());
        }
    }
    chains
}

/// After `iptables-restore --noflush`: calplan's chains (`CALPLAN-*`) were emptied and filled
/// again, but the jumps into them from other chains are inserted anew on every load (the
/// format cannot insert a rule only when it is missing). Removes, in every table either file
/// touches, the duplicate jumps (keeping the first, the one just inserted at the top), the
/// jumps to `CALPLAN-*` chains the new file no longer declares, and those chains.
fn tidy_iptables(transport: &Transport, host: &Host, previous: &str, text: &str) -> Result<(), String> {
    let declared = iptables_chains(text);
    let mut tables: BTreeSet<String> = declared.keys().cloned().collect();
    tables.extend(iptables_chains(previous).into_keys());
    for table in tables {
        let keep = declared.get(&table).cloned().unwrap_or_default();
        let listing = transport.check(host, &["iptables", "-t", &table, "-S"], None)?;
        let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut doomed: Vec<(String, usize)> = Vec::new();
        let mut stale_chains: Vec<String> = Vec::new();
        for line in listing.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first() {
                Some(&"-N") => {
                    if let Some(chain) = words.get(1).filter(|chain| chain.starts_with(IPTABLES_CHAIN_PREFIX) && !keep.contains(**chain)) {
                        stale_chains.push(chain.to_string());
                    }
                }
                Some(&"-A") => {
                    let Some(chain) = words.get(1) else { continue };
                    let number = numbers.entry(chain.to_string()).or_insert(0);
                    *number += 1;
                    if chain.starts_with(IPTABLES_CHAIN_PREFIX) {
                        continue;
                    }
                    let target = words.iter().position(|word| *word == "-j" || *word == "-g").and_then(|index| words.get(index + 1));
                    let Some(target) = target.filter(|target| target.starts_with(IPTABLES_CHAIN_PREFIX)) else { continue };
                    if !keep.contains(*target) || !seen.insert(line.to_string()) {
                        doomed.push((chain.to_string(), *number));
                    }
                }
                _ => {}
            }
        }
        // Highest numbers first, so that each deletion leaves the others' numbers as listed.
        doomed.sort_by_key(|(_, number)| std::cmp::Reverse(*number));
        for (chain, number) in doomed {
            transport.check(host, &["iptables", "-t", &table, "-D", &chain, &number.to_string()], None)?;
        }
        // Emptied first, so that stale chains jumping to each other can all be deleted.
        for chain in &stale_chains {
            transport.check(host, &["iptables", "-t", &table, "-F", chain], None)?;
        }
        for chain in &stale_chains {
            transport.check(host, &["iptables", "-t", &table, "-X", chain], None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_drop_protocol_and_metric() {
        assert_eq!(pin_arguments("192.168.1.0/26 via 21.49.22.5 proto bird"), ["192.168.1.0/26", "via", "21.49.22.5"]);
        assert_eq!(pin_arguments("blackhole 192.168.0.0/26 proto bird metric 32"), ["blackhole", "192.168.0.0/26"]);
    }

    /// Only pins go: the kernel's own routes (protocol `kernel` as well) are never at the pins'
    /// metric; a pin still wanted stays, and every legacy pin goes.
    #[test]
    fn stale_pins_are_pins_only() {
        let listing = "21.49.22.0/24 dev eth0 proto kernel scope link src 21.49.22.4 \n\
                       10.244.1.0/24 via 21.49.22.5 dev eth0 proto kernel metric 4096 \n\
                       blackhole 10.244.0.0/24 proto kernel metric 4096 \n\
                       10.244.9.0/24 dev eth0 proto kernel scope link src 10.244.9.1 metric 4096 \n\
                       10.245.0.0/16 proto kernel metric 4096 \n\
                       \tnexthop via 21.49.22.5 dev eth0 weight 1 \n\
                       \tnexthop via 21.49.22.6 dev eth0 weight 1 \n\
                       10.244.2.7 via 21.49.22.6 dev eth0 proto kernel metric 4096 \n";
        let keep: BTreeSet<(String, String)> = [RouteKey::parse("blackhole 10.244.0.0/24").identity()].into();
        assert_eq!(
            stale_pins(listing, PIN_PROTOCOL, &keep),
            "route del 10.244.1.0/24 proto kernel metric 4096\n\
             route del 10.245.0.0/16 proto kernel metric 4096\n\
             route del 10.244.2.7 proto kernel metric 4096\n"
        );
        let legacy = "10.244.1.0/24 via 21.49.22.5 dev eth0 proto 252 metric 4096 \n10.0.0.0/8 via 21.49.22.1 dev eth0 proto 252 \n";
        assert_eq!(stale_pins(legacy, LEGACY_PIN_PROTOCOL, &BTreeSet::new()), "route del 10.244.1.0/24 proto 252 metric 4096\n");
    }

    #[test]
    fn missing_routes_are_named() {
        let kernel =
            vec!["192.168.1.0/26 via 21.49.22.5 dev eth0 proto bird".to_string(), "blackhole 192.168.0.0/26 proto bird".to_string()];
        let expected = vec!["blackhole 192.168.0.0/26 proto bird".to_string(), "192.168.2.0/26 via 21.49.22.6 proto bird".to_string()];
        assert_eq!(routes_present(&kernel, &expected), ["192.168.2.0/26 via 21.49.22.6 proto bird"]);
    }

    /// A pin (protocol `kernel`) does not stand for BIRD's route, or the barrier before
    /// unpinning would hold before BIRD had programmed anything.
    #[test]
    fn a_pin_does_not_satisfy_a_bird_route() {
        let kernel = vec!["192.168.1.0/26 via 21.49.22.5 proto 2".to_string()];
        let expected = vec!["192.168.1.0/26 via 21.49.22.5 proto bird".to_string()];
        assert_eq!(routes_present(&kernel, &expected), expected);
        assert!(routes_present_with(&kernel, &expected, false).is_empty());
    }

    #[test]
    fn host_routes_and_ecmp_routes_compare_as_the_kernel_prints_them() {
        let json: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"192.168.201.7","gateway":"21.49.22.4","dev":"eth0","protocol":"bird","flags":[]},
                {"dst":"192.168.0.0/16","protocol":"252","flags":[],"nexthops":[{"gateway":"21.49.22.4","dev":"eth0","weight":1,"flags":[]},{"gateway":"21.49.22.5","dev":"eth0","weight":1,"flags":[]}]},
                {"type":"blackhole","dst":"192.168.0.0/26","protocol":"12","flags":[]}]"#,
        )
        .unwrap();
        let kernel: Vec<String> = json.as_array().unwrap().iter().map(|entry| RouteKey::from_json(entry).line()).collect();
        assert_eq!(kernel[0], "192.168.201.7/32 via 21.49.22.4 proto 12");
        let expected = vec![
            "192.168.201.7/32 via 21.49.22.4 proto bird".to_string(),
            "192.168.0.0/16 proto 252 nexthop via 21.49.22.4 nexthop via 21.49.22.5".to_string(),
            "blackhole 192.168.0.0/26 proto bird".to_string(),
        ];
        assert!(routes_present(&kernel, &expected).is_empty(), "{kernel:?}");
        let one_hop = vec!["192.168.0.0/16 via 21.49.22.4 proto 252".to_string()];
        assert_eq!(routes_present(&kernel, &one_hop), one_hop);
    }

    #[test]
    fn birdc_replies_are_read_by_code() {
        let replies = parse_bird_replies(
            "0001 BIRD 2.0.12 ready.\n0002-Reading configuration from /etc/calplan/bird.cfg\n0022-Undo scheduled in 600 s\n0004 Reconfiguration in progress\n",
        );
        assert_eq!(replies.iter().map(|reply| reply.code).collect::<Vec<_>>(), [1, 2, 22, 4]);
        // A path holding the word "error" is not an error.
        let replies = parse_bird_replies("0002-Reading configuration from /srv/error/bird.cfg\n0003 Reconfigured\n");
        assert!(replies.iter().all(|reply| reply.code < 8000) && has(&replies, &RECONFIGURED));
        let replies = parse_bird_replies("0002-Reading configuration from /x\n8002 /x:2:10 syntax error, unexpected CF_SYM_UNDEFINED\n");
        assert_eq!(replies[1].code, 8002);
        let table = parse_bird_replies("2002-Name       Proto\n1002-device1    Device\n     static1    Static\n0000 \n");
        assert_eq!(table[1].text, "device1    Device\nstatic1    Static");
    }

    #[test]
    fn nft_tables_are_found_and_replaced_once() {
        let text = "#!/usr/sbin/nft -f\ntable ip calplan\ndelete table ip calplan\ntable ip calplan {\n\tchain input {}\n}\nadd table inet other\ntable filter { }\n";
        assert_eq!(nft_tables(text).into_iter().collect::<Vec<_>>(), ["inet other", "ip calplan", "ip filter"]);
        let loaded = nft_replacing(text);
        assert_eq!(loaded.matches("delete table ip calplan").count(), 1, "the file deletes it itself:\n{loaded}");
        assert!(loaded.starts_with("table inet other\ndelete table inet other\ntable ip filter\ndelete table ip filter\n"));
    }

    #[test]
    fn iptables_chains_by_table() {
        let chains = iptables_chains(
            "*filter\n:INPUT ACCEPT [0:0]\n:CALPLAN-INPUT - [0:0]\n-I INPUT 1 -j CALPLAN-INPUT\nCOMMIT\n*nat\n:CALPLAN-NAT - [0:0]\nCOMMIT\n",
        );
        assert_eq!(chains["filter"], BTreeSet::from(["INPUT".to_string(), "CALPLAN-INPUT".to_string()]));
        assert_eq!(chains["nat"], BTreeSet::from(["CALPLAN-NAT".to_string()]));
    }
}
