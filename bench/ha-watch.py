#!/usr/bin/env python3
"""Watches one VM's copies every 100 ms for bench/ha-campaign.sh, from the process table and the disk's locks.

Usage: ha-watch.py VM-UUID OUT-FILE. Runs until SIGTERM, then writes one line to OUT-FILE:
    max_processes=N overlap_ms=N max_writers=N pids=P1,P2 writer_pids=P1
- processes: live QEMU processes whose command line names the VM (a live migration's incoming copy included);
  overlap_ms: the longest time two or more of them were seen alive together (one 100 ms sample may catch a killed
  process not yet gone);
- writers: those holding QEMU's write-permission lock on a disk image (byte 101 of QEMU's image locking, an OFD
  read lock). QEMU takes it for an image it runs the guest on, not for an incoming copy's inactive one, so two
  writers at once are two copies running the guest on one disk.
"""
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


def main():
    vm, out = sys.argv[1], sys.argv[2]
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    max_processes = max_writers = 0
    overlap = longest_overlap = 0.0
    last = time.monotonic()
    pids, writer_pids = set(), set()
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
        time.sleep(0.1)
    with open(out, "w") as f:
        f.write(f"max_processes={max_processes} overlap_ms={int(longest_overlap * 1000)} max_writers={max_writers} "
                f"pids={','.join(map(str, sorted(pids)))} writer_pids={','.join(map(str, sorted(writer_pids)))}\n")


if __name__ == "__main__":
    main()
