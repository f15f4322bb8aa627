//! Felix's endpoint status files: one JSON object per local workload, which Felix writes on
//! each node under `/var/run/calico/endpoint-status/` (libcalico-go's `epstatusfile`):
//! `{"ifaceName", "mac", "ipv4Nets", "ipv6Nets", "bgpPeerName"}`. confd peers with the
//! workloads whose file names a BGPPeer (`bgpPeerName`), at the first address of each family.
//!
//! No datastore holds these files; the node they come from is told by where they were saved:
//! `endpoint-status/<node>/<file>`, as collected from each node.

use crate::current::Read;
use crate::current::calico_yaml::UNREADABLE_STATE;
use calplan_calico::peering::LocalWorkload;
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId, Severity, Span};
use ipnet::IpNet;

/// The directory the files are kept in, on a node and in a collection of them.
pub const DIRECTORY: &str = "endpoint-status";

/// Whether a text is an endpoint status file: a JSON object with Felix's field names.
pub fn sniff(text: &str) -> bool {
    let trimmed = text.trim_start();
    trimmed.starts_with('{') && (text.contains("\"bgpPeerName\"") || text.contains("\"ifaceName\"")) && !text.contains("\"apiVersion\"")
}

/// The node a status file belongs to, from its path: the directory it lies in, inside
/// [`DIRECTORY`]; `None` when the path does not say.
pub fn node_of(directory: Option<&str>, parent_of_directory: Option<&str>) -> Option<String> {
    let node = directory?;
    (parent_of_directory == Some(DIRECTORY) && calplan_model::lower::is_dns_subdomain(node)).then(|| node.to_string())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusFile {
    #[serde(default)]
    ipv4_nets: Vec<String>,
    #[serde(default)]
    ipv6_nets: Vec<String>,
    #[serde(default)]
    bgp_peer_name: String,
}

/// Reads one status file of `node`, named `file_name`: the local workload confd peers with,
/// or `None` when the file names no BGPPeer (confd forgets it) or gives no usable address.
pub fn read(file: FileId, text: &str, node: &str, file_name: &str) -> Read<Option<LocalWorkload>> {
    let mut diagnostics = Diagnostics::new();
    let whole = Span::new(file, 0, text.trim_end().len());
    let status: StatusFile = match serde_json::from_str(text) {
        Ok(status) => status,
        Err(error) => {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, whole, format!("not an endpoint status file Felix writes: {error}")).label("here").help(
                    "expected `{\"ifaceName\", \"ipv4Nets\", \"ipv6Nets\", \"bgpPeerName\"}` from `/var/run/calico/endpoint-status/`",
                ),
            );
            return Read { value: None, diagnostics };
        }
    };
    if status.bgp_peer_name.is_empty() {
        return Read { value: Some(None), diagnostics };
    }
    let ignored = |diagnostics: &mut Diagnostics, message: String| {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, whole, format!("{message}: confd ignores this workload"))
                .severity(Severity::Warning)
                .label("ignored"),
        );
    };
    if !calplan_model::lower::is_dns_subdomain(&status.bgp_peer_name) {
        ignored(&mut diagnostics, format!("`bgpPeerName` `{}` is not a BGPPeer's name", status.bgp_peer_name));
        return Read { value: Some(None), diagnostics };
    }
    // confd's `GetActiveLocalBGPPeers`: the first network of each family, read as a CIDR.
    let mut first = |nets: &[String], family: &str| -> Result<Option<std::net::IpAddr>, ()> {
        let Some(net) = nets.first() else { return Ok(None) };
        match net.parse::<IpNet>() {
            Ok(net) => Ok(Some(net.addr())),
            Err(_) => {
                ignored(&mut diagnostics, format!("the first of `{family}` (`{net}`) is not a CIDR"));
                Err(())
            }
        }
    };
    let (Ok(ipv4), Ok(ipv6)) = (first(&status.ipv4_nets, "ipv4Nets"), first(&status.ipv6_nets, "ipv6Nets")) else {
        return Read { value: Some(None), diagnostics };
    };
    let ipv4 = ipv4.and_then(|ip| match ip {
        std::net::IpAddr::V4(ip) => Some(ip),
        std::net::IpAddr::V6(_) => None,
    });
    let ipv6 = ipv6.and_then(|ip| match ip {
        std::net::IpAddr::V6(ip) => Some(ip),
        std::net::IpAddr::V4(_) => None,
    });
    if ipv4.is_none() && ipv6.is_none() {
        ignored(&mut diagnostics, "no address yet".to_string());
        return Read { value: Some(None), diagnostics };
    }
    let workload = LocalWorkload { node: node.to_string(), file: file_name.to_string(), bgp_peer_name: status.bgp_peer_name, ipv4, ipv6 };
    Read { value: Some(Some(workload)), diagnostics }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_gives_the_first_address_of_each_family() {
        let text = r#"{"ifaceName":"cali97e1defe654","ipv4Nets":["192.168.162.134/32","10.0.0.1/32"],"ipv6Nets":["fd00:10:244::a284/128"],"bgpPeerName":"peer-a"}"#;
        assert!(sniff(text));
        let read = read(FileId(0), text, "node-1", "pod1");
        assert!(read.diagnostics.is_empty());
        let workload = read.value.unwrap().unwrap();
        assert_eq!(workload.ipv4, Some("192.168.162.134".parse().unwrap()));
        assert_eq!(workload.ipv6, Some("fd00:10:244::a284".parse().unwrap()));
        assert_eq!((workload.node.as_str(), workload.bgp_peer_name.as_str()), ("node-1", "peer-a"));
    }

    #[test]
    fn a_workload_confd_ignores_is_said_and_left_out() {
        let no_peer = read(FileId(0), r#"{"ifaceName":"cali1","ipv4Nets":["10.0.0.1/32"]}"#, "n", "f");
        assert_eq!((no_peer.value, no_peer.diagnostics.is_empty()), (Some(None), true));
        let bad = read(FileId(0), r#"{"ipv4Nets":["10.0.0.1"],"bgpPeerName":"p"}"#, "n", "f");
        assert_eq!(bad.value, Some(None));
        assert!(bad.diagnostics.iter().any(|d| d.severity == Severity::Warning && d.message.contains("`10.0.0.1`")));
        let broken = read(FileId(0), "{\"bgpPeerName\": ", "n", "f");
        assert!(broken.value.is_none() && broken.diagnostics.has_errors());
    }

    #[test]
    fn the_node_is_the_directory_inside_endpoint_status() {
        assert_eq!(node_of(Some("kube-master"), Some("endpoint-status")).as_deref(), Some("kube-master"));
        assert_eq!(node_of(Some("kube-master"), Some("elsewhere")), None);
        assert_eq!(node_of(Some("Kube_Master"), Some("endpoint-status")), None);
    }
}
