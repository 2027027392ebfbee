#!/usr/bin/env bash
# A guest's disk I/O on each SR type against a local file SR, in one run. The lab's test VM (the image with tools) is
# given a second disk on each SR in turn, hot-plugged (it appears as /dev/vdb), and Debian's ioping, run in the guest
# on its serial shell, measures four workloads on it with O_DIRECT, one request at a time, over a 256 MiB working set:
#
#   seq-write  1 MiB writes in sequence (the working set is written whole first, so that reads read written blocks)
#   seq-read   1 MiB reads in sequence
#   rand-write 4 KiB writes at random offsets (the same seed on every SR)
#   rand-read  4 KiB reads at random offsets
#
# SRs: the VM's host's "Local storage" (type=file, the reference), the lab's "Shared storage" (nfs or lvmoiscsi, as
# ./lab up made it) and the other of the two, made here on the lab's storage server with sr-create as an administrator
# would and destroyed at the end. Each round measures every SR, the reference first; ROUNDS rounds (default 2), and the
# figures are each workload's median over them. Prints a Markdown table of MiB/s (sequential) or IOPS (random) and
# each SR's ratio to the local SR; DOCS=1 writes it into docs/benchmarks.md between its markers, with a plot
# (docs/sr-io.svg).
# Usage (as root, with the lab's environment): bench/sr-io.sh      (ROUNDS=N, SECONDS_EACH=N per workload, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
seconds=${SECONDS_EACH:-10}
run_dir=${CORRAL_LAB_RUN:-/run/corral-lab}
work=$(mktemp -d)
vm=$(xe vm-list name-label="Corral test VM" --minimal)
[ -n "$vm" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
[ "$(xe vm-param-get uuid="$vm" param-name=power-state)" = running ] || xe vm-start uuid="$vm" >/dev/null
shared=$(xe sr-list name-label="Shared storage" --minimal)
shared_type=$(xe sr-param-get uuid="$shared" param-name=type)
case "$shared_type" in nfs|lvmoiscsi) ;; *) echo "the shared SR is $shared_type: run ./lab up (NFS) or CORRAL_LAB_SR=iscsi ./lab up" >&2; exit 1 ;; esac
lab_value() { sed -n "s/^$1=\([^ ]*\).*/\1/p" lab.d/storage.bash; }
server="$(cat "$run_dir/storage-subnet").2"
made_sr="" vdi="" vbd=""
cleanup() {
  trap '' INT TERM # the cleanup runs to its end
  [ -n "$vbd" ] && { xe vbd-unplug uuid="$vbd" >/dev/null 2>&1 || true; xe vbd-destroy uuid="$vbd" >/dev/null 2>&1 || true; }
  [ -n "$vdi" ] && { xe vdi-destroy uuid="$vdi" >/dev/null 2>&1 || true; }
  [ -n "$made_sr" ] && { destroy_sr "$made_sr" || echo "could not destroy the SR $made_sr made here" >&2; }
  rm -rf "$work"
}
destroy_sr() {
  local pbd
  for pbd in $(xe pbd-list sr-uuid="$1" --minimal | tr , ' '); do xe pbd-unplug uuid="$pbd" >/dev/null; done
  xe sr-destroy uuid="$1" >/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The other kind of shared SR, on the storage server's export or LUN that the lab's own SR does not use.
if [ "$shared_type" = nfs ]; then
  made_sr=$(xe sr-create name-label="sr-io bench (iSCSI)" shared=true content-type=user type=lvmoiscsi \
    device-config:target="$server" device-config:targetIQN="$(lab_value STORAGE_IQN)" device-config:SCSIid="$(lab_value STORAGE_SCSI_ID)")
else
  made_sr=$(xe sr-create name-label="sr-io bench (NFS)" shared=true content-type=user type=nfs \
    device-config:server="$server" device-config:serverpath="$(lab_value STORAGE_EXPORT)")
fi

host=$(xe vm-param-get uuid="$vm" param-name=resident-on)
host_name=$(xe host-param-get uuid="$host" param-name=name-label)
slot=${host_name#lab-host}
local_sr=$(xe sr-list name-label="Local storage" host="$host_name" --minimal)
[ -n "$local_sr" ] || { echo "$host_name has no Local storage SR" >&2; exit 1; }
srs=("$local_sr" "$shared" "$made_sr")
console="$run_dir/host$slot/vms/$vm"

# guest COMMAND TIMEOUT: runs COMMAND on the guest's serial shell and prints its output (one line).
guest() {
  /usr/bin/python3 - "$console" "$1" "$2" <<'PY'
import os, re, socket, sys, time, uuid
directory, command, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
log = os.path.join(directory, "console.log")
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    tag = "IO" + uuid.uuid4().hex[:8]
    # The shell's arithmetic tells the answer from the typed line's echo; typed again if the line was lost.
    line = f'echo "{tag}-$((1+1)): $({command} 2>&1 | tr \'\\n\' \' \') :END-$((2+2))"\n'
    # Kept open while the command runs: QEMU takes the line only as fast as the guest's UART does.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(directory, "console.sock"))
        s.sendall(line.encode())
        typed = re.compile(re.escape(tag) + "-"), re.compile(re.escape(tag) + r"-2: ([^\r\n]*) :END-4")
        sent_at = time.monotonic()
        while time.monotonic() < deadline:
            text = open(log, errors="replace").read()
            if m := typed[1].search(text):
                print(m.group(1).strip()); sys.exit(0)
            if not typed[0].search(text) and time.monotonic() - sent_at > 5:
                break  # the line never reached the shell: type it again
            time.sleep(0.2)
sys.exit(f"the guest did not answer {command!r} in {timeout:.0f} s")
PY
}

# Each workload runs SECONDS_EACH seconds; ioping -B prints raw statistics: requests, time (ns), IOPS, bytes/s, ...
workload_args() {
  case "$1" in
    seq-write) echo "-L -s 1M -WWW" ;;
    seq-read) echo "-L -s 1M" ;;
    rand-write) echo "-s 4k -e 7 -WWW" ;;
    rand-read) echo "-s 4k -e 7" ;;
  esac
}
workloads=(seq-write seq-read rand-write rand-read)
results="$work/results"
: > "$results"
for round in $(seq "$rounds"); do
  for sr in "${srs[@]}"; do
    sr_type=$(xe sr-param-get uuid="$sr" param-name=type)
    [ "$sr" = "$local_sr" ] && sr_type=local
    vdi=$(xe vdi-create sr-uuid="$sr" name-label="sr-io bench disk" virtual-size=1073741824 type=user)
    vbd=$(xe vbd-create vm-uuid="$vm" vdi-uuid="$vdi" device=1 type=Disk mode=RW)
    xe vbd-plug uuid="$vbd"
    guest "until [ -e /sys/block/vdb ]; do sleep 0.2; done; cat /sys/block/vdb/size" 60 >/dev/null
    # Written once whole, so that no workload reads blocks the SR never allocated (those cost no I/O).
    guest "dd if=/dev/zero of=/dev/vdb bs=1M count=256 oflag=direct" 600 >/dev/null
    for w in "${workloads[@]}"; do
      # shellcheck disable=SC2046
      out=$(guest "/usr/bin/ioping -B -D -i 0 -S 256M -w ${seconds}s $(workload_args "$w") /dev/vdb" $((seconds * 3 + 60)))
      read -r _ _ iops bps _ <<< "$out" || true
      [[ "$iops" =~ ^[0-9]+$ && "$bps" =~ ^[0-9]+$ ]] || { echo "ioping on $sr_type ($w) said: $out" >&2; exit 1; }
      echo "$round $sr_type $w $iops $bps" | tee -a "$results"
    done
    xe vbd-unplug uuid="$vbd"; xe vbd-destroy uuid="$vbd"; vbd=""
    xe vdi-destroy uuid="$vdi"; vdi=""
  done
done

table=$(/usr/bin/python3 - "$results" "docs/sr-io.svg" "${DOCS:-0}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
srs = list(dict.fromkeys(r[1] for r in rows))
workloads = list(dict.fromkeys(r[2] for r in rows))
def value(sr, w):
    seq = w.startswith("seq")
    xs = [int(r[4]) / 2**20 if seq else int(r[3]) for r in rows if r[1] == sr and r[2] == w]
    return statistics.median(xs), min(xs), max(xs)
names = {"local": "local file SR", "nfs": "NFS", "lvmoiscsi": "iSCSI (lvmoiscsi)"}
print("| SR | " + " | ".join(f"{w} ({'MiB/s' if w.startswith('seq') else 'IOPS'})" for w in workloads) + " |")
print("| --- |" + " --- |" * len(workloads))
ratios = {}
for sr in srs:
    cells = []
    for w in workloads:
        med, lo, hi = value(sr, w)
        ratio = med / value("local", w)[0]
        ratios[(sr, w)] = ratio
        unit = f"{med:.1f}" if w.startswith("seq") else f"{med:.0f}"
        spread = f" ({lo:.1f}-{hi:.1f})" if w.startswith("seq") else f" ({lo:.0f}-{hi:.0f})"
        cells.append(f"{unit}{spread}, ×{ratio:.2f}")
    print(f"| {names.get(sr, sr)} | " + " | ".join(cells) + " |")
if sys.argv[3] == "1":
    # Bars: each workload's ratio to the local SR, one colour per SR.
    colours = ["#888888", "#2b6cb0", "#c05621", "#2f855a"]
    width, height, left, top, bottom = 640, 300, 50, 30, 50
    group = (width - left - 20) / len(workloads)
    bar = group / (len(srs) + 1)
    top_ratio = max(1.2, max(ratios.values()) * 1.1)
    y = lambda r: top + (height - top - bottom) * (1 - r / top_ratio)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="{left}" y="18">Guest I/O on each SR, as a ratio to the local file SR (median of the rounds)</text>',
           f'<line x1="{left}" y1="{y(1):.1f}" x2="{width - 20}" y2="{y(1):.1f}" stroke="#000" stroke-dasharray="4"/>',
           f'<text x="{left - 30}" y="{y(1) + 4:.1f}">×1</text>']
    for i, w in enumerate(workloads):
        for j, sr in enumerate(srs):
            x = left + i * group + j * bar + bar / 2
            r = ratios[(sr, w)]
            out.append(f'<rect x="{x:.1f}" y="{y(r):.1f}" width="{bar:.1f}" height="{y(0) - y(r):.1f}" fill="{colours[j % 4]}"/>')
            out.append(f'<text x="{x:.1f}" y="{y(r) - 3:.1f}" font-size="10">{r:.2f}</text>')
        out.append(f'<text x="{left + i * group + bar / 2:.1f}" y="{height - bottom + 16}">{w}</text>')
    for j, sr in enumerate(srs):
        out.append(f'<rect x="{left + j * 150}" y="{height - 20}" width="10" height="10" fill="{colours[j % 4]}"/>'
                   f'<text x="{left + j * 150 + 14}" y="{height - 11}">{names.get(sr, sr)}</text>')
    out.append("</svg>")
    open(sys.argv[2], "w").write("\n".join(out))
PY
)
echo
echo "$table"
footer="Guest: the lab's test VM (TCG, 1 vCPU), its second disk (1 GiB, hot-plugged) on each SR; ioping in the guest, O_DIRECT, queue depth 1, 256 MiB working set, ${seconds} s per workload, median of ${rounds} rounds (range in brackets), ratio to the local file SR. Command: \`bench/sr-io.sh\`, $(date -u +%Y-%m-%d)."
echo "$footer"
if [ "${DOCS:-0}" = 1 ]; then
  /usr/bin/python3 - docs/benchmarks.md "$table" "$footer" <<'PY'
import sys
path, table, footer = sys.argv[1:]
text = open(path).read()
begin, end = "<!-- sr-io:begin -->", "<!-- sr-io:end -->"
block = f"{begin}\n{table}\n\n{footer}\n\n![Guest I/O per SR as ratios to the local SR](sr-io.svg)\n{end}"
text = text[:text.index(begin)] + block + text[text.index(end) + len(end):] if begin in text else text.rstrip() + "\n" + block + "\n"
open(path, "w").write(text)
PY
  echo "written into docs/benchmarks.md and docs/sr-io.svg"
fi
