#!/usr/bin/env bash
# Runs Corral's benchmarks and prints their figures. Usage: bench/run.sh [vm-count] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet run -c Release --project bench/Corral.Benchmarks -- "${1:-1000}" "${2:-30}"
