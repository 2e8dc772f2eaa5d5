#!/usr/bin/env bash
# islet's real-program lab (issue 19): real kernels and real tools in network namespaces, so
# the detectors are judged on traffic nobody synthesised.
#
#   lab.sh up       PREFIX STATE          build the lab (namespaces PREFIX-*, state in STATE)
#   lab.sh down     PREFIX STATE          remove it all (safe to call twice)
#   lab.sh SCENARIO PREFIX STATE OUT      run a scenario, writing OUT/capture.pcap,
#                                         OUT/truth.jsonl and OUT/hosts.json
#   lab.sh all      PREFIX STATE OUTROOT  up, every scenario into OUTROOT/<name>, down
#
# Scenarios: monitor (the monitor port sees all unicast), flood, pivot, fanout, scan, benign.
# PREFIX must be unique per run (e.g. il$$): two labs never share a namespace. Needs root,
# iproute2, ethtool, tcpdump, jq, curl, openssl, python3, hping3, nmap, nginx, openssh
# (server and client), samba (smbd) and smbclient, dnsmasq, ncat, ab (apache2-utils), dig.
#
# Topology. Namespace PREFIX-sw holds the bridge br0; every host is its own namespace with
# eth0, a veth whose other end is a port of br0 named after the host. The bridge learns no
# address (learning off on every port, ageing time 0), so it floods every frame to every port:
# a hub. The port `mon` leads to namespace PREFIX-mon (eth0, no address, promiscuous), where
# tcpdump and `islet run --tap eth0` listen; `lab.sh monitor` checks that tcpdump there sees
# every frame of host-to-host unicast, frame for frame, as the two hosts themselves do.
# IPv6 is off everywhere (no link-local chatter); all addresses are in 198.51.100.0/24
# (TEST-NET-2), except the random sources hping3 --rand-source writes inside the lab:
#
#   router   .1   the default gateway of web only, forwarding off: SYN/ACKs to spoofed
#                 sources leave web, reach router's MAC and die there
#   jump     .5   the admins' jump host (islet.io/admin in inventory.toml)
#   attacker .10  client1 .21  client2 .22
#   a .31 b .32 c .33   sshd, root login with the key made at setup (fresh host keys)
#   smb1 .41 smb2 .42   smbd on 445 with a guest share `share`
#   dns  .53      dnsmasq with A records *.lab
#   web  .80      nginx, HTTP on 80 and HTTPS on 443 (self-signed certificate made at setup)
#   RDP 3389 (X.224 answer) on smb1, smb2; WinRM 5985 (HTTP 401) on smb1, a (listeners.py).
#   Every other port is closed: a SYN gets an RST.
#
# Host offloads (TSO, GSO, TX checksum) are off so frames are on the monitor port as on a
# wire: at most one MTU, with correct checksums.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/lab.sh"

usage() {
  sed -n '2,12p' "$SELF" >&2
  exit 2
}

CMD=${1:-}
P=${2:-${LAB:-}}
S=${3:-${LAB_DIR:-}}
OUT=${4:-}
if [ -z "$CMD" ] || [ -z "$P" ] || [ -z "$S" ]; then usage; fi
case "$P" in *[!A-Za-z0-9_]*) echo "lab: PREFIX must be [A-Za-z0-9_]" >&2; exit 2 ;; esac

NET=198.51.100
declare -A ADDR=([router]=1 [jump]=5 [attacker]=10 [client1]=21 [client2]=22
  [a]=31 [b]=32 [c]=33 [smb1]=41 [smb2]=42 [dns]=53 [web]=80)
HOSTS=(router jump attacker client1 client2 a b c smb1 smb2 dns web)
SSH_HOSTS=(a b c)
SMB_HOSTS=(smb1 smb2)
RDP_HOSTS=(smb1 smb2)
WINRM_HOSTS=(smb1 a)

ip_of() { echo "$NET.${ADDR[$1]}"; }
ns() { echo "$P-$1"; }
nx() {
  local n=$1
  shift
  ip netns exec "$(ns "$n")" "$@"
}
now() { date +%s.%N; }
log() { echo "lab[$P]: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# down: every process in the lab's namespaces (all of them the lab's: the servers up started,
# their children, what scenarios left behind), then every namespace. Processes are found by
# namespace, not by the pid list up keeps ($S/pids, informational), which may be stale.

down() {
  local n pids all=""
  for n in sw mon "${HOSTS[@]}"; do
    [ -e "/run/netns/$(ns "$n")" ] || continue
    pids=$(ip netns pids "$(ns "$n")" 2>/dev/null || true)
    all="$all $pids"
  done
  all=$(echo "$all" | tr ' ' '\n' | grep -E '^[0-9]+$' | sort -u | tr '\n' ' ' || true)
  if [ -n "${all// /}" ]; then
    log "down: stopping $(for p in $all; do printf '%s(%s) ' "$p" "$(cat /proc/"$p"/comm 2>/dev/null)"; done)"
    # shellcheck disable=SC2086
    kill -TERM $all 2>/dev/null || true
    local i
    for i in $(seq 1 30); do
      local alive=""
      for p in $all; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
      [ -z "$alive" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    if [ -n "${alive:-}" ]; then kill -KILL $alive 2>/dev/null || true; fi
  fi
  for n in sw mon "${HOSTS[@]}"; do
    ip netns del "$(ns "$n")" 2>/dev/null || true
  done
  rm -f "$S/pids"
}

# ---------------------------------------------------------------------------------------------
# up

# bg NAME ROLE CMD...: a server in ROLE's namespace, its pid kept for down. In a session of
# its own: Samba's daemons signal their whole process group when they stop.
bg() {
  local name=$1 role=$2
  shift 2
  ip netns exec "$(ns "$role")" setsid "$@" >"$S/log/$name.log" 2>&1 </dev/null &
  echo $! >>"$S/pids"
}

wait_listen() { # ROLE t|u PORT
  local i
  for i in $(seq 1 100); do
    if nx "$1" ss -Hln"$2" "sport = :$3" 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  die "$1 is not listening on $2/$3 after 10 s (logs in $S/log)"
}

gen_keys() {
  rm -rf "$S/ssh" "$S/tls"
  mkdir -p "$S/ssh" "$S/tls"
  ssh-keygen -q -t ed25519 -N '' -C lab-admin -f "$S/ssh/id_ed25519"
  cp "$S/ssh/id_ed25519.pub" "$S/ssh/authorized_keys"
  local h
  for h in "${SSH_HOSTS[@]}"; do
    ssh-keygen -q -t ed25519 -N '' -C "host-$h" -f "$S/ssh/host_$h"
  done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=web.lab -addext "subjectAltName=DNS:web.lab,IP:$(ip_of web)" \
    -keyout "$S/tls/web.key" -out "$S/tls/web.crt" 2>/dev/null
  # The client configuration every ssh in the lab uses (-F): the lab key only, no known hosts.
  cat >"$S/ssh/config" <<EOF
Host *
  User root
  IdentityFile $S/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking no
  BatchMode yes
  ConnectTimeout 5
  LogLevel ERROR
EOF
}

start_sshd() { # ROLE
  local h=$1
  cat >"$S/ssh/sshd_$h.conf" <<EOF
ListenAddress $(ip_of "$h")
Port 22
HostKey $S/ssh/host_$h
PidFile $S/ssh/sshd_$h.pid
AuthorizedKeysFile $S/ssh/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
AllowTcpForwarding yes
AllowAgentForwarding yes
PrintMotd no
MaxStartups 100:30:200
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
  bg "sshd_$h" "$h" /usr/sbin/sshd -D -e -f "$S/ssh/sshd_$h.conf"
}

start_nginx() {
  local d="$S/nginx"
  mkdir -p "$d/tmp"
  cat >"$d/nginx.conf" <<EOF
worker_processes 2;
user root root;
pid $d/nginx.pid;
error_log $S/log/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    listen $(ip_of web):80;
    listen $(ip_of web):443 ssl;
    server_name web.lab;
    ssl_certificate $S/tls/web.crt;
    ssl_certificate_key $S/tls/web.key;
    default_type text/plain;
    location = /healthz { return 200 "ok\n"; }
    location / { return 200 "web.lab: hello\n"; }
  }
}
EOF
  bg nginx web nginx -p "$d/" -c "$d/nginx.conf" -e "$S/log/nginx-error.log" -g 'daemon off;'
}

start_smbd() { # ROLE
  local h=$1 d="$S/samba/$1"
  mkdir -p "$d"/{private,lock,state,cache,run,ncalrpc,bind-dns,share}
  echo "a file on $h" >"$d/share/readme.txt"
  chmod -R a+rX "$d/share"
  cat >"$d/smb.conf" <<EOF
[global]
  server role = standalone server
  workgroup = LAB
  netbios name = ${h^^}
  interfaces = $(ip_of "$h")
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  security = user
  map to guest = Bad User
  guest account = nobody
  passdb backend = tdbsam:$d/private/passdb.tdb
  private dir = $d/private
  lock directory = $d/lock
  state directory = $d/state
  cache directory = $d/cache
  pid directory = $d/run
  ncalrpc dir = $d/ncalrpc
  binddns dir = $d/bind-dns
  log file = $S/log/smbd_$h.%m.log
  logging = file
  log level = 1
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  registry shares = no
  usershare max shares = 0
  server min protocol = SMB2_02
[share]
  path = $d/share
  guest ok = yes
  read only = yes
  browseable = yes
EOF
  bg "smbd_$h" "$h" smbd --foreground --no-process-group --debug-stdout -s "$d/smb.conf"
}

start_dnsmasq() {
  local args=() h
  for h in "${HOSTS[@]}"; do args+=("--host-record=$h.lab,$(ip_of "$h")"); done
  bg dnsmasq dns dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --no-poll --listen-address="$(ip_of dns)" --bind-interfaces --port=53 \
    --pid-file="$S/dnsmasq.pid" --log-facility="$S/log/dnsmasq-queries.log" --log-queries \
    "${args[@]}"
}

write_hosts_json() {
  local h args=()
  for h in "${HOSTS[@]}"; do args+=(--arg "$h" "$(ip_of "$h")"); done
  jq -n "${args[@]}" '$ARGS.named' >"$S/hosts.json"
}

up() {
  [ "$(id -u)" = 0 ] || die "needs root"
  [ -e "/run/netns/$(ns sw)" ] && die "a lab named $P is up already"
  mkdir -p "$S/log"
  : >"$S/pids"
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed ($rc); tearing down"; down; fi' EXIT
  mkdir -p /run/sshd
  local t0 h
  t0=$(now)
  gen_keys &
  local keys=$!
  for h in sw mon "${HOSTS[@]}"; do
    ip netns add "$(ns "$h")"
    nx "$h" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$(ns "$h")" link set lo up
  done
  ip -n "$(ns sw)" link add br0 type bridge ageing_time 0 stp_state 0 mcast_snooping 0
  for h in mon "${HOSTS[@]}"; do
    ip link add eth0 netns "$(ns "$h")" type veth peer name "$h" netns "$(ns sw)"
    ip -n "$(ns sw)" link set dev "$h" master br0
    ip -n "$(ns sw)" link set dev "$h" type bridge_slave learning off
    ip -n "$(ns sw)" link set dev "$h" up
  done
  ip -n "$(ns sw)" link set br0 up
  ip -n "$(ns mon)" link set eth0 promisc on up
  for h in "${HOSTS[@]}"; do
    ip -n "$(ns "$h")" addr add "$(ip_of "$h")/24" dev eth0
    nx "$h" ethtool -K eth0 tx off tso off gso off >/dev/null 2>&1
    ip -n "$(ns "$h")" link set eth0 up
  done
  nx router sysctl -q -w net.ipv4.ip_forward=0
  nx web sysctl -q -w net.ipv4.tcp_syncookies=1
  ip -n "$(ns web)" route add default via "$(ip_of router)"
  wait "$keys" || die "key generation failed"
  write_hosts_json
  for h in "${SSH_HOSTS[@]}"; do start_sshd "$h"; done
  start_nginx
  for h in "${SMB_HOSTS[@]}"; do start_smbd "$h"; done
  start_dnsmasq
  declare -A L=()
  for h in "${RDP_HOSTS[@]}"; do L[$h]="${L[$h]:-} rdp:3389"; done
  for h in "${WINRM_HOSTS[@]}"; do L[$h]="${L[$h]:-} winrm:5985"; done
  for h in "${!L[@]}"; do
    # shellcheck disable=SC2086
    bg "listeners_$h" "$h" python3 "$HERE/listeners.py" "$(ip_of "$h")" ${L[$h]}
  done
  for h in "${SSH_HOSTS[@]}"; do wait_listen "$h" t 22; done
  wait_listen web t 80
  wait_listen web t 443
  for h in "${SMB_HOSTS[@]}"; do wait_listen "$h" t 445; done
  wait_listen dns u 53
  for h in "${RDP_HOSTS[@]}"; do wait_listen "$h" t 3389; done
  for h in "${WINRM_HOSTS[@]}"; do wait_listen "$h" t 5985; done
  log "up in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s; state in $S"
  trap - EXIT
}

# ---------------------------------------------------------------------------------------------
# scenario helpers

SCEN_PIDS=()
TCPDUMP_PID=""
LAST_PID=""

# spawn ROLE STDOUT STDERR CMD...: CMD in the background in ROLE's namespace; LAST_PID is its
# pid (ip netns exec execs CMD), stopped at the end of the scenario. (Not through nx: a
# function in the background is a subshell, whose pid is not the program's.)
spawn() {
  local role=$1 o=$2 e=$3
  shift 3
  ip netns exec "$(ns "$role")" "$@" >"$o" 2>"$e" </dev/null &
  LAST_PID=$!
  SCEN_PIDS+=("$LAST_PID")
}

# Stop a tcpdump (SIGTERM: background jobs of a script ignore SIGINT) and wait for it.
stop_tcpdump() {
  kill -TERM "$@" 2>/dev/null || true
  wait "$@" 2>/dev/null || true
}

role_of() { # ADDRESS -> role (or the address)
  local h
  for h in "${HOSTS[@]}"; do [ "$(ip_of "$h")" = "$1" ] && { echo "$h"; return; }; done
  echo "$1"
}

addr_of() { # ROLE -> address; anything else (mon, random, "") -> ""
  if [ -n "$1" ] && [ -n "${ADDR[$1]+x}" ]; then ip_of "$1"; fi
}

# truth ACTION SRC DST PORT TOOL OK T0 T1 NOTES [EXTRA-JSON]: one line of truth.jsonl.
truth() {
  local extra=${10:-}
  [ -n "$extra" ] || extra='{}'
  jq -cn --arg action "$1" --arg src "$2" --arg dst "$3" --arg port "$4" --arg tool "$5" \
    --arg ok "$6" --arg t0 "$7" --arg t1 "$8" --arg notes "$9" \
    --arg src_ip "$(addr_of "$2")" --arg dst_ip "$(addr_of "$3")" --argjson extra "$extra" \
    '{ts: ($t0 | tonumber), ts_end: ($t1 | tonumber), action: $action, src: $src,
      src_ip: $src_ip, dst: $dst, dst_ip: $dst_ip,
      port: (if $port == "" then null else ($port | tonumber) end), tool: $tool,
      ok: ($ok == "true"), notes: $notes} + $extra' >>"$OUT/truth.jsonl"
}

bool() { if "$@"; then echo true; else echo false; fi; }

scenario_cleanup() {
  local p
  for p in "${SCEN_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -z "$TCPDUMP_PID" ] || stop_tcpdump "$TCPDUMP_PID"
}

begin() {
  [ -n "$OUT" ] || usage
  [ -e "/run/netns/$(ns sw)" ] || die "lab $P is not up (lab.sh up $P $S)"
  mkdir -p "$OUT"
  rm -f "$OUT"/.stop_*
  : >"$OUT/truth.jsonl"
  cp "$S/hosts.json" "$OUT/hosts.json"
  trap scenario_cleanup EXIT
  capture_start
}

capture_start() {
  ip netns exec "$(ns mon)" tcpdump -i eth0 -nn -s 2048 -B 65536 -U --immediate-mode \
    -w "$OUT/capture.pcap" 2>"$OUT/tcpdump.log" </dev/null &
  TCPDUMP_PID=$!
  local i
  for i in $(seq 1 100); do
    grep -q "listening on" "$OUT/tcpdump.log" 2>/dev/null && return 0
    sleep 0.1
  done
  die "tcpdump did not start: $(cat "$OUT/tcpdump.log")"
}

# Settle (late answers and retransmits reach the capture), stop tcpdump, record its counts.
capture_stop() {
  sleep "${1:-1}"
  local t
  t=$(now)
  stop_tcpdump "$TCPDUMP_PID"
  TCPDUMP_PID=""
  local got dropped
  got=$(sed -n 's/^\([0-9]*\) packets\? captured.*/\1/p' "$OUT/tcpdump.log")
  dropped=$(sed -n 's/^\([0-9]*\) packets\? dropped by kernel.*/\1/p' "$OUT/tcpdump.log")
  truth capture mon "" "" tcpdump "$(bool [ "${dropped:-1}" = 0 ])" "$t" "$(now)" \
    "tcpdump -i eth0 in the mon namespace: ${got:-?} frames, ${dropped:-?} dropped by kernel" \
    "{\"packets\": ${got:-0}, \"dropped\": ${dropped:-0}}"
  log "capture: ${got:-?} frames, ${dropped:-?} dropped"
}

# Frames of the capture matching a BPF filter.
count() { tcpdump -r "$OUT/capture.pcap" -nn "$1" 2>/dev/null | wc -l; }

mac_of() { nx "$1" cat /sys/class/net/eth0/address; }

# ---------------------------------------------------------------------------------------------
# monitor: the monitor port sees every frame of host-to-host unicast. client1 pings and
# fetches from web while tcpdump runs on the monitor port and on both hosts' own eth0; the
# frames between the two MACs must be the same number in all three (and more than zero).

scen_monitor() {
  begin
  local w m1 mw t0 t1
  w=$(ip_of web)
  m1=$(mac_of client1)
  mw=$(mac_of web)
  local filt="ether host $m1 and ether host $mw"
  spawn client1 /dev/null "$OUT/tcpdump_client1.log" \
    tcpdump -i eth0 -nn -s 0 -U --immediate-mode -w "$OUT/client1.pcap" "$filt"
  local p1=$LAST_PID
  spawn web /dev/null "$OUT/tcpdump_web.log" \
    tcpdump -i eth0 -nn -s 0 -U --immediate-mode -w "$OUT/web.pcap" "$filt"
  local p2=$LAST_PID
  local i
  for i in $(seq 1 100); do
    grep -q "listening on" "$OUT/tcpdump_client1.log" 2>/dev/null &&
      grep -q "listening on" "$OUT/tcpdump_web.log" 2>/dev/null && break
    sleep 0.1
  done
  t0=$(now)
  nx client1 ping -c 10 -i 0.02 -q "$w" >/dev/null
  nx client1 curl -s -o /dev/null --max-time 5 "http://$w/"
  nx client1 curl -sk -o /dev/null --max-time 5 "https://$w/"
  t1=$(now)
  sleep 0.5
  stop_tcpdump "$p1" "$p2"
  capture_stop 0.2
  local on_mon on_c1 on_web fdb
  on_mon=$(count "$filt")
  on_c1=$(tcpdump -r "$OUT/client1.pcap" -nn 2>/dev/null | wc -l)
  on_web=$(tcpdump -r "$OUT/web.pcap" -nn 2>/dev/null | wc -l)
  # Addresses the bridge learned (none: it is a hub).
  fdb=$(ip netns exec "$(ns sw)" bridge fdb show br br0 | grep -vc permanent || true)
  truth unicast client1 web "" "ping, curl" \
    "$(bool [ "$on_mon" -gt 20 ] && [ "$on_mon" = "$on_c1" ] && [ "$on_mon" = "$on_web" ])" \
    "$t0" "$t1" "frames between the MACs of client1 and web: monitor $on_mon, client1 $on_c1, web $on_web" \
    "{\"verify\": true, \"on_monitor\": $on_mon, \"on_client1\": $on_c1, \"on_web\": $on_web}"
  truth bridge_fdb sw "" "" bridge "$(bool [ "$fdb" = 0 ])" "$t1" "$(now)" \
    "learned (non-permanent) fdb entries on br0: $fdb" "{\"verify\": true, \"learned\": $fdb}"
}

# ---------------------------------------------------------------------------------------------
# flood: hping3 SYN flood on web:443 from the attacker's real address (~4 s), then from random
# sources (~4 s), while client1 keeps fetching https://web/.

curl_loop() { # URL INTERVAL FILE STOPFILE (run inside a namespace)
  local t code
  while [ ! -e "$4" ]; do
    t=$(date +%s.%N)
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "$1" || true)
    echo "$t $(date +%s.%N) $code" >>"$3"
    sleep "$2"
  done
}

start_curl_loop() { # ROLE URL INTERVAL FILE STOPFILE
  local role=$1
  shift
  spawn "$role" /dev/null /dev/null bash -c "$(declare -f curl_loop); curl_loop \"\$@\"" curl_loop "$@"
}

# Requests in FILE between T0 and T1 (all when not given): "total ok".
loop_counts() {
  awk -v a="${2:-0}" -v b="${3:-1e12}" \
    '$1 >= a && $1 <= b { n++; if ($3 == "200") ok++ } END { printf "%d %d\n", n, ok }' "$1"
}

scen_flood() {
  begin
  local w a t0 t1 t2 t3 log1 log2
  w=$(ip_of web)
  a=$(ip_of attacker)
  local stop="$OUT/.stop_client1" reqs="$OUT/client1_requests.txt"
  : >"$reqs"
  start_curl_loop client1 "https://$w/" 0.2 "$reqs" "$stop"
  sleep 1
  log1="$OUT/hping3_single.log"
  log2="$OUT/hping3_spoofed.log"
  t0=$(now)
  nx attacker timeout -s INT 4 hping3 -q -S -p 443 -i u1000 "$w" >"$log1" 2>&1 || true
  t1=$(now)
  sleep 0.5
  t2=$(now)
  nx attacker timeout -s INT 4 hping3 -q -S -p 443 -i u1000 --rand-source "$w" >"$log2" 2>&1 || true
  t3=$(now)
  sleep 2.5
  touch "$stop"
  sleep 0.5
  local sent1 recv1 sent2
  sent1=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\1/p' "$log1")
  recv1=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) packets received.*/\2/p' "$log1")
  sent2=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$log2")
  truth flood_single attacker web 443 hping3 "$(bool [ "${sent1:-0}" -gt 1000 ])" "$t0" "$t1" \
    "phase 1: hping3 -S -p 443 -i u1000 from the attacker's own address; $sent1 SYNs sent, $recv1 SYN/ACKs received" \
    "{\"phase\": 1, \"flood_source\": \"single\", \"syns_sent\": ${sent1:-0}, \"synacks_received\": ${recv1:-0}}"
  truth flood_spoofed random web 443 hping3 "$(bool [ "${sent2:-0}" -gt 1000 ])" "$t2" "$t3" \
    "phase 2: hping3 -S -p 443 -i u1000 --rand-source; $sent2 SYNs sent" \
    "{\"phase\": 2, \"flood_source\": \"spoofed\", \"syns_sent\": ${sent2:-0}}"
  local all p1 p2
  read -r -a all <<<"$(loop_counts "$reqs")"
  read -r -a p1 <<<"$(loop_counts "$reqs" "$t0" "$t1")"
  read -r -a p2 <<<"$(loop_counts "$reqs" "$t2" "$t3")"
  truth client_requests client1 web 443 curl \
    "$(bool [ "${all[0]}" -gt 10 ] && [ "${all[0]}" = "${all[1]}" ] && [ "${p2[0]}" -gt 0 ])" \
    "$(head -1 "$reqs" | cut -d' ' -f1)" "$(tail -1 "$reqs" | cut -d' ' -f2)" \
    "curl -k https://web/ every 0.2 s: ${all[1]}/${all[0]} succeeded (phase 1 ${p1[1]}/${p1[0]}, phase 2 ${p2[1]}/${p2[0]})" \
    "{\"requests\": ${all[0]}, \"succeeded\": ${all[1]}, \"phase1\": [${p1[0]}, ${p1[1]}], \"phase2\": [${p2[0]}, ${p2[1]}]}"
  capture_stop 1
  # What the kernels did, from the capture. Phase 1: the attacker's kernel resets every SYN/ACK
  # (hping3's raw socket owns no connection). Phase 2: SYN/ACKs go towards the random sources,
  # through the router (which drops them), are retransmitted, and nobody resets.
  local SYN='tcp[tcpflags] & (tcp-syn|tcp-ack|tcp-rst) == tcp-syn'
  local SA='tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)'
  local RST='tcp[tcpflags] & tcp-rst != 0'
  local LAN="net $NET.0/24"
  local s1 sa1 r1 s2 sa2 r2 sa2r rt2 src2 fwd rmac
  s1=$(count "src host $a and dst host $w and dst port 443 and $SYN")
  sa1=$(count "src host $w and src port 443 and dst host $a and $SA")
  r1=$(count "src host $a and dst host $w and dst port 443 and $RST")
  truth verify_single attacker web 443 tcpdump \
    "$(bool [ "$s1" -gt 1000 ] && [ $((sa1 * 10)) -ge $((s1 * 9)) ] && [ $((r1 * 10)) -ge $((sa1 * 9)) ])" \
    "$t0" "$t1" "capture: $s1 SYN -> $sa1 SYN/ACK -> $r1 RST from the attacker's kernel" \
    "{\"verify\": true, \"syn\": $s1, \"synack\": $sa1, \"rst\": $r1}"
  rmac=$(mac_of router)
  s2=$(count "dst host $w and dst port 443 and not src $LAN and $SYN")
  sa2=$(count "src host $w and src port 443 and not dst $LAN and $SA")
  sa2r=$(count "ether dst $rmac and src host $w and src port 443 and not dst $LAN and $SA")
  r2=$(count "not src $LAN and dst host $w and $RST")
  src2=$(tcpdump -r "$OUT/capture.pcap" -nn "dst host $w and dst port 443 and not src $LAN and $SYN" 2>/dev/null |
    awk '{print $3}' | sed 's/\.[0-9]*$//' | sort -u | wc -l)
  # SYN/ACKs sent more than once to the same (address, port): retransmits.
  rt2=$(tcpdump -r "$OUT/capture.pcap" -nn "src host $w and src port 443 and not dst $LAN and $SA" 2>/dev/null |
    awk '{print $5}' | sort | uniq -d | wc -l)
  fwd=$(count "ether src $rmac and not arp")
  truth verify_spoofed random web 443 tcpdump \
    "$(bool [ "$s2" -gt 1000 ] && [ "$sa2" -gt 0 ] && [ "$r2" = 0 ] && [ "$rt2" -gt 0 ] && [ "$sa2r" = "$sa2" ] && [ "$fwd" = 0 ])" \
    "$t2" "$t3" "capture: $s2 SYN from $src2 sources -> $sa2 SYN/ACK (all to the router's MAC: $sa2r; $rt2 retransmitted), $r2 RST; router forwarded $fwd frames" \
    "{\"verify\": true, \"syn\": $s2, \"sources\": $src2, \"synack\": $sa2, \"synack_to_router\": $sa2r, \"synack_retransmitted\": $rt2, \"rst\": $r2, \"router_forwarded\": $fwd}"
}

# ---------------------------------------------------------------------------------------------
# pivot: a -> b -> c over SSH, twice: a ProxyJump (a's session to b stays open while b's sshd
# opens b -> c), then a session on b from which b's own ssh (with a copy of the key) reaches c.

# First SYN of SRC -> DST:PORT at or after T0, and the last frame of that connection:
# "syn_ts last_ts sport" (empty when none).
hop_times() { # SRC DST PORT T0
  local s d
  s=$(ip_of "$1")
  d=$(ip_of "$2")
  local line sport syn
  line=$(tcpdump -r "$OUT/capture.pcap" -nn -tt \
    "src host $s and dst host $d and dst port $3 and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn" 2>/dev/null |
    awk -v t0="$4" '$1 >= t0 { print; exit }')
  [ -n "$line" ] || return 0
  syn=$(echo "$line" | awk '{print $1}')
  sport=$(echo "$line" | awk '{print $3}' | sed 's/.*\.//')
  local last
  last=$(tcpdump -r "$OUT/capture.pcap" -nn -tt "host $s and host $d and tcp port $sport and tcp port $3" 2>/dev/null |
    tail -1 | awk '{print $1}')
  echo "$syn $last $sport"
}

record_hops() { # FORM T0 T1: hop records a->b and b->c from the capture
  local form=$1 t0=$2 t1=$3 h1 h2
  read -r -a h1 <<<"$(hop_times a b 22 "$t0")"
  read -r -a h2 <<<"$(hop_times b c 22 "${h1[0]:-$t0}")"
  local ok=false
  if [ "${#h1[@]}" = 3 ] && [ "${#h2[@]}" = 3 ]; then
    # b -> c opens while a -> b is open.
    ok=$(bool awk -v a="${h1[0]}" -v b="${h2[0]}" -v c="${h2[1]}" -v d="${h1[1]}" \
      'BEGIN { exit !(a < b && b < d && c > b) }')
  fi
  truth hop a b 22 ssh "$ok" "${h1[0]:-$t0}" "${h1[1]:-$t1}" \
    "$form: hop 1 a -> b:22 (client port ${h1[2]:-?}), open for the whole of hop 2" \
    "{\"form\": \"$form\", \"hop\": 1, \"verify\": true}"
  truth hop b c 22 ssh "$ok" "${h2[0]:-$t0}" "${h2[1]:-$t1}" \
    "$form: hop 2 b -> c:22 (client port ${h2[2]:-?}), opened by b while a's session to b is open" \
    "{\"form\": \"$form\", \"hop\": 2, \"verify\": true}"
}

scen_pivot() {
  begin
  local cfg="$S/ssh/config" B C t0 t1 rc out
  B=$(ip_of b)
  C=$(ip_of c)
  sleep 0.5
  t0=$(now)
  rc=0
  # shellcheck disable=SC2016 # expanded on c
  out=$(nx a timeout 20 ssh -F "$cfg" -J "root@$B" "root@$C" \
    'echo "on $(ip -4 -br addr show eth0 | awk "{print \$3}")"; sleep 2' 2>&1) || rc=$?
  t1=$(now)
  truth ssh_proxyjump a c 22 "ssh -J root@b root@c" "$(bool [ "$rc" = 0 ] && [[ "$out" == *"$C/24"* ]])" \
    "$t0" "$t1" "ssh -J root@$B root@$C 'hostname; sleep 2' -> rc $rc, said: ${out//$'\n'/ }" \
    "{\"form\": \"proxyjump\", \"path\": [\"a\", \"b\", \"c\"]}"
  local f1=("$t0" "$t1")
  sleep 1.5
  # The second form: a key copied to b, and b's own ssh client.
  local bdir="$S/ssh/on_b"
  mkdir -p "$bdir"
  cp "$S/ssh/id_ed25519" "$bdir/id_ed25519"
  sed "s#IdentityFile .*#IdentityFile $bdir/id_ed25519#" "$cfg" >"$bdir/config"
  t0=$(now)
  rc=0
  out=$(nx a timeout 20 ssh -F "$cfg" "root@$B" \
    "ssh -F $bdir/config root@$C 'echo \"on \$(ip -4 -br addr show eth0 | awk \"{print \\\$3}\")\"; sleep 1'; sleep 1" 2>&1) || rc=$?
  t1=$(now)
  truth ssh_nested a c 22 "ssh root@b, then ssh root@c on b" \
    "$(bool [ "$rc" = 0 ] && [[ "$out" == *"$C/24"* ]])" "$t0" "$t1" \
    "ssh root@$B \"ssh root@$C ...\" -> rc $rc, said: ${out//$'\n'/ }" \
    "{\"form\": \"nested\", \"path\": [\"a\", \"b\", \"c\"]}"
  local f2=("$t0" "$t1")
  capture_stop 1
  record_hops proxyjump "${f1[0]}" "${f1[1]}"
  record_hops nested "${f2[0]}" "${f2[1]}"
}

# ---------------------------------------------------------------------------------------------
# fanout: the attacker tries SMB, RDP, WinRM and SSH on five hosts within a few seconds.

scen_fanout() {
  begin
  sleep 0.5
  local h ip t0 t1 rc out res
  for h in smb1 smb2 a b c; do
    ip=$(ip_of "$h")
    t0=$(now)
    rc=0
    out=$(nx attacker timeout 10 smbclient -L "//$ip" -N -t 3 2>&1) || rc=$?
    t1=$(now)
    if [ "$rc" = 0 ]; then
      res=completed
    elif [[ "$out" == *REFUSED* ]]; then res=refused; else res=failed; fi
    truth attempt attacker "$h" 445 "smbclient -L -N" true "$t0" "$t1" \
      "smbclient -L //$ip -N: $res (rc $rc) ${out//$'\n'/ | }" "{\"result\": \"$res\"}"

    t0=$(now)
    rc=0
    out=$(nx attacker timeout 5 ncat -v -z -w 2 "$ip" 3389 2>&1) || rc=$?
    t1=$(now)
    if [ "$rc" = 0 ]; then res=completed; elif [[ "$out" == *refused* ]]; then res=refused; else res=failed; fi
    truth attempt attacker "$h" 3389 "ncat -z" true "$t0" "$t1" "RDP connect: $res" \
      "{\"result\": \"$res\"}"

    t0=$(now)
    rc=0
    out=$(nx attacker curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
      -H 'Content-Type: application/soap+xml;charset=UTF-8' -d '' "http://$ip:5985/wsman" 2>&1) || rc=$?
    t1=$(now)
    if [ "$rc" = 0 ]; then res=completed; elif [ "$rc" = 7 ]; then res=refused; else res=failed; fi
    truth attempt attacker "$h" 5985 "curl /wsman" true "$t0" "$t1" \
      "WinRM POST /wsman: $res (HTTP $out, rc $rc)" "{\"result\": \"$res\"}"

    t0=$(now)
    rc=0
    out=$(nx attacker timeout 10 ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=3 \
      -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
      -o PreferredAuthentications=password,keyboard-interactive -o LogLevel=ERROR \
      "administrator@$ip" true 2>&1) || rc=$?
    t1=$(now)
    if [[ "$out" == *"Permission denied"* ]]; then
      res=auth_failed
    elif [[ "$out" == *refused* ]]; then res=refused; else res=failed; fi
    truth attempt attacker "$h" 22 "ssh BatchMode" true "$t0" "$t1" \
      "SSH as administrator: $res (${out//$'\n'/ })" "{\"result\": \"$res\"}"
  done
  capture_stop 1
  local n_ok n_ref n
  n=$(grep -c '"action":"attempt"' "$OUT/truth.jsonl")
  n_ok=$(grep '"action":"attempt"' "$OUT/truth.jsonl" | grep -c -e '"result":"completed"' -e '"result":"auth_failed"' || true)
  n_ref=$(grep '"action":"attempt"' "$OUT/truth.jsonl" | grep -c '"result":"refused"' || true)
  truth verify_attempts attacker "" "" "" "$(bool [ "$n_ok" -ge 8 ] && [ "$n_ref" -ge 8 ] && [ $((n_ok + n_ref)) = "$n" ])" \
    "$(head -1 "$OUT/truth.jsonl" | jq .ts)" "$(now)" \
    "$n attempts: $n_ok reached a server, $n_ref refused" "{\"verify\": true}"
}

# ---------------------------------------------------------------------------------------------
# scan: nmap from the attacker. A SYN scan of the top 100 TCP ports (nmap-services) plus the
# management ports 427, 902 and 5989 on smb1 and a; a connect scan of the same ports on b; a
# UDP scan of a few ports (53, 123, 161, 427, 500, 623) on c and dns.

scan_ports() {
  { grep -v '^#' /usr/share/nmap/nmap-services |
    awk '$2 ~ /\/tcp$/ { split($2, p, "/"); print $3, p[1] }' | sort -rg | head -100 | awk '{print $2}'
    printf '427\n902\n5989\n'; } | sort -nu | paste -sd, -
}

nmap_run() { # ACTION KIND TARGET-ROLES... -- NMAP-ARGS...
  local action=$1 kind=$2
  shift 2
  local roles=() ips=()
  while [ "$1" != -- ]; do roles+=("$1"); ips+=("$(ip_of "$1")"); shift; done
  shift
  local t0 t1 rc=0 g="$OUT/nmap_$action.gnmap"
  t0=$(now)
  nx attacker timeout 60 nmap -n -T4 --max-retries 1 "$@" -oG "$g" -oN "$OUT/nmap_$action.txt" \
    "${ips[@]}" >/dev/null 2>"$OUT/nmap_$action.err" || rc=$?
  t1=$(now)
  local i ports
  for i in "${!roles[@]}"; do
    ports=$(grep "Host: ${ips[$i]} " "$g" | grep -o 'Ports: .*' | tr ',' '\n' | grep -c '/open/' || true)
    truth scan attacker "${roles[$i]}" "" "nmap $kind" "$(bool [ "$rc" = 0 ] && grep -q "Host: ${ips[$i]} .*Ports:" "$g")" \
      "$t0" "$t1" "nmap $* ${ips[$i]}: rc $rc, $ports open" \
      "{\"scan_kind\": \"$kind\", \"open_ports\": $ports, \"args\": \"$*\"}"
  done
}

scen_scan() {
  begin
  sleep 0.5
  local ports
  ports=$(scan_ports)
  nmap_run syn -sS smb1 a -- -sS -p "$ports"
  nmap_run connect -sT b -- -sT -p "$ports"
  nmap_run udp -sU c dns -- -sU -p 53,123,161,427,500,623
  capture_stop 1
}

# ---------------------------------------------------------------------------------------------
# benign: a busy web service, admins working from the jump host, health checks, DNS, a backup.

dns_loop() { # SERVER STOPFILE FILE NAMES...
  local server=$1 stop=$2 file=$3
  shift 3
  while [ ! -e "$stop" ]; do
    for n in "$@"; do
      local t a
      t=$(date +%s.%N)
      a=$(dig +short +time=1 +tries=1 "@$server" "$n" A 2>/dev/null | head -1)
      echo "$t $n ${a:-FAIL}" >>"$file"
    done
    sleep 0.5
  done
}

scen_benign() {
  begin
  local w stop="$OUT/.stop_benign" t0 t1 rc out
  w=$(ip_of web)
  : >"$OUT/health.txt"
  : >"$OUT/dns.txt"
  local tb
  tb=$(now)
  start_curl_loop client2 "http://$w/healthz" 0.2 "$OUT/health.txt" "$stop"
  spawn client1 /dev/null /dev/null bash -c "$(declare -f dns_loop); dns_loop \"\$@\"" dns_loop \
    "$(ip_of dns)" "$stop" "$OUT/dns.txt" web.lab a.lab smb1.lab
  sleep 0.5
  # The web load: ab without keepalive, one connection per request.
  t0=$(now)
  spawn client1 "$OUT/ab_http.txt" "$OUT/ab_http.err" timeout 60 ab -q -n 3000 -c 20 -s 10 "http://$w/"
  local ab1=$LAST_PID
  spawn client2 "$OUT/ab_https.txt" "$OUT/ab_https.err" timeout 60 ab -q -n 3000 -c 20 -s 10 "https://$w/"
  local ab2=$LAST_PID
  # Admin work from the jump host meanwhile.
  local cfg="$S/ssh/config" h
  for h in a b c a b c; do
    t0=$(now)
    rc=0
    out=$(nx jump timeout 15 ssh -F "$cfg" "root@$(ip_of "$h")" 'uptime' 2>&1) || rc=$?
    t1=$(now)
    truth admin_ssh jump "$h" 22 ssh "$(bool [ "$rc" = 0 ])" "$t0" "$t1" \
      "ssh root@$h uptime: rc $rc ${out//$'\n'/ }"
    sleep 0.3
  done
  t0=$(now)
  rc=0
  out=$(nx jump timeout 15 smbclient "//$(ip_of smb1)/share" -N -c 'ls' 2>&1) || rc=$?
  t1=$(now)
  truth admin_smb jump smb1 445 smbclient "$(bool [ "$rc" = 0 ] && [[ "$out" == *readme.txt* ]])" \
    "$t0" "$t1" "smbclient //smb1/share -N -c ls: rc $rc"
  t0=$(now)
  rc=0
  local bytes
  bytes=$(nx jump timeout 30 ssh -F "$cfg" "root@$(ip_of a)" 'tar cf - /etc 2>/dev/null' | wc -c) || rc=$?
  t1=$(now)
  truth backup jump a 22 "ssh tar" "$(bool [ "$bytes" -gt 100000 ])" "$t0" "$t1" \
    "ssh root@a 'tar cf - /etc' > /dev/null: $bytes bytes" "{\"bytes\": $bytes}"
  local r1=0 r2=0
  wait "$ab1" || r1=$?
  wait "$ab2" || r2=$?
  local f
  for f in http https; do
    local file="$OUT/ab_$f.txt" port=80 done_ failed rps tt
    [ "$f" = https ] && port=443
    done_=$(sed -n 's/^Complete requests: *\([0-9]*\).*/\1/p' "$file")
    failed=$(sed -n 's/^Failed requests: *\([0-9]*\).*/\1/p' "$file")
    rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' "$file")
    tt=$(sed -n 's/^Time taken for tests: *\([0-9.]*\).*/\1/p' "$file")
    local who=client1
    [ "$f" = https ] && who=client2
    truth web_load "$who" web "$port" "ab -n 3000 -c 20" \
      "$(bool [ "${done_:-0}" = 3000 ] && [ "${failed:-1}" = 0 ])" "$tb" "$(now)" \
      "ab $f: ${done_:-?} complete, ${failed:-?} failed, ${rps:-?} connections/s over ${tt:-?} s" \
      "{\"complete\": ${done_:-0}, \"failed\": ${failed:-0}, \"per_second\": ${rps:-0}}"
  done
  # Keep the health checks and lookups going for ~12 s in all.
  while awk -v a="$tb" -v b="$(now)" 'BEGIN { exit !(b - a < 12) }'; do sleep 0.2; done
  touch "$stop"
  sleep 0.5
  local hc
  read -r -a hc <<<"$(loop_counts "$OUT/health.txt")"
  truth health_checks client2 web 80 curl "$(bool [ "${hc[0]}" -gt 20 ] && [ "${hc[0]}" = "${hc[1]}" ])" \
    "$tb" "$(now)" "curl http://web/healthz every 0.2 s: ${hc[1]}/${hc[0]} succeeded" \
    "{\"requests\": ${hc[0]}, \"succeeded\": ${hc[1]}}"
  local dn dfail
  dn=$(wc -l <"$OUT/dns.txt")
  dfail=$(grep -c FAIL "$OUT/dns.txt" || true)
  truth dns_lookups client1 dns 53 dig "$(bool [ "$dn" -gt 10 ] && [ "$dfail" = 0 ])" "$tb" "$(now)" \
    "dig @dns A web.lab, a.lab, smb1.lab every 0.5 s: $dn lookups, $dfail failed" \
    "{\"lookups\": $dn, \"failed\": $dfail}"
  capture_stop 1
}

# ---------------------------------------------------------------------------------------------

SCENARIOS=(monitor flood pivot fanout scan benign)

case "$CMD" in
up) up ;;
down) down ;;
all)
  [ -n "$OUT" ] || usage
  up
  trap down EXIT
  for s in "${SCENARIOS[@]}"; do
    log "scenario $s"
    "$SELF" "$s" "$P" "$S" "$OUT/$s"
  done
  ;;
monitor | flood | pivot | fanout | scan | benign) "scen_$CMD" ;;
*) usage ;;
esac
