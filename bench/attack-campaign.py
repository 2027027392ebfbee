#!/usr/bin/python3
"""Attack campaign against the lab's master (./lab up first; as root). Usage: bench/attack-campaign.py [attack...]

HA is turned on and the test VM protected for the run (as they were left after). Each attack comes from an address of its own on the lab's management network (a /32 added to the root namespace's
lab bridge for the run, removed after), while three bystanders watch what it costs everyone else:
  - another client (the lab's own address) calls VM.get_all_records every 0.5 s: its latency;
  - the test VM is pinged every 0.2 s: pings lost;
  - the agents' logs: HA acting (self-fencing, a lease lost, a host declared fenced), the master's agent restarting;
  - afterwards: every host live, the master still the master.
Prints one line per attack and a Markdown table (attack, count, expected refusal, outcome, bystander latency median /
max, pings lost, HA actions). DOCS=1 writes the table into docs/security.md between its campaign markers.
"""
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_DIR = os.environ.get("CORRAL_LAB_DIR", "/var/lib/corral-lab")
XE = os.path.join(ROOT, ".build", "xe", "xe")


def xe(*args):
    return subprocess.run([XE, *args], check=True, capture_output=True, text=True).stdout.strip()


def xe_config():
    values = {}
    with open(os.path.expanduser("~/.xe")) as f:
        for line in f:
            if "=" in line:
                key, value = line.strip().split("=", 1)
                values[key] = value
    return values


CONFIG = xe_config()
MASTER = urllib.parse.urlparse(CONFIG["server"] if "://" in CONFIG["server"] else "http://" + CONFIG["server"]).hostname
PASSWORD = CONFIG.get("password", "corral")
BRIDGE = os.environ.get("CORRAL_LAB_MGMT_BRIDGE", "corralmgmt0")


def attacker_address():
    """A free address in the master's /24 (checked: not on any interface, no answer to ping)."""
    prefix = MASTER.rsplit(".", 1)[0]
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    for last in random.sample(range(200, 251), 51):
        candidate = f"{prefix}.{last}"
        if f" {candidate}/" in used:
            continue
        if subprocess.run(["ping", "-c", "1", "-W", "1", candidate], capture_output=True).returncode != 0:
            return candidate
    raise SystemExit("no free address for the attacker")


# ---- talking to the host ----

def connect(source=None, timeout=30):
    conn = http.client.HTTPConnection(MASTER, 80, timeout=timeout, source_address=(source, 0) if source else None)
    return conn


def post(conn, path, body, content_type):
    conn.request("POST", path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    return response.status, response.read().decode("utf-8", "replace")


def jsonrpc(conn, method, *params):
    status, body = post(conn, "/jsonrpc", json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}),
                        "application/json")
    if status != 200:
        return status, None, None
    reply = json.loads(body)
    error = reply.get("error")
    # A XenAPI error over JSON-RPC: its code in "message", its parameters in "data".
    return status, reply.get("result"), ([error.get("message")] + list(error.get("data") or [])) if error else None


def xml_call(method, *values):
    params = "".join(f"<param><value>{v}</value></param>" for v in values)
    return f"<?xml version='1.0'?><methodCall><methodName>{method}</methodName><params>{params}</params></methodCall>"


# ---- bystanders ----

class Bystanders:
    def __init__(self, vm_ip):
        self.vm_ip = vm_ip
        self.latencies = []
        self.failures = 0
        self.stop = threading.Event()
        self.logs = {path: os.path.getsize(path) for path in self.agent_logs()}

    @staticmethod
    def agent_logs():
        return sorted(os.path.join(LAB_DIR, f) for f in os.listdir(LAB_DIR) if re.match(r"agent-host\d+\.log$", f))

    def start(self):
        self.ping = subprocess.Popen(["ping", "-i", "0.2", "-W", "1", self.vm_ip], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self.client, daemon=True)
        self.thread.start()

    def client(self):
        conn = connect()
        _, session, _ = jsonrpc(conn, "session.login_with_password", "root", PASSWORD, "1.0", "bystander")
        while not self.stop.wait(0.5):
            started = time.monotonic()
            try:
                status, result, error = jsonrpc(conn, "VM.get_all_records", session)
                if status != 200 or error:
                    self.failures += 1
                else:
                    self.latencies.append((time.monotonic() - started) * 1000)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                conn = connect()

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.ping.send_signal(2)
        out = self.ping.communicate()[0]
        sent = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        lost = int(sent.group(1)) - int(sent.group(2)) if sent else -1
        ha = restarts = 0
        for path, start in self.logs.items():
            with open(path, errors="replace") as f:
                f.seek(start)
                text = f.read()
            ha += len(re.findall(r"Self-fencing|Liveness lease lost|has lost its liveness lease|is fenced \(|power-fenced", text))
            restarts += len(re.findall(r"Now listening on", text))
        lat = sorted(self.latencies)
        return {
            "median_ms": statistics.median(lat) if lat else None,
            "max_ms": max(lat) if lat else None,
            "bystander_failures": self.failures,
            "pings_lost": lost,
            "ha_actions": ha,
            "agent_restarts": restarts,
        }


# ---- the attacks: each returns (count, outcome counts) ----

def big_body(source):
    outcomes = {}
    body = "<?xml version='1.0'?><methodCall><methodName>x</methodName><params><param><value><string>" + "A" * (1 << 20)
    body += "</string></value></param></params></methodCall>"
    for _ in range(20):
        conn = connect(source)
        try:
            status, _ = post(conn, "/", body, "text/xml")
            key = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            key = "closed: " + type(e).__name__
        outcomes[key] = outcomes.get(key, 0) + 1
    return 20, outcomes


def deep_xml(source):
    outcomes = {}
    depth = 6000
    value = "<array><data><value>" * depth + "<i4>1</i4>" + "</value></data></array>" * depth
    body = xml_call("session.login_with_password", value, "x")
    for _ in range(20):
        conn = connect(source)
        status, text = post(conn, "/", body, "text/xml")
        key = "XMLRPC_UNMARSHAL_FAILURE" if "XMLRPC_UNMARSHAL_FAILURE" in text else f"HTTP {status}: {text[:60]}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return 20, outcomes


def deep_json(source):
    outcomes = {}
    depth = 20000
    body = '{"jsonrpc":"2.0","id":1,"method":"session.login_with_password","params":[' + "[" * depth + "]" * depth + "]}"
    for _ in range(20):
        conn = connect(source)
        status, text = post(conn, "/jsonrpc", body, "application/json")
        key = "JSONRPC_PARSE_ERROR" if "PARSE" in text.upper() else f"HTTP {status}: {text[:60]}"
        outcomes[key] = outcomes.get(key, 0) + 1
    return 20, outcomes


def password_guessing(source):
    outcomes = {}
    conn = connect(source)
    for i in range(200):
        _, result, error = jsonrpc(conn, "session.login_with_password", "root", f"guess{i}", "1.0", "attacker")
        if result:
            key = "LOGGED IN"
        elif error and "Too many failed" in json.dumps(error):
            key = "throttled, unchecked"
        else:
            key = "SESSION_AUTHENTICATION_FAILED"
        outcomes[key] = outcomes.get(key, 0) + 1
    return 200, outcomes


def flood(source, call, seconds=20, connections=64):
    """`connections` connections from `source` each making `call(conn)` (which names its outcome) for `seconds`."""
    outcomes = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        conn = connect(source)
        while time.monotonic() < deadline:
            try:
                key = call(conn)
            except (OSError, http.client.HTTPException):
                key = "connection closed"
                conn = connect(source)
            with lock:
                outcomes[key] = outcomes.get(key, 0) + 1

    with ThreadPoolExecutor(connections) as pool:
        for _ in range(connections):
            pool.submit(worker)
    return sum(outcomes.values()), outcomes


def login_flood(source):
    """64 connections logging in with the right password for 20 s: the most costly call there is (a slow hash)."""
    def login(conn):
        status, result, error = jsonrpc(conn, "session.login_with_password", "root", PASSWORD, "1.0", "flood")
        return "logged in" if result else (error[0] if error else f"HTTP {status}")

    return flood(source, login)


def wrong_login_flood(source):
    """64 connections logging in with wrong passwords for 20 s: each one a full hash, until the throttle refuses them."""
    def login(conn):
        status, result, error = jsonrpc(conn, "session.login_with_password", "root", "wrong" + str(random.random()), "1.0", "flood")
        if status != 200:
            return f"HTTP {status}"
        return "throttled, unchecked" if "Too many failed" in json.dumps(error) else "SESSION_AUTHENTICATION_FAILED"

    return flood(source, login)


def call_flood(source):
    """64 connections calling a cheap getter as fast as they can for 20 s."""
    setup = connect(source)
    _, session, _ = jsonrpc(setup, "session.login_with_password", "root", PASSWORD, "1.0", "flood")

    def call(conn):
        status, _, error = jsonrpc(conn, "pool.get_all", session)
        return "answered" if status == 200 and not error else f"HTTP {status}"

    return flood(source, call)


def connection_flood(source):
    """400 connections held open at once."""
    sockets, outcomes = [], {}
    for _ in range(400):
        s = socket.socket()
        s.settimeout(5)
        s.bind((source, 0))
        try:
            s.connect((MASTER, 80))
        except OSError:
            pass  # closed as it opened: counted below, as its request fails
        sockets.append(s)
    time.sleep(1)
    for s in sockets:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            key = "served" if s.recv(12).startswith(b"HTTP/1.1") else "closed"
        except OSError:
            key = "closed"
        outcomes[key] = outcomes.get(key, 0) + 1
    for s in sockets:
        s.close()
    return 400, outcomes


def slow_headers(source):
    """50 connections sending a header line byte by byte, one byte every 2 s, for 40 s."""
    sockets = []
    for _ in range(50):
        s = socket.socket()
        s.bind((source, 0))
        s.connect((MASTER, 80))
        s.sendall(b"GET / HTTP/1.1\r\n")
        sockets.append(s)
    closed_after = {}
    started = time.monotonic()
    while time.monotonic() - started < 40 and len(closed_after) < len(sockets):
        for i, s in enumerate(sockets):
            if i in closed_after:
                continue
            try:
                s.sendall(b"X")
            except OSError:
                closed_after[i] = time.monotonic() - started
        time.sleep(2)
    for s in sockets:
        s.close()
    if len(closed_after) == len(sockets):
        return 50, {f"closed after {min(closed_after.values()):.0f}-{max(closed_after.values()):.0f} s": 50}
    return 50, {"closed": len(closed_after), "still open after 40 s": 50 - len(closed_after)}


def session_guessing(source):
    outcomes = {}
    conn = connect(source)
    for _ in range(1000):
        guess = "OpaqueRef:" + "-".join("%0*x" % (n, random.getrandbits(4 * n)) for n in (8, 4, 4, 4, 12))
        _, result, error = jsonrpc(conn, "pool.get_all", guess)
        key = error[0] if error else "ACCEPTED"
        outcomes[key] = outcomes.get(key, 0) + 1
    return 1000, outcomes


def guest_serial_flood(source):
    """The test VM's guest prints to its serial console without pause for 30 s (typed at its console's shell)."""
    run_dir = os.environ.get("CORRAL_LAB_RUN", "/run/corral-lab")
    vm = xe("vm-list", "name-label=Corral test VM", "--minimal")
    directory = next(os.path.join(run_dir, h, "vms", vm) for h in sorted(os.listdir(run_dir))
                     if os.path.exists(os.path.join(run_dir, h, "vms", vm, "console.sock")))
    log = os.path.join(directory, "console.log")
    console = socket.socket(socket.AF_UNIX)
    console.connect(os.path.join(directory, "console.sock"))
    line = "A" * 200
    console.sendall(f"\nwhile true; do echo {line}; done\n".encode())
    largest = 0
    started = time.monotonic()
    while time.monotonic() - started < 30:
        console.setblocking(False)
        try:
            while console.recv(65536):
                pass
        except BlockingIOError:
            pass
        size = sum(os.path.getsize(p) for p in (log, log + ".1") if os.path.exists(p))
        largest = max(largest, size)
        time.sleep(0.5)
    console.setblocking(True)
    console.sendall(b"\x03\n")
    console.close()
    return 1, {f"the guest wrote {largest // 1024} KiB in 30 s (its emulated UART's pace); the log and its set-aside part never passed {largest // 1024} KiB": 1}


DIRECTORY_PASSWORD = os.environ.get("CORRAL_LAB_DIRECTORY_PASSWORD", "corral")
DUMMY = {"string": "x", "int": 0, "float": 0.0, "bool": False, "datetime": "19700101T00:00:00Z"}


def dummy(kind):
    """A value of the parameter's type, naming nothing that exists (refs: OpaqueRef:NULL)."""
    if kind.endswith(" ref"):
        return "OpaqueRef:NULL"
    if kind.endswith(" set"):
        return []
    if kind.endswith(" map") or kind.endswith(" record") or kind.startswith("("):
        return {}
    if kind.startswith("enum "):
        return "x"
    return DUMMY.get(kind, "x")


def forbidden_messages(role):
    """Every message of xapi's datamodel that takes a session and that the role may not call, with dummy arguments."""
    with open(os.path.join(ROOT, "datamodel", "xapi-datamodel.json")) as f:
        model = json.load(f)
    for cls in model["classes"]:
        for message in cls["messages"]:
            if message["session"] and role not in message["roles"] and message["state"] != "removed":
                yield f"{cls['name']}.{message['name']}", [dummy(p["type"]) for p in message["parameters"]]


def role_escalation(source, user, role):
    """A directory user of the role calls every message its role lacks: each must be refused before any work."""
    outcomes = {}
    conn = connect(source)
    _, session, error = jsonrpc(conn, "session.login_with_password", user, DIRECTORY_PASSWORD, "1.0", "attacker")
    if not session:
        return 0, {f"login failed: {error}": 1}
    count = 0
    for name, args in forbidden_messages(role):
        count += 1
        _, result, error = jsonrpc(conn, name, session, *args)
        key = error[0] if error else "ALLOWED"
        if key != "RBAC_PERMISSION_DENIED":
            key = f"{key} ({name})"
        outcomes[key] = outcomes.get(key, 0) + 1
    jsonrpc(conn, "session.logout", session)
    return count, outcomes


def session_snooping(source):
    """A read-only user looks for other sessions' references (bearer secrets) in every place xapi could show them."""
    conn = connect(source)
    _, session, error = jsonrpc(conn, "session.login_with_password", "rory", DIRECTORY_PASSWORD, "1.0", "attacker")
    if not session:
        return 0, {f"login failed: {error}": 1}
    _, root, _ = jsonrpc(conn, "session.login_with_password", "root", PASSWORD, "1.0", "bystander")
    outcomes = {}
    probes = [("session.get_all", []), ("session.get_all_records", []), ("task.get_all_records", []),
              ("event.from", [["session", "task"], "", 1.0]), ("session.get_record", [root]), ("session.get_uuid", [root])]
    for name, args in probes:
        _, result, error = jsonrpc(conn, name, session, *args)
        text = json.dumps(result) if result is not None else ""
        key = "root's session shown" if root in text else (error[0] if error else "answered, no other session in it")
        outcomes[key] = outcomes.get(key, 0) + 1
    jsonrpc(conn, "session.logout", root)
    jsonrpc(conn, "session.logout", session)
    return len(probes), outcomes


ATTACKS = {
    # Password guessing last: it fills root's throttle bucket, which would refuse the login flood unchecked.
    "login-flood": (login_flood, "64 connections of right-password logins, 20 s", "queued to 200/s and 32 at once, then 503; hashing on half the cores"),
    "call-flood": (call_flood, "64 connections of pool.get_all, 20 s", "queued to 200/s, then 503"),
    "connection-flood": (connection_flood, "400 connections held open", "past 256: closed"),
    "slow-headers": (slow_headers, "50 connections trickling headers", "closed within 30 s"),
    "big-body": (big_body, "1 MiB XML-RPC bodies, unauthenticated", "HTTP 413, nothing parsed"),
    "deep-xml": (deep_xml, "XML-RPC nested 6,000 deep (fits in 300 KiB)", "XMLRPC_UNMARSHAL_FAILURE"),
    "deep-json": (deep_json, "JSON-RPC nested 20,000 deep", "a JSON-RPC parse error"),
    "session-guessing": (session_guessing, "random session references", "SESSION_INVALID"),
    "guest-serial-flood": (guest_serial_flood, "a guest printing to its serial port for 30 s", "the log set aside past 1 MiB: at most 2 MiB and 5 s of output"),
    "role-escalation-read-only": (lambda source: role_escalation(source, "rory", "read-only"),
                                  "a read-only directory user calls every message its role lacks", "RBAC_PERMISSION_DENIED, before any work"),
    "role-escalation-vm-operator": (lambda source: role_escalation(source, "olivia", "vm-operator"),
                                    "a vm-operator calls every message its role lacks", "RBAC_PERMISSION_DENIED, before any work"),
    "session-snooping": (session_snooping, "a read-only user looks for root's session (lists, records, events)",
                         "never shown: RBAC_PERMISSION_DENIED or left out"),
    "password-guessing": (password_guessing, "wrong root passwords from one address", "SESSION_AUTHENTICATION_FAILED, throttled after 5"),
    "wrong-login-flood": (wrong_login_flood, "64 connections of wrong-password logins, 20 s", "hashed until 20 failures, then refused unchecked"),
}


def main():
    names = sys.argv[1:] or list(ATTACKS)
    vm = xe("vm-list", "name-label=Corral test VM", "--minimal")
    vm_ip = xe("vm-param-get", f"uuid={vm}", "param-name=xenstore-data", "param-key=vm-data/ip").split("/")[0]
    pool = xe("pool-list", "--minimal")
    master_before = xe("pool-param-get", f"uuid={pool}", "param-name=master")
    # HA on, the test VM protected, as a production pool would have them: a needless fence is what an attack must not cause.
    ha_before = xe("pool-param-get", f"uuid={pool}", "param-name=ha-enabled")
    priority_before = xe("vm-param-get", f"uuid={vm}", "param-name=ha-restart-priority")
    if ha_before != "true":
        xe("pool-ha-enable", "heartbeat-sr-uuids=" + xe("sr-list", "name-label=Shared storage", "--minimal"))
    xe("vm-param-set", f"uuid={vm}", "ha-restart-priority=restart")
    source = attacker_address()
    subprocess.run(["ip", "addr", "add", f"{source}/32", "dev", BRIDGE], check=True)
    rows = []
    try:
        baseline = Bystanders(vm_ip)
        baseline.start()
        time.sleep(10)
        base = baseline.finish()
        print(f"baseline: bystander median {base['median_ms']:.0f} ms, max {base['max_ms']:.0f} ms, pings lost {base['pings_lost']}", flush=True)
        for name in names:
            attack, what, expected = ATTACKS[name]
            watch = Bystanders(vm_ip)
            watch.start()
            started = time.monotonic()
            count, outcomes = attack(source)
            took = time.monotonic() - started
            time.sleep(2)
            seen = watch.finish()
            live = xe("host-list", "params=host-metrics-live", "--minimal")
            master = xe("pool-param-get", f"uuid={pool}", "param-name=master")
            outcome = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items(), key=lambda kv: -kv[1]))
            row = (name, what, count, expected, outcome, seen, live == "true,true,true" and master == master_before, took)
            rows.append(row)
            print(f"{name}: {count} in {took:.0f} s: {outcome}; bystander median {seen['median_ms'] or 0:.0f} ms max "
                  f"{seen['max_ms'] or 0:.0f} ms failures {seen['bystander_failures']}; pings lost {seen['pings_lost']}; "
                  f"HA actions {seen['ha_actions']}; agent restarts {seen['agent_restarts']}; hosts live {live}", flush=True)
    finally:
        subprocess.run(["ip", "addr", "del", f"{source}/32", "dev", BRIDGE])
        xe("vm-param-set", f"uuid={vm}", f"ha-restart-priority={priority_before}")
        if ha_before != "true":
            xe("pool-ha-disable")

    table = ["| attack | count | expected | outcome | other client: median / max (baseline " + f"{base['median_ms']:.0f} / {base['max_ms']:.0f} ms)"
             + " | VM pings lost | HA actions, agent restarts | pool intact |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, what, count, expected, outcome, seen, intact, _ in rows:
        table.append(f"| {name}: {what} | {count} | {expected} | {outcome} | {seen['median_ms'] or 0:.0f} / {seen['max_ms'] or 0:.0f} ms"
                     f"{', ' + str(seen['bystander_failures']) + ' failed' if seen['bystander_failures'] else ''} | {seen['pings_lost']} | "
                     f"{seen['ha_actions']}, {seen['agent_restarts']} | {'yes' if intact else 'NO'} |")
    print("\n".join(table))
    if os.environ.get("DOCS") == "1":
        path = os.path.join(ROOT, "docs", "security.md")
        with open(path) as f:
            text = f.read()
        begin, end = "<!-- attack-campaign:begin -->", "<!-- attack-campaign:end -->"
        block = begin + "\n" + "\n".join(table) + "\n" + end
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S) if begin in text else text + "\n" + block + "\n"
        with open(path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
