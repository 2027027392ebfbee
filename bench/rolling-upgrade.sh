#!/usr/bin/env bash
# A rolling upgrade of the lab from one real build to the next (docs/install.md, "Upgrading a pool"), with HA on and
# both VMs protected and pinged throughout. Builds FROM (a git revision; default HEAD~1, the build before this one) in a
# worktree of its own, brings the lab up from that build's package, then upgrades every host, the master first, to this
# checkout's package (the one `./lab build` made): `xe host-disable`, `xe host-evacuate`, `./lab upgrade N DEB`,
# `xe host-enable restore-vms=true`, and the master made master again once upgraded. The reference, in the same invocation and on the same lab: one maintenance cycle of
# a host without an upgrade (disable, evacuate, enable restore-vms=true), so each host's upgrade reads as a ratio to it.
# Prints each host's steps, then the pings lost, whether a VM restarted (its start-time), HA's actions in the agents'
# logs, and the builds the hosts report. Leaves the lab down.
# Usage (as root, with no lab up, after ./lab build): bench/rolling-upgrade.sh [FROM]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
from=${1:-HEAD~1}
lab_dir=${CORRAL_LAB_DIR:-/var/lib/corral-lab}
new_deb=$(ls -t .build/corral_*.deb 2>/dev/null | head -1)
[ -n "$new_deb" ] || { echo "no package in .build: run ./lab build first" >&2; exit 1; }
# Both builds boot this checkout's guest images (FROM's worktree would build its own otherwise).
export CORRAL_GUEST_DIR=${CORRAL_GUEST_DIR:-$here/guest/build}
xe() { "$here/.build/root/usr/bin/xe" "$@"; }
ms() { date +%s%3N; }
old=$(mktemp -d /tmp/corral-rpu-from.XXXXXX)
pingers=() pinglogs=()
cleanup() {
  for p in ${pingers[@]+"${pingers[@]}"}; do kill -INT "$p" 2>/dev/null || true; done
  rm -f ${pinglogs[@]+"${pinglogs[@]}"}
  "$here/lab" down >/dev/null 2>&1 || true
  git -C "$here" worktree remove --force "$old" >/dev/null 2>&1 || rm -rf "$old"
}
trap cleanup EXIT

echo "building $(git -C "$here" rev-parse --short "$from") (FROM) in $old" >&2
rmdir "$old"; git -C "$here" worktree add --detach "$old" "$from" >/dev/null 2>&1
(cd "$old" && ./lab build >/dev/null)
echo "bringing the lab up from FROM's package" >&2
(cd "$old" && CORRAL_LAB_SR=file CORRAL_LAB_BUILT=1 ./lab up >/dev/null)

pool=$(xe pool-list --minimal)
shared=$(xe sr-list name-label="Shared storage" --minimal)
vms=() ips=() starts=()
for name in "Corral test VM" "Corral test VM (no tools)"; do
  vm=$(xe vm-list name-label="$name" --minimal)
  [ "$(xe vm-param-get uuid="$vm" param-name=power-state)" = running ] || xe vm-start uuid="$vm" on=lab-host1 >/dev/null
  vms+=("$vm")
  ips+=("$(xe vm-param-get uuid="$vm" param-name=xenstore-data param-key=vm-data/ip | cut -d/ -f1)")
done
for ip in "${ips[@]}"; do until ping -c1 -W1 "$ip" >/dev/null; do sleep 1; done; done
xe pool-ha-enable heartbeat-sr-uuids="$shared"
xe pool-param-set uuid="$pool" ha-host-failures-to-tolerate=1
sleep 6 # the master recomputes the plan every 5 s
if [ "$(xe pool-param-get uuid="$pool" param-name=ha-plan-exists-for)" -gt 1 ]; then
  # Builds before 75fef9a planned for as many failures as the pool could tolerate, not for the one asked, and so
  # refused to disable any host of three: overcommit is allowed for the upgrade (HA stays on and restarts VMs as ever).
  echo "  FROM plans for more failures than asked (before 75fef9a): ha-allow-overcommit=true during the upgrade"
  xe pool-param-set uuid="$pool" ha-allow-overcommit=true
fi
for vm in "${vms[@]}"; do xe vm-param-set uuid="$vm" ha-restart-priority=restart; starts+=("$(xe vm-param-get uuid="$vm" param-name=start-time)"); done
marks=(); for i in 1 2 3; do marks+=("$(wc -l < "$lab_dir/agent-host$i.log")"); done
for ip in "${ips[@]}"; do
  log=$(mktemp); pinglogs+=("$log")
  ping -i 0.1 -W 1 "$ip" > "$log" 2>&1 & pingers+=($!)
done

cycle() { # cycle N [DEB]: one host's maintenance cycle, upgraded to DEB if given; prints its steps in ms
  local host=lab-host$1 t0 t1 t2 t3 t4
  t0=$(ms); xe host-disable host="$host"; xe host-evacuate host="$host"; t1=$(ms)
  if [ -n "${2:-}" ]; then
    "$here/lab" upgrade "$1" "$2" 2>/dev/null
    local uuid; uuid=$(xe host-list name-label="$host" --minimal)
    until [ "$(xe host-list params=host-metrics-live --minimal 2>/dev/null)" = "true,true,true" ] \
      && xe host-param-get uuid="$uuid" param-name=software-version param-key=corral_version 2>/dev/null | grep -q "^$(dpkg-deb -f "$2" Version)+"; do sleep 0.5; done
  fi
  t2=$(ms); xe host-enable host="$host" restore-vms=true; t3=$(ms)
  printf '%s: evacuate %d ms, upgrade %d ms, enable and restore %d ms, in all %d ms\n' "$host" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t3 - t0)) >&2
  echo $((t3 - t0))
}

reference=$(cycle 1)
echo "reference: lab-host1's maintenance cycle without an upgrade, $reference ms" >&2
new_version=$(dpkg-deb -f "$new_deb" Version)
for i in 1 2 3; do
  took=$(cycle "$i" "$new_deb")
  if [ "$i" = 1 ]; then
    # The upgraded master takes its role back (another host took it while its agent restarted): the pool's rules for a
    # rolling upgrade are the newest build's, and an older master would not know them.
    xe pool-designate-new-master host-uuid="$(xe host-list name-label=lab-host1 --minimal)"
    until [ "$(xe pool-list params=master --minimal 2>/dev/null)" = "$(xe host-list name-label=lab-host1 --minimal 2>/dev/null)" ]; do sleep 0.5; done
    echo "  lab-host1 is the master again"
    echo "  pool other-config:rolling_upgrade_in_progress after lab-host1: $(xe pool-param-get uuid="$pool" param-name=other-config param-key=rolling_upgrade_in_progress 2>/dev/null || echo absent)"
    # What XenAPI's own Python SDK (python3-os-xenapi) sees of the mixed pool, and its answer to a move down.
    /usr/bin/python3 - "$(sed -n 's/^server=//p' "$HOME/.xe")" "${CORRAL_LAB_PASSWORD:-corral}" "${vms[0]}" <<'PY' || true
import sys
from os_xenapi.client import XenAPI
s = XenAPI.Session("http://" + sys.argv[1])
try:
    s.xenapi.login_with_password("root", sys.argv[2])
except XenAPI.Failure as f:
    # The master moved while lab-host1's agent restarted: log in where the answer says, as XenCenter follows it.
    if f.details[0] != "HOST_IS_SLAVE":
        raise
    print("  Python SDK: lab-host1 answers HOST_IS_SLAVE; the master is now", f.details[1])
    s = XenAPI.Session("http://" + f.details[1]); s.xenapi.login_with_password("root", sys.argv[2])
x = s.xenapi
pool = x.pool.get_all()[0]
print("  Python SDK: pool other_config rolling_upgrade_in_progress =", x.pool.get_other_config(pool).get("rolling_upgrade_in_progress"))
for h in x.host.get_all():
    print("  Python SDK:", x.host.get_name_label(h), x.host.get_software_version(h).get("corral_version"))
vm = x.VM.get_by_uuid(sys.argv[3]); older = x.host.get_by_name_label("lab-host2")[0]
try:
    x.VM.pool_migrate(vm, older, {"live": "true"}); print("  Python SDK: VM.pool_migrate to lab-host2 went through")
except XenAPI.Failure as f:
    print("  Python SDK: VM.pool_migrate to lab-host2 refused:", f.details)
PY
  fi
  printf '  lab-host%d upgraded to %s: %d ms, %.2f x the reference\n' "$i" "$new_version" "$took" "$(awk -v a="$took" -v b="$reference" 'BEGIN { print a / b }')"
done
sleep 3
for p in "${pingers[@]}"; do kill -INT "$p"; done; wait "${pingers[@]}" 2>/dev/null || true; pingers=()
for i in "${!ips[@]}"; do
  echo "  ${ips[$i]}: $(grep 'packets transmitted' "${pinglogs[$i]}")"
  [ "$(xe vm-param-get uuid="${vms[$i]}" param-name=start-time)" = "${starts[$i]}" ] && echo "    not restarted (start-time unchanged)" || echo "    RESTARTED"
done
echo "  rolling_upgrade_in_progress at the end: $(xe pool-param-get uuid="$pool" param-name=other-config param-key=rolling_upgrade_in_progress 2>/dev/null || echo absent)"
echo "  builds: $(for i in 1 2 3; do xe host-param-get uuid="$(xe host-list name-label=lab-host$i --minimal)" param-name=software-version param-key=corral_version; done | tr '\n' ' ')"
actions=0
for i in 1 2 3; do
  actions=$((actions + $(tail -n "+$((marks[i - 1] + 1))" "$lab_dir/agent-host$i.log" | grep -cE '\[(1001|1013|1014|1016)\]' || true)))
done
echo "  HA actions (self-fence, power-fence, host fenced, master fenced) in the agents' logs: $actions"
