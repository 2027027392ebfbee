# Shared by the lab benchmarks (sourced): a millisecond clock, and the bench's own VMs, removed whatever happens.
# shellcheck shell=bash

ms() { echo $(( $(date +%s%N) / 1000000 )); }

bench_vms=()

# remove_bench_vms: force-stops and uninstalls (disks too) every VM the bench installed into bench_vms.
remove_bench_vms() {
  local vm
  for vm in "${bench_vms[@]}"; do
    xe vm-shutdown uuid="$vm" force=true >/dev/null 2>&1 || true
    xe vm-uninstall uuid="$vm" force=true >/dev/null 2>&1 || true
  done
}
