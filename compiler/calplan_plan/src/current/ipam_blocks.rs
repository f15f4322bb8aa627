//! `calicoctl ipam show` and `calicoctl ipam show --show-blocks`: addresses in use per pool
//! and, with `--show-blocks`, per block.
//!
//! Columns are found by name, so every release's table reads: `GROUPING | CIDR | IPS TOTAL |
//! IPS IN USE | IPS FREE` (v3.32 and older, tablewriter), with `IPS RESERVED` after `IPS IN
//! USE` (newer, go-pretty) and `IPS COOLING` last (newest). `IP Pool` rows precede their
//! blocks; orphaned blocks (no pool any more) print without a pool row.
//!
//! Numbers are printed with Go's `%.5g` (`fmt.Sprintf("%.5g (%.f%%)", …)` in calicoctl's
//! `show.go`): exact below 100000, five significant digits above (`1.2089e+24`). A block is at
//! most a few thousand addresses, so block counts are exact; large pool counts are kept as
//! rounded and marked so.
//!
//! The table does not say which node holds a block: block affinities (and their `pending` /
//! `confirmed` state) are in the datastore only, so they come from `etcd://HOST:PORT` (or an
//! earlier apply), never from this reader. Pure: text in, counts and diagnostics out.

use crate::current::Read;
use crate::current::calico_yaml::UNREADABLE_STATE;
use crate::current::table::{self, Cell, Table};
use calplan_diagnostics::{Diagnostic, Diagnostics, FileId};
use ipnet::IpNet;
use std::collections::BTreeMap;

const WHAT: &str = "`calicoctl ipam show --show-blocks`";

/// A count as printed: `exact` is false when `%.5g` rounded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Count {
    pub value: u128,
    pub exact: bool,
}

/// One row of the table: a pool or a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub cidr: IpNet,
    pub total: Option<Count>,
    pub in_use: Count,
    /// Only newer calicoctl prints `IPS RESERVED`.
    pub reserved: Option<Count>,
    pub free: Option<Count>,
}

/// Everything `ipam show` said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpamUsage {
    pub pools: BTreeMap<IpNet, Usage>,
    pub blocks: BTreeMap<IpNet, Usage>,
}

impl IpamUsage {
    /// Addresses in use per block, when the table says: with `--show-blocks`, or when no pool
    /// has an address in use (so no block does either). `None` for a plain `ipam show` of a
    /// pool in use, whose blocks are unknown.
    pub fn block_usage(&self) -> Option<BTreeMap<IpNet, u64>> {
        let known = !self.blocks.is_empty() || self.pools.values().all(|pool| pool.in_use.value == 0);
        known.then(|| self.blocks.iter().map(|(cidr, usage)| (*cidr, u64::try_from(usage.in_use.value).unwrap_or(u64::MAX))).collect())
    }
}

pub fn read(file: FileId, text: &str) -> Read<IpamUsage> {
    let mut diagnostics = Diagnostics::new();
    let Some(table) = table::read(file, text, WHAT, &mut diagnostics) else {
        return Read { value: None, diagnostics };
    };
    let value = read_table(&table, &mut diagnostics);
    let value = value.filter(|_| !diagnostics.has_errors());
    Read { value, diagnostics }
}

fn read_table(table: &Table, diagnostics: &mut Diagnostics) -> Option<IpamUsage> {
    let mut missing = Vec::new();
    let mut required = |name: &str| {
        let index = table.column(name);
        if index.is_none() {
            missing.push(format!("`{name}`"));
        }
        index
    };
    let (grouping, cidr, in_use) = (required("GROUPING"), required("CIDR"), required("IPS IN USE"));
    let (Some(grouping), Some(cidr_column), Some(in_use)) = (grouping, cidr, in_use) else {
        diagnostics.push(
            Diagnostic::new(&UNREADABLE_STATE, table.header_span, format!("the table has no {} column", missing.join(", ")))
                .label(format!("columns: {}", table.column_names()))
                .help(format!("expected {WHAT}: `GROUPING | CIDR | IPS TOTAL | IPS IN USE | IPS FREE`")),
        );
        return None;
    };
    let (total, reserved, free) = (table.column("IPS TOTAL"), table.column("IPS RESERVED"), table.column("IPS FREE"));
    let mut usage = IpamUsage::default();
    for row in &table.rows {
        let Some(cidr) = parse_cidr(&row.cells[cidr_column], diagnostics) else {
            continue;
        };
        let optional =
            |column: Option<usize>, diagnostics: &mut Diagnostics| column.and_then(|index| parse_count(&row.cells[index], diagnostics));
        let Some(in_use) = parse_count(&row.cells[in_use], diagnostics) else {
            continue;
        };
        let entry = Usage {
            cidr,
            total: optional(total, diagnostics),
            in_use,
            reserved: optional(reserved, diagnostics),
            free: optional(free, diagnostics),
        };
        let kind = &row.cells[grouping];
        match kind.text.as_str() {
            "IP Pool" => {
                usage.pools.insert(cidr, entry);
            }
            "Block" => {
                usage.blocks.insert(cidr, entry);
            }
            other => diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, kind.span, format!("unknown grouping `{other}`"))
                    .label("expected `IP Pool` or `Block`")
                    .help(format!("pass {WHAT} unedited")),
            ),
        }
    }
    Some(usage)
}

fn parse_cidr(cell: &Cell, diagnostics: &mut Diagnostics) -> Option<IpNet> {
    match cell.text.parse::<IpNet>() {
        Ok(cidr) => Some(cidr),
        Err(_) => {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, cell.span, format!("`{}` is not a CIDR", cell.text))
                    .label("expected a pool or block CIDR such as `10.65.79.0/26`"),
            );
            None
        }
    }
}

/// Reads `5 (8%)`, `65536` or `1.2089e+24 (100%)`: the number before any percentage.
fn parse_count(cell: &Cell, diagnostics: &mut Diagnostics) -> Option<Count> {
    let number = cell.text.split_whitespace().next().unwrap_or("");
    let exact = !number.contains(['.', 'e', 'E']);
    let value = if exact {
        number.parse::<u128>().ok()
    } else {
        number.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(|v| v.round() as u128)
    };
    match value {
        Some(value) => Some(Count { value, exact }),
        None => {
            diagnostics.push(
                Diagnostic::new(&UNREADABLE_STATE, cell.span, format!("`{}` is not an address count", cell.text))
                    .label("expected a count such as `5 (8%)` or `1.2089e+24`"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn read_ok(text: &str) -> IpamUsage {
        let read = read(FileId(0), text);
        assert!(read.diagnostics.is_empty(), "{:?}", read.diagnostics);
        read.value.unwrap()
    }

    /// calicoctl's own FV test (`calicoctl/tests/fv/ipam_test.go`): mixed block sizes, IPv6.
    const V3_32_SHOW_BLOCKS: &str = "\
+----------+-------------------------------------------+------------+------------+-------------------+
| GROUPING |                   CIDR                    | IPS TOTAL  | IPS IN USE |     IPS FREE      |
+----------+-------------------------------------------+------------+------------+-------------------+
| IP Pool  | 10.65.0.0/16                              |      65536 | 5 (0%)     | 65531 (100%)      |
| Block    | 10.65.79.0/26                             |         64 | 5 (8%)     | 59 (92%)          |
| IP Pool  | 10.66.0.0/16                              |      65536 | 11 (0%)    | 65525 (100%)      |
| Block    | 10.66.137.224/29                          |          8 | 8 (100%)   | 0 (0%)            |
| Block    | 10.66.137.232/29                          |          8 | 3 (38%)    | 5 (62%)           |
| IP Pool  | fd5f:abcd:64::/48                         | 1.2089e+24 | 7 (0%)     | 1.2089e+24 (100%) |
| Block    | fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122 |         64 | 7 (11%)    | 57 (89%)          |
+----------+-------------------------------------------+------------+------------+-------------------+
";

    #[test]
    fn reads_the_v3_32_table_with_blocks() {
        let usage = read_ok(V3_32_SHOW_BLOCKS);
        assert_eq!(usage.pools.len(), 3);
        assert_eq!(usage.pools[&net("10.66.0.0/16")].in_use, Count { value: 11, exact: true });
        let v6 = &usage.pools[&net("fd5f:abcd:64::/48")];
        assert!(!v6.total.unwrap().exact);
        assert_eq!(v6.total.unwrap().value / 10u128.pow(20), 12089, "five significant digits");
        let blocks = usage.block_usage().unwrap();
        assert_eq!(blocks[&net("10.66.137.224/29")], 8);
        assert_eq!(blocks[&net("fd5f:abcd:64:4f2c:ec1b:27b9:1989:77c0/122")], 7);
        assert_eq!(blocks.len(), 4);
    }

    /// The newer go-pretty table: right-aligned numbers and an `IPS RESERVED` column.
    #[test]
    fn reads_the_newer_table_with_reserved_addresses() {
        let text = "\
+----------+-------------------+-----------+------------+--------------+------------+
| GROUPING | CIDR              | IPS TOTAL | IPS IN USE | IPS RESERVED | IPS FREE   |
+----------+-------------------+-----------+------------+--------------+------------+
| IP Pool  | 10.192.228.0/22   |      1024 |    37 (4%) |       0 (0%) | 987 (96%)  |
| Block    | 10.192.230.128/26 |        64 |     3 (5%) |       0 (0%) |  61 (95%)  |
| Block    | 10.192.230.192/26 |        64 |   10 (16%) |       2 (3%) |  52 (81%)  |
+----------+-------------------+-----------+------------+--------------+------------+
";
        let usage = read_ok(text);
        let block = &usage.blocks[&net("10.192.230.192/26")];
        assert_eq!(block.in_use.value, 10);
        assert_eq!(block.reserved, Some(Count { value: 2, exact: true }));
        assert_eq!(usage.block_usage().unwrap().values().sum::<u64>(), 13);
    }

    /// Plain `ipam show` (calicoctl's reference page): pool totals only, blocks unknown.
    #[test]
    fn plain_ipam_show_gives_pool_totals_only() {
        let text = "\
+----------+-------------------+------------+------------+-------------------+
| GROUPING |       CIDR        | IPS TOTAL  | IPS IN USE |     IPS FREE      |
+----------+-------------------+------------+------------+-------------------+
| IP Pool  | 10.65.0.0/16      |      65536 | 5 (0%)     | 65531 (100%)      |
| IP Pool  | fd5f:abcd:64::/48 | 1.2089e+24 | 7 (0%)     | 1.2089e+24 (100%) |
+----------+-------------------+------------+------------+-------------------+
";
        let usage = read_ok(text);
        assert_eq!(usage.pools[&net("10.65.0.0/16")].in_use.value, 5);
        assert_eq!(usage.block_usage(), None, "blocks of a pool in use are unknown");
    }

    #[test]
    fn large_counts_are_rounded_and_marked() {
        let text = "\
| GROUPING | CIDR          | IPS TOTAL  | IPS IN USE        | IPS FREE          |
+----------+---------------+------------+-------------------+-------------------+
| IP Pool  | 10.0.0.0/8    | 1.6777e+07 | 1.2346e+05 (1%)   | 1.6654e+07 (99%)  |
";
        let usage = read_ok(text);
        assert_eq!(usage.pools[&net("10.0.0.0/8")].in_use, Count { value: 123_460, exact: false });
    }

    #[test]
    fn a_bad_cidr_and_a_bad_count_are_located() {
        let text = "\
+----------+---------------+-----------+------------+----------+
| GROUPING | CIDR          | IPS TOTAL | IPS IN USE | IPS FREE |
+----------+---------------+-----------+------------+----------+
| Block    | 10.65.79.0/99 |        64 | 5 (8%)     | 59 (92%) |
| Block    | 10.65.79.64/26 |       64 | lots       | 59 (92%) |
+----------+---------------+-----------+------------+----------+
";
        let read = read(FileId(0), text);
        assert!(read.value.is_none());
        let messages: Vec<(u32, &str)> = read.diagnostics.iter().map(|d| (d.span().start, d.message.as_str())).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(&text[messages[0].0 as usize..][..13], "10.65.79.0/99");
        assert_eq!(messages[1].1, "`lots` is not an address count");
    }

    #[test]
    fn a_table_of_something_else_names_the_missing_columns() {
        let text = "\
+--------------+-----------+
| PEER ADDRESS | PEER TYPE |
+--------------+-----------+
";
        let read = read(FileId(0), text);
        assert!(read.value.is_none());
        let message = &read.diagnostics.iter().next().unwrap().message;
        assert_eq!(message, "the table has no `GROUPING`, `CIDR`, `IPS IN USE` column");
    }
}
