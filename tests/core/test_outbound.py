"""
core.outbound against real HTTP servers on 127.0.0.1 (threads of this process): what arrives, what
comes back, and what is refused, timed out or cut short. Nothing of httpx is mocked; a few tests
replace socket.getaddrinfo to give a made-up host name an address.
"""

import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from core import outbound
from core.outbound import (
    USER_AGENT,
    OutboundConnectionError,
    OutboundError,
    OutboundRefused,
    OutboundResponse,
    OutboundTimeout,
    forbidden_address_reason,
    is_retryable_status,
    parse_retry_after,
    post_json,
)

HUGE = 10 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    server: "ReceiverServer"

    def log_message(self, format, *args):  # quiet
        pass

    def do_POST(self):
        path = urlsplit(self.path).path
        query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.receiver.requests.append(
            {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
        )
        getattr(self, "route_" + path.strip("/").replace("-", "_"))(query, body)

    def answer(self, status: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def route_echo(self, query, body):
        self.answer(
            200,
            {
                "method": self.command,
                "path": self.path,
                "host": self.headers["Host"],
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            },
            {"X-Receiver": "echo"},
        )

    def route_status(self, query, body):
        headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
        self.answer(int(query["code"]), {"error": f"status {query['code']}"}, headers)

    def route_redirect(self, query, body):
        self.send_response(302)
        self.send_header("Location", query["to"])
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"moved on\n")

    def route_hang(self, query, body):
        self.server.receiver.release.wait(10)  # no answer until the test is over

    def route_trickle_body(self, query, body):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self._trickle(b"x" * 1000)

    def route_trickle_headers(self, query, body):
        self._trickle(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Slow-%d: yes\r\n" % n for n in range(200)) + b"\r\n")

    def _trickle(self, data: bytes):
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                if self.server.receiver.release.wait(0.05):
                    return
        except OSError:  # the client gave up, as it should
            pass

    def route_huge(self, query, body):
        self.send_response(200)
        if query.get("length") != "none":  # otherwise the body ends when the connection closes
            self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        chunk = bytes(range(256)) * 256  # 64 KiB, not all alike: the test checks which bytes it got
        try:
            for _ in range(HUGE // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            pass


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: "Receiver"


class Receiver:
    def __init__(self, ssl_context: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.server = ReceiverServer(("127.0.0.1", 0), Handler)
        self.server.receiver = self
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def other_receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def private_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def private_refused(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False


@pytest.fixture
def fake_dns(monkeypatch):
    """Made-up host names with addresses; every other name (and IP literal) resolves as usual."""
    real = socket.getaddrinfo
    names: dict[str, list[str]] = {}
    lookups: list[str] = []
    release = threading.Event()

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        answer = names[host]
        if answer == ["hang"]:
            release.wait(10)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if answer == ["fail"]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if callable(answer):
            answer = answer()
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answer
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield names, lookups
    release.set()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- Responses --------------------------------------------------------------------------------


def test_a_200_echo_receives_the_body_and_headers_as_sent(receiver, private_allowed):
    body = json.dumps({"text": "Alert fired: Error rate > 5%", "ünïcode": "✓"}).encode()

    response = post_json(receiver.url("/echo?x=1"), body, {"X-Signature": "v1,abc=", "X-Delivery-Id": "msg_7"})

    assert isinstance(response, OutboundResponse)
    assert response.status_code == 200 and response.ok and not response.retryable and not response.truncated
    echoed = json.loads(response.body)
    assert echoed["method"] == "POST" and echoed["path"] == "/echo?x=1"
    assert echoed["body"] == body.decode()
    assert echoed["host"] == f"127.0.0.1:{receiver.port}"
    sent = echoed["headers"]
    assert sent["x-signature"] == "v1,abc=" and sent["x-delivery-id"] == "msg_7"
    assert sent["user-agent"] == USER_AGENT == "ProactiveInsights/1 (+notifications)"
    assert sent["content-type"] == "application/json"
    assert sent["content-length"] == str(len(body))
    assert sent["accept-encoding"] == "identity"
    assert receiver.requests[0]["body"] == body  # byte for byte
    assert response.headers["x-receiver"] == "echo" and response.headers["content-type"] == "application/json"
    assert response.retry_after_seconds is None
    assert 0 < response.duration_ms < 5000


def test_logs_show_the_origin_never_the_path_or_query(receiver, private_allowed, caplog):
    with caplog.at_level(logging.DEBUG):
        response = post_json(receiver.url("/echo?token=secret-token"), b"{}", {})

    assert json.loads(response.body)["path"] == "/echo?token=secret-token"
    assert f"POST http://127.0.0.1:{receiver.port}/…" in caplog.text  # httpx's own INFO line
    assert "secret-token" not in caplog.text


def test_the_callers_headers_win_over_the_defaults(receiver, private_allowed):
    response = post_json(
        receiver.url("/echo"), b"{}", {"user-agent": "Custom/2", "Content-Type": "application/vnd.x+json"}
    )

    sent = json.loads(response.body)["headers"]
    assert sent["user-agent"] == "Custom/2"
    assert sent["content-type"] == "application/vnd.x+json"


def test_a_500_is_returned_and_retryable(receiver, private_allowed):
    response = post_json(receiver.url("/status?code=500"), b"{}", {})

    assert response.status_code == 500 and not response.ok and response.retryable
    assert json.loads(response.body) == {"error": "status 500"}
    assert response.retry_after_seconds is None


def test_a_404_is_returned_and_final(receiver, private_allowed):
    response = post_json(receiver.url("/status?code=404"), b"{}", {})

    assert response.status_code == 404 and not response.ok and not response.retryable
    assert json.loads(response.body) == {"error": "status 404"}


def test_a_429_with_retry_after_in_seconds(receiver, private_allowed):
    response = post_json(receiver.url("/status?code=429&retry_after=7"), b"{}", {})

    assert response.status_code == 429 and response.retryable
    assert response.retry_after_seconds == 7.0
    assert response.headers["retry-after"] == "7"
    assert json.loads(response.body) == {"error": "status 429"}


def test_a_429_with_retry_after_as_an_http_date(receiver, private_allowed):
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    response = post_json(receiver.url(f"/status?code=429&retry_after={date}"), b"{}", {})

    assert response.status_code == 429 and response.retryable
    assert response.headers["retry-after"] == date
    assert 110 <= response.retry_after_seconds <= 120


@pytest.mark.parametrize(
    "value, expected",
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),
        ("Wednesday, 21-Oct-26 07:28:30 GMT", 30.0),  # RFC 850, obsolete but allowed
        ("Wed Oct 21 07:28:30 2026", 30.0),  # asctime, no zone: GMT
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # in the past: now
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("9" * 5000, None),  # more digits than int() reads
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    "status, retryable",
    [(500, True), (502, True), (503, True), (599, True), (408, True), (429, True)]
    + [(400, False), (401, False), (403, False), (404, False), (410, False), (422, False)]
    + [(200, False), (204, False), (301, False), (302, False), (307, False)],
)
def test_is_retryable_status(status, retryable):
    assert is_retryable_status(status) is retryable


def test_a_redirect_to_another_host_is_not_followed(receiver, other_receiver, private_allowed):
    target = other_receiver.url("/echo", host="localhost")

    response = post_json(receiver.url(f"/redirect?to={target}"), b'{"a": 1}', {})

    assert response.status_code == 302 and not response.ok and not response.retryable
    assert response.headers["location"] == target
    assert response.body == b"moved on\n"
    assert [request["body"] for request in receiver.requests] == [b'{"a": 1}']
    assert other_receiver.requests == []


def test_a_redirect_to_the_same_host_is_not_followed_either(receiver, private_allowed):
    response = post_json(receiver.url(f"/redirect?to={receiver.url('/echo')}"), b"{}", {})

    assert response.status_code == 302 and response.headers["location"] == receiver.url("/echo")
    assert [request["path"] for request in receiver.requests] == [f"/redirect?to={receiver.url('/echo')}"]


# --- Time and size bounds ----------------------------------------------------------------------


def test_a_receiver_that_never_answers_times_out(receiver, private_allowed):
    started = time.monotonic()
    with pytest.raises(OutboundTimeout) as raised:
        post_json(receiver.url("/hang"), b'{"x": 1}', {}, timeout=0.5)
    elapsed = time.monotonic() - started

    assert 0.45 <= elapsed < 1.5
    assert raised.value.retryable is True
    assert f"http://127.0.0.1:{receiver.port}" in str(raised.value) and "0.5s" in str(raised.value)
    assert receiver.requests[0]["body"] == b'{"x": 1}'  # it was sent; the answer never came


@pytest.mark.parametrize("path", ["/trickle-body", "/trickle-headers"])
def test_a_trickling_receiver_is_cut_off_at_the_deadline(receiver, private_allowed, path):
    # A byte every 50 ms: no single read waits anywhere near the timeout, the total does.
    started = time.monotonic()
    with pytest.raises(OutboundTimeout) as raised:
        post_json(receiver.url(path), b"{}", {}, timeout=0.5)
    elapsed = time.monotonic() - started

    assert 0.45 <= elapsed < 1.2
    assert raised.value.retryable is True
    assert "did not finish within 0.5s" in str(raised.value)  # a byte every 50 ms: 1000 of them take 50 s


@pytest.mark.parametrize("length", ["given", "none"])
def test_a_huge_body_is_truncated_to_the_bound(receiver, private_allowed, length):
    started = time.monotonic()
    response = post_json(receiver.url(f"/huge?length={length}"), b"{}", {}, max_response_bytes=1000)

    assert response.status_code == 200 and response.truncated
    assert response.body == bytes(range(256)) * 3 + bytes(range(232))
    assert len(response.body) == 1000
    assert time.monotonic() - started < 2


def test_the_default_bound_is_64_kib(receiver, private_allowed):
    response = post_json(receiver.url("/huge"), b"{}", {})

    assert response.truncated and len(response.body) == 64 * 1024
    assert response.body == bytes(range(256)) * 256


def test_a_body_exactly_at_the_bound_is_not_truncated(receiver, private_allowed):
    response = post_json(
        receiver.url("/status?code=200"), b"{}", {}, max_response_bytes=len(b'{"error": "status 200"}')
    )

    assert response.body == b'{"error": "status 200"}' and not response.truncated


# --- Connection failures -------------------------------------------------------------------------


def test_a_closed_port_is_a_retryable_connection_error(private_allowed):
    port = closed_port()

    with pytest.raises(OutboundConnectionError) as raised:
        post_json(f"http://127.0.0.1:{port}/hook", b"{}", {})

    assert raised.value.retryable is True
    assert f"http://127.0.0.1:{port}" in str(raised.value)
    assert "/hook" not in str(raised.value)


def test_a_name_that_does_not_resolve_is_a_retryable_connection_error(fake_dns, private_allowed):
    names, _ = fake_dns
    names["nowhere.test"] = ["fail"]

    with pytest.raises(OutboundConnectionError) as raised:
        post_json("https://nowhere.test/hooks/T000/B000/secret-token", b"{}", {})

    assert raised.value.retryable is True
    assert "cannot resolve nowhere.test" in str(raised.value)
    assert "secret-token" not in str(raised.value)  # a URL's path is often its secret


def test_a_dns_lookup_that_hangs_ends_at_the_deadline(fake_dns, private_allowed):
    names, _ = fake_dns
    names["slow-dns.test"] = ["hang"]

    started = time.monotonic()
    with pytest.raises(OutboundTimeout) as raised:
        post_json("http://slow-dns.test/hook", b"{}", {}, timeout=0.3)

    assert 0.25 <= time.monotonic() - started < 1.0
    assert raised.value.retryable is True and "resolving slow-dns.test" in str(raised.value)


def test_a_header_value_with_a_newline_is_an_error_and_not_retryable(receiver, private_allowed):
    with pytest.raises(OutboundError) as raised:
        post_json(receiver.url("/echo"), b"{}", {"X-Injected": "a\r\nX-Evil: 1"})

    assert raised.value.retryable is False
    assert receiver.requests == []


# --- Refused destinations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host, reason",
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.20", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("[fe80::1]", "link-local"),
        ("[fd00::1]", "private"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped IPv6
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[2002:a9fe:a9fe::1]", "link-local"),  # 6to4 around 169.254.169.254
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("2130706433", "loopback"),  # 127.0.0.1 as one number: resolved like a name, then checked
        ("0x7f.1", "loopback"),
        ("localhost", "loopback"),
    ],
)
def test_private_addresses_are_refused_before_connecting(receiver, private_refused, host, reason):
    with pytest.raises(OutboundRefused) as raised:
        post_json(f"http://{host}:{receiver.port}/echo", b"{}", {})

    assert raised.value.retryable is False
    assert reason in str(raised.value) and "OUTBOUND_ALLOW_PRIVATE_ADDRESSES" in str(raised.value)
    assert receiver.requests == []  # nothing was sent, even where something listens


def test_the_setting_lets_the_same_address_through(receiver, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(OutboundRefused):
        post_json(receiver.url("/echo"), b"{}", {})

    settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES = True
    assert post_json(receiver.url("/echo"), b"{}", {}).status_code == 200


def test_a_name_with_any_private_address_is_refused(fake_dns, receiver, private_refused):
    names, _ = fake_dns
    names["mixed.test"] = ["93.184.215.14", "10.0.0.5"]

    with pytest.raises(OutboundRefused) as raised:
        post_json(f"http://mixed.test:{receiver.port}/echo", b"{}", {})

    assert "mixed.test (10.0.0.5) is a private address" in str(raised.value)
    assert str(raised.value).startswith(f"http://mixed.test:{receiver.port}: ")


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/hook", "not ftp:"),
        ("file:///etc/passwd", "not file:"),
        ("gopher://example.com/", "not gopher:"),
        ("javascript:alert(1)", "not javascript:"),
        ("//example.com/hook", "the URL has no scheme"),
        ("http:///hook", "no host"),
        ("http://[::1/hook", "not a valid URL"),
    ],
)
def test_other_schemes_and_broken_urls_are_refused(private_allowed, url, message):
    with pytest.raises(OutboundRefused) as raised:
        post_json(url, b"{}", {})

    assert raised.value.retryable is False and message in str(raised.value)


@pytest.mark.parametrize(
    "address, reason",
    [
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "a loopback address"),
        ("::ffff:10.0.0.1", "a private address (as ::ffff:a00:1)"),
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "a loopback address (embedded in 2001:0:4136:e378:8000:63bf:80ff:fffe)",
        ),
        ("fe80::1%eth0", "a link-local address"),
    ],
)
def test_forbidden_address_reason(address, reason):
    assert forbidden_address_reason(address) == reason


# --- The connection goes to the address that was checked -----------------------------------------


def test_the_checked_address_is_dialled_and_the_host_name_kept(fake_dns, receiver, private_allowed):
    names, lookups = fake_dns
    answers = iter([["127.0.0.1"], ["203.0.113.9"]])  # a second lookup would get another address
    names["rebind.test"] = lambda: next(answers)

    response = post_json(f"http://rebind.test:{receiver.port}/echo", b'{"k": "v"}', {}, timeout=2)

    assert response.status_code == 200
    echoed = json.loads(response.body)
    assert echoed["host"] == f"rebind.test:{receiver.port}" and echoed["body"] == '{"k": "v"}'
    assert lookups == ["rebind.test"]  # resolved once; the connection used that answer


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An HTTPS receiver on 127.0.0.1 with a certificate for tls.test only, trusted by core.outbound."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=tls.test"]
        + ["-addext", "subjectAltName=DNS:tls.test"],
        check=True,
        capture_output=True,
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_names = []
    server_context.sni_callback = lambda sock, name, context: server_names.append(name)
    monkeypatch.setattr(outbound, "_ssl_context", lambda: ssl.create_default_context(cafile=str(cert)))
    server = Receiver(ssl_context=server_context)
    yield server, server_names
    server.stop()


def test_https_to_the_checked_address_keeps_sni_and_certificate_checks(fake_dns, tls_receiver, private_allowed):
    names, lookups = fake_dns
    names["tls.test"] = ["127.0.0.1"]
    names["other-name.test"] = ["127.0.0.1"]
    server, server_names = tls_receiver

    response = post_json(server.url("/echo", host="tls.test", scheme="https"), b"{}", {}, timeout=5)

    assert response.status_code == 200
    assert json.loads(response.body)["host"] == f"tls.test:{server.port}"
    assert server_names == ["tls.test"]  # SNI: the name, not 127.0.0.1

    # The certificate is checked against the URL's name, not the address dialled.
    with pytest.raises(OutboundConnectionError) as raised:
        post_json(server.url("/echo", host="other-name.test", scheme="https"), b"{}", {}, timeout=5)
    assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value) or "certificate" in str(raised.value).lower()
    assert lookups == ["tls.test", "other-name.test"]
