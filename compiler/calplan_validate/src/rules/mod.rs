//! One rule per file, named for the problem it finds.

use calplan_diagnostics::{Diagnostics, Rule};
use calplan_model::Analysis;

mod block_size_out_of_range;
mod cidr_not_strictly_masked;
mod ipip_and_vxlan;
mod ipip_on_ipv6;
mod link_local_overlap;
mod pool_smaller_than_block;

pub type Check = fn(&Analysis, &mut Diagnostics);

/// The checks, in the order they run (their diagnostics are sorted by position afterwards).
pub static CHECKS: &[Check] = &[
    cidr_not_strictly_masked::check,
    block_size_out_of_range::check,
    pool_smaller_than_block::check,
    ipip_and_vxlan::check,
    ipip_on_ipv6::check,
    link_local_overlap::check,
];

pub static ALL: &[&Rule] = &[
    &cidr_not_strictly_masked::RULE,
    &block_size_out_of_range::RULE,
    &pool_smaller_than_block::RULE,
    &ipip_and_vxlan::RULE,
    &ipip_on_ipv6::RULE,
    &link_local_overlap::RULE,
];
