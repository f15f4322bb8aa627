//! calplan: a declarative config compiler and dry-run planner for Calico-networked
//! Kubernetes clusters.
//!
//! This crate is the command line: it parses arguments, reads inputs and writes outputs, and
//! calls the phases. The pure phases are crates under `compiler/` and `targets/`; the engines
//! with side effects are `calplan_apply` (`apply/`) and `calplan_lab` (`lab/`).
//! `ARCHITECTURE.md` has the map.

pub mod cli;
pub mod current;
pub mod pipeline;

pub use calplan_apply as apply;
pub use calplan_apply::{etcd, netns};
pub use calplan_lab as lab;
