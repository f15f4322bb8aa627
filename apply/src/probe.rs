//! Reading live state for barriers: BIRD's protocol table and the kernel's routes.

use std::collections::BTreeMap;

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
