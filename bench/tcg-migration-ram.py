#!/usr/bin/python3
"""Live migration under TCG with the guest's RAM in whole MiB (the reference) and 8 KiB short of it (what Corral gives
a TCG guest on QEMU before 9.0, see QemuCommandLine.NeedsPageByPageDirtySync), bare QEMU to QEMU on this machine.

Each run boots the lab's test image, starts two shells that loop without system calls (they keep writing the same
pages), live-migrates to a second QEMU waiting with -S, and, once the migration completed, saves both copies' RAM
(pmemsave): the source's is final (it is stopped), so a page that differs is a guest write the migration lost.
Prints each run's QEMU figures (total, downtime, setup) and lost pages, then medians and the ratios against the
reference. Usage (as root, after ./lab up built the image): bench/tcg-migration-ram.py [RUNS] [MiB] [BANDWIDTH B/s]
"""
import json, os, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGE = os.path.join(REPO, "guest/build/corral-linux-test.qcow2")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
MIB = int(sys.argv[2]) if len(sys.argv) > 2 else 256
BANDWIDTH = int(sys.argv[3]) if len(sys.argv) > 3 else 10 << 30
WORK = tempfile.mkdtemp(prefix="tcg-migration-ram-")
CONFIGS = [("whole MiB (reference)", str(MIB)), ("8 KiB short", f"{MIB * 1024 - 8}K")]


class Qmp:
    def __init__(self, path):
        for _ in range(300):
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"no QMP at {path}")
        self.file = self.sock.makefile("rw")
        self.file.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")


def start_qemu(name, memory, extra):
    for suffix in (".qmp", ".con", ".log"):
        if os.path.exists(f"{WORK}/{name}{suffix}"):
            os.unlink(f"{WORK}/{name}{suffix}")
    args = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-m", memory, "-smp", "1",
            "-nodefaults", "-display", "none", "-nic", "none", "-drive", f"file={IMAGE},if=virtio,snapshot=on",
            "-qmp", f"unix:{WORK}/{name}.qmp,server=on,wait=off",
            "-chardev", f"socket,id=s0,path={WORK}/{name}.con,server=on,wait=off,logfile={WORK}/{name}.log",
            "-serial", "chardev:s0"] + extra
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_run(memory, port):
    source = start_qemu("src", memory, [])
    destination = None
    try:
        src = Qmp(f"{WORK}/src.qmp")
        deadline = time.time() + 120
        while "CORRAL-GUEST-READY" not in open(f"{WORK}/src.log", errors="replace").read():
            if time.time() > deadline:
                raise RuntimeError("the guest did not boot")
            time.sleep(0.5)
        console = socket.socket(socket.AF_UNIX)
        console.connect(f"{WORK}/src.con")
        console.sendall(b"\n(i=0; while :; do i=$((i+1)); done) &\n")
        time.sleep(2)
        console.close()
        destination = start_qemu("dst", memory, ["-S", "-incoming", f"tcp:127.0.0.1:{port}"])
        dst = Qmp(f"{WORK}/dst.qmp")
        src.cmd("migrate-set-capabilities", capabilities=[{"capability": "auto-converge", "state": True}])
        src.cmd("migrate-set-parameters", **{"max-bandwidth": BANDWIDTH, "downtime-limit": 300})
        src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        while (info := src.cmd("query-migrate"))["status"] not in ("completed", "failed", "cancelled"):
            time.sleep(0.02)
        if info["status"] != "completed":
            raise RuntimeError(f"migration {info['status']}")
        size = int(src.cmd("query-memory-size-summary")["base-memory"])
        for name, qmp in (("src", src), ("dst", dst)):
            qmp.cmd("pmemsave", val=0, size=size, filename=f"{WORK}/{name}.mem")
        compared = subprocess.run(["cmp", "-l", f"{WORK}/src.mem", f"{WORK}/dst.mem"], capture_output=True, text=True)
        if compared.returncode > 1:
            raise RuntimeError(f"cmp: {compared.stderr.strip()}")
        differ = compared.stdout.split("\n")
        # Below 1 MiB lie the BIOS's areas and the legacy VGA window, not the guest's RAM proper.
        lost = sorted({(int(line.split()[0]) - 1) // 4096 for line in differ if line} - set(range(256)))
        for qmp in (src, dst):
            qmp.cmd("quit")
        return info["total-time"], info["downtime"], info["setup-time"], lost
    finally:
        for process in (source, destination):
            if process is not None:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for name in ("src.mem", "dst.mem"):
            if os.path.exists(f"{WORK}/{name}"):
                os.unlink(f"{WORK}/{name}")


def main():
    if not os.path.exists(IMAGE):
        sys.exit(f"no {IMAGE}: run ./lab up first (it builds the test image)")
    print(subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.split("\n")[0])
    print(f"{MIB} MiB guest, 1 vCPU, TCG, bandwidth {BANDWIDTH} B/s, {RUNS} runs of each, alternated")
    results = {label: [] for label, _ in CONFIGS}
    for run in range(RUNS):
        for index, (label, memory) in enumerate(CONFIGS):
            total, downtime, setup, lost = one_run(memory, 47100 + 2 * run + index)
            results[label].append((total, downtime, setup, lost))
            print(f"  {label:22} (-m {memory:>8}) run {run + 1}: total {total} ms, downtime {downtime} ms, setup {setup} ms, "
                  f"pages lost {len(lost)}{' ' + str(lost[:6]) if lost else ''}", flush=True)
    reference = results[CONFIGS[0][0]]
    for label, _ in CONFIGS:
        rows = results[label]
        medians = [statistics.median(r[i] for r in rows) for i in range(3)]
        ratios = [m / max(1, statistics.median(r[i] for r in reference)) for i, m in enumerate(medians)]
        print(f"{label:22}: median total {medians[0]:.0f} ms ({ratios[0]:.2f} x), downtime {medians[1]:.0f} ms "
              f"({ratios[1]:.2f} x), setup {medians[2]:.0f} ms ({ratios[2]:.2f} x); "
              f"migrations that lost pages: {sum(1 for r in rows if r[3])} of {len(rows)}")
    os.rmdir(WORK) if not os.listdir(WORK) else None


if __name__ == "__main__":
    main()
