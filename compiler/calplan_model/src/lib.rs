//! The resolved, typed intent and what follows from it alone: the Calico resources it
//! compiles to, where each pool's blocks go, and the BGP topology.
//!
//! Pure and deterministic: no I/O, no clocks, ordered collections only. Everything after this
//! crate sees typed values (`IpNet`, `AsNumber`, `NodeId`), never YAML.

pub mod analysis;
pub mod autodetect;
pub mod calico;
pub mod from_resources;
pub mod grammar;
pub mod graph;
pub mod graph_render;
pub mod ipam;
pub mod kubernetes;
pub mod lower;
pub mod model;
pub mod node_rules;
pub mod ownership;
pub mod rules;

pub use analysis::Analysis;
pub use lower::{lower, lower_with_cluster};
pub use model::*;
