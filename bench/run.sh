#!/usr/bin/env bash
# Runs Corral's benchmarks and prints their figures. Usage: bench/run.sh [vm-count] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/Corral.Benchmarks -- "${1:-1000}" "${2:-30}"
# With the lab up, VM start-to-ping, live migration, maintenance-mode evacuation and HA recovery as well.
if xe vm-list name-label="Corral test VM" --minimal 2>/dev/null | grep -q .; then
  bench/vm-start-to-ping.sh 5
  bench/migration.sh "256 512 1024" 3
  bench/evacuation.sh 6 3
  bench/ha-recovery.sh "1 4 8" 3
else echo "(lab not running: ./lab up for the VM start-to-ping, live migration, evacuation and HA recovery figures)"; fi
# Master failover, in a private lab of its own (as root, a few minutes; RUNS=0 skips it). It will not run while a lab
# runs from this tree's build (it would rebuild under it): then it says so and the other figures stand.
if [ "${RUNS:-5}" = 0 ]; then :
elif [ "$(id -u)" = 0 ]; then bench/master-failover.sh || echo "(master failover did not run to the end: see above)"
else echo "(not root: master failover figures need sudo bench/master-failover.sh)"; fi
