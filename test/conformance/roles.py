#!/usr/bin/python3
"""Roles (xapi's RBAC) through a pool's external directory, as a XenServer pool joined to Active Directory enforces them:
the directory's users log in with their own passwords and may do what their subjects' roles allow, nothing else.
Checked through each client as the client sees it: the session's fields, RBAC_PERMISSION_DENIED with xapi's two
parameters before any work (no task for an Async call), a guarded map key's own permission.

Needs a pool whose directory knows a read-only user and a vm-operator (the lab's: rory and olivia, password corral)
and a running VM (the lab's "Corral test VM"); it leaves the pool as it found it.

    /usr/bin/python3 test/conformance/roles.py http://10.78.0.11 --client xenapi
"""

import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from clients import Failure, make_client, ssl_context
from events import ref_shaped
from report import CheckFailed, Report, parse_args, run_script

VM_NAME = "Corral test VM"
FOLDER = "/conformance/roles"


def options(parser):
    parser.add_argument("--reader", default="rory", help="a directory user whose role is read-only")
    parser.add_argument("--operator", default="olivia", help="a directory user whose role is vm-operator")
    parser.add_argument("--directory-password", default="corral", help="both users' password")


def expect_denied(step, call, permission):
    """The call must fail with RBAC_PERMISSION_DENIED naming the permission, as xapi words it."""
    try:
        call()
    except Failure as failure:
        step.require(failure.code == "RBAC_PERMISSION_DENIED", f"failed with {failure.description}, not RBAC_PERMISSION_DENIED")
        step.require(len(failure.description) == 3 and failure.description[1] == permission,
                     f"the parameters are {failure.description[1:]}, not [{permission!r}, message]")
        step.require(failure.description[2].startswith("No permission in user session. (Roles with this permission: "),
                     f"the message is {failure.description[2]!r}")
        return failure.description[2]
    raise CheckFailed(f"allowed: the session should lack {permission}")


class Roles:
    def __init__(self, args):
        self.args = args
        self.root = make_client(args.client, args)
        self.reader = make_client(args.client, args)
        self.operator = make_client(args.client, args)
        self.vm = self.host = None

    def run(self, report):
        with report.step("root finds the running test VM and another host") as s:
            self.root.login(self.args.user, self.args.password)
            auth = self.root.call("host.get_external_auth_type", self.root.call("pool.get_master", self.root.call("pool.get_all")[0]))
            s.require(auth != "", "the pool has no external directory (pool-enable-external-auth)")
            vms = self.root.call("VM.get_by_name_label", VM_NAME)
            s.require(vms, f"no VM named {VM_NAME!r}")
            self.vm = vms[0]
            s.require(self.root.call("VM.get_power_state", self.vm) == "Running", f"{VM_NAME} is not running")
            resident = self.root.call("VM.get_resident_on", self.vm)
            self.host = next(h for h in self.root.call("host.get_all") if h != resident)
            s.detail = f"external auth {auth}"
        self.read_only(report)
        self.vm_operator(report)
        self.wrong_password(report)
        self.audit_log(report)

    def read_only(self, report):
        with report.step(f"{self.args.reader} logs in (2 arguments): a session without superuser rights") as s:
            session = self.reader.login(self.args.reader, self.args.directory_password)
            s.require(ref_shaped(session), f"the session is {session!r}")
            s.require(self.reader.call("session.get_is_local_superuser", session) is False, "is_local_superuser is not false")
            s.require(self.reader.call("session.get_auth_user_name", session) == self.args.reader, "auth_user_name is not the login")
            permissions = self.reader.call("session.get_rbac_permissions", session)
            s.require("read-only" in permissions and "vm.get_record" in permissions and "vm.start" not in permissions,
                      f"rbac_permissions are not read-only's ({len(permissions)} of them)")
            s.detail = f"{len(permissions)} permissions"
        with report.step("read-only: the VMs are listed and read") as s:
            records = self.reader.call("VM.get_all_records")
            s.require(self.vm in records, "the test VM is not listed")
            s.require(records[self.vm]["power_state"] == "Running", "its record is not the running VM's")
        with report.step("read-only: VM.clean_shutdown is denied before any work") as s:
            s.detail = expect_denied(s, lambda: self.reader.call("VM.clean_shutdown", self.vm), "vm.clean_shutdown")
        with report.step("read-only: Async.VM.clean_shutdown is denied without a task") as s:
            tasks = len(self.root.call("task.get_all"))
            expect_denied(s, lambda: self.reader.call("Async.VM.clean_shutdown", self.vm), "vm.clean_shutdown")
            s.require(len(self.root.call("task.get_all")) == tasks, "a task was created for the denied call")
            s.require(self.root.call("VM.get_power_state", self.vm) == "Running", "the VM is not running any more")
        with report.step("read-only: VM.set_name_label is denied") as s:
            expect_denied(s, lambda: self.reader.call("VM.set_name_label", self.vm, "renamed"), "vm.set_name_label")
            s.require(self.root.call("VM.get_name_label", self.vm) == VM_NAME, "the VM was renamed")
        self.reader.logout()

    def vm_operator(self, report):
        with report.step(f"{self.args.operator} logs in: vm-operator") as s:
            session = self.operator.login(self.args.operator, self.args.directory_password)
            s.require("vm-operator" in self.operator.call("session.get_rbac_permissions", session), "the session is not vm-operator's")
        with report.step("vm-operator: files the VM in a folder (a guarded key's permission) and takes it out again") as s:
            self.operator.call("VM.add_to_other_config", self.vm, "folder", FOLDER)
            s.require(self.root.call("VM.get_other_config", self.vm).get("folder") == FOLDER, "the folder was not set")
            self.operator.call("VM.remove_from_other_config", self.vm, "folder")
        with report.step("vm-operator: any other other_config key is denied") as s:
            expect_denied(s, lambda: self.operator.call("VM.add_to_other_config", self.vm, "owner", "olivia"), "vm.add_to_other_config")
        with report.step("vm-operator: VM.pool_migrate and VM.destroy are denied; the VM runs on where it was") as s:
            resident = self.root.call("VM.get_resident_on", self.vm)
            expect_denied(s, lambda: self.operator.call("VM.pool_migrate", self.vm, self.host, {}), "vm.pool_migrate")
            expect_denied(s, lambda: self.operator.call("VM.destroy", self.vm), "vm.destroy")
            s.require(self.root.call("VM.get_resident_on", self.vm) == resident, "the VM moved")
            s.require(self.root.call("VM.get_power_state", self.vm) == "Running", "the VM is not running")
        with report.step("vm-operator: pool.disable_external_auth is denied") as s:
            pool = self.operator.call("pool.get_all")[0]
            expect_denied(s, lambda: self.operator.call("pool.disable_external_auth", pool, {}), "pool.disable_external_auth")
        self.operator.logout()

    def wrong_password(self, report):
        with report.step(f"{self.args.reader} with a wrong password: SESSION_AUTHENTICATION_FAILED") as s:
            client = make_client(self.args.client, self.args)
            try:
                client.login(self.args.reader, "not-" + self.args.directory_password)
            except Failure as failure:
                s.require(failure.code == "SESSION_AUTHENTICATION_FAILED", f"failed with {failure.description}")
                return
            raise CheckFailed("logged in with a wrong password")

    def audit_log(self, report):
        """xe audit-log-get's request: GET /audit_log. Read on a slave, it is an HTTP action that the slave records and
        sends to the master's audit log, as xapi's slaves do (pool.audit_log_append); the API calls are there too."""
        since = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
        master = self.root.call("pool.get_master", self.root.call("pool.get_all")[0])
        slave = next(h for h in self.root.call("host.get_all") if h != master)
        slave_name = self.root.call("host.get_name_label", slave)
        reader = make_client(self.args.client, self.args)
        with report.step(f"{self.args.reader} (read-only) reads the audit log on a slave over HTTP") as s:
            session = reader.login(self.args.reader, self.args.directory_password)
            scheme = urllib.parse.urlsplit(self.args.base_url).scheme
            text = self.http_get(f"{scheme}://{self.root.call('host.get_address', slave)}/audit_log", session, since)
            s.require(session not in text and self.root.session not in text, "a session reference is written in the audit log")
            s.detail = f"{len(text.splitlines())} lines on {slave_name}"
        reader.logout()
        with report.step("the master's audit log has the slave's HTTP action, and the denied calls, never a session") as s:
            header = f"|audit|{slave_name}|http/get_audit_log|audit]"
            text = ""
            for _ in range(60):
                text = self.http_get(self.args.base_url.rstrip("/") + "/audit_log", self.root.session, since)
                if any(header in line and f"'{self.args.reader}' 'ALLOWED' 'OK' 'HTTP' 'http/get_audit_log'" in line for line in text.splitlines()):
                    break
                time.sleep(0.5)
            else:
                raise CheckFailed(f"no line with {header!r} and {self.args.reader}'s read in the master's audit log")
            s.require(any(f"'{self.args.reader}' 'DENIED' 'ERROR:RBAC_PERMISSION_DENIED' 'API' 'VM.clean_shutdown'" in line
                          for line in text.splitlines()), "the read-only user's denied VM.clean_shutdown is not in it")
            s.require(self.root.session not in text, "the reading session's reference is written in it")

    def http_get(self, url, session, since):
        query = urllib.parse.urlencode({"session_id": session, "since": since})
        context = ssl_context(self.args) if url.startswith("https:") else None
        with urllib.request.urlopen(f"{url}?{query}", timeout=30, context=context) as response:
            if response.status != 200:
                raise CheckFailed(f"GET {url}: HTTP {response.status}")
            return response.read().decode("utf-8")

    def cleanup(self):
        for client in (self.reader, self.operator):
            client.logout()
        if self.vm is not None:
            try:
                self.root.call("VM.remove_from_other_config", self.vm, "folder")
            except Failure:
                pass
        self.root.logout()


def main():
    args = parse_args("Roles through the pool's directory, through one client.", options)
    roles = Roles(args)
    report = Report("roles", args.client, "Roles (RBAC) through the pool's directory", args.base_url)
    return run_script(report, roles.run, roles.cleanup, args.record)


if __name__ == "__main__":
    raise SystemExit(main())
