#!/usr/bin/python3
"""Runs the whole conformance suite against a running pool, in an order that leaves the pool as it found it:
XenCenter's and Xen Orchestra's connect sequences through each client (xmlrpc.client, the XenAPI SDK, JSON-RPC),
then the operations through each client (each returns the VMs to their hosts, HA off, every host enabled).
With several URLs, the connect and roles scripts run over each, and the operations over the last one only (HTTPS,
as the lab's test gives them): what a client does with the pool does not change with the transport, which the
connect sequences check; --operations-on-every-url runs them over each too (about 25 s per client and URL).

Prints every script's output, and writes the results as JSON (by default .build/conformance/last-run.json, which
tools/generate-compatibility reads into docs/compatibility.md). Exits 1 if any script failed.

    /usr/bin/python3 test/conformance/run_suite.py http://10.78.0.11 --ping
    /usr/bin/python3 test/conformance/run_suite.py http://10.78.0.11 https://10.78.0.11 --allow-unauthorized
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DEFAULT_RESULTS = os.path.join(REPO, ".build", "conformance", "last-run.json")
CLIENTS = ("xmlrpc", "xenapi", "jsonrpc")
SCRIPTS = ("connect_xencenter", "connect_xo", "operations", "roles")
SCRIPT_TIMEOUT = 900


def parse_args():
    parser = argparse.ArgumentParser(description="Runs every conformance script against a pool.")
    parser.add_argument("base_urls", nargs="+", metavar="base_url",
                        help="the pool master's URL: http://host or https://host[:port]; several run the suite over each")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="corral")
    parser.add_argument("--allow-unauthorized", action="store_true", help="accept any server certificate")
    parser.add_argument("--cafile", help="trust the certificates in this PEM file")
    parser.add_argument("--ping", action="store_true", help="operations also ping the moved VM's guest (lab pools)")
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="run only these scripts")
    parser.add_argument("--operations-on-every-url", action="store_true",
                        help="run the operations over every URL given, not only the last")
    parser.add_argument("--clients", nargs="*", choices=CLIENTS, default=list(CLIENTS), help="run only these clients")
    parser.add_argument("--results", default=DEFAULT_RESULTS, help=f"where to write the results (default {DEFAULT_RESULTS})")
    return parser.parse_args()


def common_options(args):
    options = ["--user", args.user, "--password", args.password]
    if args.allow_unauthorized:
        options.append("--allow-unauthorized")
    if args.cafile:
        options += ["--cafile", args.cafile]
    return options


def run_one(args, base_url, script, client):
    """Runs one script through one client, streaming its output; returns its record."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        record_path = f.name
    command = [sys.executable, os.path.join(HERE, script + ".py"), base_url, "--client", client,
               "--record", record_path, *common_options(args)]
    if script == "operations" and args.ping:
        command.append("--ping")
    started = time.monotonic()
    try:
        completed = subprocess.run(command, check=False, timeout=SCRIPT_TIMEOUT)
        code = completed.returncode
    except subprocess.TimeoutExpired:
        code = None
    try:
        with open(record_path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        why = f"timed out after {SCRIPT_TIMEOUT} s" if code is None else f"exited {code} without a record (crashed)"
        record = {"script": script, "client": client, "base_url": base_url, "passed": False,
                  "steps": [{"status": "FAIL", "name": "run", "detail": why}]}
        print(f"FAIL  {script} ({client}): {why}", flush=True)
    finally:
        os.unlink(record_path)
    record["passed"] = record.get("passed", False) and code == 0
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True)
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    args = parse_args()
    started = time.monotonic()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = []
    for base_url in args.base_urls:
        for script in args.only or SCRIPTS:
            if script == "operations" and base_url != args.base_urls[-1] and not args.operations_on_every_url:
                continue
            for client in args.clients:
                runs.append(run_one(args, base_url, script, client))
                print(flush=True)
    results = {"base_url": " ".join(args.base_urls), "started": when, "commit": git_commit(),
               "seconds": round(time.monotonic() - started, 1), "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    failed = [f"{r['script']} ({r['client']}, {r['base_url']})" for r in runs if not r["passed"]]
    print(f"== {len(runs) - len(failed)} of {len(runs)} passed in {results['seconds']} s; results in {args.results}")
    for name in failed:
        print(f"== FAILED {name}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
