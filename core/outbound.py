"""
Safe outbound HTTP: one JSON POST to a URL a tenant gave us (Slack, PagerDuty, signed webhooks).

A receiver's URL is untrusted input. ``post_json`` sends to it with these guarantees:

* **Only http and https.** Any other scheme (``ftp:``, ``file:``, …) or a URL without a host is
  refused (``OutboundRefused``) before anything is resolved or sent.
* **No private addresses** unless ``settings.OUTBOUND_ALLOW_PRIVATE_ADDRESSES`` is on (development
  and the test suite). The host is resolved once with ``socket.getaddrinfo``; if *any* of its
  addresses is loopback, private, link-local (169.254.169.254, the cloud metadata service),
  shared (100.64/10), multicast, reserved or unspecified — IPv4 or IPv6, including IPv4-mapped
  (``::ffff:127.0.0.1``), 6to4 and Teredo addresses that embed such an IPv4 address — the request
  is refused. Numeric spellings (``2130706433``, ``0x7f.1``) are resolved like names, so they are
  checked too.
* **No DNS rebinding.** The connection is made to the very address that was checked: the
  transport's network backend resolves, checks and then dials the IP itself, while the URL — and
  therefore the ``Host`` header, TLS SNI and certificate verification — keeps the host name. A
  second lookup that would answer 127.0.0.1 never happens.
* **No redirects.** Redirects are not followed at all (the simplest safe behaviour): a 3xx is
  returned like any other non-2xx response, and it is final (``is_retryable_status`` is False).
  The receiver's ``Location`` is in ``response.headers["location"]`` for the log.
* **Bounded time.** ``timeout`` is the deadline of the whole exchange: DNS, connect, TLS
  handshake, sending, the response headers and body. Each socket operation waits at most for what
  is left of it, so a receiver that trickles a byte at a time cannot hold the caller longer than
  ``timeout`` seconds (``OutboundTimeout``). A DNS lookup runs in a daemon thread that the caller
  stops waiting for at the deadline (the resolver gives the thread up later by itself).
* **Bounded body.** At most ``max_response_bytes`` of the response body are read; the connection
  is closed on the rest (``response.truncated`` says so). The body is asked for and returned
  without content encoding (``Accept-Encoding: identity``), so no decompression can inflate it.
  Response headers are bounded by the HTTP parser (h11, 100 KiB).
* **No ambient configuration.** Proxies from the environment and ``.netrc`` credentials are not
  used (a proxy would make the address check meaningless). HTTP/1.1 only, no connection reuse.

Non-2xx responses are not exceptions: the caller gets an ``OutboundResponse`` and decides with
``response.retryable`` (5xx, 408, 429). Failures to get a response raise an ``OutboundError``
whose ``retryable`` says whether trying again later may help. Messages name the URL's origin only
(``https://hooks.slack.com``), never its path or query, which often hold the receiver's secret.

Usage::

    try:
        response = post_json(url, json.dumps(payload).encode(), {"X-Signature": signature})
    except OutboundError as error:
        retry_later = error.retryable
    else:
        retry_later = response.retryable  # False for a 2xx
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
import typing
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType

import httpcore
import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

USER_AGENT = "ProactiveInsights/1 (+notifications)"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024

_ALLOWED_SCHEMES = frozenset({"http", "https"})
_WRITE_CHUNK = 16 * 1024  # the deadline is re-checked between chunks of the request body


# --- Errors -------------------------------------------------------------------------------------


class OutboundError(Exception):
    """No response was received. ``retryable``: whether the same request may succeed later."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable


class OutboundTimeout(OutboundError):
    """The deadline passed (DNS, connect, TLS, sending or receiving). Retryable."""

    retryable = True


class OutboundConnectionError(OutboundError):
    """The host could not be resolved or reached, the TLS handshake failed, or the connection broke. Retryable."""

    retryable = True


class OutboundRefused(OutboundError):
    """We do not send to this URL: not http(s), no host, or a forbidden address. Not retryable."""

    retryable = False


# --- Responses ----------------------------------------------------------------------------------


def is_retryable_status(status: int) -> bool:
    """5xx, 408 (Request Timeout) and 429 (Too Many Requests) may succeed later; 1xx-4xx otherwise are final."""
    return 500 <= status <= 599 or status in (408, 429)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """
    Seconds to wait from a Retry-After header: delta-seconds (``"7"``) or an HTTP-date (a date in
    the past gives 0.0). None when absent or unparseable. The value is the receiver's: callers cap it.
    """
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        try:
            return float(int(value))
        except (ValueError, OverflowError):  # more digits than int() parses or a float holds
            return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime dates and "-0000" carry no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


@dataclasses.dataclass(frozen=True)
class OutboundResponse:
    status_code: int
    body: bytes  # at most max_response_bytes, exactly as received (no content decoding)
    duration_ms: float  # from the call to the last byte read
    retry_after_seconds: float | None  # parsed Retry-After (delta-seconds or HTTP-date), None without one
    headers: Mapping[str, str]  # read-only; names lower-cased, repeated headers joined with ", "
    truncated: bool = False  # the body had more than max_response_bytes; the rest was not read

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code <= 299

    @property
    def retryable(self) -> bool:
        return is_retryable_status(self.status_code)


# --- The address policy -------------------------------------------------------------------------


def forbidden_address_reason(address: str) -> str | None:
    """
    Why we do not connect to this IP address when private addresses are not allowed, or None when
    it is a public unicast address. ``address`` is an IPv4 or IPv6 literal (an IPv6 zone is allowed).
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d reaches a.b.c.d on a dual-stack socket
            reason = forbidden_address_reason(str(ip.ipv4_mapped))
            return f"{reason} (as {ip})" if reason else None
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = forbidden_address_reason(str(embedded))
            if reason:
                return f"{reason} (embedded in {ip})"
    for attribute, reason in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, attribute):
            return reason
    if not ip.is_global:  # e.g. 100.64.0.0/10, shared address space (carrier-grade NAT)
        return "not a public address"
    return None


def _private_addresses_allowed() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE_ADDRESSES", False))


def _origin(url: httpx.URL) -> str:
    """The part of a URL that may appear in messages and logs: never its path or query."""
    host = url.host
    host = f"[{host}]" if ":" in host else host
    return f"{url.scheme}://{host}" + (f":{url.port}" if url.port is not None else "")


_sending = contextvars.ContextVar("core.outbound sending", default=False)


class _RedactRequestUrls(logging.Filter):
    """
    httpx logs every request's full URL at INFO ("HTTP Request: POST <url> ..."). A webhook URL is
    a secret (Slack's path is its token): in the requests post_json sends, keep only the origin.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _sending.get() and isinstance(record.args, tuple):
            record.args = tuple(f"{_origin(arg)}/…" if isinstance(arg, httpx.URL) else arg for arg in record.args)
        return True


logging.getLogger("httpx").addFilter(_RedactRequestUrls())


# --- The transport: resolve, check, dial the checked address, under one deadline --------------


class _Deadline:
    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def bound(self, timeout: float | None, timeout_error: type[Exception], what: str) -> float:
        """The time an operation may take: its own timeout, cut to what is left of the deadline."""
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise timeout_error(f"the deadline of {self.seconds:g}s passed before {what}")
        return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read, write and TLS handshake ends at the deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: _Deadline):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.bound(timeout, httpcore.ReadTimeout, "reading"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _WRITE_CHUNK):
            chunk = buffer[start : start + _WRITE_CHUNK]
            self._stream.write(chunk, self._deadline.bound(timeout, httpcore.WriteTimeout, "writing"))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        bounded = self._deadline.bound(timeout, httpcore.ConnectTimeout, "the TLS handshake")
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


def _getaddrinfo_with_timeout(host: str, port: int, timeout: float) -> list[str]:
    """The host's addresses, in the resolver's order. getaddrinfo has no timeout: wait for it in a thread."""
    outcome: dict[str, typing.Any] = {}

    def resolve() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=resolve, name="outbound-getaddrinfo", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise OutboundTimeout(f"resolving {host} took longer than {timeout:.2g}s")
    if "error" in outcome:
        raise OutboundConnectionError(f"cannot resolve {host}: {outcome['error']}")
    addresses = list(dict.fromkeys(info[4][0] for info in outcome["infos"]))
    if not addresses:
        raise OutboundConnectionError(f"cannot resolve {host}: no address")
    return addresses


class _PinnedBackend(httpcore.NetworkBackend):
    """
    httpcore's network backend, with the address check between resolving and connecting: it dials
    the checked IP, never the name (httpcore still uses the name for Host, SNI and the certificate).
    """

    def __init__(self, *, deadline: _Deadline, allow_private: bool):
        self._deadline = deadline
        self._allow_private = allow_private
        self._backend = httpcore.SyncBackend()

    def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            addresses = [host]  # an IP literal: nothing to resolve
        except ValueError:
            bound = self._deadline.bound(timeout, OutboundTimeout, f"resolving {host}")
            addresses = _getaddrinfo_with_timeout(host, port, bound)
        if not self._allow_private:
            for address in addresses:
                reason = forbidden_address_reason(address)
                if reason:
                    shown = host if address == host else f"{host} ({address})"
                    raise OutboundRefused(
                        f"{shown} is {reason}; set OUTBOUND_ALLOW_PRIVATE_ADDRESSES to send to it (development only)"
                    )
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._addresses(host, port, timeout)
        error: Exception | None = None
        for address in addresses:  # like socket.create_connection: the first one that answers
            bound = self._deadline.bound(timeout, httpcore.ConnectTimeout, f"connecting to {host}")
            try:
                stream = self._backend.connect_tcp(address, port, bound, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        assert error is not None
        raise error

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise OutboundRefused("unix sockets are not an outbound destination")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


# httpcore's exceptions as httpx's, most specific first (what httpx.HTTPTransport does privately).
_HTTPCORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


class _HttpcoreErrorsAsHttpx:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for httpcore_error, httpx_error in _HTTPCORE_TO_HTTPX:
            if exc is not None and isinstance(exc, httpcore_error):
                raise httpx_error(str(exc)) from exc
        return False


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: typing.Iterable[bytes]):
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _HttpcoreErrorsAsHttpx():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            with _HttpcoreErrorsAsHttpx():
                close()


class _PinnedTransport(httpx.BaseTransport):
    """An httpx transport on httpcore's public connection pool, with the pinned backend. One per call."""

    def __init__(self, *, deadline: _Deadline, allow_private: bool):
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=1,
            max_keepalive_connections=0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=_PinnedBackend(deadline=deadline, allow_private=allow_private),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _HttpcoreErrorsAsHttpx():
            core_response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    def close(self) -> None:
        with _HttpcoreErrorsAsHttpx():
            self._pool.close()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), built once per process."""
    return httpx.create_ssl_context()


# --- The call -----------------------------------------------------------------------------------


def _parse_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in _ALLOWED_SCHEMES:
        shown = f"not {parsed.scheme}:" if parsed.scheme else "the URL has no scheme"
        raise OutboundRefused(f"only http and https URLs are allowed ({shown})")
    if not parsed.host:
        raise OutboundRefused("the URL has no host")
    return parsed


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> OutboundResponse:
    """
    POST ``body`` (already-encoded JSON) to ``url`` and return the response, whatever its status.

    ``headers`` are added to ``Content-Type: application/json`` and
    ``User-Agent: ProactiveInsights/1 (+notifications)``, and win over them. The whole exchange
    ends within ``timeout`` seconds; at most ``max_response_bytes`` of the body are read.

    Raises ``OutboundRefused`` (not retryable) for a URL we do not send to, ``OutboundTimeout``
    or ``OutboundConnectionError`` (retryable) when no response came, and ``OutboundError`` for
    a request httpx cannot send (a header value with a newline: not retryable).
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    if not timeout > 0:
        raise ValueError("timeout must be positive")
    if max_response_bytes < 0:
        raise ValueError("max_response_bytes must not be negative")

    started = time.monotonic()
    deadline = _Deadline(timeout)
    parsed = _parse_url(url)
    origin = _origin(parsed)
    request_headers = httpx.Headers(
        {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept-Encoding": "identity"}
    )
    request_headers.update(headers)
    client = httpx.Client(
        transport=_PinnedTransport(deadline=deadline, allow_private=_private_addresses_allowed()),
        timeout=httpx.Timeout(timeout),  # per operation; _Deadline cuts each to what is left of the total
        follow_redirects=False,
        trust_env=False,  # no proxies or .netrc from the environment
    )
    sending = _sending.set(True)
    try:
        with client, client.stream("POST", parsed, content=bytes(body), headers=request_headers) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            for chunk in response.iter_raw():
                room = max_response_bytes - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    truncated = True
                    break  # leaving the block closes the connection on the rest
                chunks.append(chunk)
                size += len(chunk)
    except OutboundError as error:
        if not error.message.startswith(origin):
            error.message = f"{origin}: {error.message}"
            error.args = (error.message,)
        raise
    except httpx.TimeoutException as exc:
        raise OutboundTimeout(f"{origin}: the exchange did not finish within {timeout:g}s ({exc})") from exc
    except httpx.LocalProtocolError as exc:
        raise OutboundError(f"{origin}: the request cannot be sent ({exc})", retryable=False) from exc
    except (httpx.TransportError, ssl.SSLError) as exc:
        # ConnectError (refused, unreachable, TLS verification), ReadError/WriteError (reset),
        # RemoteProtocolError (closed without a response, or not HTTP).
        raise OutboundConnectionError(f"{origin}: {exc or type(exc).__name__}") from exc
    finally:
        _sending.reset(sending)

    duration_ms = (time.monotonic() - started) * 1000
    response_headers = MappingProxyType(dict(response.headers))
    logger.debug("POST %s: %s in %.0f ms", origin, response.status_code, duration_ms)
    return OutboundResponse(
        status_code=response.status_code,
        body=b"".join(chunks),
        duration_ms=duration_ms,
        retry_after_seconds=parse_retry_after(response_headers.get("retry-after")),
        headers=response_headers,
        truncated=truncated,
    )
