#!/usr/bin/python3
"""Xen Orchestra's connect sequence, replayed call by call and checked as Xen Orchestra's client checks each answer.

Source: vatesfr/xen-orchestra: packages/xen-api (connect, _sessionOpen, _watchEvents, transports/json-rpc.mjs and
xml-rpc.mjs), xo-server's XenServers._connectXenServer and markPool, xapi-object-to-xo.mjs. Xen Orchestra tries
JSON-RPC on <base>/jsonrpc first and falls back to XML-RPC on <base>/xmlrpc; run with --client jsonrpc for the first,
xmlrpc or xenapi for the second. One line per step; the first failure ends the run, naming what broke and what Xen
Orchestra then does.

    /usr/bin/python3 test/conformance/connect_xo.py http://10.78.0.11 --client jsonrpc
"""

import json
import time
import uuid

from clients import Failure, make_client
from events import check_batch, ref_shaped
from records import Datamodel
from report import CheckFailed, Report, parse_args, run_script

APPLIANCE = str(uuid.uuid4())
CLIENT_INFO_KEY = f"xo:clientInfo:{APPLIANCE}"
NEEDED_CLASSES = ("pool", "host", "VM", "task")  # the pool view and callAsync need these


class XoConnect:
    def __init__(self, args):
        self.args = args
        self.dm = Datamodel()
        self.client = make_client(args.client, args, xml_path="/xmlrpc", ids="zero", user_agent="xo-server")
        self.xml = args.client != "jsonrpc"
        self.pool = self.token = None
        self.classes, self.records, self.platforms = [], {}, {}
        self.marked = False

    def run(self, report):
        self.login(report)
        self.pool_records(report)
        self.host_records(report)
        self.list_methods(report)
        self.mark_pool(report)
        self.inject(report)
        self.fetch_all(report)
        self.first_events(report)
        self.platforms_with_cores(report)

    def login(self, report):
        endpoint = "/jsonrpc" if not self.xml else "/xmlrpc"
        with report.step(f"1 session.login_with_password(user, password) on {endpoint}",
                         effect="xo-server stores the error and retries the connection later") as s:
            try:
                session = self.client.login(self.args.user, self.args.password)
            except Failure as failure:
                if failure.code == "SESSION_AUTHENTICATION_FAILED":
                    raise CheckFailed("SESSION_AUTHENTICATION_FAILED", "fatal: xo-server does not reconnect") from failure
                raise
            s.require(ref_shaped(session), f"the session is {session!r}, not an OpaqueRef")
            s.detail = "2 arguments"

    def pool_records(self, report):
        with report.step("2 pool.get_all_records", effect="the connection fails") as s:
            pools = self.client.call("pool.get_all_records")
            s.require(isinstance(pools, dict) and pools, f"no pool in {pools!r}")
            self.pool = next(iter(pools))
            record = pools[self.pool]
            s.require(ref_shaped(record.get("master")), f"pool.master is {record.get('master')!r}",
                      "XO builds no $master link and cannot show the pool")
            for field, kind in (("other_config", dict), ("restrictions", dict), ("ha_statefiles", list)):
                s.require(isinstance(record.get(field), kind), f"pool.{field} is {record.get(field)!r}, not a {kind.__name__}",
                          "XO's pool transform throws and the pool is not shown")
            self.check_record(s, "pool", record)
            s.detail = f"pool {self.pool}"

    def host_records(self, report):
        with report.step("3 host.get_all_records (best effort: the failover candidates)") as s:
            try:
                hosts = self.client.call("host.get_all_records")
                addresses = [h.get("address") for h in hosts.values()]
                if not all(addresses):
                    s.warn("a host without an address: XO cannot fail over to it")
                s.detail = ", ".join(str(a) for a in addresses)
            except Failure as failure:
                s.warn(f"XenAPI error {' '.join(failure.description)}: XO ignores it but has no failover candidates")

    def list_methods(self, report):
        with report.step("4 system.listMethods() -> the classes to watch",
                         effect="XO's connect() fails: it has no classes to watch") as s:
            methods = self.client.call_raw("system.listMethods")
            s.require(isinstance(methods, list) and all(isinstance(m, str) for m in methods),
                      f"answered {type(methods).__name__}, not an array of method names (xapi sends it unwrapped)")
            self.classes = sorted({m.split(".")[0] for m in methods if m.endswith(".get_all_records")})
            missing = [c for c in NEEDED_CLASSES if c not in self.classes]
            s.require(not missing, f"no get_all_records listed for {', '.join(missing)}: XO never fetches them")
            unlisted = [c for c in self.dm.live_classes() if c not in self.classes and self.dm.has_message(c, "get_all_records")]
            if unlisted:
                s.warn(f"{len(unlisted)} classes of the datamodel not listed ({', '.join(unlisted[:6])}...): XO never reads them")
            s.detail = f"{len(methods)} methods, {len(self.classes)} classes"

    def mark_pool(self, report):
        with report.step("5 pool.remove_from_other_config / add_to_other_config (xo:clientInfo)",
                         effect="xo-server logs the error; markPool runs again every 6 h") as s:
            info = json.dumps({"lastConnected": int(time.time() * 1000), "networkInterfaces": {}})
            for attempt in range(2):
                self.client.call("pool.remove_from_other_config", self.pool, CLIENT_INFO_KEY)
                try:
                    self.client.call("pool.add_to_other_config", self.pool, CLIENT_INFO_KEY, info)
                    break
                except Failure as failure:
                    if failure.code != "MAP_DUPLICATE_KEY" or attempt == 1:
                        raise
            self.marked = True
            other_config = self.client.call("pool.get_other_config", self.pool)
            s.require(other_config.get(CLIENT_INFO_KEY) == info, "the key written is not in pool.other_config")
            s.detail = CLIENT_INFO_KEY

    def inject(self, report):
        with report.step("6 event.inject(\"pool\", pool) -> token") as s:
            try:
                self.token = self.client.call("event.inject", "pool", self.pool)
            except Failure as failure:
                if failure.code == "MESSAGE_METHOD_UNKNOWN":
                    raise CheckFailed("MESSAGE_METHOD_UNKNOWN", "XO falls back to the legacy event.register/next loop") from failure
                raise CheckFailed(f"XenAPI error {' '.join(failure.description)}", "XO waits 60 s and tries again, forever") from failure
            s.require(isinstance(self.token, str) and self.token, f"the token is {self.token!r}")
            s.detail = self.token

    def fetch_all(self, report):
        with report.step("7 <class>.get_all_records for every listed class", effect="XO shows none of those classes' objects") as s:
            removed, failed, objects, missing_notes = [], [], 0, []
            for cls in self.classes:
                try:
                    records = self.client.call(f"{cls}.get_all_records")
                except Failure as failure:
                    (removed if failure.code == "MESSAGE_REMOVED" else failed).append(f"{cls} ({failure.code})")
                    continue
                s.require(isinstance(records, dict), f"{cls}.get_all_records answered {type(records).__name__}, not a map")
                objects += len(records)
                self.records[cls] = records
                missing_notes += self.check_class_records(s, cls, records)
            s.require(not failed, f"get_all_records failed for {len(failed)} classes: {', '.join(failed)}")
            for note in missing_notes[:5]:
                s.warn(note)
            if removed:
                s.warn(f"MESSAGE_REMOVED (ignored by XO) for {', '.join(removed)}")
            s.detail = f"{len(self.records)} classes, {objects} objects"

    def check_class_records(self, step, cls, records):
        known = self.dm.real_name(cls)
        fields = None
        notes = []
        for ref, record in records.items():
            step.require(ref_shaped(ref), f"{cls}: key {ref!r} is not an OpaqueRef")
            if fields is None:
                fields = set(record)
            step.require(set(record) == fields, f"{cls} records do not share one field set: XO fixes a class's fields "
                                                f"from its first record and drops or loses the others")
            if known:
                problems, missing = self.dm.check_record(known, record, self.xml)
                step.require(not problems, "; ".join(problems[:3]))
                if missing:
                    notes.append(f"{cls} records lack {len(missing)} fields ({', '.join(missing[:5])}): XO reads undefined")
        return notes[:1]

    def first_events(self, report):
        with report.step("8 event.from(<every listed class>, token, 60.1)", effect="XO's event loop dies silently or retries every 60 s") as s:
            started = time.monotonic()
            batch = self.client.call("event.from", self.classes, self.token, 60.1)
            elapsed = time.monotonic() - started
            problems, notes = check_batch(batch, self.dm, self.xml, full_snapshots=False)
            s.require(not problems, "; ".join(problems[:3]))
            lower = {c.lower(): c for c in self.classes}
            strays = sorted({e["class"] for e in batch["events"] if e["class"].lower() not in lower})
            s.require(not strays, f"events of classes XO does not watch: {', '.join(strays)}")
            for event in batch["events"]:
                records = self.records.get(lower[event["class"].lower()], {})
                if event["operation"] != "del" and records:
                    fields = set(next(iter(records.values())))
                    s.require(set(event["snapshot"]) == fields,
                              f"the {event['class']} snapshot's fields differ from its get_all_records record's: XO fixed "
                              "the class's fields from the first record and drops or loses the others")
            counts = {k.lower(): v for k, v in batch["valid_ref_counts"].items()}
            s.require("task" in counts, "valid_ref_counts has no 'task' (XO compares it with its task count)")
            if int(counts["task"]) != len(self.records.get("task", {})):
                s.warn(f"valid_ref_counts.task {counts['task']} != {len(self.records.get('task', {}))} tasks fetched: XO re-fetches tasks")
            if elapsed > 30:
                s.warn(f"answered after {elapsed:.0f} s: event.inject made no event, so XO's first batch waits the full 60 s")
            for note in notes[:3]:
                s.warn(note)
            s.detail = f"{len(batch['events'])} events after {elapsed:.1f} s"

    def platforms_with_cores(self, report):
        with report.step("9 VM.get_platform / VM.set_platform (cores-per-socket) for VMs without it",
                         effect="xo-server logs the failure (the VM's topology stays unknown to XO)") as s:
            vms = [(ref, r) for ref, r in self.records.get("VM", {}).items() if "cores-per-socket" not in r.get("platform", {})]
            for ref, record in vms:
                platform = self.client.call("VM.get_platform", ref)
                s.require(isinstance(platform, dict), f"VM.get_platform answered {type(platform).__name__}")
                self.platforms[ref] = platform
                cores = str(record.get("VCPUs_max", 1))
                self.client.call("VM.set_platform", ref, {**platform, "cores-per-socket": cores})
                written = self.client.call("VM.get_platform", ref)
                s.require(written.get("cores-per-socket") == cores, f"VM.set_platform did not store cores-per-socket on {ref}")
            s.detail = f"{len(vms)} VMs"

    def cleanup(self):
        """Leaves the pool as it was: XO's key out of pool.other_config, the VMs' platforms as they were."""
        try:
            if self.marked:
                self.client.call("pool.remove_from_other_config", self.pool, CLIENT_INFO_KEY)
            for ref, platform in self.platforms.items():
                self.client.call("VM.set_platform", ref, platform)
        finally:
            self.client.logout()

    def check_record(self, step, cls, record):
        problems, missing = self.dm.check_record(cls, record, self.xml)
        step.require(not problems, "; ".join(problems[:3]))
        if missing:
            step.warn(f"{cls} record lacks {len(missing)} fields ({', '.join(missing[:5])}): XO reads undefined")


def main():
    args = parse_args("Xen Orchestra's connect sequence, checked as Xen Orchestra checks it.")
    connect = XoConnect(args)
    report = Report("connect_xo", args.client, "Xen Orchestra connect sequence", args.base_url, args.keep_going)
    run_script(report, connect.run, connect.cleanup, args.record)


if __name__ == "__main__":
    main()
