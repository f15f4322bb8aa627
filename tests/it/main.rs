//! calplan's one integration-test binary: scenarios as data, the CLI, the real tools.
//!
//! Tests that need root, a namespace or a server say so in their names; CI runs them as root.

mod allow;
mod apply;
mod apply_hosts;
mod bird;
mod calico_node;
mod cli;
mod compile;
mod confd;
mod current;
mod etcd_tls;
mod golden;
mod hostile;
mod kubernetes_sources;
mod lab;
mod laws;
mod limits;
mod never_panics;
mod node_rules;
mod operator;
mod review;
mod routers;
mod rules;
mod scale;
mod scenarios;
mod schema;
mod verify;
