"""
`make run` as a person uses it: it comes up, serves the demo, every command the docs print works
against it as printed, and Ctrl-C stops it cleanly.
"""

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Terminal:
    """`make run` in a pseudo-terminal: what a person sees, and the Ctrl-C they type."""

    def __init__(self, tmp_path, port: int):
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        env.update(VAR_DIR=str(tmp_path / "var"), PORT=str(port))
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: make, as typed at a shell
            os.chdir(PROJECT)
            os.execvpe("make", ["make", "--no-print-directory", "run"], env)
        self.output = b""

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, min(0.2, end - time.monotonic())))
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:
                    return

    def text(self) -> str:
        return self.output.decode(errors="replace")


# Pages whose shell examples run against `make run` as printed (operations.md's deploy steps need
# a production environment, performance.md seeds its own database).
EXAMPLE_PAGES = ("api.md", "marketplace.md", "billing.md", "engine.md", "guide.md", "channels.md")


ERROR_BODY = re.compile(r'"error":\s*"[a-z_]+",\s*"detail"')  # an API error answer


def documented_commands() -> list[tuple[str, str]]:
    """(where, shell text) for every ```sh block of those pages and every inline manage.py command in docs/."""
    commands = []
    for page in EXAMPLE_PAGES:
        text = (PROJECT / "docs" / page).read_text()
        commands += [
            (page, block) for block in re.findall(r"```sh\n(.*?)```", text, re.S) if "pip install" not in block
        ]  # generating a client downloads a package
    for page in sorted((PROJECT / "docs").glob("*.md")):
        for command in re.findall(r"`(DEBUG=1 \.venv/bin/python manage\.py [^`]*)`", page.read_text()):
            if "…" not in command and "<" not in command:
                commands.append((page.name, command))
    return commands


def run_documented(command: str, *, port: int, var: Path) -> subprocess.CompletedProcess:
    """One documented command, as printed, with the demo's secrets loaded as the docs say to."""
    script = (
        "set -eo pipefail\n"
        + f"set -a; . {var}/demo.env; set +a\n"
        + command.replace("localhost:8000", f"127.0.0.1:{port}").replace("var/demo.env", f"{var}/demo.env")
    )
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        ["bash", "-c", script],
        cwd=PROJECT,
        env={**env, "VAR_DIR": str(var)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=PROJECT, capture_output=True, text=True
    ).stdout


def test_make_run_serves_the_demo_and_stops_cleanly_on_ctrl_c(tmp_path):
    status_before = git_status()
    port = free_port()
    terminal = Terminal(tmp_path, port)
    try:
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline and health is None:
            terminal.read(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    health = response.status
            except OSError:
                pass
        assert health == 200, terminal.text()[-3000:]
        terminal.read(5)  # the worker and beat settle

        ran = []
        for page, command in documented_commands():
            result = run_documented(command, port=port, var=tmp_path / "var")
            terminal.read(0)
            ran.append(page)
            assert result.returncode == 0, f"{page}: {command}\n{result.stdout}\n{result.stderr}"
            assert not ERROR_BODY.search(result.stdout), f"{page}: {command}\n{result.stdout}"
        assert set(ran) == set(EXAMPLE_PAGES) and len(ran) == len(documented_commands()) >= 15
        signed = next(command for page, command in documented_commands() if "openssl dgst" in command)
        again = run_documented(signed, port=port, var=tmp_path / "var")
        assert json.loads(again.stdout.splitlines()[-1]) == {
            "received": True,
            "id": "evt_manual_1",
            "outcome": "applied",
            "duplicate": True,
            "reason": "",
        }
        before_ctrl_c = len(terminal.output)

        os.write(terminal.fd, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground process group
        stopped_at = None
        end = time.monotonic() + 30
        while time.monotonic() < end:
            terminal.read(0.2)
            done, status = os.waitpid(terminal.pid, os.WNOHANG)
            if done:
                stopped_at = time.monotonic() - (end - 30)
                break
        terminal.read(0.5)
    finally:
        try:
            os.killpg(terminal.pid, signal.SIGKILL)
        except OSError:
            pass

    shutdown = terminal.output[before_ctrl_c:].decode(errors="replace")
    assert stopped_at is not None and stopped_at < 8, shutdown
    for process in ("web.1", "worker.1", "beat.1"):
        assert f"{process} stopped" in shutdown
    assert "SIGKILL" not in shutdown and "ERROR" not in shutdown and "Traceback" not in shutdown, shutdown
    assert git_status() == status_before  # runtime state (database, broker, secrets) stays out of the tree
    banner = terminal.text()
    assert (tmp_path / "var" / "demo.env").is_file()
    assert "API key (new)" in banner and "set -a;" in banner
