#!/usr/bin/env bash
# Maintenance-mode figures, with the lab up (./lab up): COUNT (default 6) VMs of the "Corral Linux test" template run
# on lab-host1 (the lab's own VMs are moved off first); RUNS (default 3) times, `xe host-disable` + `xe host-evacuate`
# of lab-host1 is timed as an administrator would see it, then `xe host-enable restore-vms=true` brings them back
# (timed too). Also times one live migration of one of those VMs alone (median of 5), and prints the evacuation against
# COUNT such migrations in a row (the ratio is below 1 when the evacuation's parallel migrations pay off). Removes its
# VMs at the end.
# Usage (as root): bench/evacuation.sh [count] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-6}
runs=${2:-${RUNS:-3}}
shared=$(xe sr-list name-label="Shared storage" --minimal)
[ -n "$shared" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
host1=$(xe host-list name-label=lab-host1 --minimal)
. bench/lab-vms.sh
cleanup() {
  remove_bench_vms
  xe host-enable uuid="$host1" >/dev/null 2>&1 || true
  xe host-param-remove uuid="$host1" param-name=other-config param-key=MAINTENANCE_MODE_EVACUATED_VMS_MIGRATED >/dev/null 2>&1 || true
}
trap cleanup EXIT

# lab-host1 holds only the bench's VMs.
for vm in $(xe vm-list resident-on="$host1" is-control-domain=false --minimal | tr ',' ' '); do
  xe vm-migrate uuid="$vm" host=lab-host2 >/dev/null
done
for i in $(seq "$count"); do
  vm=$(xe vm-install template="Corral Linux test" new-name-label="bench evacuation $i" sr-uuid="$shared")
  bench_vms+=("$vm")
  xe vm-start uuid="$vm" on=lab-host1 >/dev/null
done
memory=$(xe vm-param-get uuid="${bench_vms[0]}" param-name=memory-static-max)
sleep 20 # let the guests finish booting (six at once under TCG): an evacuation moves running guests, not booting ones

# The baseline: one VM's live migration alone (median of 5, there and back again).
singles=()
for i in 1 2 3 4 5; do
  target=lab-host2; [ $((i % 2)) = 0 ] && target=lab-host1
  start=$(ms)
  xe vm-migrate uuid="${bench_vms[0]}" host=$target >/dev/null
  singles+=($(( $(ms) - start )))
done
[ "$(xe vm-param-get uuid="${bench_vms[0]}" param-name=resident-on)" = "$host1" ] || xe vm-migrate uuid="${bench_vms[0]}" host=lab-host1 >/dev/null
single=$(printf '%s\n' "${singles[@]}" | sort -n | sed -n 3p)
printf 'one live migration of a %d MiB guest alone: median %d ms (%s)\n' $((memory / 1024 / 1024)) "$single" "${singles[*]}"

for run in $(seq "$runs"); do
  start=$(ms)
  xe host-disable uuid="$host1"
  xe host-evacuate uuid="$host1"
  took=$(( $(ms) - start ))
  left=$(xe vm-list resident-on="$host1" is-control-domain=false --minimal)
  spread=$(for vm in "${bench_vms[@]}"; do xe vm-param-get uuid="$vm" param-name=resident-on; done | sort | uniq -c | awk '{printf "%s%d", (NR > 1 ? "+" : ""), $1}')
  printf 'run %d: evacuated %d VMs in %d ms (%d ms per VM; %.2f x %d migrations in a row), spread %s, left on the host: %s\n' \
    "$run" "$count" "$took" $((took / count)) "$(awk -v t="$took" -v c="$count" -v s="$single" 'BEGIN { print t / (c * s) }')" "$count" "$spread" "${left:-none}"
  start=$(ms)
  xe host-enable uuid="$host1" restore-vms=true
  back=$(( $(ms) - start ))
  printf '       and host-enable restore-vms=true brought %d back in %d ms\n' \
    "$(for vm in "${bench_vms[@]}"; do xe vm-param-get uuid="$vm" param-name=resident-on; done | grep -c "$host1")" "$back"
done
