//! Calico's own semantics, independent of calplan's intent: v3 resources, the selector
//! language, AS numbers, and the peerings calico-node's confd derives from a set of resources.
//!
//! Both sides of a plan meet here: the intent compiles to these resources, and current state
//! is read into them, so `status` means the same thing for either. Pure: no I/O.

mod as_number;
pub mod community;
mod duration;
pub mod fields;
pub mod installation;
pub mod peering;
pub mod release;
pub mod resources;
pub mod selector;
pub mod status;

pub use as_number::{AsNumber, AsNumberError};
pub use community::Community;
pub use duration::{GoDurationError, MAX_GO_DURATION_NANOSECONDS, duration_seconds, parse_go_duration, seconds_as_confd_rounds};
pub use release::Release;
pub use selector::{Selector, SelectorError};
