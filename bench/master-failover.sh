#!/usr/bin/env bash
# Master failover: in a private 3-host lab (its own namespaces, bridges and directories, so it never touches a lab
# you run), pulls the plug on whichever host is master, RUNS times (default 5), and measures from the kill to
#   - a survivor answering the XenAPI as master (session.login_with_password there succeeds instead of HOST_IS_SLAVE)
#   - host_metrics.live of the dead host reading false on a survivor.
# Probes are plain JSON-RPC calls with curl every ~20 ms. The host is powered back on between runs.
# Usage (as root): bench/master-failover.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-${RUNS:-5}}
home=$(mktemp -d /tmp/corral-bench-failover-XXXXXX)
export HOME=$home CORRAL_LAB_DIR=$home/lab CORRAL_LAB_RUN=$home/run CORRAL_LAB_NS_PREFIX=corral-b$$-h \
  CORRAL_LAB_VETH_PREFIX=b$$ CORRAL_LAB_BRIDGE=cbv$$ CORRAL_LAB_MGMT_BRIDGE=cbm$$
cleanup() { ./lab down >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT
password=corral

./lab up > "$home/up.log" 2>&1 || { cat "$home/up.log"; exit 1; }
mapfile -t addr < <(grep 'Hosts:' "$home/up.log" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+')

rpc() { # rpc ADDRESS METHOD JSON-PARAMS: prints the raw JSON answer ('' if none within 1 s)
  curl -s -m 1 -H 'Content-Type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "http://$1/jsonrpc" || true
}
result() { sed -n 's/.*"result":"\([^"]*\)".*/\1/p'; }
now() { date +%s%N; }

masters=(); lives=()
for run in $(seq "$runs"); do
  master_uuid=$(xe pool-list params=master --minimal)
  master_name=$(xe host-param-get uuid="$master_uuid" param-name=name-label)
  n=${master_name#lab-host}
  survivor=${addr[$(( n % 3 ))]}
  # A session made on the master is valid on every host (sessions live in the pool database).
  pool_session=$(rpc "${addr[$((n - 1))]}" session.login_with_password "[\"root\",\"$password\",\"1.0\",\"bench\"]" | result)
  host_ref=$(rpc "$survivor" host.get_by_uuid "[\"$pool_session\",\"$master_uuid\"]" | result)
  metrics=$(rpc "$survivor" host.get_metrics "[\"$pool_session\",\"$host_ref\"]" | result)

  start=$(now)
  ./lab pull-plug "$n" >/dev/null 2>&1
  t_master=""; t_live=""
  while [ -z "$t_master" ] || [ -z "$t_live" ]; do
    if [ -z "$t_master" ]; then
      for a in "${addr[@]}"; do
        [ "$a" = "${addr[$((n - 1))]}" ] && continue
        # A survivor that takes a login serves as master (the others answer HOST_IS_SLAVE); the pool database must
        # agree the old master is gone.
        s=$(rpc "$a" session.login_with_password "[\"root\",\"$password\",\"1.0\",\"bench\"]" | result)
        [ -n "$s" ] || continue
        pool=$(rpc "$a" pool.get_all "[\"$s\"]" | sed -n 's/.*"result":\["\([^"]*\)".*/\1/p')
        if [ "$(rpc "$a" pool.get_master "[\"$s\",\"$pool\"]" | result)" != "$host_ref" ]; then t_master=$(( $(now) - start )); break; fi
      done
    fi
    if [ -z "$t_live" ] && rpc "$survivor" host_metrics.get_live "[\"$pool_session\",\"$metrics\"]" | grep -q '"result":false'; then
      t_live=$(( $(now) - start ))
    fi
    [ $(( $(now) - start )) -lt 120000000000 ] || { echo "run $run: no failover within 120 s" >&2; exit 1; }
    sleep 0.02
  done
  masters+=("$t_master"); lives+=("$t_live")
  printf 'run %d: killed %s; survivor answers as master after %.2f s; host_metrics.live false after %.2f s\n' \
    "$run" "$master_name" "$(awk "BEGIN {print $t_master / 1e9}")" "$(awk "BEGIN {print $t_live / 1e9}")"

  ./lab power-on "$n" >/dev/null 2>&1
  for _ in $(seq 300); do
    [ "$(xe -s "$survivor" host-list params=host-metrics-live --minimal 2>/dev/null)" = "true,true,true" ] && break
    sleep 0.2
  done
  printf 'server=%s\nport=80\nusername=root\npassword=%s\nnossl=true\n' "$survivor" "$password" > "$HOME/.xe"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1/1e9} END {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "median %.2f s  min %.2f s  max %.2f s", m, a[1], a[NR]}'; }
ttl=$(grep -o 'LivenessTtl { get; set; } = TimeSpan.FromSeconds([0-9]*)' src/Corral.Agent/Hosting/AgentOptions.cs | grep -oE '[0-9]+)' | tr -d ')')
echo "Master failover over $runs runs (liveness lease TTL ${ttl} s):"
echo "  master killed -> survivor answers as master:  $(stats "${masters[@]}")"
echo "  master killed -> host_metrics.live false:     $(stats "${lives[@]}")"
