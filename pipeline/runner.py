"""Turns a recipe into datatrove phases and runs them with a datatrove executor, resumably.

Output directory layout:
    OUT/run.json              what this directory is a run of (recipe, inputs, tasks); a rerun must match it
    OUT/data/*.parquet        kept documents (the only final output)
    OUT/excluded/<stage>/     documents each stage dropped, with reason and measured value
    OUT/logs/<phase>/         datatrove logging dir: stats/, completions/, logs/, progress/
With dedup stages in the recipe, the filter phase writes OUT/filtered/ instead of OUT/data/, each dedup stage but the
last writes OUT/deduped/<stage>/, and their phases keep work files (signatures, pairs, removal lists, span lists)
in OUT/work/<stage>/.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from mdr.pipeline.recipe import HTML_STAGES, Recipe, RecipeError
from mdr.pipeline.writer import ParquetShardWriter, remove_temporary_files

# File name endings the reader understands; other files found inside an input directory are skipped.
INPUT_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
RUN_FILE = "run.json"
FILTER_PHASE = "filter"


@dataclass(frozen=True)
class SkippedPath:
    """A path found while expanding the inputs that the run does not read, and why (`SKIP_REASONS`)."""

    path: str
    reason: str
    detail: str = ""  # e.g. "-> target" of a dangling link, "same as PATH", "Permission denied"


# Why a path found while expanding the inputs is not read; `mdr run` names each such path under its reason
# ("mdr: skipping N path(s) <reason>: ...").
SKIP_REASONS = {
    "not_archive": "that are not WARC/ARC/WET files",
    "dangling_link": "that are dangling symbolic links",
    "unreadable": "that cannot be read",
    "loop": "that are symbolic links looping back to a directory above them",
    "same_as": "that are a file or directory already read under another path",
    "not_regular": "that are neither regular files nor directories (FIFOs, sockets, devices)",
}


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[SkippedPath]]:
    """Expands directories into their WARC/ARC/WET files; returns (files, skipped paths with their reasons).

    Symbolic links to directories are followed (Path.rglob would skip them in silence), each directory listed once:
    one reached again, by a link back to a directory above it (a loop) or by a second path, is skipped. A file
    reached under several paths (links, hard links, an input named twice) is read once, under the first path in
    sorted order that is no link. Files come in sorted order within each input, inputs in the order given.
    """
    if not inputs:
        raise RecipeError("no input given: pass --input PATH [PATH ...] (WARC/ARC/WET files or directories)")
    found: list[tuple[str, tuple[int, int] | None, bool]] = []  # (path, (st_dev, st_ino) or None for URLs, is link)
    skipped: list[SkippedPath] = []
    for item in inputs:
        if "://" in item:  # fsspec URL: taken as a file; the reader reports it if it cannot be opened
            found.append((item, None, False))
            continue
        path = Path(item)
        if path.is_symlink() and not path.exists():
            raise RecipeError(f"input {item!r} is a dangling symbolic link (to {os.readlink(path)!r})")
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise RecipeError(f"input directory {item!r} cannot be read: permission denied")
            found.extend(_walk(path, skipped))
        elif path.is_file():
            if not os.access(path, os.R_OK):
                raise RecipeError(f"input {item!r} cannot be read: permission denied")
            stat = path.stat()
            found.append((item, (stat.st_dev, stat.st_ino), path.is_symlink()))
        elif path.exists():
            raise RecipeError(f"input {item!r} is neither a regular file nor a directory")
        else:
            raise RecipeError(f"input {item!r} does not exist")
    files = _once_per_file(found, skipped)
    if not files:
        raise RecipeError(f"no WARC/ARC/WET files ({', '.join(INPUT_SUFFIXES)}) found in {' '.join(inputs)}")
    return files, sorted(skipped, key=lambda s: (s.reason, Path(s.path)))


def _walk(root: Path, skipped: list[SkippedPath]) -> list[tuple[str, tuple[int, int], bool]]:
    """(path, (st_dev, st_ino), whether the path goes through a link) of the archive files under `root`, in sorted
    order, following directory links; other paths go to `skipped`.

    Real subdirectories are listed before any linked one, so that a directory reachable both ways is listed under
    its own path; identity is (st_dev, st_ino), which a loop of links cannot fake."""
    files = []
    listed: dict[tuple[int, int], str] = {}
    real, linked = [(str(root), False)], []  # (directory, reached through a link)
    while real or linked:
        directory, via_link = real.pop() if real else (linked.pop(0), True)
        try:
            stat = os.stat(directory)
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)  # popped in sorted order
        except OSError as error:
            skipped.append(SkippedPath(directory, "unreadable", error.strerror or type(error).__name__))
            continue
        key = (stat.st_dev, stat.st_ino)
        if key in listed:
            loops = directory.startswith(listed[key].rstrip(os.sep) + os.sep)  # back to a directory on its way here
            skipped.append(SkippedPath(directory, "loop" if loops else "same_as", f"-> {listed[key]}"))
            continue
        listed[key] = directory
        if not os.access(directory, os.R_OK | os.X_OK):  # root lists it anyway; a user could not
            skipped.append(SkippedPath(directory, "unreadable", os.strerror(errno.EACCES)))
            continue
        subdirectories, links = [], []
        for entry in entries:
            try:
                if entry.is_symlink():
                    try:
                        stat = os.stat(entry.path)
                    except FileNotFoundError:
                        skipped.append(SkippedPath(entry.path, "dangling_link", f"-> {os.readlink(entry.path)}"))
                        continue
                    if S_ISDIR(stat.st_mode):
                        links.append(entry.path)
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    subdirectories.append(entry.path)
                    continue
                else:
                    stat = entry.stat(follow_symlinks=False)
            except OSError as error:  # ELOOP (a link to itself), EACCES on a link's target, EIO
                reason = "loop" if error.errno == errno.ELOOP else "unreadable"
                skipped.append(SkippedPath(entry.path, reason, error.strerror or type(error).__name__))
                continue
            if not S_ISREG(stat.st_mode):
                skipped.append(SkippedPath(entry.path, "not_regular"))
            elif not entry.name.lower().endswith(INPUT_SUFFIXES):
                skipped.append(SkippedPath(entry.path, "not_archive"))
            elif not os.access(entry.path, os.R_OK):
                skipped.append(SkippedPath(entry.path, "unreadable", os.strerror(errno.EACCES)))
            else:
                files.append((entry.path, (stat.st_dev, stat.st_ino), via_link or entry.is_symlink()))
        real.extend((subdirectory, via_link) for subdirectory in subdirectories)
        linked = sorted(linked + links, key=Path)
    return sorted(files, key=lambda f: Path(f[0]))


def _once_per_file(found: list[tuple[str, tuple[int, int] | None, bool]], skipped: list[SkippedPath]) -> list[str]:
    """`found` without second paths to the same file (the first path that is no link is kept); others skipped."""
    kept = {}  # (st_dev, st_ino) -> index in `found` of the path read
    for index, (_, key, is_link) in enumerate(found):
        if key is not None and (key not in kept or found[kept[key]][2] and not is_link):
            kept[key] = index
    files = []
    for index, (path, key, _) in enumerate(found):
        if key is None or kept[key] == index:
            files.append(path)
        else:
            first = found[kept[key]][0]
            skipped.append(SkippedPath(path, "same_as", "given twice" if path == first else f"same as {first}"))
    return files


@dataclass
class RunPlan:
    recipe: Recipe
    files: list[str]
    output: Path
    tasks: int

    @property
    def identity(self) -> dict:
        """What must not change between a run and its resumption (as JSON would store it)."""
        return json.loads(json.dumps({
            "recipe": self.recipe.raw,
            "inputs": [f if "://" in f else os.path.abspath(f) for f in self.files],
            "tasks": self.tasks,
        }))

    def phase_dir(self, phase: str) -> Path:
        return self.output / "logs" / phase


def check_output_dir(plan: RunPlan) -> bool:
    """Returns True when OUT holds an earlier, unfinished or finished, run of the same plan (a resume)."""
    out = plan.output
    if not out.exists() or not any(out.iterdir()):
        return False
    run_file = out / RUN_FILE
    if not run_file.is_file():
        raise RecipeError(f"output directory {out} is not empty and holds no mdr run: choose another --output")
    previous = json.loads(run_file.read_text())
    for key, value in plan.identity.items():
        if previous.get(key) != value:
            raise RecipeError(
                f"output directory {out} holds a run with different {key}: resume with the same command "
                f"or choose another --output"
            )
    return True


def write_run_file(plan: RunPlan, phases: list):
    """Records the plan's identity and, per phase, its task count and which of its steps are funnel stages."""
    plan.output.mkdir(parents=True, exist_ok=True)
    tmp = plan.output / f".{RUN_FILE}.tmp"
    described = [{"name": p.name, "tasks": p.tasks, "stages": funnel_stages(p.pipeline)} for p in phases]
    tmp.write_text(json.dumps({**plan.identity, "phases": described}, indent=2))
    os.replace(tmp, plan.output / RUN_FILE)


def funnel_stages(pipeline: list) -> list[str]:
    """Names of the steps that decide documents' fates (the rows of `mdr stats`); writers and readers of
    intermediate files set `funnel_stage = False`."""
    return [step.name for step in pipeline if getattr(step, "funnel_stage", True)]


def build_filter_pipeline(plan: RunPlan, output: Path | None = None) -> list:
    """reader → the recipe's filter stages (each with an exclusion writer) → the shard writer (`output`, by default
    OUT/data)."""
    from mdr.pipeline.reader import WarcRecordReader

    out = plan.output
    pipeline = [
        WarcRecordReader(
            plan.files, config=plan.recipe.reader, progress_dir=str(plan.phase_dir(FILTER_PHASE) / "progress")
        )
    ]
    for stage in plan.recipe.stages:
        if stage.is_dedup:
            continue
        excluded = ParquetShardWriter(
            str(out / "excluded" / stage.key), stage=stage.key, html=stage.key in HTML_STAGES, config=plan.recipe.output
        )
        pipeline.append(stage.build(exclusion_writer=excluded))
    pipeline.append(ParquetShardWriter(str(output or out / "data"), config=plan.recipe.output))
    return pipeline


def build_phases(plan: RunPlan) -> list:
    """The filter phase, then each dedup stage's phases, chained through OUT/filtered/ and OUT/deduped/<stage>/;
    the last phase writes OUT/data/."""
    from mdr.dedup.shards import DedupContext
    from mdr.pipeline.executors import Phase

    out = plan.output
    dedups = [stage for stage in plan.recipe.stages if stage.is_dedup]
    source = out / "filtered" if dedups else out / "data"
    phases = [Phase(FILTER_PHASE, build_filter_pipeline(plan, source), plan.tasks, str(plan.phase_dir(FILTER_PHASE)))]
    for number, stage in enumerate(dedups):
        target = out / "data" if number == len(dedups) - 1 else out / "deduped" / stage.key
        context = DedupContext(output=out, input_folder=str(source), output_folder=str(target), tasks=plan.tasks,
                               input_files=plan.files, writer=plan.recipe.output)
        phases.extend(stage.build_phases(context))
        source = target
    return phases


def default_tasks(n_files: int, workers: int) -> int:
    # At least one task per worker: the reader splits a file's records between tasks when there are fewer files.
    return max(n_files, workers)


def run(plan: RunPlan, options, progress: bool = True) -> dict:
    """Runs (or resumes) every phase of the plan; returns the funnel of `mdr stats --json`."""
    from mdr.pipeline.executors import run_phases
    from mdr.pipeline.progress import ProgressMonitor
    from mdr.pipeline.stats import funnel

    check_output_dir(plan)
    phases = build_phases(plan)
    write_run_file(plan, phases)
    with ProgressMonitor(plan.output, [(p.name, p.tasks) for p in phases], enabled=progress):
        run_phases(phases, options)
    if options.kind != "slurm" or options.wait:  # with --no-wait the submitted tasks are writing theirs right now
        remove_temporary_files(str(plan.output))
    return funnel(plan.output)
