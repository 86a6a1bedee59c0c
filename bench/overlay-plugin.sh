#!/bin/sh
# overlay-bench plug-in for zt (see shared bench README): CMD up|down NS_A NS_B WORKDIR
#
# up: makes a private planet whose root is a ztd in NS_B (port 9993), starts one ztd leaf
# in each namespace (NS_A port 9993, NS_B port 9994), joins both to the ad-hoc IPv4 network
# ff0b000000000001 (every member gets 11.x.y.z/8 derived from its ZeroTier address, so no
# controller is needed), and prints `pids:` and `SERVER_IP CLIENT_IP`.
# down: stops the three daemons by PID (their TAPs go with them) and clears WORKDIR.
# With ZT_BENCH_UDP_STATS=FILE, down first appends each namespace's UDP counters since up
# (/proc/net/snmp: RcvbufErrors are datagrams the kernel dropped for a full socket buffer).
#
# Binaries: $ZTD and $ZT, default target/dist/{ztd,zt} of this repository (build them
# with `cargo build --profile dist -p ztd -p zt`, as bench/run.sh does).
set -eu
act=$1 A=$2 B=$3 W=$4
here=$(cd "$(dirname "$0")/.." && pwd)
ZTD=${ZTD:-$here/target/dist/ztd}
ZT=${ZT:-$here/target/dist/zt}
NWID=ff0b000000000001
UNDER_B=${OVERLAY_BENCH_B_UNDERLAY:-10.91.0.2}

# wait_for SECONDS COMMAND...: retry until COMMAND succeeds, bounded.
wait_for() {
  limit=$1; shift; i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i+1)); [ "$i" -le $((limit*10)) ] || return 1; sleep 0.1
  done
}

# api NS PORT METHOD PATH [BODY]: the daemon's REST API, from inside its namespace.
api() {
  ns=$1 port=$2 method=$3 path=$4 body=${5:-}
  token=$(cat "$W/d$port/authtoken.secret")
  ip netns exec "$ns" curl -sf -m 10 -X "$method" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${body:+-d "$body"} "http://127.0.0.1:$port$path"
}

# start NS API_PORT ZT_PORT SECRET: one ztd with its zt1 instance enabled on ZT_PORT.
start() {
  ns=$1 port=$2 ztport=$3 secret=$4
  home=$W/d$port
  mkdir -p "$home/zt1"
  cp "$W/planet/planet" "$home/zt1/planet"
  ZTD_NO_DEFAULT_PLANET=1 ip netns exec "$ns" "$ZTD" --home "$home" \
    --api-listen "127.0.0.1:$port" >"$home/log" 2>&1 &
  echo $! >"$home/pid"
  wait_for 15 test -s "$home/authtoken.secret" || { echo "ztd in $ns did not start" >&2; exit 1; }
  wait_for 15 api "$ns" "$port" GET /health || { echo "ztd API in $ns not up" >&2; exit 1; }
  api "$ns" "$port" PATCH /rest/zerotier/zt1 \
    "{\"identity\":\"$(cat "$secret")\",\"port\":\"$ztport\",\"disabled\":\"no\"}" >/dev/null
}

# The overlay IPv4 of an identity on $NWID: 11.<last three address bytes>.
overlay_ip() {
  addr=$(cut -d: -f1 "$1")
  printf '11.%d.%d.%d\n' "0x$(echo "$addr" | cut -c5-6)" "0x$(echo "$addr" | cut -c7-8)" \
    "0x$(echo "$addr" | cut -c9-10)"
}

# udp_since NS FILE: the Udp counters of /proc/net/snmp on stdin minus those saved in FILE
# at up, as one line "LABEL NS Name=value ...".
udp_since() {
  awk -v ns="$1" -v label="${ZT_BENCH_LABEL:-zt}" '
    /^Udp:/ { f = (FILENAME == "-") ? "now" : "up"; n[f]++
      if (n[f] == 1) { fields = split($0, names); next }
      for (i = 2; i <= NF; i++) v[f, i] = $i }
    END { line = label " " ns
      for (i = 2; i <= fields; i++) line = line " " names[i] "=" (v["now", i] - v["up", i])
      print line }' "$2" -
}

case "$act" in
up)
  mkdir -p "$W/ids" "$W/planet"
  for n in root a b; do
    [ -s "$W/ids/$n.secret" ] || "$ZT" idtool generate "$W/ids/$n.secret" "$W/ids/$n.public" >/dev/null
  done
  "$ZT" idtool initplanet --force --dir "$W/planet" "$W/ids/root.public@$UNDER_B/9993" >/dev/null
  "$ZT" idtool genplanet "$W/planet/planet.json" >/dev/null
  start "$B" 19993 9993 "$W/ids/root.secret"
  start "$A" 19994 9993 "$W/ids/a.secret"
  start "$B" 19995 9994 "$W/ids/b.secret"
  api "$A" 19994 PUT /rest/zerotier/interface "{\"network\":\"$NWID\"}" >/dev/null
  api "$B" 19995 PUT /rest/zerotier/interface "{\"network\":\"$NWID\"}" >/dev/null
  server=$(overlay_ip "$W/ids/b.public")
  client=$(overlay_ip "$W/ids/a.public")
  wait_for 20 sh -c "ip -n '$A' -4 addr show dev zerotier1 | grep -q '$client/'" \
    || { echo "no $client on zerotier1 in $A" >&2; exit 1; }
  wait_for 20 sh -c "ip -n '$B' -4 addr show dev zerotier1 | grep -q '$server/'" \
    || { echo "no $server on zerotier1 in $B" >&2; exit 1; }
  if [ -n "${ZT_BENCH_UDP_STATS:-}" ]; then
    for ns in "$A" "$B"; do ip netns exec "$ns" cat /proc/net/snmp >"$W/snmp-$ns"; done
  fi
  echo "pids: $(cat "$W/d19993/pid") $(cat "$W/d19994/pid") $(cat "$W/d19995/pid")"
  echo "$server $client"
  ;;
down)
  if [ -n "${ZT_BENCH_UDP_STATS:-}" ]; then
    for ns in "$A" "$B"; do
      ip netns exec "$ns" cat /proc/net/snmp | udp_since "$ns" "$W/snmp-$ns" >>"$ZT_BENCH_UDP_STATS" || true
    done
  fi
  for port in 19994 19995 19993; do
    f=$W/d$port/pid
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill "$pid" 2>/dev/null || true
    i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  rm -rf "$W/d19993" "$W/d19994" "$W/d19995"
  ;;
*)
  echo "usage: $0 up|down NS_A NS_B WORKDIR" >&2; exit 2 ;;
esac
