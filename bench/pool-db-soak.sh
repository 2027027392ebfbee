#!/usr/bin/env bash
# The pool database's size under continuous VM starts and stops. With the lab up (./lab up), for MINUTES (default 30)
# the two test VMs are started and hard-stopped in turn on the lab's hosts, without pause, while every SAMPLE seconds
# (default 30) each etcd member's file size (dbSize, what etcd's quota counts) and data in use (dbSizeInUse) are
# recorded. Writes the samples to docs/pool-db-soak.csv and a plot to docs/pool-db-soak.svg, and prints the sizes at
# the end against those after the first HISTORY minutes (default 5; run the lab with the same
# Corral__Etcd__Member__HistoryRetention so that compaction starts within the soak), where the history kept is full.
# Usage (as root): Corral__Etcd__Member__HistoryRetention=00:05:00 ./lab up; bench/pool-db-soak.sh [MINUTES] [SAMPLE] [HISTORY]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
sample=${2:-30}
history=${3:-5}
csv=docs/pool-db-soak.csv
vms=$(xe vm-list is-control-domain=false is-a-template=false --minimal | tr ',' ' ')
[ -n "$vms" ] || { echo "no lab: run ./lab up first" >&2; exit 1; }
mapfile -t addresses < <(xe host-list params=address --minimal | tr ',' '\n' | sort)
hosts=$(xe host-list params=name-label --minimal | tr ',' ' ')
# The lab's etcd serves TLS to certificates of the pool's CA only: etcdctl presents lab-host1's.
export ETCDCTL_CACERT="${CORRAL_LAB_DIR:-/var/lib/corral-lab}"/host1/state/etcd-tls/pool-ca.pem ETCDCTL_CERT="${CORRAL_LAB_DIR:-/var/lib/corral-lab}"/host1/state/etcd-tls/host.pem ETCDCTL_KEY="${CORRAL_LAB_DIR:-/var/lib/corral-lab}"/host1/state/etcd-tls/host.key
for vm in $vms; do xe vm-shutdown --force uuid="$vm" >/dev/null 2>&1 || true; done

echo "seconds,member,db_size,db_size_in_use,revision,vm_cycles" > "$csv"
cycles=0
start=$(date +%s)
end=$((start + minutes * 60))
next_sample=$start
while [ "$(date +%s)" -lt "$end" ]; do
  for vm in $vms; do
    for host in $hosts; do
      xe vm-start uuid="$vm" on="$host" >/dev/null
      sleep 2
      xe vm-shutdown --force uuid="$vm" >/dev/null
      cycles=$((cycles + 1))
      now=$(date +%s)
      if [ "$now" -ge "$next_sample" ]; then
        next_sample=$((next_sample + sample))
        for address in "${addresses[@]}"; do
          etcdctl --endpoints="https://$address:2379" endpoint status -w json 2>/dev/null \
            | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; print(s["dbSize"], s["dbSizeInUse"], s["header"]["revision"])' \
            | while read -r size used revision; do echo "$((now - start)),$address,$size,$used,$revision,$cycles" >> "$csv"; done
        done
        echo "$((now - start)) s: $cycles VM start-stop cycles; $(tail -n ${#addresses[@]} "$csv" | cut -d, -f2,3,4 | tr '\n' ' ')"
      fi
      [ "$(date +%s)" -lt "$end" ] || break 3
    done
  done
done

python3 - "$csv" "$history" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
history = int(sys.argv[2]) * 60
members = sorted({r["member"] for r in rows})
last_t = max(int(r["seconds"]) for r in rows)
width, height, left, bottom = 760, 340, 70, 40
top = max(int(r["db_size"]) for r in rows) * 1.1 / 2**20
def x(t): return left + (width - left - 20) * t / max(1, last_t)
def y(mib): return height - bottom - (height - bottom - 20) * mib / top
colours = ["#1f77b4", "#d62728", "#2ca02c"]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
       f'<rect width="{width}" height="{height}" fill="white"/>',
       f'<line x1="{left}" y1="{height-bottom}" x2="{width-20}" y2="{height-bottom}" stroke="black"/>',
       f'<line x1="{left}" y1="20" x2="{left}" y2="{height-bottom}" stroke="black"/>',
       f'<text x="{width/2}" y="{height-8}" text-anchor="middle">minutes of VM starts and stops</text>',
       f'<text x="14" y="{height/2}" transform="rotate(-90 14 {height/2})" text-anchor="middle">MiB</text>']
for m in range(0, last_t // 60 + 1, 5):
    out.append(f'<text x="{x(m*60)}" y="{height-bottom+15}" text-anchor="middle">{m}</text>')
step = max(1, round(top / 5))
for v in range(0, int(top) + 1, step):
    out.append(f'<text x="{left-6}" y="{y(v)+4}" text-anchor="end">{v}</text>')
for i, member in enumerate(members):
    points = [(int(r["seconds"]), int(r["db_size"]) / 2**20, int(r["db_size_in_use"]) / 2**20) for r in rows if r["member"] == member]
    c = colours[i % len(colours)]
    out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{" ".join(f"{x(t):.1f},{y(s):.1f}" for t, s, _ in points)}"/>')
    out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1" stroke-dasharray="4 3" points="{" ".join(f"{x(t):.1f},{y(u):.1f}" for t, _, u in points)}"/>')
    out.append(f'<text x="{left+10}" y="{30+16*i}" fill="{c}">{member}: file (solid), in use (dashed)</text>')
    after = [p for p in points if p[0] >= history] or points
    print(f"{member}: file {after[0][1]:.1f} MiB after {history // 60} min, {max(p[1] for p in after):.1f} MiB at most since, "
          f"{points[-1][1]:.1f} MiB at the end ({points[-1][1] / after[0][1]:.2f} x); in use {after[0][2]:.1f} -> {points[-1][2]:.1f} MiB")
out.append("</svg>")
open(sys.argv[1].replace(".csv", ".svg"), "w").write("\n".join(out))
print(f"{rows[-1]['vm_cycles']} VM start-stop cycles in {last_t // 60} min; plot in {sys.argv[1].replace('.csv', '.svg')}")
PY
