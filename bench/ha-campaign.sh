#!/usr/bin/env bash
# HA fault campaign, with the lab up (./lab up): each fault RUNS times (default 3), HA on and the lab's test VM
# ("Corral test VM") protected and running on a host that is not the master, the fault hitting that host (or the
# master, or the etcd leader, as the fault says). All along, bench/ha-watch.py watches the VM's QEMU processes and who
# holds its disk's write lock, and a ping every 200 ms times the VM's outage. After each run, once the fault has
# healed: the pool database must place the VM where its one process runs, and no task may be left pending. At the end
# the VM is shut down and its disk checked with qemu-img, then started again.
#
# Each fault has an expected outcome:
#   keep     the VM must keep its QEMU process (a restart is a needless one): the host was only cut off, stalled or
#            lost its agent or etcd member (a restart: a second process that ran the guest, holding the disk's write lock);
#   recover  the host is gone for good or reset: the VM must run again on a survivor (its outage is the recovery time);
#   migrate  a live migration was under way: the VM runs on in one of its two copies, never restarted.
# A double run is two processes holding the disk's write lock at once, or, outside a migration, two QEMU processes
# seen alive together for 300 ms or more (a single sample may catch a killed one not yet gone).
#
# Prints one line per run, then a Markdown table (fault, runs, needless restarts, double runs, outage median and p95).
# DOCS=1 also writes that table into docs/ha.md, between its campaign markers.
# Usage (as root): bench/ha-campaign.sh [runs] [fault...]     faults: see ALL below
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lab-vms.sh
runs=${1:-3}; shift || true
ALL=(partition-8 partition-30 partition-90 storage-stall-10 storage-stall-30 agent-kill agent-kill-fence-agent agent-restart
  etcd-leader-kill freeze-3 freeze-30 cpu-starvation-30 clock-step+10 clock-step-10 master-clock-step+10
  master-clock-step-10 master-death-mid-migration)
faults=("$@"); [ ${#faults[@]} -gt 0 ] || faults=("${ALL[@]}")
lab_dir=${CORRAL_LAB_DIR:-/var/lib/corral-lab}
run_dir=${CORRAL_LAB_RUN:-/run/corral-lab}
# The lab's etcd serves TLS to certificates of the pool's CA only: etcdctl presents lab-host1's.
export ETCDCTL_CACERT="$lab_dir"/host1/state/etcd-tls/pool-ca.pem ETCDCTL_CERT="$lab_dir"/host1/state/etcd-tls/host.pem ETCDCTL_KEY="$lab_dir"/host1/state/etcd-tls/host.key
work=$(mktemp -d)
vm=$(xe vm-list name-label="Corral test VM" --minimal)
[ -n "$vm" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
ip=$(xe vm-param-get uuid="$vm" param-name=xenstore-data param-key=vm-data/ip | cut -d/ -f1)
pool=$(xe pool-list --minimal)
shared=$(xe sr-list name-label="Shared storage" --minimal)
ha_before=$(xe pool-param-get uuid="$pool" param-name=ha-enabled)
watcher=""; pinger=""
cleanup() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null || true
  [ -n "$pinger" ] && kill "$pinger" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the pool ----

slot_of() { xe host-param-get uuid="$1" param-name=name-label | sed 's/^lab-host//'; }
master_slot() { slot_of "$(xe pool-param-get uuid="$pool" param-name=master)"; }
all_live() { [ "$(xe host-list params=host-metrics-live --minimal 2>/dev/null)" = "true,true,true" ]; }
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local until=$(( $(ms) + $1 * 1000 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do [ "$(ms)" -lt "$until" ] || { echo "  timed out waiting for $what" >&2; return 1; }; sleep 1; done
}
answers() { ping -c 1 -W 1 "$ip" >/dev/null 2>&1; }
# power_on_off_hosts: powers on every host that is off (HA power-fenced it: it stays off until someone powers it on,
# as an operator would here); prints the last one it powered on.
power_on_off_hosts() {
  local h last=""
  for h in 1 2 3; do
    if [ "$(cat "$run_dir/host$h/power" 2>/dev/null)" = off ]; then ./lab power-on "$h" > /dev/null 2>&1; last=$h; fi
  done
  echo "$last"
}
etcd_leader_slot() {
  local i endpoints=""
  for i in 1 2 3; do endpoints+="https://10.78.0.$((10 + i)):2379,"; done
  ETCDCTL_API=3 etcdctl --endpoints="${endpoints%,}" --dial-timeout=1s --command-timeout=2s endpoint status 2>/dev/null |
    awk -F', ' '$5 == "true" { print $1 }' | sed 's/.*\.1\([0-9]\):2379/\1/'
}

# The VM protected, running on host $1 (moved there live if it runs elsewhere), answering ping.
place_vm() {
  local host; host=$(xe host-list name-label="lab-host$1" --minimal)
  [ "$(xe vm-param-get uuid="$vm" param-name=power-state)" = running ] || xe vm-start uuid="$vm" on="lab-host$1" >/dev/null
  [ "$(xe vm-param-get uuid="$vm" param-name=resident-on)" = "$host" ] || xe vm-migrate uuid="$vm" host="lab-host$1" >/dev/null
  wait_for 60 "the VM to answer ping" answers
}

# ---- one run ----

# inject FAULT TARGET: the fault, its duration and its healing; prints the fault's expected outcome.
inject() {
  local fault=$1 t=$2 m
  case "$fault" in
    partition-*) ./lab partition "$t"; sleep "${fault#partition-}"; ./lab heal "$t" ;;
    storage-stall-*) ./lab stall-storage "$t"; sleep "${fault#storage-stall-}"; ./lab unstall-storage "$t" ;;
    agent-kill)
      # As on a server without IPMI: no fence agent for this run (the lab gives every host one).
      xe host-set-power-on-mode host="lab-host$t" power-on-mode= >/dev/null
      ./lab kill-agent "$t"; sleep 20; ./lab start-agent "$t"
      wait_for 60 "lab-host$t's agent" all_live
      xe host-set-power-on-mode host="lab-host$t" power-on-mode=lab power-on-config:slot="$t" >/dev/null ;;
    agent-kill-fence-agent) ./lab kill-agent "$t"; sleep 20; ./lab start-agent "$t" ;;
    agent-restart) ./lab kill-agent "$t"; sleep 1; ./lab start-agent "$t" ;;
    etcd-leader-kill)
      m=$(etcd_leader_slot); [ -n "$m" ] || { echo "  no etcd leader found" >&2; return 1; }
      echo "  etcd leader: lab-host$m" >&2
      kill -9 "$(cat "$lab_dir/host$m/etcd.pid")"; sleep 20 ;;
    freeze-*) ./lab freeze "$t"; sleep "${fault#freeze-}"; ./lab thaw "$t" ;;
    cpu-starvation-*) ./lab starve "$t" 10; sleep "${fault#cpu-starvation-}"; ./lab unstarve "$t" ;;
    # The wall clock of the VM's host, or of the master, jumps; 30 s later it jumps back (the opposite step).
    clock-step*|master-clock-step*)
      [ "${fault%%clock-step*}" = master- ] && t=$(master_slot)
      local step=${fault##*clock-step}
      ./lab clock-step "$t" "$step"; sleep 30; ./lab clock-step "$t" "$(( -step ))" ;;
    master-death-mid-migration)
      m=$(master_slot)
      local d; for d in 1 2 3; do [ "$d" != "$m" ] && [ "$d" != "$t" ] && break; done
      (xe vm-migrate uuid="$vm" host="lab-host$d" bandwidth=20000000 >/dev/null 2>&1 || true) &
      sleep 1.5; ./lab pull-plug "$m"; sleep 30; ./lab power-on "$m" ;;
    *) echo "unknown fault $fault" >&2; return 1 ;;
  esac > "$work/lab.log" 2>&1
}

expected() {
  case "$1" in
    freeze-30) echo recover ;;
    master-death-mid-migration) echo migrate ;;
    *) echo keep ;;
  esac
}

# The longest stretch, in ms, without a ping answer between FROM and TO (epoch ms), from ping -D's output.
longest_gap() {
  awk -v from="$2" -v to="$3" '
    /bytes from/ { t = substr($1, 2, length($1) - 2) * 1000; if (t < from) { last = from; next } if (t > to) next
                   if (last == "") last = from; if (t - last > gap) gap = t - last; last = t }
    END { if (last == "") last = from; if (to - last > gap) gap = to - last; printf "%d", gap }' "$1"
}

run_one() { # run_one FAULT RUN: prints "FAULT RUN EXPECTED NEEDLESS DOUBLE OUTAGE-MS CHECKS"
  local fault=$1 run=$2 m t outcome start end fenced needless=0 double=0 checks=ok
  power_on_off_hosts > /dev/null
  wait_for 180 "every host live" all_live
  m=$(master_slot); for t in 3 2 1; do [ "$t" != "$m" ] && break; done
  place_vm "$t"
  [ "$(xe pool-param-get uuid="$pool" param-name=ha-enabled)" = true ] || xe pool-ha-enable heartbeat-sr-uuids="$shared" >/dev/null
  # Protected, as this campaign's runs assume (a fresh lab's test VM is not): restarted by HA if its host is fenced.
  [ "$(xe vm-param-get uuid="$vm" param-name=ha-restart-priority)" = restart ] || xe vm-param-set uuid="$vm" ha-restart-priority=restart
  sleep 3
  ping -D -i 0.2 -W 1 "$ip" > "$work/ping.log" 2>&1 & pinger=$!
  python3 bench/ha-watch.py "$vm" "$work/watch.out" "$run_dir" & watcher=$!
  sleep 1
  start=$(ms)
  inject "$fault" "$t" || checks="fault-not-injected"
  outcome=$(expected "$fault")
  # Healed: the VM answers again and every host is back.
  wait_for 180 "the VM to answer ping" answers || checks="vm-not-back"
  # A host HA power-fenced: noted, and powered on again.
  fenced=$(power_on_off_hosts)
  [ -z "$fenced" ] || checks="power-fenced-lab-host$fenced"
  wait_for 180 "every host live" all_live || checks="hosts-not-back"
  end=$(ms)
  sleep 5
  kill "$watcher"; wait "$watcher" 2>/dev/null || true; watcher=""
  kill "$pinger"; wait "$pinger" 2>/dev/null || true; pinger=""
  local watch processes writers pids
  watch=$(cat "$work/watch.out")
  processes=$(sed 's/.*max_processes=\([0-9]*\).*/\1/' <<< "$watch")
  overlap=$(sed 's/.*overlap_ms=\([0-9]*\).*/\1/' <<< "$watch")
  writers=$(sed 's/.*max_writers=\([0-9]*\).*/\1/' <<< "$watch")
  # Guest runs: the processes that held the disk's write lock at some point (an incoming copy that never ran the guest,
  # say one a destination started again after the master died, is not one).
  pids=$(sed 's/.*writer_pids=\([0-9,]*\).*/\1/' <<< "$watch" | tr ',' '\n' | grep -c . || true)
  [ "$writers" -le 1 ] || double=1
  # Every copy that ran the guest held the VM's lease on the shared SR (sanlock), in every sample that looked.
  local unleased; unleased=$(sed -n 's/.*unleased_writer_samples=\([0-9]*\).*/\1/p' <<< "$watch")
  [ "${unleased:-0}" = 0 ] || checks="unleased-copy"
  [ "$outcome" = migrate ] || [ "$processes" -le 1 ] || [ "$overlap" -lt 300 ] || double=1
  case "$outcome" in
    keep) [ "$pids" -le 1 ] || needless=1 ;;
    migrate) [ "$pids" -le 2 ] || needless=1 ;;
  esac
  # The pool database agrees with the process table; no task left pending.
  local live=() h pid
  for h in 1 2 3; do
    pid=$(cat "$run_dir/host$h/vms/$vm/qemu.pid" 2>/dev/null || true)
    [ -n "$pid" ] && [ -e "/proc/$pid" ] && live+=("$h")
  done
  if [ ${#live[@]} -ne 1 ] || [ "$(xe vm-param-get uuid="$vm" param-name=resident-on)" != "$(xe host-list name-label="lab-host${live[0]}" --minimal)" ] \
     || [ "$(xe vm-param-get uuid="$vm" param-name=power-state)" != running ]; then
    checks="db-mismatch"
  fi
  wait_for 30 "pending tasks to end" test -z "$(xe task-list status=pending --minimal)" || checks="task-pending"
  echo "$fault $run $outcome $needless $double $(longest_gap "$work/ping.log" "$start" "$end") $checks"
}

# ---- the campaign ----

results=$work/results
for fault in "${faults[@]}"; do
  if [[ "$fault" == *clock-step* ]] && [ ! -f "$run_dir/clock-steps" ]; then
    echo "$fault: skipped, the lab does not step clocks (./lab down, then CORRAL_LAB_CLOCK_STEPS=1 ./lab up)" >&2
    continue
  fi
  for run in $(seq "$runs"); do
    line=$(run_one "$fault" "$run")
    echo "$line" >> "$results"
    read -r f r outcome needless double outage checks <<< "$line"
    printf '%-28s run %d: %-7s needless restart %s, double run %s, VM outage %5.1f s, %s\n' "$f" "$r" "$outcome" \
      "$([ "$needless" = 1 ] && echo YES || echo no)" "$([ "$double" = 1 ] && echo YES || echo no)" \
      "$(awk -v t="$outage" 'BEGIN { print t / 1000 }')" "$checks"
  done
done

# The pool left as the campaign found it (HA off again if it was), and the VM's disk checked at rest.
[ "$ha_before" = true ] || xe pool-ha-disable >/dev/null
xe vm-shutdown uuid="$vm" >/dev/null
disk=$(xe vbd-list vm-uuid="$vm" type=Disk params=vdi-uuid --minimal | cut -d, -f1)
# The image where the shared SR keeps it: the lab's directory (CORRAL_LAB_SR=file) or the storage server's export (nfs).
image=$(find "$lab_dir/shared" "$lab_dir/storage/nfs" -name "$(xe vdi-param-get uuid="$disk" param-name=location)*" 2>/dev/null | head -n 1)
if qemu-img check -q "$image"; then disk_state="clean"; else disk_state="NOT CLEAN"; fi
xe vm-start uuid="$vm" >/dev/null
echo "disk after the campaign: $disk_state ($image)"

table=$work/table.md
{
  echo "| fault | expected | runs | needless restarts | double runs | VM outage median | p95 | other checks failed |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  for fault in "${faults[@]}"; do
    grep -q "^$fault " "$results" 2>/dev/null || continue
    awk -v f="$fault" '$1 == f' "$results" | sort -k6 -n | awk '
      { n++; o[n] = $6; ex = $3; needless += $4; double += $5; if ($7 != "ok") { seen[$7]++ } }
      END { med = o[int((n + 1) / 2)]; p95 = o[int((95 * n + 99) / 100)]
            for (c in seen) bad = bad (bad == "" ? "" : ", ") c " (" seen[c] ")"
            printf "| %s | %s | %d | %d | %d | %.1f s | %.1f s | %s |\n", $1, ex, n, needless, double, med / 1000, p95 / 1000, (bad == "" ? "none" : bad) }'
  done
  echo
  echo "Disk after the campaign: $disk_state. Command: \`bench/ha-campaign.sh $runs${*:+ $*}\`, $(date -u +%Y-%m-%d)."
} > "$table"
cat "$table"
if [ "${DOCS:-0}" = 1 ]; then
  python3 - "$table" docs/ha.md <<'PY'
# This run's rows replace the same faults' rows; the other faults' rows and the earlier runs' notes stay.
import sys
table, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
begin, end = "<!-- campaign:begin -->\n", "<!-- campaign:end -->"
head, rest = doc.split(begin)
old, tail = rest.split(end)
def parts(text):
    lines = [l for l in text.splitlines() if l.strip()]
    rows = [l for l in lines if l.startswith("| ") and not l.startswith("| fault") and not l.startswith("| ---")]
    return lines[:2], rows, [l for l in lines if not l.startswith("|")]
header, new_rows, new_notes = parts(table)
_, old_rows, old_notes = parts(old)
fault = lambda row: row.split("|")[1].strip()
replaced = {fault(r): r for r in new_rows}
rows = [replaced.pop(fault(r), r) for r in old_rows] + list(replaced.values())
notes = [n for n in old_notes if n not in new_notes] + new_notes
open(sys.argv[2], "w").write(head + begin + "\n".join(header + rows) + "\n\n" + "\n\n".join(notes) + "\n" + end + tail)
PY
fi
