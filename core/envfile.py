"""`KEY=value` files: what the settings and the demo share (plain Python: settings import it early)."""

from pathlib import Path


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines (what `set -a; . file` also reads); blank lines and `#` comments skipped."""
    if not path.is_file():
        return {}
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}
