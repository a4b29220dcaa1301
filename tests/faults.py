"""
Real faults for the outage tests: the test database refusing connections with its backends
terminated, and a TCP proxy in front of Redis that can be cut and restored.
"""

import logging
import socket
import threading
import time
from contextlib import contextmanager

import psycopg
from django.db import connection


class DatabaseOutage:
    """
    PostgreSQL going away for the test database: every backend of it is terminated and new
    connections are refused (ALLOW_CONNECTIONS false), from a superuser connection to another
    database, until `end()` (or `seconds` after `start()`).
    """

    def __init__(self):
        settings = connection.settings_dict
        self.database = settings["NAME"]
        self._admin = dict(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        )
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._timer: threading.Timer | None = None

    def _run(self, sql: str, *params) -> None:
        with psycopg.connect(**self._admin) as admin:
            admin.execute(sql, params)

    def start(self, seconds: float | None = None) -> None:
        self.started_at = time.monotonic()
        self._run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
        self._run(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            self.database,
        )
        if seconds is not None:
            self._timer = threading.Timer(seconds, self.end)
            self._timer.start()

    def end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._run(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')
        if self.ended_at is None and self.started_at is not None:
            self.ended_at = time.monotonic()


@contextmanager
def database_outage():
    """An outage that the test starts (`start(seconds)`) and that is always over on the way out."""
    outage = DatabaseOutage()
    try:
        yield outage
    finally:
        outage.end()
        connection.close()  # this thread's connection was terminated with the others


class TcpProxy:
    """
    127.0.0.1:<port> → upstream, one thread per direction. `cut()` closes the listener and every
    connection through it (the service is gone for its clients); `restore()` listens again.
    """

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def lines_logged(level: int = logging.INFO):
    """Every record that reaches the root logger, from any thread, while inside."""

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    records: list[logging.LogRecord] = []
    handler = Keep(level)
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)  # whatever an earlier worker or test left it at
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
