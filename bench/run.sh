#!/bin/sh
# The data-path comparison, repeatable: overlay-bench (../shared/bench, or $OVERLAY_BENCH) with
# veth, wireguard-go, boringtun and zt in one run, TCP x1 and x4, T=10 s, R=3, ratios against
# wireguard-go. Run as root from anywhere; builds ztd and zt first (the shipped `dist` profile).
#
#   bench/run.sh                       # the table, JSON in bench-<date>.json
#   ZT_BEFORE=/path/dir bench/run.sh   # adds a row `zt-before` for the ztd/zt in that directory
#   BENCH_ARGS="-T 5 -R 1" bench/run.sh
#
# Keep the machine otherwise idle: every overlay shares its cores with iperf3 and the kernel.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${OVERLAY_BENCH:-$here/../shared/bench/overlay-bench}
[ -x "$bench" ] || { echo "overlay-bench not found at $bench (set OVERLAY_BENCH)" >&2; exit 1; }
(cd "$here" && cargo build --profile dist -p ztd -p zt)
only=veth,wireguard-go,boringtun
set --
if [ -n "${ZT_BEFORE:-}" ]; then
  only=$only,zt-before
  set -- --overlay "zt-before=env ZTD=$ZT_BEFORE/ztd ZT=$ZT_BEFORE/zt $here/bench/overlay-plugin.sh"
fi
only=$only,zt
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
exec "$bench" --only "$only" "$@" --overlay "zt=$here/bench/overlay-plugin.sh" \
  --baseline wireguard-go --json "bench-$(date +%Y%m%d-%H%M%S).json" ${BENCH_ARGS:--T 10 -R 3}
