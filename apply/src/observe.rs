//! Reading a node's live state through any transport: the BGP sessions its BIRD reports and
//! the routes in its kernel. Apply's barriers wait on them; `verify` compares them with the
//! intent. Read only: nothing here changes a host.
//!
//! Whose BIRD it is decides how it is asked ([`calplan_model::ownership`]): on a calico-node
//! node, Calico's fork of BIRD 1.6 runs one daemon per family, on `/var/run/calico/bird.ctl`
//! and `bird6.ctl`, read with `birdcl` as calico-node's own liveness probe and `calicoctl node
//! status` read them; on a BIRD 2 host one daemon serves both families (`birdc`). The
//! inventory may name other sockets and another client.

use crate::transport::{Host, Transport};
use calplan_model::NodeAgent;
use calplan_model::ownership;
use std::collections::BTreeMap;

/// A node's BGP sessions as BIRD reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    /// `show protocols`, every family's daemon merged, by protocol name.
    pub rows: BTreeMap<String, ProtocolRow>,
    /// Daemons that could not be read, in words (a node without IPv6 has no `bird6`: that
    /// matters only when an IPv6 session is expected).
    pub unreadable: Vec<String>,
}

impl Sessions {
    /// The protocols of `expected` that are not Established, each with what BIRD says of it.
    pub fn not_established<'a>(&self, expected: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        expected
            .into_iter()
            .filter(|name| !self.rows.get(*name).is_some_and(ProtocolRow::is_established))
            .map(|name| match self.rows.get(name) {
                Some(row) if !row.info.is_empty() => format!("{name} ({})", row.info),
                Some(row) => format!("{name} ({})", row.state),
                None => name.clone(),
            })
            .collect()
    }
}

/// The BIRD control sockets to read on a host run by `agent`: the inventory's, else the
/// agent's defaults.
pub fn bird_sockets(host: &Host, agent: NodeAgent) -> Vec<String> {
    let (ipv4, ipv6) = ownership::bird_sockets(agent);
    let mut sockets = vec![host.settings.bird_socket.clone().unwrap_or_else(|| ipv4.to_string())];
    if let Some(ipv6) = host.settings.bird6_socket.clone().or_else(|| ipv6.map(str::to_string)) {
        sockets.push(ipv6);
    }
    sockets
}

/// The BIRD client to read sessions with on a host run by `agent`.
pub fn bird_client(host: &Host, agent: NodeAgent) -> String {
    host.settings.bird_client.clone().unwrap_or_else(|| ownership::bird_client(agent).to_string())
}

/// The sessions BIRD reports on `host` (`CLIENT -s SOCKET show protocols` for each socket).
/// An error only when the transport itself fails (the host cannot be reached); a daemon that
/// does not answer is listed in [`Sessions::unreadable`].
pub fn sessions(transport: &Transport, host: &Host, agent: NodeAgent) -> Result<Sessions, String> {
    let client = bird_client(host, agent);
    let mut sessions = Sessions::default();
    for socket in bird_sockets(host, agent) {
        let output = transport.run(host, &[&client, "-s", &socket, "show", "protocols"], None)?;
        // A client that cannot reach its socket says so and may still exit 0 (BIRD 1.x).
        let refused = output.stdout.contains("Unable to connect") || output.stderr.contains("Unable to connect");
        if !output.success || refused {
            let detail = if output.stderr.trim().is_empty() { output.stdout.trim() } else { output.stderr.trim() };
            sessions.unreadable.push(format!("`{client} -s {socket}`: {detail}"));
            continue;
        }
        sessions.rows.extend(parse_protocols(&output.stdout));
    }
    Ok(sessions)
}

/// The kernel's routes (main table, both families) on a host, one normalised line each (see
/// [`crate::hosts::RouteKey::line`]).
pub fn kernel_routes(transport: &Transport, host: &Host) -> Result<Vec<String>, String> {
    let mut routes = Vec::new();
    for family in ["-4", "-6"] {
        let output = transport.run(host, &["ip", "-j", family, "route", "show"], None)?;
        if !output.success {
            if family == "-4" {
                return Err(format!("`ip -j -4 route show` failed on {}: {}", transport.describe(host), output.stderr.trim()));
            }
            continue;
        }
        let text = output.stdout.trim();
        let entries: Vec<serde_json::Value> = if text.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(text)
                .map_err(|error| format!("`ip -j route show` on {} printed what calplan cannot read: {error}", transport.describe(host)))?
        };
        routes.extend(entries.iter().map(|entry| crate::hosts::RouteKey::from_json(entry).line()));
    }
    Ok(routes)
}

/// One row of `birdc show protocols` (BIRD 1.x or 2.x).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolRow {
    pub name: String,
    pub protocol: String,
    pub state: String,
    pub info: String,
}

impl ProtocolRow {
    pub fn is_established(&self) -> bool {
        self.info.split_whitespace().next() == Some("Established")
    }
}

/// Parses `birdc show protocols` as printed by BIRD 2 (`Name Proto Table State Since Info`)
/// or BIRD 1 (`name proto table state since info`); the `since` column may be one or two
/// words (`2024-03-08 14:39:06`).
pub fn parse_protocols(text: &str) -> BTreeMap<String, ProtocolRow> {
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 4 || words[0].eq_ignore_ascii_case("name") || line.starts_with("BIRD") || line.starts_with(' ') {
            continue;
        }
        let (name, protocol, state) = (words[0], words[1], words[3]);
        if !matches!(state, "up" | "down" | "start" | "stop" | "flush" | "feed" | "wait") {
            continue;
        }
        // After `since` (one word, or a date and a time) comes the info.
        let mut rest = &words[4.min(words.len())..];
        if !rest.is_empty() {
            rest = &rest[1..];
            if rest.first().is_some_and(|word| word.contains(':') && word.chars().next().is_some_and(|c| c.is_ascii_digit())) {
                rest = &rest[1..];
            }
        }
        rows.insert(
            name.to_string(),
            ProtocolRow { name: name.to_string(), protocol: protocol.to_string(), state: state.to_string(), info: rest.join(" ") },
        );
    }
    rows
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_times_read_as_stat_and_bird_print_them() {
        let stat = super::LocalTime::parse("2026-12-05 00:27:55.825788218 +0000").unwrap();
        let bird = super::LocalTime::parse("2026-12-05 00:27:55").unwrap();
        assert_eq!(stat.seconds, bird.seconds);
        assert_eq!(stat.seconds, 1_796_430_475, "as `date -d '2026-12-05 00:27:55 UTC' +%s` says");
        let next_day = super::LocalTime::parse("2026-12-06 00:00:00").unwrap();
        assert_eq!(next_day.seconds - super::LocalTime::parse("2026-12-05 23:59:59").unwrap().seconds, 1);
        assert_eq!(
            super::LocalTime::parse("2024-03-01 00:00:00").unwrap().seconds
                - super::LocalTime::parse("2024-02-28 00:00:00").unwrap().seconds,
            2 * 86_400
        );
        assert!(super::LocalTime::parse("2026-12-05T00:27:55").is_none());
        assert!(super::LocalTime::parse("not a time").is_none());
    }

    use super::*;

    /// Calico's fork as `birdcl` prints it inside calico-node: lower-case headings, `master`
    /// as the table, one-word `since`, and a down session's error after its state.
    #[test]
    fn calico_node_birdcl_table() {
        let birdcl = "BIRD v0.3.3+birdv1.6.8 ready.\nname     proto    table    state  since       info\nstatic1  Static   master   up     10:30:58    \nkernel1  Kernel   master   up     10:30:58    \nMesh_10_0_0_12 BGP      master   up     10:31:07    Established   \nNode_10_0_0_1 BGP      master   start  10:31:07    Active        Socket: Connection refused\nGlobal_10_0_0_2 BGP      master   start  2024-03-08  Idle          Received: Bad peer AS\n";
        let sessions = Sessions { rows: parse_protocols(birdcl), unreadable: Vec::new() };
        assert!(sessions.rows["Mesh_10_0_0_12"].is_established());
        let expected: Vec<String> = ["Mesh_10_0_0_12", "Node_10_0_0_1", "Global_10_0_0_2", "Mesh_10_0_0_9"].map(String::from).to_vec();
        assert_eq!(
            sessions.not_established(&expected),
            ["Node_10_0_0_1 (Active Socket: Connection refused)", "Global_10_0_0_2 (Idle Received: Bad peer AS)", "Mesh_10_0_0_9"]
        );
        assert_eq!(sessions.rows["static1"].info, "");
    }

    #[test]
    fn bird2_and_bird1_tables() {
        let bird2 = "BIRD 2.0.12 ready.\nName       Proto      Table      State  Since         Info\ndevice1    Device     ---        up     12:00:01.123\nNode_21_49_22_7 BGP        ---        up     2024-03-08 14:39:06  Established   \nMesh_10_0_0_2 BGP        ---        start  12:00:01.123  Active        Socket: Connection refused\n";
        let rows = parse_protocols(bird2);
        assert!(rows["Node_21_49_22_7"].is_established());
        assert!(!rows["Mesh_10_0_0_2"].is_established());
        assert_eq!(rows["Mesh_10_0_0_2"].info, "Active Socket: Connection refused");
        let bird1 = "name     proto    table    state  since       info\nMesh_10_0_0_12 BGP      master   up     10:31:07    Established\n";
        assert!(parse_protocols(bird1)["Mesh_10_0_0_12"].is_established());
    }
}

/// Whether calico-node runs the render calplan predicts on a host, for IPv4 (`bird`, confd's
/// `bird.cfg`) or with `ipv6` for IPv6 (`bird6`, `bird6.cfg`): `None` when confd has written it
/// (the render reads as `expected`, calplan's `bird-calico.cfg` or `bird6-calico.cfg` named
/// `name`) and that BIRD has been reconfigured since; otherwise what is still missing.
///
/// confd writes the render, then asks BIRD to reload. BIRD 1.6 prints the time of its last
/// reconfiguration to the second, in local time, as `stat` prints the files' times on the same
/// host, but derived from its monotonic clock: it may be off by up to [`RELOAD_SLACK`]. A
/// reconfiguration clearly after the write counts; one clearly before does not; one within the
/// error counts once the render is [`RELOAD_SETTLE`] seconds old (confd reloads as it writes),
/// so that a reload of the previous render just before the write is never taken for this one.
pub fn render_loaded(
    transport: &Transport,
    host: &Host,
    ipv6: bool,
    name: &str,
    expected: &str,
    unplaced: &[ipnet::IpNet],
) -> Result<Option<String>, String> {
    let root = if ipv6 { crate::verify::IPV6_RENDER } else { crate::verify::IPV4_RENDER };
    let mut live = crate::verify::read_render(transport, host, root);
    if let Some(error) = live.render_error.as_ref().or(live.render6_error.as_ref()) {
        return Ok(Some(format!("calico-node's render cannot be read: {error}")));
    }
    // Blocks of pools the plan could only forecast are Calico's IPAM's to place: compared
    // without them.
    let expected = crate::verify::without_blocks_in(expected, unplaced);
    for text in live.files.values_mut() {
        *text = crate::verify::without_blocks_in(text, unplaced);
    }
    if let Some(first) = crate::verify::render_differences(name, &expected, &live, root).first() {
        return Ok(Some(format!("confd has not rendered the predicted configuration yet ({})", first.describe())));
    }
    let paths: Vec<String> = live.files.keys().map(|file| format!("{}/{file}", live.confd_dir)).collect();
    let mut command = vec!["stat", "-c", "%y", "--"];
    command.extend(paths.iter().map(String::as_str));
    let output = transport.run(host, &command, None)?;
    if !output.success {
        return Ok(Some(format!("`stat` of the render failed: {}", output.stderr.trim())));
    }
    let Some(written) = output.stdout.lines().filter_map(LocalTime::parse).max() else {
        return Ok(Some(format!("`stat` printed no time for the render: {}", output.stdout.trim())));
    };
    let client = bird_client(host, NodeAgent::CalicoNode);
    let sockets = bird_sockets(host, NodeAgent::CalicoNode);
    let Some(socket) = sockets.get(usize::from(ipv6)) else {
        return Err(format!("no IPv6 BIRD socket is known for {}", transport.describe(host)));
    };
    let output = transport.run(host, &[&client, "-s", socket, "show", "status"], None)?;
    let loaded = output.stdout.lines().find_map(|line| line.trim().strip_prefix("Last reconfiguration on ")).and_then(LocalTime::parse);
    let Some(loaded) = loaded else {
        return Ok(Some(format!("`{client} -s {socket} show status` names no reconfiguration: {}", output.stdout.trim())));
    };
    if loaded.seconds + RELOAD_SLACK < written.seconds {
        return Ok(Some(format!(
            "BIRD has not loaded confd's render yet (written {}, last reconfiguration {})",
            written.text, loaded.text
        )));
    }
    // Within BIRD's error a reload just before the write and one just after read alike; confd
    // reloads as soon as it has written, so once the render is old enough, the reload that
    // followed it has happened.
    let output = transport.run(host, &["date", "+%Y-%m-%d %H:%M:%S"], None)?;
    let Some(now) = output.stdout.lines().find_map(LocalTime::parse) else {
        return Ok(Some(format!("`date` printed no time: {}", output.stdout.trim())));
    };
    if loaded.seconds < written.seconds + RELOAD_SLACK && now.seconds < written.seconds + RELOAD_SETTLE {
        return Ok(Some(format!(
            "confd's render (written {}) is too recent to tell whether BIRD's last reconfiguration ({}) followed it",
            written.text, loaded.text
        )));
    }
    Ok(None)
}

/// How far BIRD 1.6's "Last reconfiguration" may be from the true time, in whole seconds: it
/// converts its monotonic clock, both clocks truncated to the second (observed: a reload 0.1 s
/// after a write, reported a second before it).
const RELOAD_SLACK: i64 = 2;

/// How old a render must be, in seconds, before a reconfiguration reported within
/// [`RELOAD_SLACK`] of its write is taken to have followed it.
const RELOAD_SETTLE: i64 = 4;

/// A local time to the second, as `stat` (`2026-12-05 00:27:55.825788218 +0000`) and BIRD
/// (`2026-12-05 00:27:55`) print it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct LocalTime {
    seconds: i64,
    text: String,
}

impl LocalTime {
    fn parse(text: &str) -> Option<LocalTime> {
        let text = text.trim().get(..19)?;
        let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
        let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
        if separators.iter().any(|(index, byte)| text.as_bytes()[*index] != *byte) {
            return None;
        }
        let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
        let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        Some(LocalTime { seconds: days * 86_400 + hour * 3600 + minute * 60 + second, text: text.to_string() })
    }
}
