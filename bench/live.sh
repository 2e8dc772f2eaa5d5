#!/usr/bin/env bash
# Live forwarding benchmark (docs/PERFORMANCE.md, "Live"): the same veth topology as the
# namespace tests — workloads a and b, a sensor namespace between them — forwarded by
#   bridge   the Linux kernel bridge (the reference),
#   inline   islet inline over AF_PACKET (-w WORKERS),
#   tap      the kernel bridge forwarding, islet on a tap of the port facing a;
# traffic from iperf3 (Debian): TCP, and UDP with 64-byte and 1500-byte frames at full rate,
# then inline again at 80% of its measured UDP 64-byte maximum, to count ring drops there.
# Prints one Markdown row per run, with islet's performance-to-protection figures.
#
# usage: sudo bench/live.sh [SECONDS] [WORKERS]     (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-8}
W=${2:-1}
ISLET=${ISLET:-$PWD/target/release/islet}
TAG=islb$$
A=${TAG}a B=${TAG}b S=${TAG}s
OUT=$(mktemp -d)
cleanup() {
  pkill -TERM -f "islet run --inline sa,sb" 2>/dev/null || true
  pkill -TERM -f "islet run --tap sa" 2>/dev/null || true
  for n in $A $B $S; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT

for n in $A $B $S; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add eth0 netns $A type veth peer name sa netns $S
ip link add eth0 netns $B type veth peer name sb netns $S
ip -n $A addr add 10.78.0.1/24 dev eth0
ip -n $B addr add 10.78.0.2/24 dev eth0
for n in $A $B; do ip -n "$n" link set eth0 up; done
ip -n $S link set sa up
ip -n $S link set sb up
ip netns exec $B iperf3 -s -D -1 >/dev/null 2>&1 || true

bridge_on() {
  ip -n $S link add br0 type bridge
  ip -n $S link set sa master br0
  ip -n $S link set sb master br0
  ip -n $S link set br0 up
}
bridge_off() { ip -n $S link del br0 2>/dev/null || true; }

ISLET_PID=
islet_start() { # args…
  ip netns exec $S "$ISLET" run "$@" -w "$W" -q -o "$OUT/eve.json" 2>"$OUT/islet.err" &
  ISLET_PID=$!
  for _ in $(seq 100); do grep -q "over AF_PACKET" "$OUT/islet.err" 2>/dev/null && break; sleep 0.1; done
}
islet_stop() {
  kill -TERM "$ISLET_PID"; wait "$ISLET_PID" || true
  python3 - "$OUT/eve.json" <<'EOF'
import json, sys
last = None
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event_type") == "stats" and "protection" in e["stats"]:
        last = e["stats"]
p, c = last["protection"], last["capture"]
print(f'{c["kernel_drops"]} | {p["cpu_seconds"]:.2f} | {p["protected_pkts_per_cpu_second"]:.0f} | {p["coverage"]:.4f}')
EOF
}

# iperf3 run → "pkts/s | Gbit/s" as received by b.
iperf() { # extra iperf3 args…
  ip netns exec $B iperf3 -s -1 -J >"$OUT/server.json" 2>/dev/null &
  local srv=$!
  sleep 0.5
  ip netns exec $A iperf3 -c 10.78.0.2 -t "$T" -J "$@" >"$OUT/client.json" 2>/dev/null || true
  wait "$srv" || true
  python3 - "$OUT/server.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
s = j["end"]["sum"] if "sum" in j["end"] else j["end"]["sum_received"]
secs = s["seconds"] or 1
bits = s["bits_per_second"]
pkts = s.get("packets")
lost = s.get("lost_packets", 0) or 0
if pkts is None:  # TCP: no datagram count; report segments of MSS 1448 as an estimate
    pps = bits / 8 / 1448
else:
    pps = (pkts - lost) / secs
print(f"{pps:,.0f} | {bits/1e9:.2f}")
EOF
}

declare -A MAX
printf '| forwarder | traffic | received pkt/s | Gbit/s | vs bridge (pkt/s) | islet ring drops | islet cpu-s | protected pkt/cpu-s | coverage |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for traffic in tcp udp64 udp1500; do
  case $traffic in
    tcp) args=() ;;
    udp64) args=(-u -b 0 -l 18) ;;
    udp1500) args=(-u -b 0 -l 1472) ;;
  esac
  for fwd in bridge inline tap; do
    extra="- | - | - | -"
    case $fwd in
      bridge) bridge_on; r=$(iperf "${args[@]}"); bridge_off ;;
      inline) islet_start --inline sa,sb; r=$(iperf "${args[@]}"); extra=$(islet_stop) ;;
      tap) bridge_on; islet_start --tap sa; r=$(iperf "${args[@]}"); extra=$(islet_stop); bridge_off ;;
    esac
    pps=$(echo "$r" | cut -d'|' -f1 | tr -d ' ,')
    MAX[$fwd-$traffic]=$pps
    ratio=$(python3 -c "print(f'{${pps}/max(${MAX[bridge-$traffic]},1):.2f}')")
    printf '| %s | %s | %s | %s | %s |\n' "$fwd" "$traffic" "$r" "$ratio" "$extra"
  done
done
# Ring drops at 80% of islet inline's UDP 64-byte maximum (iperf3 -b is in bits/s of payload).
rate=$(( ${MAX[inline-udp64]} * 8 / 10 ))
islet_start --inline sa,sb
r=$(iperf -u -l 18 -b $(( rate * 18 * 8 )))
extra=$(islet_stop)
printf '| inline @80%% (%s pkt/s offered) | udp64 | %s | - | %s |\n' "$rate" "$r" "$extra"
