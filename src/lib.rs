//! calplan: a declarative config compiler and dry-run planner for Calico-networked
//! Kubernetes clusters.
//!
//! This crate is the edge: the command line, reading and writing files, and (in `apply` and
//! `lab`) the only code that runs programs or touches the network. The phases it drives are
//! pure crates under `compiler/` and `targets/`; `ARCHITECTURE.md` has the map.

pub mod apply;
pub mod cli;
pub mod current;
pub mod etcd;
pub mod lab;
pub mod netns;
pub mod pipeline;
