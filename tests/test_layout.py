"""mdr/layout.py: the paths of a run's OUT, and the check that no other module of mdr spells one of them."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mdr import layout as layout_module
from mdr.layout import (MERGED_STATS_FILE, AblationLayout, DedupContext, RunLayout, TrainLayout, task_log_name,
                        task_stats_name)

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["mdr", "pipeline", "filters", "dedup", "train", "experiments", "benchmarks"]  # mdr, mdr.pipeline, ...


def _paths_given(layout) -> set[str]:
    """The names in every path `layout` (a RunLayout or TrainLayout at "OUT") gives: its properties, and its methods
    called with a placeholder name (or step 0)."""
    paths = []
    for name, member in vars(type(layout)).items():
        if name.startswith("_") or not (isinstance(member, property) or callable(member)):
            continue
        value = getattr(layout, name)
        if callable(value):
            value = value(*(0 if parameter in ("step", "seed") else "PLACE"
                            for parameter in inspect.signature(value).parameters))
        paths += list(value) if isinstance(value, (tuple, list)) else [value]
    return {part for path in paths for part in path.relative_to(layout.root).parts} - {"PLACE"}


def layout_names() -> tuple[set[str], set[str]]:
    """(folder names, file names) of every path RunLayout, TrainLayout, AblationLayout and the logging-dir names
    give, read off the module itself so that a path added there is checked here too. A kept checkpoint's
    step_NNNNNN.pt is made of a number, not spelled as a whole."""
    ablation = AblationLayout(Path("OUT"))  # seedN and <set>.parquet are made of a number or a name too
    parts = _paths_given(RunLayout(Path("OUT"))) | _paths_given(ablation) - {ablation.run("PLACE", 0).name,
                                                                             ablation.eval_set("PLACE").name}
    parts |= _paths_given(TrainLayout(Path("OUT"))) - {TrainLayout(
        Path("OUT")).kept_checkpoint(0).name}
    parts |= {Path(task_stats_name(0)).parent.name, Path(task_log_name(0)).parent.name, MERGED_STATS_FILE}
    files = {part for part in parts if "." in part}
    return parts - files, files


FOLDERS, FILES = layout_names()
NAMES = FOLDERS | FILES
# Calls whose string arguments are paths: joins, constructors, and what opens, lists or tests a file (pathlib, os,
# glob, fsspec and datatrove's DataFolder).
PATH_CALLS = {"join", "joinpath", "Path", "PurePath", "PurePosixPath", "open", "glob", "rglob", "iglob", "exists",
              "isdir", "isfile", "list_files", "get_datafolder", "resolve_paths", "mkdir", "makedirs", "listdir",
              "scandir", "walk", "with_name", "relative_to", "rm", "mv", "find"}
_FORMATTED = "\0"  # stands for a {value} of an f-string


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else _FORMATTED for v in node.values)
    return None


def _names_of(text: str | None) -> set[str]:
    return set(text.split("/")) & NAMES if text is not None else set()


def _shared_data(node: ast.AST) -> bool:
    """Whether `node` (a path joined with `/`, or a string) is under ../shared/data, the project's input data
    (WARCs, texts), which the benchmarks and tests read: a "data" there is no run's OUT/data."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return _shared_data(node.left) or _shared_data(node.right)
    return "shared" in (_text(node) or "").split("/")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and _text(first.value) is not None:
                found.add(id(first.value))
    return found


def _callee(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def spelled_paths(source: str) -> list[int]:
    """Lines of `source` that spell a path of the run layout as a string: an operand of `/`, a path argument of a
    call, a string without spaces holding one as a component ("logs/task_{rank}.log", base + "/data"), one of the
    layout's file names anywhere, or an UPPER_CASE constant set to one of its folder names. Docstrings, dict keys,
    column and field names ("data", "stats" as words) and paths under ../shared/data are not paths of a run."""
    tree = ast.parse(source)
    skipped = _docstrings(tree)
    lines = set()
    for node in ast.walk(tree):
        if id(node) in skipped or _shared_data(node):
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            if _names_of(_text(node.left)) or _names_of(_text(node.right)):
                lines.add(node.lineno)
        elif isinstance(node, ast.Call) and _callee(node) in PATH_CALLS:
            if any(_names_of(_text(arg)) for arg in [*node.args, *(k.value for k in node.keywords)]):
                lines.add(node.lineno)
        elif isinstance(node, ast.Assign) and _text(node.value) in FOLDERS:
            if any(isinstance(target, ast.Name) and target.id.isupper() for target in node.targets):
                lines.add(node.lineno)
        text = _text(node) if isinstance(node, (ast.Constant, ast.JoinedStr)) else None
        if text is not None and (text in FILES or "/" in text and not re.search(r"\s", text) and _names_of(text)):
            lines.add(node.lineno)
    return sorted(lines)


def test_the_layout_names_every_folder_and_file_of_out():
    assert FOLDERS == {"data", "filtered", "deduped", "excluded", "logs", "work", "stats", "completions", "progress",
                       "taps", "checkpoints", "abandoned", "tensorboard", "arms", "eval", "runs", "run", "tokens"}
    assert FILES == {"run.json", ".lock", "stats.json", "cluster_sizes.json", "ckpt.pt", "metrics.jsonl",
                     "manifest.json", "tokenizer.json", "tokenizer.settings.json", "train.parquet",
                     "tokenizer-sample.parquet", "result.json", "ablation.json", "ablation.html",
                     "continuation.jsonl"}


def test_no_module_but_the_layout_spells_an_output_path():
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "mdr" / "layout.py":
                continue
            found += [f"{path.relative_to(REPO)}:{line}" for line in spelled_paths(path.read_text())]
    assert not found, "output paths spelled outside mdr/layout.py (use RunLayout): " + ", ".join(found)


# Lines as mdr spelled them before mdr/layout.py (commit 62c157f): runner, stats, progress, report, dedup, tokenizer,
# executors, CLI.
BEFORE = [
    'source = out / "filtered" if dedups else out / "data"',
    'target = out / "data" if number == len(dedups) - 1 else out / "deduped" / stage.key',
    'return str(self.output / "work" / stage)',
    'progress_dir=str(plan.phase_dir(FILTER_PHASE) / "progress")',
    'RUN_FILE = "run.json"',
    'LOCK_FILE = ".lock"',
    'for path in sorted((phase_dir / "stats").glob("[0-9]*.json")): pass',
    'done = len(list((phase_dir / "completions").glob("*")))',
    'for path in sorted((out / "logs").glob("*/cluster_sizes.json")): pass',
    'histogram = f"{context.logging_dir(\'minhash_clusters\')}/cluster_sizes.json"',
    'data = base + "/data"',
    'logfile = _LogFile(logging_dir.open(f"logs/task_{rank:05d}.log", "w"))',
    'executor.logging_dir.open(f"stats/{rank:05d}.json", "r")',
    'executor.logging_dir.open("stats.json", "wt")',
    '_tell(f"{result[\'output_docs\']:,} documents out -> {plan.output / \'data\'}")',
    'os.path.join(out, "excluded", stage)',
    'DATA = "data"',
]


@pytest.mark.parametrize("line", BEFORE)
def test_the_check_finds_how_paths_were_spelled(line):
    assert spelled_paths(line) == [1]


# The same words where they are no paths.
OTHER_USES = [
    'for counter, value in step.get("stats", {}).items(): pass',
    'settings = {"vocab_size": size, "data": files}',
    'files = row["data"]',
    'config = TrainConfig(data=files, progress=True)',
    'KEYS = ("compile", "device", "progress", "resume", "data")',
    'stats = verbs.add_parser("stats", help="the per-stage funnel of a run")',
    'frame = pl.col("data")',
    'raise RecipeError(f"writes {out}/ then OUT/data/ and logs/ of {phase}")',
    'def f():\n    """Kept documents in OUT/data/, dropped ones in OUT/excluded/<stage>/."""',
    'PHASE = "filter"',
    'DEFAULT_WARC = REPO / ".." / "shared" / "data" / "warc" / "pages" / "dev-pages-531.warc.gz"',
    'DEFAULT_WARC = Path(__file__).resolve().parents[1] / "../shared/data/warc/pages/dev-pages-531.warc.gz"',
]


@pytest.mark.parametrize("line", OTHER_USES)
def test_the_check_leaves_other_uses_of_the_words_alone(line):
    assert spelled_paths(line) == []


def test_paths_of_a_run():
    run = RunLayout("/runs/a")
    assert run.root == Path("/runs/a")
    assert (run.run_file, run.lock, run.data, run.filtered) == (
        Path("/runs/a/run.json"), Path("/runs/a/.lock"), Path("/runs/a/data"), Path("/runs/a/filtered"))
    assert run.excluded("url") == run.excluded_dir / "url" == Path("/runs/a/excluded/url")
    assert run.deduped("minhash") == Path("/runs/a/deduped/minhash")
    assert run.work("minhash") == Path("/runs/a/work/minhash")
    assert run.logs("filter") == run.logs_dir / "filter" == Path("/runs/a/logs/filter")
    assert run.stats("filter") == run.logs("filter") / Path(task_stats_name(7)).parent
    assert run.progress("filter") == Path("/runs/a/logs/filter/progress")
    assert run.completions("filter") == Path("/runs/a/logs/filter/completions")
    assert run.cluster_sizes("minhash_clusters") == Path("/runs/a/logs/minhash_clusters/cluster_sizes.json")


def test_dedup_context_folders_are_the_layouts():
    context = DedupContext(layout=RunLayout(Path("/runs/a")), input_folder="/runs/a/filtered",
                           output_folder="/runs/a/data", tasks=2, input_files=["x.warc"])
    assert context.work_dir("url_dedup") == "/runs/a/work/url_dedup"
    assert context.logging_dir("url_dedup_index") == "/runs/a/logs/url_dedup_index"


def test_logging_dir_names_are_datatroves(tmp_path):
    """A datatrove task writes its stats, completion mark and log under the names the layout gives."""
    from datatrove.executor import LocalPipelineExecutor

    run = RunLayout(tmp_path)
    LocalPipelineExecutor(pipeline=[], tasks=2, workers=1, logging_dir=str(run.logs("phase"))).run()
    assert sorted(p.name for p in run.completions("phase").iterdir()) == ["00000", "00001"]
    for rank in range(2):
        assert (run.logs("phase") / task_stats_name(rank)).is_file()
        assert (run.logs("phase") / task_log_name(rank)).is_file()
    assert sorted(run.stats("phase").glob("*.json")) == [run.logs("phase") / task_stats_name(r) for r in range(2)]
    assert (run.logs("phase") / MERGED_STATS_FILE).is_file()


def _tree(text: str) -> set[str]:
    """The OUT/... paths a layout tree names, with <stage> and <phase> as they are written."""
    return {re.sub(r"/(\*\.parquet)?$", "", path) for path in re.findall(r"(?m)^\s*(OUT/\S+)", text)}


def test_the_readme_and_the_module_show_the_layouts_paths():
    run = RunLayout(Path("OUT"))
    paths = {run.run_file, run.lock, run.data, run.filtered, run.deduped("<stage>"), run.excluded("<stage>"),
             run.logs("<phase>"), run.work("<stage>"), run.tap("<stage>")}
    expected = {path.as_posix() for path in paths}
    readme = (REPO / "README.md").read_text().split("### Output", 1)[1].split("```")[1]
    assert _tree(readme.replace("OUT/filtered/, OUT/deduped", "OUT/filtered/\nOUT/deduped")) == expected
    assert _tree(layout_module.__doc__) == expected - {"OUT/filtered", "OUT/deduped/<stage>", "OUT/work/<stage>"}


def test_the_layout_imports_nothing_heavy():
    """`mdr --help`, the dedup stages' plans and the trainer import it: no datatrove, pyarrow, polars or torch."""
    code = "import sys, mdr.layout; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
                 .stdout.split())
    assert not {"datatrove", "pyarrow", "polars", "torch", "numpy", "huggingface_hub"} & loaded
    # `import mdr` installs the import hook of mdr/patches/huggingface_hub.py (the standard library only)
    hook = {"mdr.patches", "mdr.patches.huggingface_hub", "mdr.errors"}
    assert {name for name in loaded if name.startswith("mdr")} == {"mdr", "mdr.layout"} | hook
