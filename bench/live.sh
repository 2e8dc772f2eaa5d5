#!/usr/bin/env bash
# Live forwarding benchmark (docs/PERFORMANCE.md, "Live"): the same veth topology as the
# namespace tests — workloads a and b, a sensor namespace between them — forwarded by
#   bridge   the Linux kernel bridge (the reference),
#   inline   islet inline over AF_PACKET (-w WORKERS),
#   xdp      islet inline over AF_XDP,
#   tap      the kernel bridge forwarding, islet on a tap of the port facing a;
# traffic from iperf3 (Debian): TCP, and UDP with 64-byte and 1500-byte frames at full rate;
# then trafgen (netsniff-ng, Debian), 64-byte UDP frames from one core, faster than iperf3;
# then each islet inline backend again at 80% of its measured UDP 64-byte maximum, to count
# ring drops there.
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
OUT=$(mktemp -d); echo "bench: work dir $OUT" >&2
cleanup() {
  pkill -TERM -f "islet run --inline sa,sb" 2>/dev/null || true
  pkill -TERM -f "islet run --inline sa,sb --backend afxdp" 2>/dev/null || true
  pkill -TERM -f "islet run --tap sa" 2>/dev/null || true
  for n in $A $B $S; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$OUT"
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
islet_stop() { # → $OUT/extra (not in a subshell: `wait` needs islet to be our child)
  kill -TERM "$ISLET_PID"; wait "$ISLET_PID" || true
  python3 - "$OUT/eve.json" >"$OUT/extra" <<'EOF'
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

# A run of the traffic in $args: iperf3, or trafgen.
traffic_run() {
  if [ "${1:-}" = trafgen ]; then trafgen_run; else iperf "$@"; fi
}

# iperf3 run → "pkts/s | Gbit/s" as received by b (UDP: datagrams that arrived; TCP: goodput
# in segments of 1448 bytes).
iperf() { # extra iperf3 args…
  ip netns exec $B iperf3 -s -1 >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  ip netns exec $A iperf3 -c 10.78.0.2 -t "$T" -J "$@" >"$OUT/client.json" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  python3 - "$OUT/client.json" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    e = j["end"]
except Exception as x:
    print(f"failed ({x}) | -")
    sys.exit()
if "sum_received" in e and "packets" not in e.get("sum", {}):
    bits = e["sum_received"]["bits_per_second"]
    print(f"{bits / 8 / 1448:,.0f} | {bits/1e9:.2f}")
else:
    s = e["sum"]
    got = s["packets"] - (s.get("lost_packets") or 0)
    frac = got / max(s["packets"], 1)
    print(f"{got / s['seconds']:,.0f} | {s['bits_per_second'] * frac / 1e9:.3f}")
EOF
}

# trafgen (netsniff-ng, Debian) → "pkts/s | Gbit/s" received by b's eth0 (kernel counters):
# 64-byte frames (60 + FCS) of 64 UDP flows from a to b's discard port, from one core.
trafgen_run() {
  local amac bmac
  amac=$(ip netns exec $A cat /sys/class/net/eth0/address)
  bmac=$(ip netns exec $B cat /sys/class/net/eth0/address)
  cat >"$OUT/udp64.cfg" <<EOF
{ eth(da=$bmac, sa=$amac), ipv4(saddr=10.78.0.1, daddr=10.78.0.2, ttl=64), udp(sp=dinc(10000, 10063), dp=9), fill(0x41, 18) }
EOF
  local before after
  before=$(ip netns exec $B cat /sys/class/net/eth0/statistics/rx_packets)
  ip netns exec $A timeout -s INT "$T" trafgen --dev eth0 --conf "$OUT/udp64.cfg" -P 1 -q \
    ${TG_RATE:+--rate "$TG_RATE"} >/dev/null 2>&1 || true
  sleep 0.5
  after=$(ip netns exec $B cat /sys/class/net/eth0/statistics/rx_packets)
  python3 -c "p=($after-$before)/$T; print(f'{p:,.0f} | {p*64*8/1e9:.3f}')"
}

declare -A MAX
printf '| forwarder | traffic | received pkt/s | Gbit/s | vs bridge (pkt/s) | islet ring drops | islet cpu-s | protected pkt/cpu-s | coverage |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
TRAFFIC="tcp udp64 udp1500"
command -v trafgen >/dev/null 2>&1 && TRAFFIC="$TRAFFIC trafgen64"
for traffic in $TRAFFIC; do
  case $traffic in
    tcp) args=() ;;
    udp64) args=(-u -b 0 -l 18) ;;
    udp1500) args=(-u -b 0 -l 1472) ;;
    trafgen64) args=(trafgen) ;;
  esac
  for fwd in bridge inline xdp tap; do
    extra="- | - | - | -"
    case $fwd in
      bridge) bridge_on; r=$(traffic_run "${args[@]}"); bridge_off ;;
      inline) islet_start --inline sa,sb; r=$(traffic_run "${args[@]}"); islet_stop; extra=$(cat "$OUT/extra") ;;
      xdp) islet_start --inline sa,sb --backend afxdp; r=$(traffic_run "${args[@]}"); islet_stop; extra=$(cat "$OUT/extra") ;;
      tap) bridge_on; islet_start --tap sa; r=$(traffic_run "${args[@]}"); islet_stop; extra=$(cat "$OUT/extra"); bridge_off ;;
    esac
    pps=$(echo "$r" | cut -d'|' -f1 | tr -d ' ,')
    MAX[$fwd-$traffic]=$pps
    ratio=$(python3 -c "print(f'{${pps}/max(${MAX[bridge-$traffic]},1):.2f}')")
    printf '| %s | %s | %s | %s | %s |\n' "$fwd" "$traffic" "$r" "$ratio" "$extra"
  done
done
# Ring drops at 80% of each islet inline backend's measured 64-byte maximum: trafgen's rate
# where trafgen ran, else iperf3's (whose -b counts payload bits).
for fwd in inline xdp; do
  if [ "$fwd" = xdp ]; then islet_start --inline sa,sb --backend afxdp; else islet_start --inline sa,sb; fi
  if [ -n "${MAX[$fwd-trafgen64]:-}" ]; then
    rate=$(( ${MAX[$fwd-trafgen64]} * 8 / 10 )); how=trafgen64
    r=$(TG_RATE="${rate}pps" trafgen_run)
  else
    rate=$(( ${MAX[$fwd-udp64]} * 8 / 10 )); how=udp64
    r=$(iperf -u -l 18 -b $(( rate * 18 * 8 )))
  fi
  islet_stop; extra=$(cat "$OUT/extra")
  printf '| %s @80%% (%s pkt/s offered) | %s | %s | - | %s |\n' "$fwd" "$rate" "$how" "$r" "$extra"
done
