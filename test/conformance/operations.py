#!/usr/bin/python3
"""What a XenServer shop does with the pool, through one client: list hosts and VMs, a VM's lifecycle, live migration,
maintenance mode and HA, with Async.* tasks followed as Xen Orchestra follows them (event.from on 'task') and as
XenCenter does (task.get_record polled). It expects the lab's pool: the test VM running, every host enabled, HA off,
a shared SR; it leaves the pool so (the VMs back on their hosts), also after a failure.

    /usr/bin/python3 test/conformance/operations.py http://10.78.0.11 --client xenapi
"""

import subprocess
import time

from clients import Failure, make_client
from events import ref_shaped, xencenter_async, xo_async
from records import NULL_REF, Datamodel
from report import Report, parse_args, run_script


def extra_arguments(parser):
    parser.add_argument("--vm", default="Corral test VM", help="the running VM to shut down, start and migrate")
    parser.add_argument("--sr", default="Shared storage", help="the shared SR the VMs' disks are on")
    parser.add_argument("--ping", action="store_true",
                        help="also ping the VM's guest (at its xenstore_data vm-data/ip, as the lab sets it) after it "
                             "starts and after it moves: a live migration must not kill the guest")


class Operations:
    def __init__(self, args):
        self.args = args
        self.dm = Datamodel()
        self.client = make_client(args.client, args)
        self.hosts, self.homes = {}, {}
        self.vm = self.sr = self.pool = None

    def run(self, report):
        self.login_and_list(report)
        self.lifecycle(report)
        self.migration(report)
        self.maintenance(report)
        self.high_availability(report)
        self.restore(report)

    # ---- what is there ----

    def login_and_list(self, report):
        with report.step("session.login_with_password(user, password)") as s:
            s.detail = self.client.login(self.args.user, self.args.password)[:20] + "..."
        with report.step("host.get_all_records: hosts enabled and live", effect="the pool is not in the lab's starting state") as s:
            self.hosts = self.client.call("host.get_all_records")
            for ref, host in self.hosts.items():
                live = self.client.call("host_metrics.get_live", host["metrics"])
                s.require(host["enabled"] and live, f"{host['name_label']} is enabled={host['enabled']} live={live}")
                self.check_record(s, "host", host)
            s.detail = ", ".join(sorted(h["name_label"] for h in self.hosts.values()))
        with report.step("PIF.get_all_records: each host's network cards, the management one on the host's address",
                         effect="a client cannot show a host's network cards or find its management interface") as s:
            pifs = self.client.call("PIF.get_all_records")
            for ref, host in self.hosts.items():
                mine = [p for p in pifs.values() if p["host"] == ref]
                for pif in mine:
                    self.check_record(s, "PIF", pif)
                management = [p for p in mine if p["management"]]
                s.require(len(management) == 1, f"{host['name_label']} has {len(management)} management PIFs among {len(mine)}")
                if management:
                    pif = management[0]
                    s.require(pif["IP"] == host["address"] and pif["currently_attached"],
                              f"{host['name_label']}'s management PIF {pif['device']} has IP {pif['IP']!r}, not {host['address']}")
                    self.check_record(s, "PIF_metrics", self.client.call("PIF_metrics.get_record", pif["metrics"]))
                    network = self.client.call("network.get_record", pif["network"])
                    s.require(network["bridge"] != "", f"the management network {network['name_label']} has no bridge")
            s.detail = f"{len(pifs)} PIFs on {len(self.hosts)} hosts"
        with report.step("VM.get_all_records: the VMs and where they run", effect="the pool is not in the lab's starting state") as s:
            vms = self.client.call("VM.get_all_records")
            mine = {ref: r for ref, r in vms.items() if not r["is_a_template"] and not r["is_control_domain"] and not r["is_a_snapshot"]}
            for ref, record in mine.items():
                self.check_record(s, "VM", record)
                if record["power_state"] == "Running":
                    self.homes[ref] = record["resident_on"]
            named = [ref for ref, r in mine.items() if r["name_label"] == self.args.vm]
            s.require(len(named) == 1, f"{len(named)} VMs named {self.args.vm!r}")
            self.vm = named[0]
            s.require(mine[self.vm]["power_state"] == "Running", f"{self.args.vm!r} is {mine[self.vm]['power_state']}")
            s.detail = "; ".join(f"{r['name_label']} {r['power_state']} on {self.host_name(r['resident_on'])}" for r in mine.values())
        # A guest still booting (just started by the lab, or by a previous run's cleanup) has no agent to shut it down.
        self.guest_answers(report, "the guest is up before the operations", 120)
        self.shared_sr(report)

    def shared_sr(self, report):
        with report.step(f"SR.get_by_name_label({self.args.sr!r}): shared, plugged on every host") as s:
            srs = self.client.call("SR.get_by_name_label", self.args.sr)
            s.require(len(srs) == 1, f"{len(srs)} SRs named {self.args.sr!r}")
            self.sr = srs[0]
            record = self.client.call("SR.get_record", self.sr)
            self.check_record(s, "SR", record)
            s.require(record["shared"], "the SR is not shared")
            plugged = {self.client.call("PBD.get_host", p) for p in record["PBDs"] if self.client.call("PBD.get_currently_attached", p)}
            s.require(plugged == set(self.hosts), f"plugged on {len(plugged)} of {len(self.hosts)} hosts")
            s.detail = f"{record['type']}, {len(record['VDIs'])} VDIs"

    # ---- operations ----

    def lifecycle(self, report):
        self.offered(report, "VM", self.vm, "clean_shutdown", "XenCenter greys out Shut down; XO Lite too")
        with report.step("Async.VM.clean_shutdown, followed through event.from on 'task' (Xen Orchestra)") as s:
            record, result = xo_async(self.client, self.dm, "VM.clean_shutdown", self.vm)
            self.expect_power(s, "Halted")
            s.require(self.client.call("VM.get_resident_on", self.vm) == NULL_REF, "a halted VM must reside on OpaqueRef:NULL")
            s.detail = f"task {record['status']}, result {result!r}"
        self.offered(report, "VM", self.vm, "start", "XenCenter greys out Start; XO Lite too")
        with report.step("Async.VM.start(vm, false, false), task.get_record polled (XenCenter)") as s:
            record, result = xencenter_async(self.client, self.dm, "VM.start", self.vm, False, False, applies_to=[self.vm])
            self.expect_power(s, "Running")
            s.detail = f"task {record['status']}, result {result!r}, on {self.host_name(self.client.call('VM.get_resident_on', self.vm))}"
        self.guest_answers(report, "the guest boots and answers ping", 120)

    def migration(self, report):
        self.offered(report, "VM", self.vm, "pool_migrate", "XenCenter greys out Migrate; XO Lite too")
        source = self.client.call("VM.get_resident_on", self.vm)
        target = sorted((h for h in self.hosts if h != source), key=self.host_name)[0]
        with report.step(f"Async.VM.pool_migrate to {self.host_name(target)}, options {{force: false}} (Xen Orchestra)") as s:
            record, _ = xo_async(self.client, self.dm, "VM.pool_migrate", self.vm, target, {"force": "false"})
            self.expect_on(s, self.vm, target)
            s.detail = f"task {record['status']}"
        with report.step(f"Async.VM.pool_migrate back to {self.host_name(source)}, options {{live: true}} (XenCenter)") as s:
            record, _ = xencenter_async(self.client, self.dm, "VM.pool_migrate", self.vm, source, {"live": "true"}, applies_to=[self.vm])
            self.expect_on(s, self.vm, source)
            s.detail = f"task {record['status']}"
        self.guest_answers(report, "the guest still answers ping after two live migrations", 10)

    def maintenance(self, report):
        host = self.client.call("VM.get_resident_on", self.vm)
        name = self.host_name(host)
        with report.step(f"host.disable({name})") as s:
            self.client.call("host.disable", host)
            s.require(self.client.call("host.get_enabled", host) is False, "host.enabled is still true")
        with report.step(f"Async.host.evacuate({name}, OpaqueRef:NULL, 3), trailing parameters dropped on "
                         "MESSAGE_PARAMETER_COUNT_MISMATCH (Xen Orchestra)", effect="XO enables the host again and reports the error") as s:
            arguments = self.evacuate(host)
            resident = [r["name_label"] for r in self.client.call("VM.get_all_records").values()
                        if r["resident_on"] == host and not r["is_control_domain"]]
            s.require(not resident, f"still on {name}: {', '.join(resident)}")
            s.detail = f"accepted with {len(arguments)} arguments; the VMs now on " + \
                ", ".join(sorted({self.host_name(self.client.call("VM.get_resident_on", v)) for v in self.homes}))
        with report.step(f"host.enable({name})") as s:
            self.client.call("host.enable", host)
            s.require(self.client.call("host.get_enabled", host) is True, "host.enabled is still false")

    def evacuate(self, host):
        arguments = [host, NULL_REF, 3]
        while True:
            try:
                xo_async(self.client, self.dm, "host.evacuate", *arguments)
                return arguments
            except Failure as failure:
                if failure.code != "MESSAGE_PARAMETER_COUNT_MISMATCH" or len(arguments) == 1:
                    raise
                arguments = arguments[:-1]
                while len(arguments) > 1 and arguments[-1] == NULL_REF:
                    arguments = arguments[:-1]

    def heartbeat_sr(self, report):
        """The SR for HA's statefile as XenCenter's HA wizard offers them: the shared SRs SR.assert_can_host_ha_statefile
        accepts (an SR reached only in userspace, such as the shared lab's NFS SR, is refused; the pool's template
        library, a shared directory, is accepted)."""
        with report.step("SR.assert_can_host_ha_statefile over the shared SRs (XenCenter's HA wizard)") as s:
            accepted, refused = [], []
            for ref, record in self.client.call("SR.get_all_records").items():
                if not record["shared"] or record["content_type"] == "iso":
                    continue
                try:
                    self.client.call("SR.assert_can_host_ha_statefile", ref)
                    accepted.append((ref, record["name_label"]))
                except Failure as failure:
                    refused.append(f"{record['name_label']} ({record['type']}): {failure.code}")
            s.require(accepted, f"no shared SR can hold HA's statefile; refused: {'; '.join(refused)}")
            s.detail = f"offered {', '.join(name for _, name in accepted)}" + (f"; refused {'; '.join(refused)}" if refused else "")
            # The VMs' SR when it can hold it (as the lab's HA runs), else the first offered by name.
            return next((a for a in accepted if a[0] == self.sr), min(accepted, key=lambda a: a[1]))

    def high_availability(self, report):
        self.pool = next(iter(self.client.call("pool.get_all")))
        chosen = self.heartbeat_sr(report)
        if chosen is None:
            return
        heartbeat, name = chosen
        with report.step(f"pool.enable_ha([{name}], {{}})") as s:
            self.client.call("pool.enable_ha", [heartbeat], {})
            record = self.client.call("pool.get_record", self.pool)
            s.require(record["ha_enabled"] is True, "pool.ha_enabled is not true")
            s.require(record["ha_statefiles"] and all(ref_shaped(v) for v in record["ha_statefiles"]),
                      f"pool.ha_statefiles is {record['ha_statefiles']!r}: XO and XenCenter show the statefile VDIs from it")
            s.detail = f"statefiles {record['ha_statefiles']}"
        with report.step("pool.disable_ha()") as s:
            self.client.call("pool.disable_ha")
            s.require(self.client.call("pool.get_ha_enabled", self.pool) is False, "pool.ha_enabled is still true")

    def restore(self, report):
        with report.step("VM.pool_migrate each VM back to its host: the pool as it was") as s:
            moved = self.return_vms()
            s.detail = f"{moved} VMs moved back" if moved else "nothing to move"
        self.guest_answers(report, "the guest still answers ping after the evacuation and the way back", 10)

    # ---- helpers ----

    def offered(self, report, cls, ref, operation, effect):
        """allowed_operations offers the operation: XenCenter (and XO Lite) enable the action only then; XO's own UI
        and the SDK do not look, so the operation itself is still tried."""
        with report.step(f"{cls}.allowed_operations offers {operation}", effect=effect, fatal=False) as s:
            allowed = self.client.call(f"{cls}.get_allowed_operations", ref)
            s.require(operation in allowed, f"allowed_operations is {allowed!r}")

    def guest_answers(self, report, name, seconds):
        if not self.args.ping:
            return
        with report.step(name, effect="the VM runs but its guest is gone") as s:
            address = self.client.call("VM.get_xenstore_data", self.vm).get("vm-data/ip", "").split("/")[0]
            s.require(address, "the VM has no xenstore_data vm-data/ip to ping")
            started = time.monotonic()
            while subprocess.run(["ping", "-c", "1", "-W", "1", address], stdout=subprocess.DEVNULL, check=False).returncode != 0:
                s.require(time.monotonic() - started < seconds, f"{address} does not answer ping within {seconds} s")
            s.detail = f"{address} after {time.monotonic() - started:.1f} s"

    def expect_power(self, step, state):
        power = self.client.call("VM.get_power_state", self.vm)
        step.require(power == state, f"power_state is {power}, not {state}")

    def expect_on(self, step, vm, host):
        where = self.client.call("VM.get_resident_on", vm)
        step.require(where == host, f"resident_on is {self.host_name(where)}, not {self.host_name(host)}")
        self.expect_power(step, "Running")

    def host_name(self, ref):
        return self.hosts.get(ref, {}).get("name_label", ref)

    def check_record(self, step, cls, record):
        problems, missing = self.dm.check_record(cls, record, self.client.kind != "jsonrpc")
        step.require(not problems, "; ".join(problems[:3]))
        if missing:
            step.warn(f"{cls} record lacks {len(missing)} fields ({', '.join(missing[:5])})")

    def return_vms(self):
        moved = 0
        for vm, home in self.homes.items():
            power = self.client.call("VM.get_power_state", vm)
            if power == "Halted":
                self.client.call("VM.start_on", vm, home, False, False)
                moved += 1
            elif self.client.call("VM.get_resident_on", vm) != home:
                self.client.call("VM.pool_migrate", vm, home, {"live": "true"})
                moved += 1
        return moved

    def cleanup(self):
        """After a failure too: HA off, every host enabled, the VMs running where they ran."""
        if self.client.session is None:
            return
        try:
            for pool in self.client.call("pool.get_all"):
                if self.client.call("pool.get_ha_enabled", pool):
                    print("note  cleanup: pool.disable_ha")
                    self.client.call("pool.disable_ha")
            for host in self.hosts:
                if not self.client.call("host.get_enabled", host):
                    print(f"note  cleanup: host.enable({self.host_name(host)})")
                    self.client.call("host.enable", host)
            if self.return_vms():
                print("note  cleanup: VMs returned to their hosts")
        finally:
            self.client.logout()


def main():
    args = parse_args("Operations through one client: lifecycle, migration, maintenance mode, HA.", extra_arguments)
    operations = Operations(args)
    report = Report("operations", args.client, "Operations", args.base_url, args.keep_going)
    run_script(report, operations.run, operations.cleanup, args.record)


if __name__ == "__main__":
    main()
