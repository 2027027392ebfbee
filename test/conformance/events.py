"""event.from batches checked as XenCenter and Xen Orchestra read them, and Async.* tasks followed as each follows them.

Xen Orchestra (packages/xen-api callAsync) waits for a task through event.from on class 'task', and parses a
successful task's result as an XML-RPC <value> fragment. XenCenter (AsyncAction, Task.PollToCompletion) tags the task
through task.add_to_other_config, polls task.get_record every 900 ms, and takes the text of the first <value> element
of the result (the raw string if it is not XML). Both destroy the task at the end.
"""

import re
import time
import uuid
import xml.etree.ElementTree as ElementTree
import xmlrpc.client

from clients import Failure
from report import CheckFailed

DONE = ("success", "failure", "cancelled")
XENCENTER_UUID = str(uuid.uuid4())


def is_numeric(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))


def check_batch(batch, datamodel, xml_values, full_snapshots):
    """(problems, missing-field notes) of one event.from answer."""
    if not isinstance(batch, dict):
        return [f"event.from answered a {type(batch).__name__}, not {{events, valid_ref_counts, token}}"], []
    problems, notes = [], []
    for key in ("events", "valid_ref_counts", "token"):
        if key not in batch:
            problems.append(f"no '{key}' in the answer" + (": Xen Orchestra's event loop throws outside its try block "
                                                          "and dies silently" if key == "valid_ref_counts" else ""))
    if problems:
        return problems, notes
    if not isinstance(batch["token"], str):
        problems.append(f"token {batch['token']!r} is not a string")
    counts = batch["valid_ref_counts"]
    if not isinstance(counts, dict) or not all(is_numeric(v) for v in counts.values()):
        problems.append("valid_ref_counts is not a map of class to integer (XenCenter reads Dictionary<string,int>)")
    if not isinstance(batch["events"], list):
        return problems + ["events is not an array"], notes
    for event in batch["events"]:
        event_problems, event_notes = check_event(event, datamodel, xml_values, full_snapshots)
        problems += event_problems
        notes += event_notes
    return problems, notes


def check_event(event, datamodel, xml_values, full_snapshots):
    if not isinstance(event, dict):
        return [f"an event is a {type(event).__name__}"], []
    where = f"{event.get('class')} {event.get('operation')} {event.get('ref')}"
    problems = []
    if not is_numeric(event.get("id")):
        problems.append(f"{where}: id {event.get('id')!r} is not numeric: XenCenter reads it as a long and the whole "
                        "batch fails")
    if event.get("class") == "session":
        problems.append(f"{where}: a session event: XenCenter cannot build XenAPI.Session from it and the batch fails "
                        "(xapi never sends sessions)")
    if event.get("operation") not in ("add", "mod", "del"):
        problems.append(f"{where}: operation {event.get('operation')!r} is not add, mod or del")
    if not isinstance(event.get("ref"), str) or not event["ref"].startswith("OpaqueRef:"):
        problems.append(f"{where}: ref {event.get('ref')!r} is not an OpaqueRef")
    if event.get("operation") == "del":
        return problems, []
    snapshot = event.get("snapshot")
    if not isinstance(snapshot, dict):
        return problems + [f"{where}: no snapshot: Xen Orchestra's event loop throws and dies silently"], []
    cls = datamodel.real_name(str(event.get("class")))
    if cls is None:
        return problems, []
    record_problems, missing = datamodel.check_record(cls, snapshot, xml_values)
    problems += [f"{where}: {p}" for p in record_problems[:3]]
    notes = []
    if missing:
        text = f"{where}: snapshot lacks {len(missing)} fields ({', '.join(missing[:5])})"
        if full_snapshots:
            problems.append(text + ": XenCenter builds (add) or replaces (mod) the whole cached object, the missing "
                                   "fields at their defaults")
        else:
            notes.append(text)
    return problems, notes


def ref_shaped(value):
    return isinstance(value, str) and value.startswith("OpaqueRef:") and value != "OpaqueRef:NULL"


# ---- Xen Orchestra: Async.* followed through event.from on 'task' ----

def xo_async(client, datamodel, method, *args, deadline=600):
    """Xen Orchestra's callAsync: the task's settled record and its parsed result."""
    token = client.call("event.from", ["task"], "", 0.0)["token"]
    task = client.call("Async." + method, *args)
    if not ref_shaped(task):
        raise CheckFailed(f"Async.{method} answered {task!r}, not a task reference")
    record = xo_watch(client, datamodel, task, token, deadline)
    client.call("task.destroy", task)
    return record, xo_result(method, record)


def xo_watch(client, datamodel, task, token, deadline):
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        batch = client.call("event.from", ["task"], token, 60.1)
        problems, _ = check_batch(batch, datamodel, client.kind != "jsonrpc", full_snapshots=False)
        if problems:
            raise CheckFailed("event.from on 'task': " + "; ".join(problems[:3]))
        token = batch["token"]
        for event in batch["events"]:
            if event["ref"] != task:
                continue
            if event["operation"] == "del":
                raise CheckFailed("the task was destroyed before it completed: Xen Orchestra rejects the wait "
                                  "('task has been destroyed before completion')")
            if event["snapshot"].get("status") in DONE:
                return event["snapshot"]
    raise CheckFailed(f"the task did not complete within {deadline} s")


def xo_result(method, record):
    status = record.get("status")
    if status == "failure":
        raise Failure(record.get("error_info") or ["(empty error_info)"])
    if status == "cancelled":
        raise CheckFailed(f"Async.{method}: the task was cancelled")
    result = record.get("result", "")
    if result == "":
        return ""
    try:
        return xmlrpc.client.loads(f"<methodResponse><params><param>{result}</param></params></methodResponse>")[0][0]
    except Exception as error:
        raise CheckFailed(f"task result {result!r} is not an XML-RPC <value> fragment ({error}): Xen Orchestra's "
                          "parser throws (xapi stores results with Xmlrpc.to_string)") from error


# ---- XenCenter: Async.* tagged, then task.get_record polled every 900 ms ----

def xencenter_async(client, datamodel, method, *args, applies_to=(), deadline=600):
    task = client.call("Async." + method, *args)
    if not ref_shaped(task):
        raise CheckFailed(f"Async.{method} answered {task!r}, not a task reference")
    # Removing a missing key must succeed: a non-RBAC failure here fails XenCenter's action.
    client.call("task.remove_from_other_config", task, "XenCenterUUID")
    client.call("task.add_to_other_config", task, "XenCenterUUID", XENCENTER_UUID)
    client.call("task.remove_from_other_config", task, "applies_to")
    client.call("task.add_to_other_config", task, "applies_to", ",".join(applies_to))
    record = xencenter_poll(client, datamodel, task, deadline)
    try:
        client.call("task.destroy", task)
    except Failure as failure:  # XenCenter ignores it too
        print(f"note  task.destroy: XenAPI error {' '.join(failure.description)}")
    if record["status"] == "failure":
        raise Failure(record.get("error_info") or ["(empty error_info)"])
    if record["status"] == "cancelled":
        raise CheckFailed(f"Async.{method}: the task was cancelled")
    return record, xencenter_result(record.get("result", ""))


def xencenter_poll(client, datamodel, task, deadline):
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        record = client.call("task.get_record", task)
        problems, _ = datamodel.check_record("task", record, client.kind != "jsonrpc")
        if problems:
            raise CheckFailed("task.get_record: " + "; ".join(problems[:3]))
        progress = record.get("progress")
        if not isinstance(progress, (int, float)) or not 0 <= progress <= 1:
            raise CheckFailed(f"task progress {progress!r} is not a number from 0 to 1 (XenCenter's progress bar)")
        if record.get("other_config", {}).get("XenCenterUUID") != XENCENTER_UUID:
            raise CheckFailed("task.other_config lacks the XenCenterUUID XenCenter set: its action list loses the task")
        if record["status"] in DONE:
            return record
        time.sleep(0.9)
    raise CheckFailed(f"the task did not complete within {deadline} s")


def xencenter_result(result):
    """The text of the first <value> element, or the raw string when it is not XML (XenCenter, CA-352946)."""
    try:
        element = ElementTree.fromstring(result)
    except ElementTree.ParseError:
        return result
    found = element if element.tag == "value" else element.find(".//value")
    return "".join(found.itertext()) if found is not None else result
