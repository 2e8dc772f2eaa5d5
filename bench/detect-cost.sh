#!/bin/bash
# Detector cost (docs/PERFORMANCE.md, "Detection by handshake completion"): islet read with the
# detectors on against `[detect] enabled = false`, interleaved, user+system CPU time and peak
# RSS from /usr/bin/time, on the mixed benchmark capture and two SYN floods.
# Usage: bench/detect-cost.sh [WORKDIR]   (ISLET=path/to/islet, default target/release/islet)
set -euo pipefail
B=$(realpath "${ISLET:-target/release/islet}")
W=${1:-/tmp/islet-detect-cost}
mkdir -p "$W" && cd "$W"
[ -f mixed5m.pcap ] || "$B" synth --profile mixed --flows 400000 --packets 5000000 --duration 300 --seed 42 -o mixed5m.pcap
[ -f spoofed.pcap ] || "$B" synth --profile syn-flood-spoofed --packets 5000000 -o spoofed.pcap
[ -f ownaddr.pcap ] || "$B" synth --profile syn-flood --packets 5000000 -o ownaddr.pcap
printf '[detect]\nenabled = false\n' > nodetect.toml
run() { /usr/bin/time -f "%U %S %M" "$B" read -q -w 1 -o /dev/null "$@" 2>&1 >/dev/null | tail -1; }
echo "capture detectors user_s sys_s peak_rss_kb"
for cap in mixed5m spoofed ownaddr; do
  n=9; [ "$cap" != mixed5m ] && n=3
  for _ in $(seq "$n"); do
    echo "$cap off $(run -c nodetect.toml "$cap.pcap")"
    echo "$cap on  $(run "$cap.pcap")"
  done
done
