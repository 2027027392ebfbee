#!/usr/bin/env bash
# Live migration figures, with the lab up (./lab up): for each guest memory size (MiB, default "256 512 1024"), RUNS
# (default 3) live migrations of "Corral test VM" between the lab's hosts, each with `ping -i 0.01` running. Prints
# QEMU's downtime and total time (from the task: Async.VM.pool_migrate records them in task.other_config) and the
# longest gap between ping replies as the shell sees it. Usage (as root): bench/migration.sh [sizes] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-256 512 1024}
runs=${2:-${RUNS:-3}}
vm=$(xe vm-list name-label="Corral test VM" --minimal)
[ -n "$vm" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
ip=$(xe vm-param-get uuid="$vm" param-name=xenstore-data param-key=vm-data/ip); ip=${ip%/*}
server=$(sed -n 's/^server=//p' ~/.xe); password=$(sed -n 's/^password=//p' ~/.xe)
rpc() { curl -s -m 30 -H 'Content-Type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "http://$server/jsonrpc"; }
result() { sed -n 's/.*"result":"\([^"]*\)".*/\1/p'; }
session=$(rpc session.login_with_password "[\"root\",\"$password\",\"1.0\",\"bench\"]" | result)
vm_ref=$(rpc VM.get_by_uuid "[\"$session\",\"$vm\"]" | result)
mapfile -t hosts < <(xe host-list params=uuid --minimal | tr ',' '\n')

for size in $sizes; do
  xe vm-shutdown uuid="$vm" >/dev/null
  bytes=$((size * 1024 * 1024))
  rpc VM.set_memory_limits "[\"$session\",\"$vm_ref\",$bytes,$bytes,$bytes,$bytes]" >/dev/null
  xe vm-start uuid="$vm" on=lab-host1 >/dev/null
  until ping -c 1 -W 1 "$ip" >/dev/null 2>&1; do sleep 0.2; done
  sleep 2
  for run in $(seq "$runs"); do
    here=$(xe vm-param-get uuid="$vm" param-name=resident-on)
    for h in "${hosts[@]}"; do [ "$h" != "$here" ] && target=$h && break; done
    target_ref=$(rpc host.get_by_uuid "[\"$session\",\"$target\"]" | result)
    ping -D -i 0.01 "$ip" > /tmp/corral-bench-ping.log 2>&1 & pinger=$!
    sleep 0.5
    task=$(rpc Async.VM.pool_migrate "[\"$session\",\"$vm_ref\",\"$target_ref\",{}]" | result)
    until [ "$(rpc task.get_status "[\"$session\",\"$task\"]" | result)" != pending ]; do sleep 0.05; done
    sleep 0.5
    kill -INT "$pinger"; wait "$pinger" || true
    status=$(rpc task.get_status "[\"$session\",\"$task\"]" | result)
    other=$(rpc task.get_other_config "[\"$session\",\"$task\"]")
    downtime=$(echo "$other" | sed -n 's/.*"migration-downtime-ms":"\([0-9]*\)".*/\1/p')
    total=$(echo "$other" | sed -n 's/.*"migration-total-ms":"\([0-9]*\)".*/\1/p')
    gap=$(awk '/icmp_seq/ {t=substr($1,2,length($1)-2); if (p) {g=(t-p)*1000; if (g>m) m=g}; p=t} END {printf "%.0f", m}' /tmp/corral-bench-ping.log)
    lost=$(grep -o '[0-9]*% packet loss' /tmp/corral-bench-ping.log)
    printf '%5d MiB run %d: %s, QEMU downtime %s ms, total %s ms, longest ping gap %s ms, %s\n' "$size" "$run" "$status" "${downtime:-?}" "${total:-?}" "$gap" "$lost"
    rpc task.destroy "[\"$session\",\"$task\"]" >/dev/null
  done
done
xe vm-shutdown uuid="$vm" >/dev/null
rpc VM.set_memory_limits "[\"$session\",\"$vm_ref\",268435456,268435456,268435456,268435456]" >/dev/null
xe vm-start uuid="$vm" on=lab-host1 >/dev/null
rm -f /tmp/corral-bench-ping.log
