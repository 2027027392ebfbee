#!/usr/bin/env python3
"""Watches one VM's copies every 100 ms for bench/ha-campaign.sh, from the process table and the disk's locks.

Usage: ha-watch.py VM-UUID OUT-FILE [LAB-RUN-DIR]. Runs until SIGTERM, then writes one line to OUT-FILE:
    max_processes=N overlap_ms=N max_writers=N pids=P1,P2 writer_pids=P1 unleased_writer_samples=N lease_samples=N
- processes: live QEMU processes whose command line names the VM (a live migration's incoming copy included);
  overlap_ms: the longest time two or more of them were seen alive together (one 100 ms sample may catch a killed
  process not yet gone);
- writers: those holding QEMU's write-permission lock on a disk image (byte 101 of QEMU's image locking, an OFD
  read lock). QEMU takes it for an image it runs the guest on, not for an incoming copy's inactive one, so two
  writers at once are two copies running the guest on one disk.
- unleased_writer_samples: samples (every 500 ms) in which a writer was not, by its host's sanlock daemon, a holder of
  the VM's lease (its host is the lab host whose run directory holds its runtime directory); lease_samples: how many
  such samples were taken. A copy running the guest must hold the lease (docs/ha.md, "VM leases on shared storage").
"""
import glob
import re
import subprocess
import os
import signal
import sys
import time

WRITE_PERMISSION_BYTE = 101


def qemu_pids(vm):
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and b"qemu-system" in args[0] and any(vm.encode() in a for a in args):
            yield int(entry)


def holds_write_lock(pid):
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return False
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    # lock:	1: OFDLCK ADVISORY  READ -1 fe:00:11739211 100 101
                    if line.startswith("lock:") and "OFDLCK" in line:
                        words = line.split()
                        start, end = int(words[-2]), words[-1]
                        end = int(end) if end != "EOF" else sys.maxsize
                        if start <= WRITE_PERMISSION_BYTE <= end:
                            return True
        except (OSError, ValueError, IndexError):
            continue
    return False


def lease_holders(vm, run_dir):
    """The QEMU pids that hold the VM's lease, as each lab host's sanlock daemon says; None if no daemon answered."""
    holders, answered = set(), False
    for socket_dir in glob.glob(f"{run_dir}/host*/sanlock"):
        try:
            status = subprocess.run(["sanlock", "client", "status"], env={**os.environ, "SANLOCK_RUN_DIR": socket_dir},
                                    capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        answered = answered or status.startswith("daemon")
        for line in status.splitlines():
            # r <sr uuid>:<vm uuid>:<path>:0:<lver or SH> p <pid>
            match = re.match(r"^r \S+?:" + re.escape(vm) + r":\S+ p (\d+)$", line.strip())
            if match:
                holders.add(int(match.group(1)))
    return holders if answered else None


def main():
    vm, out = sys.argv[1], sys.argv[2]
    run_dir = sys.argv[3] if len(sys.argv) > 3 else "/run/corral-lab"
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    max_processes = max_writers = 0
    overlap = longest_overlap = 0.0
    last = time.monotonic()
    pids, writer_pids = set(), set()
    unleased = lease_samples = samples = 0
    while not stop:
        current = list(qemu_pids(vm))
        writers = [p for p in current if holds_write_lock(p)]
        now = time.monotonic()
        overlap = overlap + (now - last) if len(current) > 1 else 0.0
        longest_overlap = max(longest_overlap, overlap)
        last = now
        max_processes = max(max_processes, len(current))
        max_writers = max(max_writers, len(writers))
        pids.update(current)
        writer_pids.update(writers)
        samples += 1
        if writers and samples % 5 == 0:
            holders = lease_holders(vm, run_dir)
            if holders is not None:
                lease_samples += 1
                # A writer seen again after the lease look: still one (a pid just gone is no writer to blame).
                if any(w not in holders and holds_write_lock(w) for w in writers):
                    unleased += 1
        time.sleep(0.1)
    with open(out, "w") as f:
        f.write(f"max_processes={max_processes} overlap_ms={int(longest_overlap * 1000)} max_writers={max_writers} "
                f"pids={','.join(map(str, sorted(pids)))} writer_pids={','.join(map(str, sorted(writer_pids)))} "
                f"unleased_writer_samples={unleased} lease_samples={lease_samples}\n")


if __name__ == "__main__":
    main()
