"""Start-up of the `mdr` command (issue 11): wall time and what it imports, for the working tree and git revisions.

    .venv/bin/python benchmarks/bench_startup.py [--before REV...] [--repeat 10] [--write-results]

Each command (`mdr --help`, `mdr recipes`, `mdr run --help`, `mdr train --help`) runs `--repeat` times in a fresh
interpreter of this venv, timed from process start to exit; best and median are printed. One more run under
`python -X importtime` gives the number of modules imported, whether datatrove's executors, torch and pyarrow are
among them, and the slowest top-level imports (cumulative).

Every tree, the working tree included, is imported the same way, so the figures compare: a temporary folder holds an
`mdr` package built from symbolic links to the tree's folders as its pyproject maps them (`mdr.pipeline` ->
`pipeline/`, ...), put first on sys.path (the venv's editable-install finder comes after the path finder, so it is
never asked), and the command calls the entry point that tree's pyproject names for the `mdr` script. `--before
REV...` checks each REV out in a temporary git worktree and measures it beside the working tree.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from results import machine, table, write_section

REPO = Path(__file__).resolve().parents[1]
RESULTS_HEADING = "## Start-up (issue 11): `mdr --help`, `mdr recipes`, `mdr run/train --help` (`bench_startup.py`)"
COMMANDS = [["--help"], ["recipes"], ["run", "--help"], ["train", "--help"]]
WATCHED = {"datatrove executors": "datatrove.executor", "torch": "torch", "pyarrow": "pyarrow"}


def package_shim(tree: Path, into: Path) -> tuple[Path, str]:
    """A folder whose `mdr` package links to `tree`'s code as its pyproject maps it; and the `mdr` entry point."""
    project = tomllib.loads((tree / "pyproject.toml").read_text())
    package_dir = project["tool"]["setuptools"]["package-dir"]
    root = into / "mdr"
    root.mkdir(parents=True)
    for entry in (tree / package_dir["mdr"]).iterdir():
        if entry.name != "__pycache__":
            (root / entry.name).symlink_to(entry)
    for package, folder in package_dir.items():
        if package != "mdr":  # mdr.pipeline -> mdr/pipeline
            (root / package.removeprefix("mdr.")).symlink_to(tree / folder)
    return into, project["project"]["scripts"]["mdr"]


def command_line(shim: Path, entry_point: str, argv: list[str], importtime: bool = False) -> list[str]:
    module, function = entry_point.split(":")
    code = (f"import sys; sys.path.insert(0, {str(shim)!r}); sys.argv = ['mdr', *{argv!r}]; "
            f"from {module} import {function}; sys.exit({function}())")
    return [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", code]


def check_shim(shim: Path, entry_point: str, tree: Path) -> None:
    """The entry point's module really comes from `tree` (not from the editable install)."""
    module = entry_point.split(":")[0]
    code = (f"import sys; sys.path.insert(0, {str(shim)!r}); import os, {module} as m; "
            "print(os.path.realpath(m.__file__))")
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=tempfile.gettempdir()).stdout.strip()
    if not Path(where).is_relative_to(tree.resolve()):
        raise SystemExit(f"{module} imported from {where}, not from {tree}")


def measure(shim: Path, entry_point: str, argv: list[str], repeat: int) -> dict:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command_line(shim, entry_point, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True, cwd=tempfile.gettempdir())
        seconds.append(time.perf_counter() - start)
    report = subprocess.run(command_line(shim, entry_point, argv, importtime=True), capture_output=True, text=True,
                            check=True, cwd=tempfile.gettempdir()).stderr
    # "import time: self [us] | cumulative | imported package", nested imports indented under their importer.
    rows = [line.split("|") for line in report.splitlines() if line.startswith("import time:") and "[us]" not in line]
    names = [row[2].strip() for row in rows]
    slowest: dict[str, int] = {}  # third-party or standard package -> its slowest import (cumulative microseconds)
    for row, name in zip(rows, names):
        package = name.split(".")[0]
        if package != "mdr" and package not in sys.builtin_module_names and not name.startswith("_frozen"):
            slowest[package] = max(slowest.get(package, 0), int(row[1]))
    top = sorted(slowest.items(), key=lambda item: -item[1])[:4]
    return {"best": min(seconds), "median": statistics.median(seconds), "modules": len(names),
            "datatrove": sum(name.split(".")[0] == "datatrove" for name in names),
            "imports": {label: any(n == prefix or n.startswith(prefix + ".") for n in names)
                        for label, prefix in WATCHED.items()},
            "executors": sorted(n for n in names if n.startswith("datatrove.executor")),
            "top": [f"{package} {microseconds / 1e6:.2f}" for package, microseconds in top]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", nargs="+", default=[], metavar="REV",
                        help="also measure these git revisions (e.g. dec7aad)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--write-results", action="store_true", help="replace this benchmark's RESULTS.md section")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        trees, worktrees = {}, []
        for revision in args.before:
            worktrees.append(Path(scratch) / f"worktree-{len(worktrees)}")
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktrees[-1]), revision],
                           check=True, capture_output=True)
            short = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", revision],
                                   check=True, capture_output=True, text=True).stdout.strip()
            trees[short] = worktrees[-1]
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        trees[f"working tree ({head})"] = REPO
        results = {}
        try:
            for number, (label, tree) in enumerate(trees.items()):
                shim, entry_point = package_shim(tree, Path(scratch) / f"shim-{number}")
                check_shim(shim, entry_point, tree)
                for argv in COMMANDS:
                    result = results[label, " ".join(["mdr", *argv])] = measure(shim, entry_point, argv, args.repeat)
                    print(f"{label}: mdr {' '.join(argv)}: best {result['best']:.2f} s, "
                          f"median {result['median']:.2f} s", flush=True)
        finally:
            for worktree in worktrees:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=True)
    rows = [("command", "tree", "best s", "median s", "modules", "of datatrove", *WATCHED,
             "slowest packages to import (s, cumulative)")]
    order = list(trees)  # the revisions as given, then the working tree
    by_command = sorted(results.items(), key=lambda item: (item[0][1], order.index(item[0][0])))
    for (label, command), result in by_command:
        rows.append((f"`{command}`", label, f"{result['best']:.2f}", f"{result['median']:.2f}", str(result["modules"]),
                     str(result["datatrove"]),
                     *("yes" if result["imports"][watched] else "no" for watched in WATCHED),
                     ", ".join(result["top"])))
    lines = table(rows)
    print("\n".join(lines))
    importing: dict[tuple[str, tuple[str, ...]], list[str]] = {}  # (tree, datatrove executor modules) -> commands
    for (label, command), result in by_command:
        if result["executors"]:
            importing.setdefault((label, tuple(result["executors"])), []).append(f"`{command}`")
    if args.write_results:
        before = f"--before {' '.join(args.before)} " if args.before else ""
        section = "\n".join([
            RESULTS_HEADING, "",
            f"- date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())}; load average before the run: "
            f"{' '.join(f'{x:.2f}' for x in load)}",
            f"- machine: {machine()}",
            f"- command: `.venv/bin/python benchmarks/bench_startup.py {before}--repeat {args.repeat} --write-results`",
            f"- wall seconds from process start to exit, best and median of {args.repeat}; modules and imports from "
            "one more run under `python -X importtime`; the machine is shared, so medians are noisy", "",
            *lines, "",
            *(f"- at {label}, {', '.join(commands)} import {', '.join(executors)}"
              for (label, executors), commands in importing.items()), ""])
        write_section(section, RESULTS_HEADING)


if __name__ == "__main__":
    main()
