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
