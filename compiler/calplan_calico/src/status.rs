//! `calicoctl node status`, predicted: the table of peers each node's BIRD would report.

use crate::peering::{PeerType, Peerings};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One row of the table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRow {
    pub peer_address: String,
    pub peer_type: PeerType,
    #[serde(skip)]
    pub ipv6: bool,
}

/// Every node's rows, by node name.
pub fn rows(peerings: &Peerings) -> BTreeMap<String, Vec<StatusRow>> {
    (0..peerings.topology.nodes.len()).map(|index| (peerings.topology.nodes[index].name.clone(), node_rows(peerings, index))).collect()
}

/// One node's rows in the order its BIRD lists the protocols.
pub fn node_rows(peerings: &Peerings, index: usize) -> Vec<StatusRow> {
    peerings
        .for_node(index)
        .iter()
        .map(|peering| StatusRow {
            peer_address: peering.status_address(),
            peer_type: peering.peer_type,
            ipv6: matches!(peering.data.ip, IpAddr::V6(_)),
        })
        .collect()
}

/// The IPv4 and IPv6 sections of `calicoctl node status` for one node, with the columns calplan
/// can predict (address and type; state and timing only exist on a live node).
pub fn render_node(rows: &[StatusRow]) -> String {
    let mut out = String::new();
    for (title, ipv6) in [("IPv4", false), ("IPv6", true)] {
        out.push_str(&format!("{title} BGP status\n"));
        let family: Vec<[&str; 2]> =
            rows.iter().filter(|row| row.ipv6 == ipv6).map(|row| [row.peer_address.as_str(), row.peer_type.as_str()]).collect();
        if family.is_empty() {
            out.push_str(&format!("No {title} peers found.\n"));
        } else {
            out.push_str(&table(&["PEER ADDRESS", "PEER TYPE"], &family));
        }
        if !ipv6 {
            out.push('\n');
        }
    }
    out
}

/// A table in calicoctl's ASCII style: `+---+` rules, centred headings, left-aligned cells.
pub fn table<const N: usize>(headings: &[&str; N], rows: &[[&str; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|column| rows.iter().map(|row| row[column].chars().count()).chain([headings[column].len()]).max().unwrap_or(0))
        .collect();
    let rule: String = widths.iter().map(|width| format!("+{}", "-".repeat(width + 2))).collect::<String>() + "+\n";
    let mut out = rule.clone();
    for (column, heading) in headings.iter().enumerate() {
        let space = widths[column] - heading.len();
        let left = space / 2;
        out.push_str(&format!("| {}{}{} ", " ".repeat(left), heading, " ".repeat(space - left)));
    }
    out.push_str("|\n");
    out.push_str(&rule);
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            out.push_str(&format!("| {cell:<width$} ", width = widths[column]));
        }
        out.push_str("|\n");
    }
    out.push_str(&rule);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_calicoctl_layout() {
        let text = table(&["PEER ADDRESS", "PEER TYPE"], &[["21.49.22.7", "global"], ["21.49.22.8", "node-to-node mesh"]]);
        assert_eq!(
            text,
            "+--------------+-------------------+\n\
             | PEER ADDRESS |     PEER TYPE     |\n\
             +--------------+-------------------+\n\
             | 21.49.22.7   | global            |\n\
             | 21.49.22.8   | node-to-node mesh |\n\
             +--------------+-------------------+\n"
        );
    }
}
