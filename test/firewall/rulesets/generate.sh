#!/bin/sh
# Regenerates the canonical corpus from src/ with the real tools, once, as root:
#   iptables-restore -c / ip6tables-restore -c then iptables-save -c (iptables-nft)
#   nft -f then nft -j list ruleset
# Each file is loaded into its own scratch network namespace, deleted afterwards.
# Unit tests read the committed outputs and need neither root nor the tools.
set -eu
cd "$(dirname "$0")"
n=0
run() { # netns-name command...
	ns="ctlab-fwgen-$$-$n"; n=$((n + 1))
	ip netns add "$ns"
	trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
	ip netns exec "$ns" sh -c "$1"
	ip netns del "$ns"
	trap - EXIT
}
for f in src/*.rules; do
	b=$(basename "$f")
	case "$b" in
	*.v6.rules) run "ip6tables-restore -c < '$f' && ip6tables-save -c" > "$b" ;;
	*) run "iptables-restore -c < '$f' && iptables-save -c" > "$b" ;;
	esac
done
for f in src/*.nft; do
	b=$(basename "$f" .nft)
	run "nft -f '$f' && nft -j list ruleset" > "$b.nft.json"
done
