#!/usr/bin/env bash
# Runs Corral's benchmarks and prints their figures. Usage: bench/run.sh [vm-count] [rounds]
# Master failover needs a private lab of its own and a few minutes: bench/master-failover.sh [runs] (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/Corral.Benchmarks -- "${1:-1000}" "${2:-30}"
# With the lab up, VM start-to-ping as well.
if xe vm-list name-label="Corral test VM" --minimal 2>/dev/null | grep -q .; then bench/vm-start-to-ping.sh 5; else echo "(lab not running: ./lab up for the VM start-to-ping figures)"; fi
