"""pyproject.toml and what it promises (issue 11.7): `python -m mdr`, a curation install without the train extra
(no torch), a start-up that loads neither datatrove's executors nor torch, a wheel holding every module and data
file, and version bounds that agree with the series mdr/patches/ was tested with."""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from mdr.layout import RunLayout
from mdr.patches import TESTED

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SAMPLES = REPO / "data_samples"
# What a curation-only install (`pip install mdr`) lacks: the train extra, and datasketch (tests and benchmarks only).
NOT_IN_CORE = ("torch", "tensorboard", "datasketch")
# mdr's packages and the folders that hold them (pyproject's package-dir).
CODE = {"mdr": "mdr", "mdr.pipeline": "pipeline", "mdr.filters": "filters", "mdr.dedup": "dedup", "mdr.train": "train",
        "mdr.experiments": "experiments"}

# Installed as sitecustomize in the child processes of a test: the path finder no longer finds NOT_IN_CORE, as if
# they were not installed (an import raises ModuleNotFoundError, importlib.util.find_spec answers None), and every
# attempt to find one, in any process (datatrove's task processes too), is logged to MDR_BLOCKED_LOG with the file
# that made it.
_UNINSTALL = """
import os
import sys
from importlib.machinery import PathFinder

_find_spec = PathFinder.find_spec


def _hidden(cls, name, path=None, target=None):
    if name.split(".")[0] in {blocked!r}:
        frame = sys._getframe(1)
        while frame.f_code.co_filename.startswith("<frozen"):  # importlib's own frames
            frame = frame.f_back
        with open(os.environ["MDR_BLOCKED_LOG"], "a") as log:
            log.write(name + " " + frame.f_code.co_filename + "\\n")
        return None
    return _find_spec(name, path, target)


PathFinder.find_spec = classmethod(_hidden)
"""


def _without_train_extra(tmp_path: Path) -> tuple[dict, Path]:
    """The environment of an `mdr` subprocess that sees no torch, tensorboard nor datasketch; and the log of what
    it (or its children) tried to import of them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_UNINSTALL.format(blocked=set(NOT_IN_CORE)))
    log = tmp_path / "blocked.log"
    log.touch()
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "MDR_BLOCKED_LOG": str(log)}, log


def _mdr(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mdr", *args], capture_output=True, text=True, env=env, cwd=cwd)


def test_python_dash_m_mdr_is_the_mdr_command():
    help = _mdr("--help")
    assert help.returncode == 0, help.stderr
    for verb in ("run", "stats", "recipes", "tokenizer", "report", "inspect", "train", "eval", "sample", "export"):
        assert verb in help.stdout
    recipes = _mdr("recipes")
    assert recipes.returncode == 0 and recipes.stdout.split() == ["fineweb", "refinedweb"], recipes.stderr
    assert PROJECT["project"]["scripts"] == {"mdr": "mdr.cli:main"}


_MODULES_AFTER = """
import json, sys
from mdr.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # --help
    pass
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("argv", [["--help"], ["recipes"], ["recipes", "refinedweb"], ["run", "--help"],
                                  ["train", "--help"]])
def test_start_up_loads_no_executor_torch_nor_pyarrow(argv):
    """`mdr --help` and `mdr recipes` used to import datatrove's executors (0.5-0.7 s here, benchmarks/RESULTS.md);
    the modules that run a pipeline or train a model load when a verb needs them."""
    result = subprocess.run([sys.executable, "-c", _MODULES_AFTER, *argv], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    heavy = [m for m in modules if re.match(r"(datatrove\.executor|mdr\.pipeline\.executors|torch|pyarrow)(\.|$)", m)]
    assert heavy == []


@pytest.mark.slow
def test_curation_runs_without_the_train_extra(tmp_path):
    """A curation-only install: `mdr run` curates, `mdr stats` reads the run and `mdr tokenizer` trains on it; no
    module of mdr's, in any process, so much as looks for torch."""
    env, log = _without_train_extra(tmp_path)
    out = tmp_path / "out"
    result = _mdr("run", "refinedweb", "--input", str(SAMPLES / "sample-00002.warc.gz"), "--output", str(out),
                  "--workers", "1", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    assert list(RunLayout(out).data.glob("*.parquet")), result.stderr
    stats = _mdr("stats", str(out), "--json", env=env)
    assert stats.returncode == 0 and json.loads(stats.stdout)["stages"], stats.stderr
    tokenizer = _mdr("tokenizer", "train", "--data", str(out), "--vocab-size", "512", "--out",
                     str(tmp_path / "tokenizer.json"), env=env)  # the tokenizers library is no training extra
    assert tokenizer.returncode == 0 and (tmp_path / "tokenizer.json").is_file(), tokenizer.stderr
    # Only third-party code may look for them, for optional features: spaCy's thinc tries `import torch`.
    lookups = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [(name, where) for name, where in lookups
            if any(Path(where).resolve().is_relative_to(REPO / folder) for folder in CODE.values())] == []
    assert {name for name, _ in lookups} <= {"torch"} and all("/thinc/" in where for _, where in lookups), lookups


@pytest.mark.parametrize("argv", [["train", "--data", "SHARDS", "--out", "RUN"], ["eval", "RUN", "--data", "SHARDS"],
                                  ["sample", "RUN", "--prompt", "The"], ["export", "RUN", "--hf", "DIR"]])
def test_training_verbs_without_the_train_extra_say_how_to_install_it(tmp_path, argv):
    env, _ = _without_train_extra(tmp_path)
    result = _mdr(*argv, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "pip install 'mdr[train]'" in result.stderr, result.stderr
    assert f"mdr {argv[0]} needs torch" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked.log", "site"]  # nothing written


def _requirements(names: list[str]) -> dict[str, Requirement]:
    return {Requirement(name).name.lower(): Requirement(name) for name in names}


def _reached(requirement: Requirement, seen: set[str]) -> None:
    """Every distribution an install of `requirement` pulls, as installed here (its markers evaluated here)."""
    name = requirement.name.lower().replace("_", "-")
    if name in seen:
        return
    seen.add(name)
    try:
        requires = metadata.requires(requirement.name) or []
    except metadata.PackageNotFoundError:
        return
    for line in requires:
        child = Requirement(line)
        extras = requirement.extras or {""}
        if child.marker is None or any(child.marker.evaluate({**default_environment(), "extra": extra})
                                       for extra in extras):
            _reached(child, seen)


def test_core_dependencies_pull_no_torch():
    """What `pip install mdr` installs, followed through the installed packages' own requirements."""
    seen: set[str] = set()
    for line in PROJECT["project"]["dependencies"]:
        _reached(Requirement(line), seen)
    assert "datatrove" in seen and "trafilatura" in seen  # the walk follows the real tree
    assert seen.isdisjoint(NOT_IN_CORE)
    extras = PROJECT["project"]["optional-dependencies"]
    assert set(_requirements(extras["train"])) == {"torch", "tensorboard", "scipy"}
    assert "mdr[train]" in extras["test"] and "datasketch" in _requirements(extras["test"])



def _imported(path: Path) -> set[str]:
    """Top-level names of the modules a file imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_datasketch_and_curation_imports_no_torch():
    for folder in CODE.values():
        for path in (REPO / folder).rglob("*.py"):
            imported = _imported(path)
            assert "datasketch" not in imported, path
            if folder != "train":
                assert imported.isdisjoint({"torch", "tensorboard"}), path


def test_the_wheel_holds_every_module_and_data_file(tmp_path):
    """pyproject lists the packages by hand (its folders are not named as its packages): a package left off the
    list would be missing from an installed mdr, not from this editable one."""
    source = tmp_path / "source"  # a copy: a build in the checkout would leave build/ and egg-info there
    for folder in CODE.values():
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    built = subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                            f"print(build_meta.build_wheel({str(tmp_path)!r}))"],
                           cwd=source, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    wheel = zipfile.ZipFile(tmp_path / built.stdout.split()[-1])
    expected = {f"{package.replace('.', '/')}/{path.relative_to(REPO / folder).as_posix()}"
                for package, folder in CODE.items() for path in (REPO / folder).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}
    assert {"mdr/pipeline/recipes/refinedweb.yaml", "mdr/pipeline/report/template.html"} <= expected
    assert expected - set(wheel.namelist()) == set()
    entry_points = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "mdr = mdr.cli:main" in wheel.read(entry_points).decode()


PATCHES = sorted(p.stem for p in (REPO / "mdr" / "patches").glob("*.py") if p.name != "__init__.py")


def test_every_patch_module_has_its_tested_series():
    """One module per patched library, each named after its distribution and listed in TESTED (which the version
    checks read), and each calling require_tested with its own distribution."""
    assert PATCHES == sorted(TESTED)
    for name in PATCHES:
        source = (REPO / "mdr" / "patches" / f"{name}.py").read_text()
        calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
                 and getattr(node.func, "id", None) == "require_tested"]
        assert calls and {ast.literal_eval(call.args[0]) for call in calls} == {name}, name


@pytest.mark.parametrize("distribution", PATCHES)
def test_pyproject_bounds_patched_libraries_to_the_series_their_patches_were_tested_with(distribution):
    """A version pyproject allows but the patch refuses would install and then fail (UntestedVersionError); a bound
    that leaves out the tested series would never install it."""
    series = TESTED[distribution]
    project = PROJECT["project"]
    lines = project["dependencies"] + [line for extra in project["optional-dependencies"].values() for line in extra]
    bounds = [Requirement(line).specifier for line in lines if Requirement(line).name.lower() == distribution]
    assert bounds, f"pyproject does not name {distribution}, which mdr/patches/{distribution}.py patches"
    tested = sorted(Version(s) for s in series)
    inside = [Version(f"{s.major}.{s.minor}.{patch_level}") for s in tested for patch_level in range(50)]
    outside = [Version(f"{tested[0].major}.{tested[0].minor - 1}.99") if tested[0].minor else
               Version(f"{tested[0].major - 1}.999"), Version(f"{tested[-1].major}.{tested[-1].minor + 1}.0"),
               Version(f"{tested[-1].major + 1}.0.0")]
    for specifier in bounds:
        assert any(specifier.contains(v) for v in inside), (distribution, str(specifier), series)
        assert not any(specifier.contains(v, prereleases=True) for v in outside), (distribution, str(specifier),
                                                                                 series)
