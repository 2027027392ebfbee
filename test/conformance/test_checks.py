"""The suite's own checks, tested without a pool: each rule refuses what breaks a client and lets xapi's answers pass.

    /usr/bin/python3 -m unittest discover -s test/conformance -p 'test_*.py'
"""

import json
import unittest
import xmlrpc.client

from clients import WireViolation, check_json_answer, check_xml_answer
from events import check_batch, xencenter_result, xo_result
from records import Datamodel
from report import CheckFailed

DM = Datamodel()
REF = "OpaqueRef:5f6a0e52-6a43-4a8c-8d3e-0b1f7f1d2c11"


def json_answer(body, content_type="application/json", status=200, version=2):
    return check_json_answer("m", status, content_type, json.dumps(body).encode(), version)


def xml_success(value):
    return xmlrpc.client.dumps(({"Status": "Success", "Value": value},), methodresponse=True).encode()


class JsonRules(unittest.TestCase):
    def test_xapis_answers_pass(self):
        json_answer({"jsonrpc": "2.0", "result": REF, "id": 3})
        json_answer({"jsonrpc": "2.0", "error": {"code": 1, "message": "HANDLE_INVALID", "data": ["VM", REF]}, "id": 0})
        json_answer({"result": REF, "error": None, "id": 1}, version=1)

    def test_an_error_key_in_a_v2_success_is_refused(self):
        with self.assertRaisesRegex(WireViolation, "JsonSerializationException"):
            json_answer({"jsonrpc": "2.0", "result": REF, "error": None, "id": 3})

    def test_the_content_type_must_be_exactly_application_json(self):
        with self.assertRaisesRegex(WireViolation, "UnsupportedTransport"):
            json_answer({"jsonrpc": "2.0", "result": REF, "id": 3}, content_type="application/json; charset=utf-8")

    def test_errors_need_200_and_string_data(self):
        with self.assertRaisesRegex(WireViolation, "HTTP 500"):
            json_answer({"jsonrpc": "2.0", "result": REF, "id": 3}, status=500)
        with self.assertRaisesRegex(WireViolation, "data: \\[strings\\]"):
            json_answer({"jsonrpc": "2.0", "error": {"code": 1, "message": "X", "data": [1]}, "id": 3})
        with self.assertRaisesRegex(WireViolation, "data: \\[strings\\]"):
            json_answer({"jsonrpc": "2.0", "error": {"code": 1, "message": "X"}, "id": 3})

    def test_ids_are_integers_and_v1_successes_carry_error_null(self):
        with self.assertRaisesRegex(WireViolation, "not an integer"):
            json_answer({"jsonrpc": "2.0", "result": REF, "id": "3"})
        with self.assertRaisesRegex(WireViolation, "error"):
            json_answer({"result": REF, "id": 1}, version=1)


class XmlRules(unittest.TestCase):
    def test_compact_xml_passes(self):
        check_xml_answer("text/xml", xml_success({"a": [1, "b"], "c": " "}).replace(b"\n", b""))

    def test_whitespace_between_elements_is_refused(self):
        with self.assertRaisesRegex(WireViolation, "whitespace"):
            check_xml_answer("text/xml", xml_success({"a": [1, "b"]}))

    def test_a_fault_and_another_content_type_are_refused(self):
        fault = xmlrpc.client.dumps(xmlrpc.client.Fault(1, "no"), methodresponse=True).encode().replace(b"\n", b"")
        with self.assertRaisesRegex(WireViolation, "fault"):
            check_xml_answer("text/xml", fault)
        with self.assertRaisesRegex(WireViolation, "content-type"):
            check_xml_answer("text/xml; charset=utf-8", xml_success("x").replace(b"\n", b""))


class Records(unittest.TestCase):
    def record(self, **changes):
        task = {"uuid": "u", "name_label": "", "status": "pending", "created": "20250101T12:00:00Z", "progress": 0.5,
                "resident_on": REF, "other_config": {}, "error_info": [], "allowed_operations": []}
        task.update(changes)
        return DM.check_record("task", task, xmlrpc_values=False)

    def test_a_sound_record_passes_and_missing_fields_are_listed(self):
        problems, missing = self.record()
        self.assertEqual([], problems)
        self.assertIn("finished", missing)

    def test_what_breaks_clients_is_reported(self):
        for change in ({"resident_on": ""}, {"resident_on": None}, {"status": "Pending"}, {"other_config": []},
                       {"created": "2025-01-01T12:00:00Z"}, {"progress": "0.5"}):
            problems, _ = self.record(**change)
            self.assertTrue(problems, change)

    def test_xml_rpc_ints_may_be_strings_as_xapi_sends_them(self):
        self.assertEqual([], DM.check_value("int", "42", xmlrpc_values=True))
        self.assertTrue(DM.check_value("int", "42", xmlrpc_values=False))


class EventBatches(unittest.TestCase):
    def event(self, **changes):
        event = {"id": "12", "timestamp": "0.0", "class": "pool", "operation": "add", "ref": REF,
                 "snapshot": {"uuid": "u", "master": REF}}
        event.update(changes)
        return event

    def test_a_sound_batch_passes(self):
        problems, notes = check_batch({"events": [self.event()], "valid_ref_counts": {"pool": 1}, "token": "5"}, DM, False, False)
        self.assertEqual([], problems)
        self.assertTrue(notes)  # the snapshot lacks fields

    def test_what_breaks_clients_is_reported(self):
        cases = [{"events": [], "token": "5"},
                 {"events": [self.event(id="abc")], "valid_ref_counts": {}, "token": "5"},
                 {"events": [self.event(**{"class": "session"})], "valid_ref_counts": {}, "token": "5"},
                 {"events": [self.event(snapshot=None)], "valid_ref_counts": {}, "token": "5"}]
        for batch in cases:
            problems, _ = check_batch(batch, DM, False, False)
            self.assertTrue(problems, batch)

    def test_a_partial_snapshot_fails_only_where_full_snapshots_are_required(self):
        batch = {"events": [self.event(operation="mod")], "valid_ref_counts": {}, "token": "5"}
        self.assertEqual([], check_batch(batch, DM, False, full_snapshots=False)[0])
        self.assertTrue(check_batch(batch, DM, False, full_snapshots=True)[0])


class TaskResults(unittest.TestCase):
    def test_xen_orchestra_parses_an_xml_rpc_value(self):
        self.assertEqual(REF, xo_result("m", {"status": "success", "result": f"<value>{REF}</value>"}))
        self.assertEqual("", xo_result("m", {"status": "success", "result": ""}))
        with self.assertRaises(CheckFailed):
            xo_result("m", {"status": "success", "result": "<value>unclosed"})

    def test_xencenter_takes_the_first_value_or_the_raw_text(self):
        self.assertEqual(REF, xencenter_result(f"<value>{REF}</value>"))
        self.assertEqual("plain", xencenter_result("plain"))


if __name__ == "__main__":
    unittest.main()
