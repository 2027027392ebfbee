#!/usr/bin/env bash
# Storage fault campaign on the lab's storage server, as users meet such faults. Run it on a lab whose shared SR is on
# the server: `CORRAL_LAB_SR=nfs ./lab up` (or iscsi). HA is turned on with its heartbeat on that SR, and the lab's test
# VM, protected, runs on a host that is not the master, writing a numbered line to its disk every 100 ms
# (seqwrite) and pinged every 200 ms. Each fault, one after the other:
#
#   server-stall-10, server-stall-60   the storage server stopped whole (SIGSTOP: nfs-ganesha, tgtd, rpcbind, smbd) for
#                                      10 s and 60 s, then let go: every host's I/O and heartbeat stall together
#   host-path-30                       the VM's host alone loses its storage link for 30 s (`ip link set storage0 down`)
#   vdi-races                          12 VDIs created at once on the SR, then destroyed at once
#   server-gone                        (last, only with `gone` among the faults: it leaves the lab without its server)
#                                      nfs-ganesha and tgtd killed for good: what the pool's commands answer
#
# For each: the VM's longest ping gap, whether its QEMU process is the one it had (a restart would be a needless
# one; a VM restarted elsewhere is then migrated back to the host that lost its storage, which must take VMs again
# once its storage answers), and whether any host stopped being live or was fenced (the agents' and fence daemons' logs). At the end the VM is shut down and its disk's write sequence read back from the
# server's export (no gap, no repeat) and checked with qemu-img. Prints a Markdown table; DOCS=1 writes it into
# docs/storage.md between its campaign markers.
# Usage (as root, with the lab's environment): bench/storage-faults.sh [fault...]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lab-vms.sh
faults=("$@"); [ ${#faults[@]} -gt 0 ] || faults=(server-stall-10 server-stall-60 host-path-30 vdi-races)
lab_dir=${CORRAL_LAB_DIR:-/var/lib/corral-lab}
run_dir=${CORRAL_LAB_RUN:-/run/corral-lab}
prefix=${CORRAL_LAB_NS_PREFIX:-corral-h}
work=$(mktemp -d)
vm=$(xe vm-list name-label="Corral test VM" --minimal)
[ -n "$vm" ] || { echo "no lab: run CORRAL_LAB_SR=nfs ./lab up first" >&2; exit 1; }
ip=$(xe vm-param-get uuid="$vm" param-name=xenstore-data param-key=vm-data/ip | cut -d/ -f1)
pool=$(xe pool-list --minimal)
sr=$(xe sr-list name-label="Shared storage" --minimal)
sr_type=$(xe sr-param-get uuid="$sr" param-name=type)
case "$sr_type" in nfs|lvmoiscsi) ;; *) echo "the shared SR is $sr_type: run CORRAL_LAB_SR=nfs (or iscsi) ./lab up" >&2; exit 1 ;; esac
# The hosts' sanlock I/O timeout, as ./lab up configured them (CORRAL_LAB_SANLOCK_IO_TIMEOUT).
io_timeout=$(sed -n 's/^Corral__Sanlock__IoTimeoutSeconds=//p' "$lab_dir/host1/agent.conf" | tail -n 1)
pinger=""
cleanup() { [ -n "$pinger" ] && kill "$pinger" 2>/dev/null; server_signal CONT 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

server_signal() { local f; for f in "$run_dir"/storage-*.pid; do [ -f "$f" ] && kill -"$1" "$(cat "$f")" 2>/dev/null || true; done; }
slot_of() { xe host-param-get uuid="$1" param-name=name-label | sed 's/^lab-host//'; }
all_live() { [ "$(xe host-list params=host-metrics-live --minimal 2>/dev/null)" = "true,true,true" ]; }
wait_for() { # wait_for SECONDS WHAT COMMAND...
  local until=$(( $(ms) + $1 * 1000 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do [ "$(ms)" -lt "$until" ] || { echo "  timed out waiting for $what" >&2; return 1; }; sleep 1; done
}
answers() { ping -c 1 -W 1 "$ip" >/dev/null 2>&1; }
qemu_pid() { cat "$run_dir/host$1/vms/$vm/qemu.pid" 2>/dev/null || true; }
log_marks() { local f; for f in "$lab_dir"/agent-host*.log "$lab_dir"/fenced-host*.log; do echo "$f $(stat -c %s "$f")"; done; }
logs_since() { local f n; while read -r f n; do tail -c +"$((n + 1))" "$f"; done < "$1"; }
longest_gap() { # from ping -D's output, the longest stretch in ms without an answer between FROM and TO (epoch ms)
  awk -v from="$2" -v to="$3" '
    /bytes from/ { t = substr($1, 2, length($1) - 2) * 1000; if (t < from) next; if (t > to) next
                   if (last == "") last = from; if (t - last > gap) gap = t - last; last = t }
    END { if (last == "") last = from; if (to - last > gap) gap = to - last; printf "%d", gap }' "$1"
}

# ---- setup: HA on the server's SR, the VM protected and writing on a host that is not the master ----
[ "$(xe pool-param-get uuid="$pool" param-name=ha-enabled)" = true ] || xe pool-ha-enable heartbeat-sr-uuids="$sr" >/dev/null
master=$(slot_of "$(xe pool-param-get uuid="$pool" param-name=master)")
for host in 3 2 1; do [ "$host" != "$master" ] && break; done
[ "$(xe vm-param-get uuid="$vm" param-name=power-state)" = halted ] || xe vm-shutdown uuid="$vm" >/dev/null
xe vm-param-set uuid="$vm" xenstore-data:vm-data/seqwrite=1 ha-restart-priority=restart
xe vm-start uuid="$vm" on="lab-host$host" >/dev/null
wait_for 90 "the VM to answer ping" answers
sleep 3

# watch_live SECONDS: for that long (by the clock: each check takes time), notes whether every host stayed live.
watch_live() { local until=$(( $(ms) + $1 * 1000 )); while [ "$(ms)" -lt "$until" ]; do all_live || live=no; sleep 1; done; }

# ---- one fault ----
run_fault() { # prints "FAULT GAP-MS SAME-QEMU LIVE-THROUGHOUT FENCED NOTE"
  local fault=$1 before start end live=yes fenced=no same note="" now
  # Where the VM runs as the fault begins (a fault before may have had it restarted elsewhere).
  host=$(slot_of "$(xe vm-param-get uuid="$vm" param-name=resident-on)")
  before=$(qemu_pid "$host"); log_marks > "$work/marks"
  ping -D -i 0.2 -W 1 "$ip" > "$work/ping.log" 2>&1 & pinger=$!
  sleep 2; start=$(ms)
  case "$fault" in
    server-stall-*)
      server_signal STOP
      watch_live "${fault#server-stall-}"
      server_signal CONT ;;
    host-path-*)
      ip -n "$prefix$host" link set storage0 down
      watch_live "${fault#host-path-}"
      ip -n "$prefix$host" link set storage0 up ;;
    vdi-races)
      local i made files jobs=()
      for i in $(seq 12); do (xe vdi-create sr-uuid="$sr" name-label="race $i" virtual-size=67108864 type=user > "$work/vdi.$i" 2>&1 || true) & jobs+=($!); done
      wait "${jobs[@]}"; jobs=()
      made=$(cat "$work"/vdi.* | grep -cE '^[0-9a-f-]{36}$' || true)
      for i in $(grep -hE '^[0-9a-f-]{36}$' "$work"/vdi.*); do xe vdi-param-get uuid="$i" param-name=location; done > "$work/locations"
      files=$(sort -u "$work/locations" | grep -c . || true)
      note="created $made of 12, distinct locations $files"
      # On iSCSI a location is <uuid>.<offset>+<size>: no two extents may share a byte.
      if grep -q '+' "$work/locations" && ! sed 's/^[^.]*\.//; s/+/ /' "$work/locations" | sort -n | awk 'NR > 1 && $1 < end { bad = 1 } { end = $1 + $2 } END { exit bad }'; then
        note="$note, EXTENTS OVERLAP"
      fi
      [ "$(xe vdi-list sr-uuid="$sr" params=name-label --minimal | tr ',' '\n' | grep -c '^race ')" = 12 ] || note="$note, RECORDS MISSING"
      for i in $(grep -hE '^[0-9a-f-]{36}$' "$work"/vdi.*); do (xe vdi-destroy uuid="$i" >/dev/null 2>&1 || echo "destroy $i failed" >> "$work/destroy.err") & jobs+=($!); done
      wait "${jobs[@]}"
      [ ! -s "$work/destroy.err" ] || note="$note, $(wc -l < "$work/destroy.err") destroys failed"
      if [ "$(xe vdi-list sr-uuid="$sr" params=name-label --minimal | tr ',' '\n' | grep -c '^race ' || true)" = 0 ]; then
        note="$note, all destroyed at once"
      else
        note="$note, SOME LEFT"
      fi ;;
    server-gone)
      kill -9 "$(cat "$run_dir/storage-ganesha.pid")" "$(cat "$run_dir/storage-tgtd.pid")" 2>/dev/null || true
      local answer
      answer=$(timeout 120 xe vdi-create sr-uuid="$sr" name-label=gone virtual-size=67108864 type=user 2>&1 | tail -1 || true)
      note="vdi-create: ${answer:-no answer within 120 s}; VDIs still recorded: $(xe vdi-list sr-uuid="$sr" --minimal | tr ',' '\n' | grep -c .)" ;;
  esac
  end=$(ms)
  if [ "$fault" != server-gone ]; then
    wait_for 120 "the VM to answer ping" answers || note="$note VM-NOT-BACK"
    wait_for 120 "every host live" all_live || live=no
  fi
  sleep 3
  kill "$pinger"; wait "$pinger" 2>/dev/null || true; pinger=""
  same=$([ "$(qemu_pid "$host")" = "$before" ] && [ -n "$before" ] && echo yes || echo no)
  if [ "$fault" != server-gone ] && now=$(slot_of "$(xe vm-param-get uuid="$vm" param-name=resident-on)") && [ "$now" != "$host" ]; then
    note="${note:+$note, }restarted on lab-host$now (was on lab-host$host)"
    # The cut host takes VMs again once its exports answer and it has joined the leases again: the VM goes back live.
    local back_from; back_from=$(ms)
    until xe vm-migrate uuid="$vm" host="lab-host$host" live=true >"$work/back.log" 2>&1; do
      [ $(( $(ms) - back_from )) -lt 300000 ] || break
      sleep 10
    done
    if [ "$(slot_of "$(xe vm-param-get uuid="$vm" param-name=resident-on)")" = "$host" ]; then
      note="$note, migrated back to lab-host$host $(( ($(ms) - back_from) / 1000 )) s after the VM answered"
    else
      note="$note, NOT BACK on lab-host$host in 300 s: $(tail -1 "$work/back.log")"
    fi
  fi
  logs_since "$work/marks" | grep -qE "Self-fencing|power-fenced|powered off by its fence agent" && fenced=yes
  echo "$fault $(longest_gap "$work/ping.log" "$start" "$(( end + 3000 ))") $same $live $fenced ${note:-none}"
}

results=$work/results
for fault in "${faults[@]}"; do
  [ "$fault" = gone ] && fault=server-gone
  line=$(run_fault "$fault"); echo "$line" | tee -a "$results"
done

# ---- the disk: the guest's sequence read back from the server, the image checked ----
disk_state="not checked (the server is gone)"
if ! grep -q "^server-gone " "$results"; then
  xe vm-shutdown uuid="$vm" >/dev/null
  vdi=$(xe vbd-list vm-uuid="$vm" type=Disk params=vdi-uuid --minimal | cut -d, -f1)
  image=$(find "$lab_dir/storage/nfs" -name "$vdi.qcow2" 2>/dev/null | head -n 1)
  if [ -n "$image" ]; then
    qemu-img convert -O raw "$image" "$work/disk.raw"
    if qemu-img check -q "$image"; then disk_state=clean; else disk_state="NOT CLEAN"; fi
  else
    disk_state="raw extent"; location=$(xe vdi-param-get uuid="$vdi" param-name=location)
    offset=${location#*.}; offset=${offset%+*}; size=${location##*+}
    dd if="$lab_dir/storage/lun1.img" of="$work/disk.raw" bs=1M iflag=skip_bytes,count_bytes skip="$offset" count="$size" status=none
  fi
  dd if="$work/disk.raw" of="$work/data.ext4" bs=512 skip=100352 status=none
  debugfs -R "cat /seq.log" "$work/data.ext4" 2>/dev/null | grep -E '^[0-9]+$' > "$work/seq" || true
  writes=$(wc -l < "$work/seq")
  if awk 'NR != $1 { bad = 1 } END { exit bad }' "$work/seq"; then disk_state="$disk_state, $writes writes in sequence"; else disk_state="$disk_state, SEQUENCE BROKEN"; fi
  xe vm-param-remove uuid="$vm" param-name=xenstore-data param-key=vm-data/seqwrite >/dev/null 2>&1 || true
  xe vm-start uuid="$vm" on="lab-host$host" >/dev/null
fi
xe pool-ha-disable >/dev/null 2>&1 || true
echo "disk after the campaign: $disk_state"

table=$work/table.md
{
  echo "| fault | longest ping gap | VM's QEMU kept | every host live throughout | host fenced | other |"
  echo "| --- | --- | --- | --- | --- | --- |"
  while read -r fault gap same live fenced note; do
    printf '| %s | %.1f s | %s | %s | %s | %s |\n' "$fault" "$(awk -v t="$gap" 'BEGIN { print t / 1000 }')" "$same" "$live" "$fenced" "$note"
  done < "$results"
  echo
  echo "SR: $sr_type, HA's heartbeat and the VM's sanlock lease on it (sanlock I/O timeout ${io_timeout} s: a host's lease holders are killed after $((8 * io_timeout)) s without storage). Disk after the campaign: $disk_state. Command: \`bench/storage-faults.sh${*:+ $*}\`, $(date -u +%Y-%m-%d)."
} > "$table"
cat "$table"
if [ "${DOCS:-0}" = 1 ]; then
  python3 - "$table" docs/storage.md "$sr_type" <<'PY'
# Between the markers of this SR type: this run's table replaces the last one.
import sys
table, doc, kind = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
begin, end = f"<!-- faults:{kind}:begin -->\n", f"<!-- faults:{kind}:end -->"
head, rest = doc.split(begin)
_, tail = rest.split(end)
open(sys.argv[2], "w").write(head + begin + table + end + tail)
PY
fi
