//! Sessions read through the Kubernetes API instead of `exec` (`apply --observe node-status`):
//! calplan creates a `CalicoNodeStatus` (`projectcalico.org/v3`, Calico ≥ 3.22) naming a node,
//! calico-node on that node fills its `status.bgp` from BIRD, calplan reads it and deletes the
//! resource again.
//!
//! Calico's documentation asks for fewer than ten such resources at a time, and for deleting
//! them after use: a barrier observes at most [`MAX_AT_ONCE`] nodes per round — the route
//! reflectors in every round (their sessions carry everyone's routes), the other nodes in turn,
//! a window at a time, until each has been seen with its sessions Established — and every
//! resource it created is deleted when the round ends, also when the apply fails or stops.
//!
//! calico-node derives a peer's `peerIP` and `type` from BIRD's protocol name (`Mesh_10_0_0_1`
//! → `NodeMesh`, `10.0.0.1`; `node/pkg/status/populators/peers.go`), so the protocol names a
//! barrier waits for map back exactly.

use crate::observe::{ProtocolRow, Sessions};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many `CalicoNodeStatus` resources exist at once (Calico's documentation: fewer
/// than ten for debugging; ten is the bound the issue states).
pub const MAX_AT_ONCE: usize = 10;

/// How often calico-node refreshes a status calplan created, in seconds.
const UPDATE_PERIOD_SECONDS: u32 = 2;

/// Which nodes a barrier observes in each round, and which it has seen Established.
#[derive(Clone, Debug)]
pub struct Rotation {
    reflectors: Vec<String>,
    others: Vec<String>,
    reflector_cursor: usize,
    other_cursor: usize,
    /// Nodes seen with every expected session Established: a reflector by its latest
    /// observation, any other node once.
    confirmed: BTreeSet<String>,
}

impl Rotation {
    /// The barrier's nodes; `reflectors` (those of them that are route reflectors) come first.
    pub fn new(nodes: &[String], reflectors: &[String]) -> Rotation {
        let reflectors: Vec<String> = nodes.iter().filter(|node| reflectors.contains(node)).cloned().collect();
        let others = nodes.iter().filter(|node| !reflectors.contains(node)).cloned().collect();
        Rotation { reflectors, others, reflector_cursor: 0, other_cursor: 0, confirmed: BTreeSet::new() }
    }

    /// The nodes to observe next: the reflectors (in turn, if there are more than fit), then
    /// the other nodes not yet confirmed, in turn, up to [`MAX_AT_ONCE`] in all.
    pub fn sample(&mut self) -> Vec<String> {
        let mut sample = Vec::new();
        let take = self.reflectors.len().min(MAX_AT_ONCE);
        for offset in 0..take {
            sample.push(self.reflectors[(self.reflector_cursor + offset) % self.reflectors.len()].clone());
        }
        if !self.reflectors.is_empty() {
            self.reflector_cursor = (self.reflector_cursor + take) % self.reflectors.len();
        }
        let waiting: Vec<&String> = self.others.iter().filter(|node| !self.confirmed.contains(*node)).collect();
        if !waiting.is_empty() {
            let room = MAX_AT_ONCE - sample.len();
            // The window starts at the first waiting node at or after the cursor.
            let start = waiting.iter().position(|node| self.others.iter().position(|other| other == *node) >= Some(self.other_cursor));
            let start = start.unwrap_or(0);
            for offset in 0..room.min(waiting.len()) {
                sample.push(waiting[(start + offset) % waiting.len()].clone());
            }
            if let Some(last) = sample.last() {
                self.other_cursor = self.others.iter().position(|other| other == last).map_or(0, |index| index + 1);
            }
        }
        sample
    }

    /// What a round saw of a node.
    pub fn record(&mut self, node: &str, established: bool) {
        if established {
            self.confirmed.insert(node.to_string());
        } else {
            self.confirmed.remove(node);
        }
    }

    /// Every node confirmed.
    pub fn done(&self) -> bool {
        self.reflectors.iter().chain(&self.others).all(|node| self.confirmed.contains(node))
    }

    /// How the barrier observes, in words, for the apply's progress.
    pub fn describe(&self) -> String {
        let reflectors = match self.reflectors.len() {
            0 => String::new(),
            count if count <= MAX_AT_ONCE => format!("the {count} route reflectors in every round, "),
            count => format!("the {count} route reflectors {MAX_AT_ONCE} at a time, in turn, "),
        };
        let room = MAX_AT_ONCE.saturating_sub(self.reflectors.len());
        let others = match (self.others.len(), room) {
            (0, _) => "no other node".to_string(),
            (_, 0) => format!("the {} other nodes once the reflectors are", self.others.len()),
            (count, room) if count <= room => format!("the {count} other nodes in every round until each is Established"),
            (count, room) => format!("the {count} other nodes {room} per round, in turn, until each has been seen Established"),
        };
        format!("through CalicoNodeStatus, at most {MAX_AT_ONCE} at a time: {reflectors}{others}")
    }

    /// The nodes not confirmed yet.
    pub fn pending(&self) -> Vec<&String> {
        self.reflectors.iter().chain(&self.others).filter(|node| !self.confirmed.contains(*node)).collect()
    }
}

/// The `CalicoNodeStatus` resources one apply creates, deleted when a round ends and, for any
/// a failure left behind, when it is dropped.
pub struct NodeStatusReader {
    program: String,
    created: Mutex<BTreeSet<String>>,
}

/// The resource's name for a node: `calplan-<node>`, or a digest where that is too long for a
/// Kubernetes name.
pub fn resource_name(node: &str) -> String {
    let name = format!("calplan-{}", node.to_ascii_lowercase());
    if name.len() <= 253 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        name
    } else {
        format!("calplan-{}", &calplan_plan::current::text_digest(node)[..16])
    }
}

impl NodeStatusReader {
    pub fn new(program: String) -> NodeStatusReader {
        NodeStatusReader { program, created: Mutex::new(BTreeSet::new()) }
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("cannot run `{}`: {error}", self.program))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes()).map_err(|error| format!("cannot feed `{}`: {error}", self.program))?;
        }
        let output = child.wait_with_output().map_err(|error| format!("`{}`: {error}", self.program))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!("`{} {}` failed: {}", self.program, args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
        }
    }

    /// One round: creates a status for each node (at most [`MAX_AT_ONCE`]), waits up to
    /// `within` for calico-node to fill them, reads them and deletes them. A node whose status
    /// was not filled in time is missing from the result, with the reason.
    pub fn read(&self, nodes: &[String], within: Duration) -> Result<BTreeMap<String, Result<Sessions, String>>, String> {
        assert!(nodes.len() <= MAX_AT_ONCE, "a round observes at most {MAX_AT_ONCE} nodes");
        let result = self.read_round(nodes, within);
        let deleted = self.delete(nodes);
        let observed = result?;
        deleted?;
        Ok(observed)
    }

    fn read_round(&self, nodes: &[String], within: Duration) -> Result<BTreeMap<String, Result<Sessions, String>>, String> {
        for node in nodes {
            let name = resource_name(node);
            let resource = serde_json::json!({
                "apiVersion": "projectcalico.org/v3",
                "kind": "CalicoNodeStatus",
                "metadata": { "name": name, "labels": { "app.kubernetes.io/managed-by": "calplan" } },
                "spec": { "node": node, "classes": ["BGP"], "updatePeriodSeconds": UPDATE_PERIOD_SECONDS },
            });
            self.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(name.clone());
            self.kubectl(&["apply", "--filename", "-"], Some(&resource.to_string()))?;
        }
        let deadline = Instant::now() + within;
        let mut observed: BTreeMap<String, Result<Sessions, String>> = BTreeMap::new();
        loop {
            let unread: Vec<&String> = nodes.iter().filter(|node| !matches!(observed.get(*node), Some(Ok(_)))).collect();
            for node in unread {
                let text = self.kubectl(&["get", "caliconodestatus", &resource_name(node), "--output", "json"], None)?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|error| format!("`kubectl get caliconodestatus` printed what calplan cannot read: {error}"))?;
                let filled = value["status"]["lastUpdated"].as_str().is_some_and(|time| !time.is_empty());
                let result = if filled {
                    Ok(sessions_of(&value["status"]["bgp"]))
                } else {
                    Err(format!("calico-node on `{node}` has not filled its CalicoNodeStatus"))
                };
                observed.insert(node.clone(), result);
            }
            if observed.values().all(Result::is_ok) || Instant::now() >= deadline {
                return Ok(observed);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn delete(&self, nodes: &[String]) -> Result<(), String> {
        let mut problems = Vec::new();
        for node in nodes {
            let name = resource_name(node);
            match self.kubectl(&["delete", "caliconodestatus", &name, "--ignore-not-found"], None) {
                Ok(_) => {
                    self.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&name);
                }
                Err(error) => problems.push(error),
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}

impl Drop for NodeStatusReader {
    fn drop(&mut self) {
        let left: Vec<String> =
            std::mem::take(&mut *self.created.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_iter().collect();
        for name in left {
            let _ = self.kubectl(&["delete", "caliconodestatus", &name, "--ignore-not-found"], None);
        }
    }
}

/// `status.bgp` as the sessions table a barrier compares: each peer back under the protocol
/// name calico-node read it from.
pub fn sessions_of(bgp: &serde_json::Value) -> Sessions {
    let mut sessions = Sessions::default();
    for (family, separator) in [("peersV4", '.'), ("peersV6", ':')] {
        for peer in bgp[family].as_array().into_iter().flatten() {
            let (Some(address), Some(kind)) = (peer["peerIP"].as_str(), peer["type"].as_str()) else { continue };
            let prefix = match kind {
                "NodeMesh" => "Mesh",
                "NodePeer" => "Node",
                "GlobalPeer" => "Global",
                _ => continue,
            };
            let name = format!("{prefix}_{}", address.replace(separator, "_"));
            let state = peer["state"].as_str().unwrap_or_default().to_string();
            sessions.rows.insert(name.clone(), ProtocolRow { name, protocol: "BGP".into(), state: String::new(), info: state });
        }
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, count: usize) -> Vec<String> {
        (0..count).map(|index| format!("{prefix}{index:02}")).collect()
    }

    #[test]
    fn reflectors_every_round_the_rest_in_turn_never_more_than_ten() {
        let reflectors = names("rr", 2);
        let mut nodes = names("n", 30);
        nodes.extend(reflectors.clone());
        let mut rotation = Rotation::new(&nodes, &reflectors);
        assert!(rotation.describe().contains("the 2 route reflectors in every round, the 30 other nodes 8 per round"));
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut rounds = 0;
        while !rotation.done() {
            let sample = rotation.sample();
            assert!(sample.len() <= MAX_AT_ONCE);
            assert_eq!(&sample[..2], &reflectors[..], "reflectors come first, every round");
            for node in &sample {
                // n07 is slow: Established only from the third round on.
                let established = node != "n07" || rounds >= 2;
                rotation.record(node, established);
                seen.insert(node.clone());
            }
            rounds += 1;
            assert!(rounds < 10, "the rotation never ends: {:?}", rotation.pending());
        }
        assert_eq!(seen.len(), 32);
        // 30 others, 8 per round: 4 rounds, and n07 seen again until it is up.
        assert!((4..=6).contains(&rounds), "{rounds} rounds");
        // A reflector that drops is pending again.
        rotation.record("rr01", false);
        assert!(!rotation.done());
    }

    #[test]
    fn many_reflectors_take_turns_too() {
        let reflectors = names("rr", 14);
        let mut rotation = Rotation::new(&reflectors, &reflectors);
        let first = rotation.sample();
        let second = rotation.sample();
        assert_eq!(first.len(), MAX_AT_ONCE);
        assert!(second.contains(&"rr13".to_string()) && second.contains(&"rr00".to_string()), "{second:?}");
    }

    #[test]
    fn status_peers_map_back_to_protocol_names() {
        let bgp: serde_json::Value = serde_json::from_str(
            r#"{"numberEstablishedV4": 1, "peersV4": [
                {"peerIP": "10.0.0.2", "type": "NodeMesh", "state": "Established", "since": "09:19:28"},
                {"peerIP": "10.0.0.9", "type": "NodePeer", "state": "Active", "since": "09:19:28"}],
              "peersV6": [{"peerIP": "fd00::9", "type": "GlobalPeer", "state": "Established"}]}"#,
        )
        .unwrap();
        let sessions = sessions_of(&bgp);
        assert!(sessions.rows["Mesh_10_0_0_2"].is_established());
        assert!(!sessions.rows["Node_10_0_0_9"].is_established());
        assert!(sessions.rows["Global_fd00__9"].is_established());
        assert!(resource_name("cs1-k8s-n1.zpepc.com.cn") == "calplan-cs1-k8s-n1.zpepc.com.cn");
    }
}
