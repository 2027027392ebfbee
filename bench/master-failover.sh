#!/usr/bin/env bash
# Master failover: in a private 3-host lab (its own namespaces, bridges, directories and HOME, so it never touches a
# lab you run), pulls the plug on whichever host is master, RUNS times (default 5), and measures from the kill to
#   - a survivor answering the XenAPI as master (session.login_with_password there succeeds instead of HOST_IS_SLAVE,
#     and pool.master no longer names the dead host)
#   - host_metrics.live of the dead host reading false on a survivor (what `xe host-list params=host-metrics-live` shows).
# Probes are plain JSON-RPC calls with curl, polled every ~50 ms. Each run also reports whether the dead host was the
# etcd leader and how far the raft term moved (each etcd election round adds one). The host is powered back on
# between runs and every host must be live again before the next. A run slower than SLOW seconds (default three
# liveness TTLs) or a failure keeps the lab's agent and etcd logs in /tmp/corral-bench-failover-logs-*.
# Usage (as root): bench/master-failover.sh [runs]    (or RUNS=n)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-${RUNS:-5}}
ttl=$(grep -o 'LeaseTtl { get; init; } = TimeSpan.FromSeconds([0-9]*)' src/Corral.HighAvailability/HaTimings.cs | grep -oE '[0-9]+\)' | tr -d ')')
slow=${SLOW:-$((3 * ttl))}
password=corral
[ "$(id -u)" = 0 ] || { echo "master-failover: run as root (the lab manages namespaces, bridges and QEMU)" >&2; exit 2; }
# `./lab up` publishes the agent into this tree's .build: never under the feet of a lab already running from it.
for exe in /proc/[0-9]*/exe; do
  case "$(readlink "$exe" 2>/dev/null)" in
    "$repo/.build/"*corral-agent*) echo "master-failover: a lab runs from $repo/.build (pid ${exe//[!0-9]/}); run the benchmark from another clone, or ./lab down first" >&2; exit 3 ;;
  esac
done

home=$(mktemp -d /tmp/corral-bench-failover-XXXXXX)
keep=/tmp/corral-bench-failover-logs-$$
# The lab writes ~/.xe, so HOME is private; NuGet's package cache stays the caller's (no downloads for a new HOME).
export NUGET_PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}
export HOME=$home CORRAL_LAB_DIR=$home/lab CORRAL_LAB_RUN=$home/run CORRAL_LAB_NS_PREFIX=corral-b$$-h \
  CORRAL_LAB_VETH_PREFIX=b$$ CORRAL_LAB_BRIDGE=cbv$$ CORRAL_LAB_MGMT_BRIDGE=cbm$$
# `./lab up` points /usr/local/bin/xe at this tree's build; this lab uses its own xe first on PATH, and the shared
# wrapper is given back to whoever had it once the lab is up.
mkdir -p "$home/bin"
printf '#!/bin/sh\nexec "%s/.build/xe/xe" "$@"\n' "$repo" > "$home/bin/xe"; chmod +x "$home/bin/xe"
export PATH=$home/bin:$PATH
shared_xe=/usr/local/bin/xe
saved_xe=$(cat "$shared_xe" 2>/dev/null || true)
restore_xe() {
  if [ -n "$saved_xe" ] && [ "$(cat "$shared_xe" 2>/dev/null)" = "$(cat "$home/bin/xe")" ]; then printf '%s\n' "$saved_xe" > "$shared_xe"; fi
}
keep_logs() { # keep_logs WHAT: copies the lab's logs (agents', etcd members') aside before teardown
  local dir=$keep/$1 f
  mkdir -p "$dir"
  (cd "$CORRAL_LAB_DIR" && find . -name '*.log' | while read -r f; do cp "$f" "$dir/$(echo "${f#./}" | tr / -)"; done) || true
  echo "  logs kept in $dir" >&2
}
cleanup() {
  local code=$?
  [ "$code" = 0 ] || keep_logs failure
  restore_xe
  ./lab down >/dev/null 2>&1 || true
  rm -rf "$home"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

./lab up > "$home/up.log" 2>&1 || { cat "$home/up.log"; exit 1; }
restore_xe
mapfile -t addr < <(grep 'Hosts:' "$home/up.log" | grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+')
endpoints=$(printf 'https://%s:2379,' "${addr[@]}"); endpoints=${endpoints%,}
# The lab's etcd serves TLS to certificates of the pool's CA only: etcdctl presents lab-host1's.
export ETCDCTL_CACERT="$CORRAL_LAB_DIR"/host1/state/etcd-tls/pool-ca.pem ETCDCTL_CERT="$CORRAL_LAB_DIR"/host1/state/etcd-tls/host.pem ETCDCTL_KEY="$CORRAL_LAB_DIR"/host1/state/etcd-tls/host.key

rpc() { # rpc ADDRESS METHOD JSON-PARAMS: prints the raw JSON answer ('' if none within 1 s)
  curl -s -m 1 -H 'Content-Type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "http://$1/jsonrpc" || true
}
result() { sed -n 's/.*"result":"\([^"]*\)".*/\1/p'; }
now() { date +%s%N; }
etcd_status() { # etcd_status: "ENDPOINT IS-LEADER RAFT-TERM" per member that answers
  ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=1s --command-timeout=2s endpoint status 2>/dev/null |
    awk -F', ' '{print $1, $5, $7}' || true
}
all_live() { [ "$(xe -s "$1" host-list params=host-metrics-live --minimal 2>/dev/null)" = "true,true,true" ]; }

masters=(); lives=()
for run in $(seq "$runs"); do
  master_uuid=$(xe pool-list params=master --minimal)
  master_name=$(xe host-param-get uuid="$master_uuid" param-name=name-label)
  n=${master_name#lab-host}
  dead=${addr[$((n - 1))]}
  survivor=${addr[$(( n % 3 ))]}
  # A session made on the master is valid on every host (sessions live in the pool database).
  pool_session=$(rpc "$dead" session.login_with_password "[\"root\",\"$password\",\"1.0\",\"bench\"]" | result)
  host_ref=$(rpc "$survivor" host.get_by_uuid "[\"$pool_session\",\"$master_uuid\"]" | result)
  metrics=$(rpc "$survivor" host.get_metrics "[\"$pool_session\",\"$host_ref\"]" | result)
  before=$(etcd_status)
  leader=$(echo "$before" | awk -v e="http://$dead:2379" '$1 == e {print $2}')
  term_before=$(echo "$before" | awk '{print $3}' | sort -n | tail -1)

  killed_at=$(date '+%F %T.%N')
  start=$(now)
  ./lab pull-plug "$n" >/dev/null 2>&1
  t_master=""; t_live=""; new_master=""
  while [ -z "$t_master" ] || [ -z "$t_live" ]; do
    if [ -z "$t_master" ]; then
      for a in "${addr[@]}"; do
        [ "$a" = "$dead" ] && continue
        # A survivor that takes a login serves as master (the others answer HOST_IS_SLAVE); the pool database must
        # agree the old master is gone.
        s=$(rpc "$a" session.login_with_password "[\"root\",\"$password\",\"1.0\",\"bench\"]" | result)
        [ -n "$s" ] || continue
        pool=$(rpc "$a" pool.get_all "[\"$s\"]" | sed -n 's/.*"result":\["\([^"]*\)".*/\1/p')
        m=$(rpc "$a" pool.get_master "[\"$s\",\"$pool\"]" | result)
        if [ -n "$m" ] && [ "$m" != "$host_ref" ]; then t_master=$(( $(now) - start )); new_master=$a; break; fi
      done
    fi
    if [ -z "$t_live" ] && rpc "$survivor" host_metrics.get_live "[\"$pool_session\",\"$metrics\"]" | grep -q '"result":false'; then
      t_live=$(( $(now) - start ))
    fi
    [ $(( $(now) - start )) -lt 120000000000 ] || { echo "run $run: no failover within 120 s" >&2; exit 1; }
    sleep 0.05
  done
  term_after=$(etcd_status | awk '{print $3}' | sort -n | tail -1)
  masters+=("$t_master"); lives+=("$t_live")
  printf 'run %d: killed %s (etcd leader: %s, raft term +%s); %s answers as master after %.2f s; host_metrics.live false after %.2f s\n' \
    "$run" "$master_name" "${leader:-?}" "$(( ${term_after:-0} - ${term_before:-0} ))" "$new_master" \
    "$(awk "BEGIN {print $t_master / 1e9}")" "$(awk "BEGIN {print $t_live / 1e9}")"
  if [ $(( (t_master > t_live ? t_master : t_live) / 1000000000 )) -ge "$slow" ]; then
    keep_logs "run$run-$master_name"
    echo "plug pulled on $master_name ($dead) at $killed_at; etcd before: $before" > "$keep/run$run-$master_name/README"
  fi

  ./lab power-on "$n" >/dev/null 2>&1
  printf 'server=%s\nport=80\nusername=root\npassword=%s\nnossl=true\n' "$new_master" "$password" > "$HOME/.xe"
  for _ in $(seq 600); do all_live "$new_master" && break; sleep 0.2; done
  all_live "$new_master" || { echo "run $run: $master_name not live again within 120 s of power-on" >&2; exit 1; }
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1/1e9} END {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "median %.2f s  min %.2f s  max %.2f s", m, a[1], a[NR]}'; }
echo "Master failover over $runs runs (liveness lease TTL ${ttl} s):"
echo "  master killed -> survivor answers as master:  $(stats "${masters[@]}")"
echo "  master killed -> host_metrics.live false:     $(stats "${lives[@]}")"
