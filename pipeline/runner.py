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

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mdr.pipeline.recipe import HTML_STAGES, Recipe, RecipeError
from mdr.pipeline.writer import ParquetShardWriter, remove_temporary_files

# File name endings the reader understands; other files found inside an input directory are skipped.
INPUT_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wet", ".wet.gz")
RUN_FILE = "run.json"
FILTER_PHASE = "filter"


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
    """Expands directories into their WARC/ARC/WET files (sorted); returns (files, skipped files)."""
    files, skipped = [], []
    if not inputs:
        raise RecipeError("no input given: pass --input PATH [PATH ...] (WARC/ARC/WET files or directories)")
    for item in inputs:
        if "://" in item:  # fsspec URL: taken as a file; the reader reports it if it cannot be opened
            files.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                (files if child.name.lower().endswith(INPUT_SUFFIXES) else skipped).append(str(child))
        elif path.is_file():
            files.append(str(path))
        else:
            raise RecipeError(f"input {item!r} does not exist")
    if not files:
        raise RecipeError(f"no WARC/ARC/WET files ({', '.join(INPUT_SUFFIXES)}) found in {' '.join(inputs)}")
    return files, skipped


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
