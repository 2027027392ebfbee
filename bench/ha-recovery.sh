#!/usr/bin/env bash
# HA recovery time, with the lab up (./lab up): for each count of protected VMs (default "1 4 8"), RUNS (default 3)
# times, the VMs run on one host, answering ping; the plug is pulled on that host and the clock runs until every VM
# answers ping again from a survivor, with no command typed. The host is HOST (default 3: lab-host3, not the master),
# or "master": whichever host is pool master at the start of each run (with the etcd leader, when it is). Prints each
# run (first and last VM back) and, per count, the median and the 95th percentile (nearest rank) of the last VM back,
# with min and max. The host is powered on again and the VMs are moved back between runs; the bench's VMs are removed
# at the end and HA is left as it was.
# Usage (as root): bench/ha-recovery.sh [counts] [runs]    (HOST=master bench/ha-recovery.sh 1 20: the master)
set -euo pipefail
cd "$(dirname "$0")/.."
counts=${1:-1 4 8}
runs=${2:-${RUNS:-3}}
shared=$(xe sr-list name-label="Shared storage" --minimal)
[ -n "$shared" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
pool=$(xe pool-list --minimal)
target=${HOST:-3}
subnet=$(xe vm-param-get uuid="$(xe vm-list name-label="Corral test VM" --minimal)" param-name=xenstore-data param-key=vm-data/ip | cut -d. -f1-3)
ha_was=$(xe pool-param-get uuid="$pool" param-name=ha-enabled)
. bench/lab-vms.sh
cleanup() {
  remove_bench_vms
  [ "$ha_was" = true ] || xe pool-ha-disable >/dev/null 2>&1 || true
}
trap cleanup EXIT

[ "$ha_was" = true ] || xe pool-ha-enable heartbeat-sr-uuids="$shared"
all_live() { [ "$(xe host-list params=host-metrics-live --minimal)" = "true,true,true" ]; }
ip_of() { echo "$subnet.$((100 + $1))"; }

# breakdown START_MS VICTIM LAST_MS: where a run's time went, from the agents' logs (their times of day, this
# machine's clock): the first master elected after the plug (when the victim was master), the master seeing the victim's
# lease gone, the victim declared fenced, the last bench VM's QEMU running on a survivor, and the last VM answering ping.
breakdown() {
  local since
  since=$(date -d "@$(( $1 / 1000 )).$(printf '%03d' $(( $1 % 1000 )))" +%H:%M:%S.%3N)
  cat "${CORRAL_LAB_DIR:-/var/lib/corral-lab}"/agent-host*.log 2>/dev/null | awk -v since="$since" -v victim="$2" -v back="$3" '
    function secs(t,  p) { split(t, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    function after(t) { d = secs(t) - secs(since); return d < 0 ? d + 86400 : d }
    $1 ~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+$/ && $1 >= since {
      if ($0 ~ /now the pool master/ && master == "") master = after($1)
      if ($0 ~ /HaCoordinator\[1010\]/ && index($0, "host " victim " ") && seen == "") seen = after($1)
      if ($0 ~ /MasterFenceWatch\[1016\]/ && index($0, "master " victim " ") && seen == "") { seen = after($1); survivor = 1 }
      if ($0 ~ /HaCoordinator\[1014\]/ && index($0, "host " victim " ") && fenced == "") fenced = after($1)
      if ($0 ~ /VM bench ha [0-9]+ .* started: QEMU pid/ && after($1) > qemu) qemu = after($1)
    }
    END {
      printf "  where the time went: %s%s +%.1f s; fenced +%.1f s; last QEMU running +%.1f s; last guest answering ping +%.1f s\n",
        (master == "" ? "" : sprintf("new master +%.1f s; ", master)),
        (survivor ? "silent master powered off, its lease revoked by a survivor" : "lease gone, seen by the master"), seen, fenced, qemu, back / 1000
    }'
}

max=0; for n in $counts; do [ "$n" -gt "$max" ] && max=$n; done
for i in $(seq "$max"); do
  vm=$(xe vm-install template="Corral Linux test" new-name-label="bench ha $i" sr-uuid="$shared")
  xe vm-param-set uuid="$vm" xenstore-data:vm-data/ip="$(ip_of "$i")/24" ha-restart-priority=restart
  bench_vms+=("$vm")
done

for n in $counts; do
  results=()
  for run in $(seq "$runs"); do
    until all_live; do sleep 1; done
    if [ "$target" = master ]; then
      slot=$(xe host-param-get uuid="$(xe pool-param-get uuid="$pool" param-name=master)" param-name=name-label | sed 's/^lab-host//')
    else
      slot=$target
    fi
    victim=lab-host$slot
    victim_uuid=$(xe host-list name-label="$victim" --minimal)
    # The first n bench VMs run on the victim, the others are halted.
    for i in $(seq "$max"); do
      vm=${bench_vms[$((i - 1))]}
      state=$(xe vm-param-get uuid="$vm" param-name=power-state)
      if [ "$i" -le "$n" ]; then
        if [ "$state" = halted ]; then xe vm-start uuid="$vm" on="$victim" >/dev/null
        elif [ "$(xe vm-param-get uuid="$vm" param-name=resident-on)" != "$victim_uuid" ]; then xe vm-migrate uuid="$vm" host="$victim" >/dev/null; fi
      elif [ "$state" != halted ]; then xe vm-shutdown uuid="$vm" force=true >/dev/null; fi
    done
    for i in $(seq "$n"); do until ping -c 1 -W 1 "$(ip_of "$i")" >/dev/null 2>&1; do sleep 0.2; done; done
    sleep 2
    start=$(ms)
    ./lab pull-plug "$slot" >/dev/null 2>&1
    declare -A back=()
    while [ "${#back[@]}" -lt "$n" ]; do
      for i in $(seq "$n"); do
        [ -n "${back[$i]:-}" ] && continue
        ping -c 1 -W 0.2 "$(ip_of "$i")" >/dev/null 2>&1 && back[$i]=$(( $(ms) - start ))
      done
      [ $(( $(ms) - start )) -gt 180000 ] && { echo "run $run: not every VM came back within 180 s" >&2; break; }
    done
    first=$(printf '%s\n' "${back[@]}" | sort -n | head -n 1); last=$(printf '%s\n' "${back[@]}" | sort -n | tail -n 1)
    printf '%d VM(s), run %d, plug pulled on %s: first back after %.1f s, all back after %.1f s\n' "$n" "$run" "$victim" \
      "$(awk -v t="$first" 'BEGIN { print t / 1000 }')" "$(awk -v t="$last" 'BEGIN { print t / 1000 }')"
    breakdown "$start" "$victim" "$last"
    results+=("$last")
    unset back
    ./lab power-on "$slot" >/dev/null 2>&1
  done
  sorted=$(printf '%s\n' "${results[@]}" | sort -n)
  count=${#results[@]}
  nth() { echo "$sorted" | sed -n "${1}p" | awk '{ printf "%.1f", $1 / 1000 }'; }
  printf '%d protected VM(s), plug pulled on %s, %d runs: median %s s, p95 %s s, min %s s, max %s s (until every VM answers ping on a survivor)\n' \
    "$n" "$([ "$target" = master ] && echo "the master" || echo "lab-host$target")" "$count" \
    "$(nth $(( (count + 1) / 2 )))" "$(nth $(( (95 * count + 99) / 100 )))" "$(nth 1)" "$(nth "$count")"
done
