#!/usr/bin/python3
"""XenCenter's connect sequence, replayed call by call and checked as XenCenter's C# SDK checks each answer.

Source: xenserver/xenadmin (the last open-source XenCenter): XenConnection.GetNewSession and ConnectWorkerThread,
Session.SetupSessionDetails, XenObjectDownloader, MainWindow.connection_CachePopulated; the wire rules of
XenModel/XenAPI/JsonRpc.cs and Converters.cs. XenCenter speaks JSON-RPC 2.0; run with --client xmlrpc or xenapi, the
same calls go over XML-RPC (as XenCenter before JSON-RPC did). One line per step; the first failure ends the run,
naming what broke and what XenCenter then does.

    /usr/bin/python3 test/conformance/connect_xencenter.py http://10.78.0.11 --client jsonrpc
"""

import threading
import time
from datetime import datetime, timezone

from clients import Failure, JsonRpcClient, endpoint, make_client
from events import check_batch, ref_shaped
from records import DATETIME, Datamodel
from report import CheckFailed, Report, parse_args, run_script

API_LATEST = (2, 21)  # the current XenCenter; the archived open-source one knows up to 2.20
API_ARCHIVED = (2, 20)
USER_AGENT = "XenCenter 2024.1.0.1"
BRANDS = ("XenServer", "Citrix Hypervisor")  # BrandManager.ProductBrand and LegacyProduct of the official build
NAPLES = (2, 9, 50)
RETRY_FOREVER = "XenCenter sleeps 250 ms and logs in again, forever (each pass leaves a session behind)"


def version_tuple(text):
    parts = []
    for piece in str(text).split("."):
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def api_version(value):
    """'2.21' -> (2, 21); None if it is not a version string XenCenter's Helper.GetAPIVersion parses."""
    parts = str(value).split(".")
    return (int(parts[0]), int(parts[1])) if len(parts) == 2 and all(p.isdigit() for p in parts) else None


class XenCenterConnect:
    def __init__(self, args):
        self.args = args
        self.dm = Datamodel()
        self.client = make_client(args.client, args, max_tls12=True, ids="count", user_agent=USER_AGENT)
        self.xml = args.client != "jsonrpc"
        self.pool = self.master = self.token = None
        self.events = []

    def run(self, report):
        self.transport(report)
        self.login(report)
        self.pool_records(report)
        self.master_record(report)
        self.ad_details(report)
        self.rbac(report)
        self.first_events(report)
        self.server_time(report, "9 host.get_servertime(master)")
        self.cache_populated(report)
        self.event_loop_with_heartbeat(report)

    def transport(self, report):
        with report.step("0 transport") as s:
            if self.args.base_url.startswith("https:"):
                s.detail = "HTTPS, TLS at most 1.2 as XenCenter offers (TLS 1.3-only servers refuse it)"
            else:
                s.detail = "plain HTTP (XenCenter uses https on 443 unless the port is 80 or 8080)"
        if self.args.client == "jsonrpc":
            self.jsonrpc_v1(report)

    def jsonrpc_v1(self, report):
        with report.step("0a JSON-RPC 1.0 login (the current public C# SDK starts in 1.0)", fatal=False,
                         effect="the current XenServer SDK for .NET cannot log in") as s:
            url = endpoint(self.args.base_url, "/jsonrpc")
            v1 = JsonRpcClient(self.args, url, max_tls12=True, ids="count", version=1, user_agent=USER_AGENT)
            session = v1.login(self.args.user, self.args.password, "2.21", USER_AGENT)
            s.require(ref_shaped(session), f"login answered {session!r}")
            v1.logout()
            s.detail = "{result, error: null, id}"

    def login(self, report):
        with report.step("1 session.login_with_password(user, password, \"2.21\", originator)", effect=RETRY_FOREVER) as s:
            attempts = [[self.args.user, self.args.password, "2.21", USER_AGENT],
                        [self.args.user, self.args.password, "2.21"], [self.args.user, self.args.password]]
            for arguments in attempts:
                try:
                    session = self.client.login(*arguments)
                    break
                except Failure as failure:
                    if failure.code == "SESSION_AUTHENTICATION_FAILED":
                        raise CheckFailed("SESSION_AUTHENTICATION_FAILED", "XenCenter asks for the password again")
                    if failure.code != "MESSAGE_PARAMETER_COUNT_MISMATCH" or arguments is attempts[-1]:
                        raise
                    s.warn(f"{len(arguments)} arguments refused with MESSAGE_PARAMETER_COUNT_MISMATCH; XenCenter retries with fewer")
            s.require(ref_shaped(session), f"the session is {session!r}, not an OpaqueRef",
                      "XenConverter makes a null session ref and every call fails")
            s.detail = f"{len(arguments)} arguments, {session[:20]}..."

    def pool_records(self, report):
        with report.step("2 pool.get_all_records", effect=RETRY_FOREVER) as s:
            pools = self.client.call("pool.get_all_records")
            s.require(isinstance(pools, dict) and len(pools) >= 1, f"no pool in {pools!r}: APIVersion stays UNKNOWN")
            self.pool, record = next(iter(pools.items()))
            self.master = record.get("master")
            s.require(ref_shaped(self.master), f"pool.master is {self.master!r}, not a host reference",
                      "XenCenter calls host.get_record with it, gets HANDLE_INVALID and " + RETRY_FOREVER)
            self.check_record(s, "pool", record)
            s.detail = f"{len(pools)} pool, master {self.master}"

    def master_record(self, report):
        with report.step("3 host.get_record(master): API version", effect=RETRY_FOREVER) as s:
            host = self.client.call("host.get_record", self.master)
            major, minor = host.get("API_version_major"), host.get("API_version_minor")
            if not self.xml:
                s.require(all(isinstance(v, int) and not isinstance(v, bool) for v in (major, minor)),
                          f"API_version_major/minor {major!r}/{minor!r} are not JSON integers",
                          "XenCenter's deserialiser throws, 3 attempts, then the connection fails")
            version = (int(major), int(minor))
            s.require(version >= (2, 6), f"API version {version} is below 2.6",
                      "ServerNotSupported: 'needs 7.1 CU2 / 8.0 or later'")
            s.require(version != (2, 7), "API version 2.7", "XenCenter's duplicate sessions get no JSON-RPC client and fail")
            self.check_record(s, "host", host)
            s.detail = f"API {major}.{minor}"

    def ad_details(self, report):
        with report.step("4 session.get_is_local_superuser", effect=RETRY_FOREVER) as s:
            superuser = self.client.call("session.get_is_local_superuser", self.client.session)
            s.require(isinstance(superuser, bool), f"answered {superuser!r}, not a boolean")
            s.detail = f"{superuser}" + (" (root: no AD lookups)" if superuser else "")
        if not superuser:
            with report.step("4a session.get_subject, get_auth_user_sid", effect=RETRY_FOREVER) as s:
                subject = self.client.call("session.get_subject", self.client.session)
                sid = self.client.call("session.get_auth_user_sid", self.client.session)
                s.detail = f"{subject} {sid}"

    def rbac(self, report):
        with report.step("5 session.get_rbac_permissions", effect=RETRY_FOREVER) as s:
            permissions = self.client.call("session.get_rbac_permissions", self.client.session)
            s.require(isinstance(permissions, list) and all(isinstance(p, str) for p in permissions),
                      f"answered {permissions!r}, not an array of strings")
            s.detail = f"{len(permissions)} permissions"
        with report.step("6 role.get_all_records", effect=RETRY_FOREVER) as s:
            roles = self.client.call("role.get_all_records")
            s.require(isinstance(roles, dict), f"answered {type(roles).__name__}, not a map of ref to record")
            for record in roles.values():
                self.check_record(s, "role", record)
            names = {r.get("name_label") for r in roles.values()}
            top = ["pool-admin", "pool-operator", "vm-power-admin", "vm-admin", "vm-operator", "read-only"]
            if any(t not in names for t in top):
                s.warn(f"XenServer's six roles are not all there ({', '.join(t for t in top if t not in names)} missing): "
                       "non-root users get no permissions")
            s.detail = f"{len(roles)} roles"
        with report.step("7 role.get_all_records (cache fill)", effect="the connection fails (no retry here)") as s:
            self.client.call("role.get_all_records")

    def first_events(self, report):
        name = "8 event.from([\"*\"], \"\", 30.0) on a duplicate session"
        effect = "the first batch fails to load; XenCenter ends the connection"
        with report.step(name, effect=effect) as s:
            events_session = self.client.duplicate()
            started = time.monotonic()
            batch = events_session.call("event.from", ["*"], "", 30.0)
            elapsed = time.monotonic() - started
            problems, notes = check_batch(batch, self.dm, self.xml, full_snapshots=True)
            s.require(not problems, "; ".join(problems[:3]))
            s.require(elapsed < 10, f"answered after {elapsed:.0f} s: the first call with token \"\" must answer at once")
            self.events, self.token = batch["events"], batch["token"]
            pools = [e for e in self.events if e["class"].lower() == "pool" and e["operation"] == "add"]
            s.require(pools, "no add event for the pool in the first batch",
                      "ObjectChange.GetPool finds no pool: NullReferenceException, 'unknown error', the connection fails")
            masters = [e for e in self.events if e["class"].lower() == "host" and e["ref"] == pools[0]["snapshot"].get("master")]
            s.require(masters, "no add event for the pool's master host in the first batch",
                      "GetCoordinator finds no host: NullReferenceException, the connection fails")
            address = masters[0]["snapshot"].get("address")
            s.require(isinstance(address, str) and address != "", f"the master's address is {address!r}",
                      "CoordinatorIPAddress is empty: duplicate detection, consoles, RRDs and HA reconnects break")
            for note in notes[:3]:
                s.warn(note)
            s.detail = f"{len(self.events)} events, master address {address}"

    def server_time(self, report, name, client=None):
        with report.step(name, effect="the clock offset is absurd (unparsable time) or the heartbeat drops the connection") as s:
            value = (client or self.client).call("host.get_servertime", self.master)
            text = value.value if hasattr(value, "value") else value
            s.require(isinstance(text, str) and DATETIME.match(text), f"answered {value!r}, not yyyyMMddTHH:mm:ssZ")
            server = datetime.strptime(text, "%Y%m%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            offset = (server - datetime.now(timezone.utc)).total_seconds()
            if abs(offset) > 60:
                s.warn(f"the server's clock is {offset:.0f} s off this machine's")
            s.detail = text

    def cache_populated(self, report):
        hosts = {e["ref"]: e["snapshot"] for e in self.events if e["class"].lower() == "host" and e["operation"] != "del"}
        master = hosts[self.master].get("software_version") or {}
        with report.step("10a software_version.product_brand", effect="INCOMPATIBLE_PRODUCTS: XenCenter ends the connection") as s:
            brand = master.get("product_brand")
            s.require(brand in BRANDS, f"product_brand {brand!r} is neither of {' nor '.join(BRANDS)}")
            s.detail = brand
        with report.step("10b platform_version of every host but the master >= 2.9.50",
                         effect="SUPPORTER_TOO_OLD: XenCenter ends the connection") as s:
            for ref, host in hosts.items():
                version = host.get("software_version", {}).get("platform_version")
                if ref != self.master:
                    s.require(version and version_tuple(version) >= NAPLES,
                              f"{host.get('name_label')}'s platform_version is {version!r}")
            s.detail = ", ".join(f"{h.get('name_label')} {h.get('software_version', {}).get('platform_version')}" for h in hosts.values())
        self.xencenter_min_max(report, master)

    def xencenter_min_max(self, report, software_version):
        with report.step("10c xencenter_min/xencenter_max, task.get_all_records") as s:
            low, high = software_version.get("xencenter_min"), software_version.get("xencenter_max")
            if not low or not high:
                s.warn("xencenter_min/xencenter_max missing: XenCenter skips its version checks and never loads the "
                       "pool's tasks (task.get_all_records)")
                s.detail = "skipped by XenCenter"
                return
            low_v, high_v = api_version(low), api_version(high)
            s.require(low_v is not None and low_v <= API_LATEST, f"xencenter_min {low!r} is above {API_LATEST}",
                      "GUI_OUT_OF_DATE: XenCenter ends the connection")
            if low_v > API_ARCHIVED:
                s.warn(f"xencenter_min {low} refuses the archived open-source XenCenter (2.20); current ones connect")
            platform = software_version.get("platform_version")
            s.require(platform and version_tuple(platform) >= NAPLES, f"the master's platform_version is {platform!r}",
                      "GUI_NOT_COMPATIBLE: XenCenter ends the connection")
            if high_v is None or high_v > API_LATEST:
                s.warn(f"xencenter_max {high!r} above {API_LATEST}: XenCenter shows a 'newer XenCenter' alert")
            tasks = self.client.call("task.get_all_records")
            s.require(isinstance(tasks, dict), "task.get_all_records is not a map")
            s.detail = f"min {low}, max {high}; {len(tasks)} tasks"

    def event_loop_with_heartbeat(self, report):
        """12: event.from with the token, blocking; meanwhile 11: the heartbeat on another copy of the session (the
        second heartbeat after step 9's; XenCenter sends one every 15 s)."""
        beats = []

        def heartbeat():
            started = time.monotonic()
            try:
                beats.append((self.client.duplicate().call("host.get_servertime", self.master), time.monotonic() - started))
            except Exception as error:  # reported by step 11
                beats.append((error, time.monotonic() - started))

        thread = threading.Thread(target=heartbeat, daemon=True)
        thread.start()
        self.next_events(report)
        thread.join(timeout=25)
        with report.step("11 heartbeat: host.get_servertime on a copy of the session, during event.from",
                         effect="two failed heartbeats in a row drop the connection") as s:
            s.require(beats, "no answer within 25 s (XenCenter's timeout is 20 s)")
            value, seconds = beats[0]
            s.require(not isinstance(value, Exception), f"the heartbeat failed: {value!r}")
            s.require(seconds < 20, f"the heartbeat took {seconds:.0f} s (XenCenter's timeout is 20 s)")
            s.detail = f"{seconds:.2f} s"

    def next_events(self, report):
        name = "12 event.from([\"*\"], token, 30.0): the event loop"
        with report.step(name, effect="XenCenter drops the connection and reconnects after 120 s") as s:
            copy = self.client.duplicate()
            started = time.monotonic()
            batch = copy.call("event.from", ["*"], self.token, 30.0)
            elapsed = time.monotonic() - started
            s.require(elapsed < 120, f"answered after {elapsed:.0f} s (XenCenter's timeout is 120 s)")
            problems, _ = check_batch(batch, self.dm, self.xml, full_snapshots=True)
            s.require(not problems, "; ".join(problems[:3]))
            if not batch["events"] and elapsed < 25:
                s.warn(f"an empty batch after {elapsed:.1f} s: xapi waits for an event or the 30 s timeout")
            s.detail = f"{len(batch['events'])} events after {elapsed:.1f} s"

    def check_record(self, step, cls, record):
        problems, missing = self.dm.check_record(cls, record, self.xml)
        step.require(not problems, "; ".join(problems[:3]))
        if missing:
            step.warn(f"{cls} record lacks {len(missing)} fields ({', '.join(missing[:5])}): XenCenter keeps its defaults")


def main():
    args = parse_args("XenCenter's connect sequence, checked as XenCenter checks it.")
    connect = XenCenterConnect(args)
    report = Report("connect_xencenter", args.client, "XenCenter connect sequence", args.base_url, args.keep_going)
    run_script(report, connect.run, connect.client.logout, args.record)


if __name__ == "__main__":
    main()
