"""The three clients the suite runs, behind one small interface, and the wire rules the clients we emulate enforce.

- "xmlrpc": Python's standard xmlrpc.client.ServerProxy, given the base URL as a new user would (no path: it posts
  to /RPC2).
- "xenapi": the classic XenAPI SDK, as Debian's python3-os-xenapi ships it (os_xenapi.client.XenAPI.Session), over
  XML-RPC: its own login (which reads the API version through pool.get_all, pool.get_master and
  host.get_API_version_*), its own session handling and its own error parsing.
- "jsonrpc": JSON-RPC over urllib and json, sent as XenCenter's C# SDK and Xen Orchestra's client send it (POST
  <base>/jsonrpc, Content-Type and Accept application/json, JSON-RPC 2.0).

Every answer is also held to the rules of the real clients we emulate (XenCenter, Xen Orchestra): a rule broken raises
WireViolation naming what broke and what that client then does.
"""

import json
import ssl
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
import xmlrpc.client

TIMEOUT = 130  # above XenCenter's 120 s for event.from and Xen Orchestra's 66 s


class Failure(Exception):
    """A XenAPI error: ErrorDescription = [code, params...]."""

    def __init__(self, description):
        self.description = [str(d) for d in description]
        super().__init__(self.description)

    @property
    def code(self):
        return self.description[0] if self.description else ""


class WireViolation(Exception):
    """The server's answer breaks a rule that a real client enforces; the message says which and what follows."""


def ssl_context(options, max_tls12=False):
    """TLS as the clients do it: verified, unless --allow-unauthorized (Xen Orchestra's 'allow unauthorized',
    XenCenter's trust on first use) or --cafile (a pinned certificate); XenCenter offers TLS 1.0 to 1.2 only."""
    if options.allow_unauthorized:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=options.cafile)
    if max_tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def endpoint(base_url, path):
    return base_url.rstrip("/") + path


class Client:
    """One client with one session: login, session calls, session-less calls, a copy on a new connection."""

    kind = ""

    def __init__(self):
        self.session = None

    def login(self, *args):
        self.session = self.call_plain("session.login_with_password", *args)
        return self.session

    def call(self, method, *args):
        return self.call_plain(method, self.session, *args)

    def call_plain(self, method, *args):
        raise NotImplementedError

    def logout(self):
        """Best effort, as every client does at disconnect."""
        if self.session is None:
            return
        try:
            self.call("session.logout")
        except Exception as error:  # the run's result does not depend on it; say so
            print(f"note  session.logout: {type(error).__name__}: {error}")
        self.session = None


class XmlRpcClient(Client):
    """Python's xmlrpc.client; the session travels as the first parameter, results are {Status, Value} structs."""

    kind = "xmlrpc"

    def __init__(self, options, url, max_tls12=False):
        super().__init__()
        self.options, self.url, self.max_tls12 = options, url, max_tls12
        self.transport = recording_transport(options, url, max_tls12)
        self.proxy = xmlrpc.client.ServerProxy(url, transport=self.transport)

    def call_plain(self, method, *args):
        result = xml_call(lambda: getattr(self.proxy, method)(*args))
        return unwrap_status(method, result)

    def call_raw(self, method, *args):
        """A call whose answer is not wrapped in a Status struct (xapi's system.listMethods)."""
        return xml_call(lambda: getattr(self.proxy, method)(*args))

    def duplicate(self):
        copy = XmlRpcClient(self.options, self.url, self.max_tls12)
        copy.session = self.session
        return copy


class XenApiSdkClient(Client):
    """The classic XenAPI SDK: session.xenapi.<class>.<message>(args), the session added by the SDK."""

    kind = "xenapi"

    def __init__(self, options, url, max_tls12=False):
        super().__init__()
        self.options, self.url, self.max_tls12 = options, url, max_tls12
        self.transport = recording_transport(options, url, max_tls12)
        self.sdk = xenapi_module().Session(url, transport=self.transport)

    def login(self, *args):
        sdk_call(lambda: self.sdk.xenapi.login_with_password(*args), self.transport)
        self.session = self.sdk.handle
        return self.session

    def call(self, method, *args):
        target = self.sdk.xenapi
        for part in method.split("."):
            target = getattr(target, part)
        return sdk_call(lambda: target(*args), self.transport)

    def call_plain(self, method, *args):
        # Messages without a session (system.*) go through the SDK's ServerProxy as they are.
        return unwrap_status(method, xml_call(lambda: getattr(self.sdk, method)(*args)))

    def call_raw(self, method, *args):
        return xml_call(lambda: getattr(self.sdk, method)(*args))

    def logout(self):
        if self.session is None:
            return
        try:
            sdk_call(lambda: self.sdk.xenapi.session.logout(), self.transport)
        except Exception as error:
            print(f"note  session.logout: {type(error).__name__}: {error}")
        self.session = None

    def duplicate(self):
        copy = XenApiSdkClient(self.options, self.url, self.max_tls12)
        # The SDK has no public way to adopt a session; a copy sharing it sets the one attribute the SDK reads.
        copy.sdk._session = self.session
        copy.sdk.API_version = self.sdk.API_version
        copy.session = self.session
        return copy


class JsonRpcClient(Client):
    """JSON-RPC as XenCenter (ids counting up from 1) or Xen Orchestra (id always 0) sends it."""

    kind = "jsonrpc"

    def __init__(self, options, url, max_tls12=False, ids="count", version=2, user_agent="Python-urllib"):
        super().__init__()
        self.options, self.url, self.max_tls12 = options, url, max_tls12
        self.ids, self.version, self.user_agent = ids, version, user_agent
        self.context = ssl_context(options, max_tls12) if url.startswith("https:") else None
        self.next_id = 0

    def call_plain(self, method, *args):
        self.next_id = 0 if self.ids == "zero" else self.next_id + 1
        request = {"method": method, "params": list(args), "id": self.next_id}
        if self.version == 2:
            request = {"jsonrpc": "2.0", **request}
        status, content_type, body = self._post(json.dumps(request).encode("utf-8"))
        answer = check_json_answer(method, status, content_type, body, self.version)
        if self.version == 2:
            if "error" in answer:
                error = answer["error"]
                raise Failure([error["message"], *error["data"]])
            return answer["result"]
        if answer["error"] is not None:
            raise Failure(answer["error"])
        return answer["result"]

    def call_raw(self, method, *args):
        return self.call_plain(method, *args)

    def _post(self, data):
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": self.user_agent}
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT, context=self.context) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()

    def duplicate(self):
        copy = JsonRpcClient(self.options, self.url, self.max_tls12, self.ids, self.version, self.user_agent)
        copy.session = self.session
        return copy


def xenapi_module():
    """Debian's python3-os-xenapi (imported only by the client that uses it: the wire rules do without it)."""
    from os_xenapi.client import XenAPI  # pylint: disable=import-outside-toplevel
    return XenAPI


def make_client(kind, options, xml_path="", max_tls12=False, ids="count", user_agent="Python-urllib"):
    """A client of the given kind; XML-RPC clients post to the base URL plus xml_path ("" leaves the client's default)."""
    if kind == "jsonrpc":
        return JsonRpcClient(options, endpoint(options.base_url, "/jsonrpc"), max_tls12, ids, 2, user_agent)
    url = endpoint(options.base_url, xml_path) if xml_path else options.base_url
    if kind == "xenapi":
        return XenApiSdkClient(options, url, max_tls12)
    return XmlRpcClient(options, url, max_tls12)


# ---- XML-RPC: the transport that keeps the raw answer, and Xen Orchestra's rules for it ----

def recording_transport(options, url, max_tls12):
    if url.startswith("https:"):
        return RecordingSafeTransport(context=ssl_context(options, max_tls12))
    return RecordingTransport()


class _Recording:
    """Keeps each raw answer and holds it to the XML-RPC rules of Xen Orchestra (XenCenter speaks JSON-RPC)."""

    last = None

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = TIMEOUT
        return connection

    def parse_response(self, response):
        body = response.read()
        content_type = response.getheader("Content-Type", "")
        self.last = (response.status, content_type, body)
        parser, unmarshaller = self.getparser()
        parser.feed(body)  # the client's own parser first: its errors (ExpatError...) are what a user sees
        parser.close()
        check_xml_answer(content_type, body)
        return unmarshaller.close()


class RecordingTransport(_Recording, xmlrpc.client.Transport):
    pass


class RecordingSafeTransport(_Recording, xmlrpc.client.SafeTransport):
    pass


def check_xml_answer(content_type, body):
    if content_type not in ("text/xml", "application/xml"):
        raise WireViolation(f"XML-RPC answer with content-type {content_type!r}: Xen Orchestra accepts exactly text/xml "
                            "or application/xml and otherwise fails with UnsupportedTransport")
    root = ElementTree.fromstring(body)
    for element in root.iter():
        has_children = len(element) > 0
        if has_children and element.text and not element.text.strip():
            raise WireViolation("whitespace between XML-RPC elements: Xen Orchestra's parser keeps whitespace text nodes "
                                "and misreads the values (xapi writes compact XML)")
        if element is not root and element.tail and not element.tail.strip():
            raise WireViolation("whitespace between XML-RPC elements: Xen Orchestra's parser keeps whitespace text nodes "
                                "and misreads the values (xapi writes compact XML)")
    if root.find("fault") is not None:
        raise WireViolation("an XML-RPC <fault>: Xen Orchestra's parser reads params[0] and crashes with a TypeError; "
                            "xapi answers errors as {Status: Failure, ErrorDescription}")


def fault_violation(fault):
    return WireViolation(f"XML-RPC <fault> {fault.faultCode} {fault.faultString!r}: Xen Orchestra crashes on a fault "
                         "(TypeError); xapi answers errors as {Status: Failure, ErrorDescription}")


def xml_call(send):
    try:
        return send()
    except xmlrpc.client.Fault as fault:
        raise fault_violation(fault) from fault


def unwrap_status(method, result):
    """xapi's XML-RPC result struct: {Status: Success, Value} or {Status: Failure, ErrorDescription}."""
    if not isinstance(result, dict) or "Status" not in result:
        raise WireViolation(f"{method} answered {type(result).__name__} without a Status member: the XenAPI SDK raises "
                            "Fault 500 'Missing Status in response from server'")
    if result["Status"] == "Success":
        if "Value" not in result:
            raise WireViolation(f"{method}: Status Success without a Value member: the XenAPI SDK raises Fault 500")
        return result["Value"]
    description = result.get("ErrorDescription")
    if not isinstance(description, list) or not description:
        raise WireViolation(f"{method}: Status {result['Status']!r} without an ErrorDescription array: the XenAPI SDK "
                            "raises Fault 500 and Xen Orchestra cannot build its XapiError")
    raise Failure(description)


def sdk_call(send, transport):
    """A call through the SDK: its Failure becomes ours; a Fault is the server's <fault> only if the answer held one
    (the SDK raises Fault itself for 'Missing Status', 'Tried 3 times to get a valid session'...)."""
    try:
        return send()
    except xenapi_module().Failure as failure:
        raise Failure(failure.details) from failure
    except xmlrpc.client.Fault as fault:
        if transport.last and b"<fault>" in transport.last[2]:
            raise fault_violation(fault) from fault
        raise


# ---- JSON-RPC: the rules XenCenter's SDK (Newtonsoft, Required attributes) and Xen Orchestra's parser apply ----

def check_json_answer(method, status, content_type, body, version):
    if status != 200:
        raise WireViolation(f"{method}: HTTP {status} {body[:200]!r}: XenCenter needs 200 (a 4xx/5xx is a ProtocolError "
                            "that fails the login at once; 404 reads 'not a XenServer'), Xen Orchestra throws "
                            "'unexpect statusCode'; xapi answers XenAPI errors with 200")
    if content_type != "application/json":
        raise WireViolation(f"{method}: content-type {content_type!r} is not exactly application/json: Xen Orchestra "
                            "raises UnsupportedTransport and falls back to XML-RPC on /xmlrpc")
    try:
        answer = json.loads(body)
    except ValueError as error:
        raise WireViolation(f"{method}: the body is not JSON ({error}): both clients fail to parse it") from error
    if not isinstance(answer, dict):
        raise WireViolation(f"{method}: the answer is a JSON {type(answer).__name__}, not an object")
    if version == 2:
        check_json_v2(method, answer)
    else:
        check_json_v1(method, answer)
    return answer


def check_json_v2(method, answer):
    if answer.get("jsonrpc") != "2.0":
        raise WireViolation(f"{method}: 'jsonrpc' is {answer.get('jsonrpc')!r}, not \"2.0\": XenCenter requires it "
                            "(Required.Always) and Xen Orchestra rejects any other value")
    if not isinstance(answer.get("id"), int) or isinstance(answer.get("id"), bool):
        raise WireViolation(f"{method}: id {answer.get('id')!r} is not an integer: XenCenter reads it as an int")
    if "error" in answer:
        error = answer["error"]
        if error is None:
            raise WireViolation(f"{method}: \"error\": null in a JSON-RPC 2.0 answer: XenCenter throws "
                                "JsonSerializationException (error is DisallowNull) and Xen Orchestra takes the mere "
                                "key for an error; leave the key out")
        shape_ok = (isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
                    and isinstance(error.get("data"), list) and all(isinstance(d, str) for d in error["data"]))
        if not shape_ok:
            raise WireViolation(f"{method}: error {error!r} is not {{code: int, message: str, data: [strings]}}: "
                                "XenCenter fails to deserialise it (the caller sees no XenAPI Failure)")
        if "result" in answer:
            raise WireViolation(f"{method}: both 'result' and 'error' in a JSON-RPC 2.0 answer")
    elif "result" not in answer:
        raise WireViolation(f"{method}: neither 'result' nor 'error' in the answer")


def check_json_v1(method, answer):
    if "jsonrpc" in answer:
        raise WireViolation(f"{method}: a JSON-RPC 1.0 request answered with 'jsonrpc': the 1.0 parsers expect none")
    if "result" not in answer or "error" not in answer:
        raise WireViolation(f"{method}: a JSON-RPC 1.0 answer needs both 'result' and 'error' (null on success): "
                            "Xen Orchestra's parser needs \"error\": null explicitly")
    error = answer["error"]
    if error is not None and not (isinstance(error, list) and error and all(isinstance(e, str) for e in error)):
        raise WireViolation(f"{method}: a JSON-RPC 1.0 error must be [code, params...] as xapi writes it, got {error!r}")
