//! Planning: the cluster as it stands (read from exports, IPAM tables, route dumps, an earlier
//! apply, or etcd), the diff between it and what the intent compiles to, and the plan — the
//! changes cut into ordered stages with verification barriers between them.
//!
//! Pure: sources arrive as text (or as key-value pairs read by the CLI from etcd); nothing
//! here touches files, processes or the network, and the same inputs give the same plan.

pub mod current;
pub mod diff;
pub mod file;
pub mod file_text;
pub mod group;
pub mod import;
pub mod markdown;
pub mod plan;
pub mod planner;
pub mod render;
