"""Steps, one printed line each, and the command line every script of the suite shares.

A step prints "ok", "warn" or "FAIL", its name and what it saw. A failing step says what broke and what the real
client then does; a fatal one (the default) ends the run, as the real client would stop there. With --record FILE
the run is also written as JSON for run_suite.py and the compatibility report.
"""

import argparse
import contextlib
import http.client
import json
import socket
import sys
import time
import xmlrpc.client

from clients import Failure, WireViolation

CLIENTS = ("xmlrpc", "xenapi", "jsonrpc")


class CheckFailed(Exception):
    """A check of an answer failed; effect (optional) replaces the step's 'what the client does'."""

    def __init__(self, message, effect=None):
        super().__init__(message)
        self.effect = effect


class StopRun(Exception):
    """A fatal step failed: the real client stops here."""


class Step:
    def __init__(self, name):
        self.name = name
        self.detail = ""
        self.warnings = []

    def require(self, condition, message, effect=None):
        if not condition:
            raise CheckFailed(message, effect)

    def warn(self, message):
        self.warnings.append(message)


class Report:
    def __init__(self, script, client, title, base_url, keep_going=False):
        self.script, self.client, self.title, self.base_url = script, client, title, base_url
        self.keep_going = keep_going
        self.steps = []
        self.failed = False
        self.started = time.monotonic()
        print(f"== {title} ({client}) against {base_url}", flush=True)

    @contextlib.contextmanager
    def step(self, name, effect="", fatal=True):
        step = Step(name)
        try:
            yield step
        except StopRun:
            raise
        except Exception as error:  # every failure of a step is reported, whatever raised it
            why = describe(error)
            consequence = getattr(error, "effect", None) or effect
            self.line("FAIL", name, why + (f" => {consequence}" if consequence else ""))
            self.failed = True
            if fatal and not self.keep_going:
                raise StopRun() from error
            return
        self.line("ok", name, step.detail)
        for warning in step.warnings:
            self.line("warn", name, warning)

    def note(self, name, detail):
        self.line("note", name, detail)

    def line(self, status, name, detail):
        self.steps.append({"status": status, "name": name, "detail": detail})
        print(f"{status:<5} {name}" + (f": {detail}" if detail else ""), flush=True)

    def finish(self, record_path):
        seconds = round(time.monotonic() - self.started, 1)
        verdict = "FAILED" if self.failed else "PASSED"
        print(f"== {verdict}: {self.title} ({self.client}) in {seconds} s", flush=True)
        if record_path:
            record = {"script": self.script, "client": self.client, "title": self.title, "base_url": self.base_url,
                      "passed": not self.failed, "seconds": seconds, "steps": self.steps}
            with open(record_path, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
        return 1 if self.failed else 0


def describe(error):
    """What went wrong, as the client saw it."""
    if isinstance(error, (CheckFailed, WireViolation)):
        return str(error)
    if isinstance(error, Failure):
        return "XenAPI error " + " ".join(error.description)
    if isinstance(error, xmlrpc.client.ProtocolError):
        return f"HTTP {error.errcode} {error.errmsg} from {error.url} (xmlrpc.client raises ProtocolError)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer in time ({error})"
    if isinstance(error, (ConnectionError, http.client.HTTPException, OSError)):
        hint = (" (a certificate this machine does not trust: --allow-unauthorized accepts it, as Xen Orchestra's "
                "'allow unauthorized' and XenCenter's trust on first use do; --cafile pins it)") if "CERTIFICATE_VERIFY_FAILED" in str(error) else ""
        return f"connection failed: {type(error).__name__}: {error}{hint}"
    return f"{type(error).__name__}: {error}"


def parse_args(description, extra=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("base_url", help="the pool master's URL: http://host or https://host[:port]")
    parser.add_argument("--client", choices=CLIENTS, default="jsonrpc",
                        help="xmlrpc (Python's xmlrpc.client), xenapi (the XenAPI SDK over XML-RPC) or jsonrpc")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="corral")
    parser.add_argument("--allow-unauthorized", action="store_true",
                        help="accept any server certificate (Xen Orchestra's 'allow unauthorized'; XenCenter trusts "
                             "an unknown certificate on first use)")
    parser.add_argument("--cafile", help="trust the certificates in this PEM file (a pool's self-signed certificate)")
    parser.add_argument("--record", help="also write the run as JSON to this file")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on after a failure (for diagnosis; later steps may fail because an earlier one did)")
    if extra:
        extra(parser)
    args = parser.parse_args()
    if not args.base_url.startswith(("http://", "https://")):
        parser.error("base_url must start with http:// or https://")
    return args


def run_script(report, body, cleanup, record_path):
    """Runs body(report); then cleanup(); exits with 0 if every step passed."""
    try:
        body(report)
    except StopRun:
        pass
    finally:
        try:
            cleanup()
        except Exception as error:
            report.failed = True
            report.line("FAIL", "cleanup", describe(error))
    sys.exit(report.finish(record_path))
