#!/bin/sh
# Routes towards cluster cs1 for router cs1-harbor-1, compiled by calplan.
#
# Idempotent: `ip route replace` installs or updates each route, marked with calplan's route
# protocol (252); then every route of that protocol not listed here is removed, so that
# routes calplan installed earlier go and no other route is touched.
set -eu

# services
ip route replace 10.96.0.0/12 via 21.49.22.8 proto 252
# pool default-ipv4-ippool
ip route replace 192.168.0.0/16 proto 252 nexthop via 21.49.22.7 nexthop via 21.49.22.8

# Removes the protocol-252 routes of one family that are not listed above. `ip route`
# prints a multipath route's next hops on lines of their own, starting with `nexthop`.
remove_stale() {
	routes=$(ip "$1" route show proto 252)
	printf '%s\n' "$routes" | while read -r first second rest; do
		case $first in
		'' | nexthop) continue ;;
		blackhole | unreachable | prohibit | throw) kind=$first destination=$second ;;
		*) kind='' destination=$first ;;
		esac
		case $destination in
		10.96.0.0/12 | 192.168.0.0/16) continue ;;
		esac
		# $kind is empty or one word: unquoted on purpose.
		ip "$1" route del $kind "$destination" proto 252
	done
}

remove_stale -4
# A host without IPv6 has no IPv6 routes to remove.
if ip -6 route show >/dev/null 2>&1; then
	remove_stale -6
fi
