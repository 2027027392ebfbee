#!/usr/bin/env bash
# VM start-to-ping: with the lab up (./lab up), halts the test VM, then times `xe vm-start` until the guest answers
# ping, N times. Prints each run and the median. Usage: bench/vm-start-to-ping.sh [runs]
set -euo pipefail
runs=${1:-5}
vm=$(xe vm-list name-label="Corral test VM" --minimal)
[ -n "$vm" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
ip=$(xe vm-param-get uuid="$vm" param-name=xenstore-data param-key=vm-data/ip); ip=${ip%/*}
accel=$(xe host-param-get uuid="$(xe host-list --minimal)" param-name=other-config param-key=corral-accelerator 2>/dev/null || echo unknown)
times=()
for i in $(seq "$runs"); do
  [ "$(xe vm-param-get uuid="$vm" param-name=power-state)" = halted ] || xe vm-shutdown uuid="$vm" --force
  start=$(date +%s.%N)
  xe vm-start uuid="$vm"
  api=$(date +%s.%N)
  until ping -c 1 -W 0.2 "$ip" >/dev/null 2>&1; do :; done
  end=$(date +%s.%N)
  t=$(awk "BEGIN {print $end - $start}"); a=$(awk "BEGIN {print $api - $start}")
  times+=("$t")
  printf 'run %d: vm-start returned after %.2f s, first ping answered after %.2f s\n' "$i" "$a" "$t"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
printf 'VM start-to-ping (accelerator %s, 256 MiB, 1 vCPU): median %.2f s over %d runs\n' "$accel" "$median" "$runs"
