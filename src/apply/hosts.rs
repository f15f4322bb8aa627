//! Loading files on nodes and routers: each checked by its own tool before it is loaded, and
//! loaded atomically where the tool allows.
//!
//! | file | check | load |
//! |---|---|---|
//! | `bird.cfg` | `bird -p -c` | `birdc configure timeout`, confirmed after the stage's barrier |
//! | `rules.nft` | `nft -c -f` | `nft -f` (one transaction) |
//! | `rules.iptables` | `iptables-restore --test` | `iptables-restore --noflush` |
//! | `route-pins` | — | `ip route replace … proto calplan`, then stale pins removed |
//! | `routes.sh` (router) | `sh -n` | `sh routes.sh` |
//! | `frr.conf` (router) | `vtysh --dryrun -f` | `frr-reload.py --reload` |
//! | `routes` | — | recorded: BIRD programs these; barriers compare against them |
//!
//! Only `rules.nft` or `rules.iptables` is loaded on a host, as its inventory says.

use crate::apply::transport::{Host, Transport};
use std::collections::BTreeSet;

/// The route protocol number calplan's own kernel routes carry (route pins, router routes),
/// so that removing them can never touch a route BIRD (12) or Felix (80) owns.
pub const ROUTE_PROTOCOL: &str = "252";
/// Pins sit below BIRD's routes (metric 32) and Felix's.
pub const PIN_METRIC: &str = "4096";
/// How long BIRD keeps a new configuration before undoing it unless confirmed.
pub const BIRD_CONFIRM_TIMEOUT: u32 = 600;

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

/// Loads (or removes, with `None`) one file on a host.
pub fn load(transport: &Transport, host: &Host, file: &str, contents: Option<&str>, secrets: Option<&str>) -> Result<Loaded, String> {
    match (file, contents) {
        ("bird.cfg", Some(text)) => load_bird(transport, host, text, secrets),
        ("rules.nft", Some(text)) => {
            let path = host.path("rules.nft");
            if host.firewall() != "nft" {
                transport.write_file(host, &path, text.as_bytes(), 0o644)?;
                return Ok(Loaded::Recorded);
            }
            let staged = format!("{path}.calplan-check");
            transport.write_file(host, &staged, text.as_bytes(), 0o644)?;
            transport.check(host, &["nft", "-c", "-f", &staged], None)?;
            transport.check(host, &["nft", "-f", &staged], None)?;
            transport.write_file(host, &path, text.as_bytes(), 0o644)?;
            transport.remove_file(host, &staged)?;
            Ok(Loaded::Loaded)
        }
        ("rules.iptables", Some(text)) => {
            let path = host.path("rules.iptables");
            transport.write_file(host, &path, text.as_bytes(), 0o644)?;
            if host.firewall() != "iptables" {
                return Ok(Loaded::Recorded);
            }
            transport.check(host, &["iptables-restore", "--test"], Some(text.as_bytes()))?;
            transport.check(host, &["iptables-restore", "--noflush"], Some(text.as_bytes()))?;
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
            transport.check(host, &["ip", "route", "flush", "proto", ROUTE_PROTOCOL], None)?;
            transport.remove_file(host, &host.path("routes.sh"))?;
            Ok(Loaded::Loaded)
        }
        ("frr.conf", Some(text)) => {
            let path = host.path("frr.conf");
            let staged = format!("{path}.calplan-check");
            transport.write_file(host, &staged, text.as_bytes(), 0o640)?;
            transport.check(host, &["vtysh", "--dryrun", "-f", &staged], None)?;
            let mut reload = vec!["/usr/lib/frr/frr-reload.py", "--reload"];
            let pathspace;
            if let Some(space) = &host.settings.frr_pathspace {
                pathspace = space.clone();
                reload.extend(["--pathspace", pathspace.as_str()]);
            }
            reload.push(staged.as_str());
            transport.check(host, &reload, None)?;
            transport.write_file(host, &path, text.as_bytes(), 0o640)?;
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

/// BIRD: check the new configuration, then load it on a timer that undoes it unless the
/// stage's barrier confirms it.
fn load_bird(transport: &Transport, host: &Host, text: &str, secrets: Option<&str>) -> Result<Loaded, String> {
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
    let socket = host.bird_socket();
    let timeout = BIRD_CONFIRM_TIMEOUT.to_string();
    let output = transport.check(host, &["birdc", "-s", &socket, "configure", &format!("\"{path}\""), "timeout", &timeout], None)?;
    if output.contains("rejected") || output.contains("error") {
        return Err(format!("BIRD on {} refused the configuration: {}", transport.describe(host), output.trim()));
    }
    Ok(Loaded::AwaitsConfirm)
}

/// Keeps the new configuration BIRD runs on a timer.
pub fn confirm_bird(transport: &Transport, host: &Host) -> Result<(), String> {
    transport.check(host, &["birdc", "-s", &host.bird_socket(), "configure", "confirm"], None).map(|_| ())
}

/// Goes back to the configuration BIRD ran before (`configure undo`).
pub fn undo_bird(transport: &Transport, host: &Host) -> Result<(), String> {
    transport.check(host, &["birdc", "-s", &host.bird_socket(), "configure", "undo"], None).map(|_| ())
}

/// Installs `routes` (lines as in `nodes/<node>/routes`) as pins, and removes every pin not
/// among them.
fn pin_routes(transport: &Transport, host: &Host, routes: &str) -> Result<(), String> {
    let wanted: Vec<Vec<String>> = routes.lines().filter(|line| !line.trim().is_empty()).map(pin_arguments).collect();
    for arguments in &wanted {
        let mut argv: Vec<&str> = vec!["ip", "route", "replace"];
        argv.extend(arguments.iter().map(String::as_str));
        argv.extend(["proto", ROUTE_PROTOCOL, "metric", PIN_METRIC]);
        transport.check(host, &argv, None)?;
    }
    let keep: BTreeSet<String> = wanted.iter().filter_map(|arguments| arguments.iter().find(|word| word.contains('/')).cloned()).collect();
    let live = transport.check(host, &["ip", "route", "show", "proto", ROUTE_PROTOCOL], None)?;
    for line in live.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let destination = words.iter().find(|word| word.contains('/')).copied().unwrap_or("");
        if destination.is_empty() || keep.contains(destination) {
            continue;
        }
        let prefix: Vec<&str> = if words[0] == "blackhole" { vec!["blackhole", destination] } else { vec![destination] };
        let mut argv: Vec<&str> = vec!["ip", "route", "del"];
        argv.extend(prefix);
        argv.extend(["proto", ROUTE_PROTOCOL, "metric", PIN_METRIC]);
        transport.check(host, &argv, None)?;
    }
    Ok(())
}

/// A route line without its protocol and metric, as `ip route replace` arguments.
fn pin_arguments(line: &str) -> Vec<String> {
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

/// The kernel's routes on a host, one normalised line each.
pub fn kernel_routes(transport: &Transport, host: &Host) -> Result<Vec<String>, String> {
    let text = transport.check(host, &["ip", "route", "show"], None)?;
    Ok(text.lines().map(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")).collect())
}

/// Whether every route of `expected` is in the kernel (same destination and next hop).
pub fn routes_present(kernel: &[String], expected: &[String]) -> Vec<String> {
    let key = |line: &str| -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let destination = words.iter().find(|word| word.contains('/')).copied().unwrap_or("");
        let via = words.iter().position(|word| *word == "via").and_then(|index| words.get(index + 1)).copied().unwrap_or("");
        let kind = if words.first() == Some(&"blackhole") { "blackhole" } else { "" };
        format!("{kind} {destination} {via}")
    };
    let present: BTreeSet<String> = kernel.iter().map(|line| key(line)).collect();
    expected.iter().filter(|line| !line.trim().is_empty() && !present.contains(&key(line))).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_drop_protocol_and_metric() {
        assert_eq!(pin_arguments("192.168.1.0/26 via 21.49.22.5 proto bird"), ["192.168.1.0/26", "via", "21.49.22.5"]);
        assert_eq!(pin_arguments("blackhole 192.168.0.0/26 proto bird metric 32"), ["blackhole", "192.168.0.0/26"]);
    }

    #[test]
    fn missing_routes_are_named() {
        let kernel = vec!["192.168.1.0/26 via 21.49.22.5 dev eth0 proto bird".to_string(), "blackhole 192.168.0.0/26 proto bird".to_string()];
        let expected = vec!["blackhole 192.168.0.0/26 proto bird".to_string(), "192.168.2.0/26 via 21.49.22.6 proto bird".to_string()];
        assert_eq!(routes_present(&kernel, &expected), ["192.168.2.0/26 via 21.49.22.6 proto bird"]);
    }
}
