"""
The app-level import graph: which app imports which, and how many modules make each edge.
`make import-graph` prints it (add -v for the module-level imports behind each edge). Tests,
migrations and benchmarks are left out, as the layers contract in pyproject.toml leaves them out.
"""

import sys
from collections import defaultdict
from pathlib import Path

import grimp

APPS = ("config", "proactive", "alerts", "marketplace", "billing", "tenants", "core")  # top to bottom


def app_edges() -> dict[tuple[str, str], list[str]]:
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    edges = defaultdict(list)
    for importer in graph.modules:
        if ".migrations" in importer:
            continue
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
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main(verbose="-v" in sys.argv[1:])
