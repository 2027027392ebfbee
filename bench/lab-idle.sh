#!/usr/bin/env bash
# What an idle lab costs its machine: each host's agent and etcd member's CPU (percent of one core) and the read
# requests (Range) each member serves a second, over SECONDS (default 60). The reference, in the same run, is the
# etcd members' own share: an idle Raft cluster with nothing asking it anything still heartbeats. Needs ./lab up and
# root. Usage: bench/lab-idle.sh [SECONDS]
set -euo pipefail
seconds=${1:-60}
run=${CORRAL_LAB_RUN:-/run/corral-lab}
lab=${CORRAL_LAB_DIR:-/var/lib/corral-lab}
ns_prefix=${CORRAL_LAB_NS_PREFIX:-corral-lab-h}
hz=$(getconf CLK_TCK)
[ -f "$run/agent-host1.pid" ] || { echo "the lab is not up (./lab up)" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ranges() { # ranges N: Range requests member N has served so far
  local tls="$lab/host$1/state/etcd-tls"
  ip netns exec "$ns_prefix$1" curl -s --cacert "$tls/pool-ca.pem" --cert "$tls/host.pem" --key "$tls/host.key" \
    https://127.0.0.1:2379/metrics | awk '/^grpc_server_handled_total/ && /grpc_method="Range"/ { n += $2 } END { print n + 0 }'
}

hosts=$(ls "$run"/agent-host*.pid | sed 's/.*agent-host\([0-9]*\)\.pid/\1/' | sort -n)
declare -A pid before
for i in $hosts; do
  pid[agent$i]=$(cat "$run/agent-host$i.pid"); pid[etcd$i]=$(cat "$lab/host$i/etcd.pid")
done
for k in "${!pid[@]}"; do before[$k]=$(cpu_ticks "${pid[$k]}"); done
for i in $hosts; do before[range$i]=$(ranges "$i"); done
sleep "$seconds"

total_agents=0; total_etcd=0
printf '%-10s %8s %8s %10s\n' host agent etcd "Range/s"
for i in $hosts; do
  a=$(( ($(cpu_ticks "${pid[agent$i]}") - before[agent$i]) * 1000 / hz / seconds ))
  e=$(( ($(cpu_ticks "${pid[etcd$i]}") - before[etcd$i]) * 1000 / hz / seconds ))
  r=$(( ($(ranges "$i") - before[range$i]) * 10 / seconds ))
  total_agents=$((total_agents + a)); total_etcd=$((total_etcd + e))
  printf '%-10s %7d.%d%% %7d.%d%% %8d.%d\n' "lab-host$i" $((a / 10)) $((a % 10)) $((e / 10)) $((e % 10)) $((r / 10)) $((r % 10))
done
printf 'all agents %d.%d%% of a core, all etcd members %d.%d%%; agents / etcd = %s\n' \
  $((total_agents / 10)) $((total_agents % 10)) $((total_etcd / 10)) $((total_etcd % 10)) \
  "$(awk -v a="$total_agents" -v e="$total_etcd" 'BEGIN { printf (e > 0 ? "%.2f" : "n/a"), a / e }')"
