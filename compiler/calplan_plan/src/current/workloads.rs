//! `calicoctl get workloadendpoints` tables: which pod holds which address on which node.
//!
//! Columns are found by name: `WORKLOAD NODE NETWORKS INTERFACE` (default), `NAME WORKLOAD
//! NODE NETWORKS INTERFACE PROFILES NATS` (`-o wide`), each with `NAMESPACE` first for `-A`.
//! calicoctl prints them through `text/tabwriter` (aligned columns, trailing padding, an empty
//! `NATS`); a bordered copy of the same table (tablewriter or go-pretty, wrapped cells
//! included) reads too. `NETWORKS` is comma-joined for dual-stack pods and may be empty for
//! an endpoint not yet given an address.
//!
//! A pod with several endpoints (Multus: `eth0`, `net1`) is one workload holding every
//! endpoint's addresses. Without a `NAMESPACE` column the namespace is unknown (calicoctl
//! listed one namespace without saying which). Pure: text in, workloads and diagnostics out.

use crate::current::calico_yaml::UNREADABLE_STATE;
use crate::current::table::{self, Cell};
use crate::current::{Holders, Read, Workload, workloads_of};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId};
use ipnet::IpNet;

const WHAT: &str = "`calicoctl get workloadendpoints -A -o wide`";

pub fn read(file: FileId, text: &str) -> Read<Vec<Workload>> {
    let mut diagnostics = Diagnostics::new();
    let Some(table) = table::read(file, text, WHAT, &mut diagnostics) else {
        return Read { value: None, diagnostics };
    };
    let (workload, node, networks) = (table.column("WORKLOAD"), table.column("NODE"), table.column("NETWORKS"));
    let (Some(workload_column), Some(node_column), Some(networks_column)) = (workload, node, networks) else {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, table.header_span, "the table has no `WORKLOAD`, `NODE` and `NETWORKS` columns")
                .label(format!("columns: {}", table.column_names()))
                .help(format!("expected {WHAT}")),
        );
        return Read { value: None, diagnostics };
    };
    let (namespace_column, name_column) = (table.column("NAMESPACE"), table.column("NAME"));
    // Keyed by namespace, workload and node, so a pod's endpoints merge.
    let mut workloads = Holders::new();
    for row in &table.rows {
        let cell = |index: usize| &row.cells[index];
        let mut name = cell(workload_column).text.clone();
        // Endpoints outside Kubernetes have no workload name; their endpoint name stands in.
        if name.is_empty() {
            name = name_column.map(|index| cell(index).text.clone()).unwrap_or_default();
        }
        if name.is_empty() {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, row.span, "an endpoint without a workload or endpoint name")
                    .label("expected a pod name under `WORKLOAD`"),
            );
            continue;
        }
        let namespace = namespace_column.map(|index| cell(index).text.clone()).filter(|namespace| !namespace.is_empty());
        let node = cell(node_column).text.clone();
        let Some(networks) = parse_networks(cell(networks_column), &mut diagnostics) else {
            continue;
        };
        workloads.entry((namespace, name, node)).or_default().extend(networks);
    }
    let workloads = workloads_of(workloads);
    let value = (!diagnostics.has_errors()).then_some(workloads);
    Read { value, diagnostics }
}

/// `192.168.0.65/32` or `192.168.195.194/32,fd00:10:244:0:58fd:b191:5c13:9cc1/128`; a wrapped
/// cell was joined with a space, so spaces separate too.
fn parse_networks(cell: &Cell, diagnostics: &mut Diagnostics) -> Option<Vec<IpNet>> {
    let mut networks = Vec::new();
    let mut ok = true;
    for piece in cell.text.split([',', ' ']).filter(|piece| !piece.is_empty()) {
        let parsed = piece.parse::<IpNet>().ok().or_else(|| piece.parse::<std::net::IpAddr>().ok().map(IpNet::from));
        match parsed {
            Some(network) => networks.push(network),
            None => {
                let offset = cell.text.find(piece).unwrap_or(0);
                diagnostics.push(
                    Diagnostic::new(&UNREADABLE_STATE, cell.span.sub(offset, offset + piece.len()), format!("`{piece}` is not an address"))
                        .label("expected an address such as `192.168.0.65/32`"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(networks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_ok(text: &str) -> Vec<Workload> {
        let read = read(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        read.value.unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    /// The seed's `calicoctl get workloadEndpoint --all-namespaces`, trailing padding kept.
    #[test]
    fn reads_the_seeds_namespaced_table() {
        let text = "\
NAMESPACE        WORKLOAD                                      NODE                      NETWORKS             INTERFACE         
cattle-system    cattle-cluster-agent-6c858f878b-xx5fl         cs1-k8s-m1.zpepc.com.cn   192.168.36.85/32     calib2b8b0c572a   
yxwyy            eunomia-cas-67fc99f4cb-f77st                  cs1-k8s-n3.zpepc.com.cn   192.168.11.236/32    calibe0045ced01   

";
        let workloads = read_ok(text);
        assert_eq!(
            workloads[0],
            Workload {
                namespace: Some("cattle-system".into()),
                name: "cattle-cluster-agent-6c858f878b-xx5fl".into(),
                node: "cs1-k8s-m1.zpepc.com.cn".into(),
                networks: vec![net("192.168.36.85/32")],
            }
        );
        assert_eq!(workloads[1].node, "cs1-k8s-n3.zpepc.com.cn");
    }

    /// `-o wide` without `-A` (calico PR 2371): no namespace, an empty `NATS` column.
    #[test]
    fn reads_the_wide_table_without_namespaces() {
        let text = "\
NAME                                            WORKLOAD               NODE          NETWORKS            INTERFACE         PROFILES                          NATS   
kube--node--0-k8s-nginx--5c7588df--4g2b9-eth0   nginx-5c7588df-4g2b9   kube-node-0   192.168.0.65/32     cali79b6f790a38   kns.default,ksa.default.default          
kube--node--3-k8s-nginx--5c7588df--dj66l-eth0   nginx-5c7588df-dj66l   kube-node-3   192.168.1.129/32    cali7a3f8f86b3a   kns.default,ksa.default.default          
";
        let workloads = read_ok(text);
        assert_eq!(workloads.len(), 2);
        assert_eq!(workloads[0].namespace, None);
        assert_eq!(workloads[1].name, "nginx-5c7588df-dj66l");
        assert_eq!(workloads[1].networks, [net("192.168.1.129/32")]);
    }

    /// The PR's real output, verbatim: its first row is a space short of its header, and the
    /// empty `NATS` leaves nothing to count by; each value goes to the nearest column.
    #[test]
    fn a_row_off_by_a_space_still_reads() {
        let text = "\
NAME                                            WORKLOAD               NODE          NETWORKS            INTERFACE         PROFILES                          NATS
kube--node--0-k8s-nginx--5c7588df--4g2b9-eth0   nginx-5c7588df-4g2b9   kube-node-0   192.168.0.65/32    cali79b6f790a38   kns.default,ksa.default.default
kube--node--3-k8s-nginx--5c7588df--dj66l-eth0   nginx-5c7588df-dj66l   kube-node-3   192.168.1.129/32   cali7a3f8f86b3a   kns.default,ksa.default.default
";
        let workloads = read_ok(text);
        assert_eq!(workloads[0].networks, [net("192.168.0.65/32")]);
        assert_eq!(workloads[1].node, "kube-node-3");
    }

    /// Multus: one pod, two endpoints (calico-enterprise docs), and a dual-stack pod.
    #[test]
    fn endpoints_of_one_pod_merge_and_dual_stack_splits() {
        let text = "\
NAMESPACE   NAME                                                            WORKLOAD            NODE                         NETWORKS                                                   INTERFACE         PROFILES                          NATS   
default     test--bo--72vg--kadm--infra--0-k8s-multus--test--pod--1-eth0   multus-test-pod-1   bryan-bo-72vg-kadm-infra-0   192.168.53.129/32                                          calif887e436e8b   kns.default,ksa.default.default          
default     test--bo--72vg--kadm--infra--0-k8s-multus--test--pod--1-net1   multus-test-pod-1   bryan-bo-72vg-kadm-infra-0   192.168.53.140/32                                          calim17CD6INXIX   kns.default,ksa.default.default          
default     node1-k8s-web--0-eth0                                           web-0               node1                        192.168.195.194/32,fd00:10:244:0:58fd:b191:5c13:9cc1/128   cali0123456789a   kns.default,ksa.default.default          
";
        let workloads = read_ok(text);
        assert_eq!(workloads.len(), 2);
        let multus = workloads.iter().find(|w| w.name == "multus-test-pod-1").unwrap();
        assert_eq!(multus.networks, [net("192.168.53.129/32"), net("192.168.53.140/32")]);
        let web = workloads.iter().find(|w| w.name == "web-0").unwrap();
        assert_eq!(web.networks.len(), 2);
        assert!(web.networks[1].addr().is_ipv6());
    }

    #[test]
    fn a_bordered_table_with_a_wrapped_networks_cell() {
        let text = "\
+-----------+-------------+-------+--------------------+-----------------+
| NAMESPACE |  WORKLOAD   | NODE  |      NETWORKS      |    INTERFACE    |
+-----------+-------------+-------+--------------------+-----------------+
| default   | web-0       | node1 | 192.168.195.194/32 | cali0123456789a |
|           |             |       | fd00:10:244::1/128 |                 |
| default   | web-1       | node2 | 192.168.1.7/32     | cali0123456789b |
+-----------+-------------+-------+--------------------+-----------------+
";
        let workloads = read_ok(text);
        assert_eq!(workloads[0].networks, [net("192.168.195.194/32"), net("fd00:10:244::1/128")]);
        assert_eq!(workloads[1].name, "web-1");
    }

    #[test]
    fn a_bad_address_is_located() {
        let text = "\
NAMESPACE   WORKLOAD   NODE    NETWORKS                   INTERFACE
default     web-0      node1   192.168.0.1/32,10.0.0.300  cali0123456789a
";
        let read = read(FileId(0), text);
        assert!(read.value.is_none());
        let diagnostic = read.diagnostics.iter().next().unwrap();
        assert_eq!(diagnostic.message, "`10.0.0.300` is not an address");
        assert_eq!(&text[diagnostic.span().start as usize..diagnostic.span().end as usize], "10.0.0.300");
    }
}
