"""Records checked against xapi's datamodel (datamodel/xapi-datamodel.json), as the clients decode them.

A record breaks a client when a value has the wrong shape: a null anywhere (XenCenter's get_all_records path stores it
and fails later, or throws for a number or a bool), an empty reference instead of OpaqueRef:NULL (XenCenter makes a
null XenRef and dereferences it; Xen Orchestra compares with the literal 'OpaqueRef:NULL'), an enum value spelled
otherwise than xapi spells it (XenCenter's case-sensitive parse turns it into 'unknown'), an array where a map is
expected (XenCenter's map converter throws InvalidCastException), a datetime XenCenter cannot parse (it becomes
DateTime.MinValue). A missing field is not fatal to either client (XenCenter keeps its default, Xen Orchestra reads
undefined) and is reported apart.
"""

import json
import os
import re
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
DATAMODEL = os.path.join(HERE, "..", "..", "datamodel", "xapi-datamodel.json")
DATETIME = re.compile(r"^\d{8}T\d{2}:\d{2}:\d{2}Z$")
NULL_REF = "OpaqueRef:NULL"


class Datamodel:
    """The classes, fields and enums of xapi's datamodel, as checked in."""

    def __init__(self, path=DATAMODEL):
        with open(path, encoding="utf-8") as f:
            facts = json.load(f)
        self.enums = {e["name"]: set(e["values"]) for e in facts["enums"]}
        self.classes = {c["name"]: c for c in facts["classes"]}
        self._by_lower = {name.lower(): name for name in self.classes}

    def live_classes(self):
        """The classes that are not removed from xapi."""
        return [name for name, c in self.classes.items() if c["state"] != "removed"]

    def real_name(self, name):
        """The datamodel's spelling of a class name given in any case (event classes come lower-cased)."""
        return self._by_lower.get(name.lower())

    def has_message(self, cls, name):
        return any(m["name"] == name and m["state"] != "removed" for m in self.classes[cls]["messages"])

    def fields(self, cls):
        return {f["name"]: f["type"] for f in self.classes[cls]["fields"]}

    def check_record(self, cls, record, xmlrpc_values):
        """(problems, missing fields) of one record of class cls; xmlrpc_values: decoded by xmlrpc.client."""
        problems = []
        if not isinstance(record, dict):
            return [f"the record is a {type(record).__name__}, not a struct"], []
        fields = self.fields(cls)
        for name, value in record.items():
            if name in fields:
                for problem in self.check_value(fields[name], value, xmlrpc_values):
                    problems.append(f"{cls}.{name} = {short(value)}: {problem}")
        missing = [name for name in fields if name not in record]
        return problems, missing

    def check_value(self, type_, value, xmlrpc_values):
        """The problems of one value of a datamodel type (empty if it is fine)."""
        if value is None:
            return ["null (XenCenter stores or throws on it; send the type's empty value)"]
        type_ = type_.strip()
        if type_.endswith(" option"):
            return self.check_value(type_[: -len(" option")], value, xmlrpc_values)
        if type_.endswith(" set"):
            if not isinstance(value, list):
                return [f"a set must be an array, got {type(value).__name__}"]
            inner = type_[: -len(" set")]
            return [p for v in value for p in self.check_value(inner, v, xmlrpc_values)][:3]
        if type_.endswith(" map"):
            return self._check_map(type_, value, xmlrpc_values)
        if type_.endswith(" record"):
            return [] if isinstance(value, dict) else [f"a record must be a struct, got {type(value).__name__}"]
        if type_.endswith(" ref"):
            return self._check_ref(value)
        if type_.startswith("enum "):
            values = self.enums.get(type_[len("enum "):], set())
            if value not in values:
                return [f"not a value of {type_} as xapi spells it ({', '.join(sorted(values))})"]
            return []
        return self._check_scalar(type_, value, xmlrpc_values)

    def _check_map(self, type_, value, xmlrpc_values):
        if not isinstance(value, dict):
            return [f"a map must be a struct/object, got {type(value).__name__} (XenCenter throws InvalidCastException)"]
        match = re.match(r"^\((.+) -> (.+)\) map$", type_)
        if not match:
            return []
        key_type, value_type = match.group(1), match.group(2)
        problems = []
        for k, v in value.items():
            if key_type.endswith(" ref"):
                problems += self._check_ref(k)
            problems += self.check_value(value_type, v, xmlrpc_values)
        return problems[:3]

    @staticmethod
    def _check_ref(value):
        if not isinstance(value, str):
            return [f"a reference must be a string, got {type(value).__name__}"]
        if value == "":
            return ["an empty reference must be OpaqueRef:NULL (XenCenter makes a null XenRef; Xen Orchestra compares with 'OpaqueRef:NULL')"]
        if not value.startswith("OpaqueRef:"):
            return ["a reference must start with OpaqueRef: (Xen Orchestra links fields by that prefix)"]
        return []

    @staticmethod
    def _check_scalar(type_, value, xmlrpc_values):
        if type_ == "string":
            return [] if isinstance(value, str) else [f"a string was expected, got {type(value).__name__}"]
        if type_ == "bool":
            return [] if isinstance(value, bool) else [f"a boolean was expected, got {type(value).__name__} (Xen Orchestra reads the string 'false' as true)"]
        if type_ == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return []
            # xapi sends int64 as XML-RPC strings; clients convert them.
            if xmlrpc_values and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
                return []
            return [f"an integer was expected, got {type(value).__name__}"]
        if type_ == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return [] if ok else [f"a number was expected, got {type(value).__name__}"]
        if type_ == "datetime":
            text = value.value if isinstance(value, xmlrpc.client.DateTime) else value
            if isinstance(text, str) and DATETIME.match(text):
                return []
            return [f"a datetime must read yyyyMMddTHH:mm:ssZ as xapi writes it (XenCenter turns anything else into DateTime.MinValue)"]
        return []


def short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
