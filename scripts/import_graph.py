"""
The app-level import graph: which app imports which, and how many modules make each edge.
`make import-graph` prints it (`ARGS=-v`: the module-level imports behind each edge). The apps and
their order are the layers contract's in pyproject.toml; tests and benchmarks are not apps.
"""

import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import grimp

PROJECT = Path(__file__).resolve().parents[1]
_CONTRACT = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
# Top to bottom; "alerts | marketplace" is one layer of two independent apps.
APPS = tuple(app.strip() for layer in _CONTRACT["layers"] for app in layer.split("|"))


def app_edges() -> dict[tuple[str, str], list[str]]:
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    edges = defaultdict(list)
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            source, target = importer.split(".")[0], imported.split(".")[0]
            if source != target:
                edges[(source, target)].append(f"{importer} -> {imported}")
    return edges


def main(verbose: bool) -> None:
    edges = app_edges()
    for (source, target), imports in sorted(
        edges.items(), key=lambda item: (APPS.index(item[0][0]), APPS.index(item[0][1]))
    ):
        upward = APPS.index(target) < APPS.index(source)
        print(f"{source:12} -> {target:12} {len(imports):3} import(s){'   UPWARD' if upward else ''}")
        if verbose:
            for line in sorted(imports):
                print(f"{'':16}{line}")


if __name__ == "__main__":
    sys.path.insert(0, str(PROJECT))
    main(verbose="-v" in sys.argv[1:])
