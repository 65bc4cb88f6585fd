"""Turns a recipe into datatrove phases and runs them with a datatrove executor, resumably.

The output directory's layout (run.json, the lock, data/, excluded/, logs/, taps/, and with dedup stages filtered/,
deduped/ and work/) is mdr/layout.py's `RunLayout`. This module checks that OUT may be written (unwritable, locked,
another run's, changed inputs), holds its lock and records the run in its run.json.
"""

from __future__ import annotations

import errno
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from mdr.atomic import is_temporary, write_atomically
from mdr.layout import DedupContext, Phase, RunLayout
from mdr.pipeline.recipe import HTML_STAGES, Recipe, RecipeError
from mdr.pipeline.writer import ParquetShardWriter, remove_temporary_files

# File name endings the reader understands; other files found inside an input directory are skipped.
INPUT_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
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
    # what a cc: input was expanded from (crawl.crawl_request): recorded in run.json, so that a resume of the same
    # request takes the files drawn then instead of listing the crawl again (recorded_inputs)
    crawl: dict | None = None

    @property
    def identity(self) -> dict:
        """What must not change between a run and its resumption (as JSON would store it)."""
        return json.loads(json.dumps({
            "recipe": self.recipe.raw,
            "inputs": [f if "://" in f else os.path.abspath(f) for f in self.files],
            "tasks": self.tasks,
            # A tap adds a step to the filter phase (its task stats line up by step) and a folder that a resume must
            # complete, so a resume with other taps is refused like one with another recipe.
            "taps": {stage: str(folder.relative_to(self.output)) for stage, folder in self.tap_folders.items()},
        }))

    @property
    def tap_folders(self) -> dict[str, Path]:
        """Each tapped stage with the folder that holds the documents it forwards: the folder a phase writes anyway
        when the stage ends one (`stage_outputs`), else its own OUT/taps/<stage>/, written by a pass-through writer
        after the stage (`build_filter_pipeline`)."""
        ends = stage_outputs(self)
        return {stage: ends.get(stage, self.layout.tap(stage)) for stage in self.recipe.taps}

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.output)

    def input_stats(self) -> list[dict | None]:
        """Size and modification time of each input, in the order of identity["inputs"] (None for a URL): stored in
        run.json beside the identity, so that a resume over inputs that changed since is refused (its finished tasks
        read the old bytes, the others would read the new ones)."""
        stats = []
        for file in self.files:
            if "://" in file:
                stats.append(None)
                continue
            info = os.stat(file)
            stats.append({"size": info.st_size, "mtime_ns": info.st_mtime_ns})
        return stats


# What run.json's identity keys were before mdr recorded them: a run of an mdr without taps resumes as one without.
_ABSENT_IDENTITY = {"taps": {}}

# Keys every mdr run.json has (`RunPlan.identity`, and "phases" since `write_run_file` records them): a file named
# run.json is generic, so a directory counts as an mdr run only when its run.json holds these.
_RUN_FILE_KEYS = ({"recipe", "inputs", "phases"}, {"recipe", "inputs", "tasks"})


def is_run_dir(folder: Path) -> bool:
    """Whether `folder` holds an mdr run: a run.json that parses as a JSON object with mdr's keys."""
    try:
        recorded = json.loads(RunLayout(folder).run_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(recorded, dict) and any(keys <= recorded.keys() for keys in _RUN_FILE_KEYS)


def unwritable_reason(path: Path) -> str | None:
    """Why directory `path` (created if missing, with its parents) could not be written, or None. Checked before
    anything is written, so that a read-only or misnamed output is one line instead of a traceback mid-run.
    os.access asks the kernel, so root's exemption from permission bits counts and a read-only mount does not."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            return f"{existing} is a dangling symbolic link"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory" if existing == path else f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        if os.statvfs(existing).f_flag & os.ST_RDONLY:
            return f"{existing} is on a read-only file system"
        return f"permission denied on {existing}"
    return None


def _is_before_run_file(layout: RunLayout, name: str) -> bool:
    """Whether `name` is something OUT may hold before a first run wrote its run.json (the lock, a temporary of a
    run.json whose writer was killed): a directory holding only these is still empty, so that the run can start
    again."""
    return name == layout.lock.name or is_temporary(name) and name.startswith(f".{layout.run_file.name}.")


def _lock_holder(lock: Path) -> str:
    try:
        pid = lock.read_text(errors="replace").split()[0]
    except (OSError, IndexError):
        return ""
    return f" (pid {int(pid)})" if pid.isdigit() else ""


def _lock(fd: int, layout: RunLayout) -> None:
    """Takes the lock of OUT's lock file open as `fd`, or refuses (RecipeError) when another process holds it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RecipeError(f"output directory {layout.root} is in use by another mdr run{_lock_holder(layout.lock)}: "
                          f"wait for it to end or choose another --output") from None


def _refuse_if_locked(layout: RunLayout) -> None:
    """RecipeError when another process holds OUT's lock; opens an existing lock file only, so writes nothing."""
    try:
        fd = os.open(layout.lock, os.O_RDWR)  # O_RDWR: an exclusive flock over NFS needs a file open for writing
    except OSError:
        return  # no lock file (no run ever started here), or one we may not open: `output_lock` will say
    try:
        _lock(fd, layout)
    finally:
        os.close(fd)  # releases the probe's lock


@contextmanager
def output_lock(out: Path):
    """Holds OUT/.lock for the block: a second `mdr run` into OUT is refused (RecipeError) instead of running the same
    tasks at once (two concurrent runs crashed each other and once corrupted a stats file). The lock is an exclusive
    fcntl.flock held for as long as the process runs; the file is never removed: removing a lock file lets two
    processes each lock a different file of the same name.

    The lock belongs to this (driver) process: the local executor's task processes end with it (executors/tasks.py,
    _exit_with_driver), so none writes OUT once the lock is free. On Ray and Slurm it guards the driver only; with
    Slurm --no-wait the driver returns once the jobs are submitted and the lock goes with it, and a second
    submission is refused by run_phases while the first one's jobs are queued."""
    layout = RunLayout(out)
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(fd, layout)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the refusal's message
        yield
    finally:
        os.close(fd)


def check_output_dir(plan: RunPlan, locked: bool = False) -> bool:
    """Returns True when OUT holds an earlier, unfinished or finished, run of the same plan (a resume). Refuses
    (RecipeError) an output that cannot be written, one another run is writing (unless `locked`: this process holds
    the lock), one of another plan, and a resume whose inputs changed since the run started."""
    out, layout = plan.output, plan.layout
    problem = unwritable_reason(out)
    if problem:
        raise RecipeError(f"cannot write output directory {out}: {problem}")
    if not locked and out.is_dir():
        _refuse_if_locked(layout)
    if not out.exists() or all(_is_before_run_file(layout, name) for name in os.listdir(out)):
        return False
    run_file = layout.run_file
    if not run_file.is_file():
        raise RecipeError(f"output directory {out} is not empty and holds no mdr run: choose another --output")
    try:
        previous = json.loads(run_file.read_text())
    except (ValueError, UnicodeDecodeError) as error:  # run.json is written atomically: edited or damaged by hand
        raise RecipeError(f"output directory {out} has an unreadable {run_file.name} ({error}): choose another "
                          f"--output") from None
    for key, value in plan.identity.items():
        if previous.get(key, _ABSENT_IDENTITY.get(key)) != value:
            which = {"inputs": _inputs_difference, "taps": _taps_difference}.get(key, lambda *_: "")(
                previous.get(key, _ABSENT_IDENTITY.get(key)), value)
            raise RecipeError(
                f"output directory {out} holds a run with different {key}{which}: resume with the same command "
                f"or choose another --output"
            )
    _check_inputs_unchanged(plan, previous)
    return True


def _inputs_difference(recorded, inputs: list[str]) -> str:
    """What tells the inputs of a resume from those run.json recorded: the first path added or missing (the inputs
    a command expands to can change with mdr itself: directory links are followed, and a file reached under two
    paths is read once, since issue 10), or their order."""
    if not isinstance(recorded, list):
        return ""
    before, now = {path for path in recorded if isinstance(path, str)}, set(inputs)
    added = next((path for path in inputs if path not in before), None)
    missing = next((path for path in recorded if isinstance(path, str) and path not in now), None)
    parts = [f"{path} {what}" for path, what in ((added, "is new"), (missing, "is no longer an input"))
             if path is not None]
    if parts:
        return f" ({len(inputs)} now, {len(recorded)} then; " + ", ".join(parts) + ")"
    return " (the same files in another order)" if sorted(recorded, key=str) == sorted(inputs) else ""


def _taps_difference(recorded, taps: dict) -> str:
    """The tapped stages run.json recorded and those asked now."""
    then = ", ".join(recorded) if isinstance(recorded, dict) and recorded else "none"
    return f" ({then} then, {', '.join(taps) or 'none'} now)"


def _check_inputs_unchanged(plan: RunPlan, previous: dict) -> None:
    """RecipeError naming the first input whose size or modification time differs from run.json's record; a run.json
    of an mdr that recorded none (no "input_stats"), or an entry that is not a record (a hand-edited file), resumes
    unchecked for that input, as it did."""
    recorded = previous.get("input_stats")
    if not isinstance(recorded, list):
        return
    for path, before, now in zip(plan.identity["inputs"], recorded, plan.input_stats()):
        if not isinstance(before, dict) or not before or now is None or before == now:
            continue
        if before.get("size") != now["size"]:
            change = f"size {before.get('size')} -> {now['size']} bytes"
        else:
            change = f"modification time {_iso(before.get('mtime_ns'))} -> {_iso(now['mtime_ns'])}"
        raise RecipeError(f"input {path} changed since this run started ({change}): a resume would mix old and new "
                          f"data; restore the file or choose another --output")


def _iso(mtime_ns) -> str:
    from datetime import datetime, timezone

    if not isinstance(mtime_ns, int):
        return repr(mtime_ns)
    return datetime.fromtimestamp(mtime_ns / 1e9, timezone.utc).isoformat(timespec="microseconds")


def write_run_file(plan: RunPlan, phases: list):
    """Records the plan's identity, its inputs' sizes and modification times, and, per phase, its task count and
    which of its steps are funnel stages."""
    plan.output.mkdir(parents=True, exist_ok=True)
    described = [{"name": p.name, "tasks": p.tasks, "stages": funnel_stages(p.pipeline)} for p in phases]
    write_atomically(plan.layout.run_file,  # under the run's lock: one writer, whose rerun reuses the temporary
                     json.dumps({**plan.identity, "input_stats": plan.input_stats(), "phases": described,
                                 **({"crawl": plan.crawl} if plan.crawl else {})}, indent=2),
                     unique=False)


def recorded_inputs(output: Path, crawl: dict | None) -> list[str] | None:
    """The inputs OUT/run.json recorded when it was started by the same crawl request (crawl.crawl_request), or None
    (no such run, another request, no request). A resume then reads the very files drawn at the start without
    listing the crawl again: it works while the endpoint is down, and a listing that changed cannot change the draw."""
    if crawl is None:
        return None
    try:
        previous = json.loads(RunLayout(output).run_file.read_text())
    except (OSError, ValueError, UnicodeDecodeError):  # none, or unreadable: check_output_dir says which
        return None
    inputs = previous.get("inputs") if isinstance(previous, dict) and previous.get("crawl") == crawl else None
    return inputs if isinstance(inputs, list) and all(isinstance(path, str) for path in inputs) else None


def funnel_stages(pipeline: list) -> list[str]:
    """Names of the steps that decide documents' fates (the rows of `mdr stats`); writers and readers of
    intermediate files set `funnel_stage = False`."""
    return [step.name for step in pipeline if getattr(step, "funnel_stage", True)]


def build_filter_pipeline(plan: RunPlan, output: Path | None = None) -> list:
    """reader → the recipe's filter stages → the shard writer (`output`, by default OUT/data). The reader and each
    filter stage write what they drop to OUT/excluded/<stage>/. A tapped stage whose documents no phase writes is
    followed by a shard writer into its tap folder that passes every document on: the tap is written in the same
    pass, atomically per task as the other shards (so a resume redoes it with its task), and, being no funnel stage
    (`funnel_stages`), changes no stats."""
    from mdr.pipeline.reader import WarcRecordReader

    layout = plan.layout
    tees = {stage: folder for stage, folder in plan.tap_folders.items() if folder == layout.tap(stage)}
    pipeline = [
        WarcRecordReader(
            plan.files, config=plan.recipe.reader, progress_dir=str(layout.progress(FILTER_PHASE)),
            exclusion_writer=ParquetShardWriter(str(layout.excluded(WarcRecordReader.name)),
                                                stage=WarcRecordReader.name, config=plan.recipe.output),
        )
    ]
    for stage in plan.recipe.stages:
        if stage.is_dedup:
            continue
        excluded = ParquetShardWriter(
            str(layout.excluded(stage.key)), stage=stage.key, html=stage.key in HTML_STAGES, config=plan.recipe.output
        )
        pipeline.append(stage.build(exclusion_writer=excluded))
        if stage.key in tees:
            pipeline.append(ParquetShardWriter(str(tees[stage.key]), config=plan.recipe.output))
    pipeline.append(ParquetShardWriter(str(output or layout.data), config=plan.recipe.output))
    return pipeline


def stage_outputs(plan: RunPlan) -> dict[str, Path]:
    """The stages whose forwarded documents a phase writes, with the folder: the last filter stage's go to
    OUT/filtered/ when dedup stages follow, else to OUT/data/; each dedup stage's to OUT/deduped/<stage>/, the last
    one's to OUT/data/."""
    layout = plan.layout
    filters = [stage.key for stage in plan.recipe.stages if not stage.is_dedup]
    dedups = [stage.key for stage in plan.recipe.stages if stage.is_dedup]
    outputs = {filters[-1]: layout.filtered if dedups else layout.data} if filters else {}
    for number, key in enumerate(dedups):
        outputs[key] = layout.data if number == len(dedups) - 1 else layout.deduped(key)
    return outputs


def build_phases(plan: RunPlan) -> list:
    """The filter phase, then each dedup stage's phases, chained through OUT/filtered/ and OUT/deduped/<stage>/;
    the last phase writes OUT/data/ (`stage_outputs`)."""
    layout, outputs = plan.layout, stage_outputs(plan)
    dedups = [stage for stage in plan.recipe.stages if stage.is_dedup]
    source = layout.filtered if dedups else layout.data
    phases = [Phase(FILTER_PHASE, build_filter_pipeline(plan, source), plan.tasks, str(layout.logs(FILTER_PHASE)))]
    for stage in dedups:
        target = outputs[stage.key]
        context = DedupContext(layout=layout, input_folder=str(source), output_folder=str(target), tasks=plan.tasks,
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

    with output_lock(plan.output):
        check_output_dir(plan, locked=True)  # again: another run may have written OUT since the caller checked
        phases = build_phases(plan)
        write_run_file(plan, phases)
        with ProgressMonitor(plan.output, [(p.name, p.tasks) for p in phases], enabled=progress):
            run_phases(phases, options)
        if options.kind != "slurm" or options.wait:  # with --no-wait the submitted tasks are writing theirs right now
            remove_temporary_files(str(plan.output))
        return funnel(plan.output)
