"""The curation inside `mdr ablate --input WARCS --recipe RECIPE --arms A,B,...` (issue 12.2): the recipe runs on the
inputs into DIR/run (`AblationLayout.curation`) with a tap at every arm, in this process and as `mdr run` runs it
(pipeline/cli.py: the same checks, `RunPlan`, the runner, the local executor); the ablation then reads DIR/run as it
reads `--run OUT` (experiments/ablate.py).

DIR/run is an ordinary `mdr run` OUT, so the runner's own rules hold: a second invocation finds it complete and
leaves it untouched, a killed one resumes it (the tasks that completed are skipped), and another --input, --recipe
or --arms for the same DIR is refused as `mdr run` refuses another run in its OUT. Every mistake in the request is
found before anything is written.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mdr.layout import AblationLayout
from mdr.pipeline.recipe import RecipeError

if TYPE_CHECKING:
    from mdr.experiments.ablate import AblateConfig
    from mdr.pipeline.runner import RunPlan, SkippedPath


@dataclass
class Curation:
    """What `check_curation` found: the run to make or resume, and how."""

    plan: RunPlan
    workers: int
    skipped: list[SkippedPath]  # paths found in the inputs that are not read
    resuming: bool  # DIR/run holds an earlier run of the same plan


def check_curation(config: AblateConfig) -> Curation:
    """The checks `mdr run` makes before it writes (pipeline/cli.py, cmd_run), for the run DIR/run of `config`:
    the recipe, the arms as its taps (`check_taps`: stages of this recipe that forward text; two or more), the
    inputs, --workers and --tasks, the memory the tasks need, and DIR/run itself (another run's is refused)."""
    from mdr.patches import check_installed
    from mdr.pipeline.cli import check_tasks_and_workers
    from mdr.pipeline.recipe import check_resources, check_taps, load_recipe, open_files_limit
    from mdr.pipeline.runner import RunPlan, check_output_dir, default_tasks, expand_inputs

    check_installed()
    recipe = load_recipe(config.recipe)
    arms = list(recipe.taps) if config.arms is None else config.arms  # None: the recipe's own `taps:`
    check_taps(arms, recipe.stage_keys, "--arms")  # as `mdr run --tap` checks them, and no stage twice
    if len(arms) < 2:
        raise RecipeError(f"--arms {','.join(arms) or '(none)'}: give two or more stages of recipe {recipe.name} to "
                          f"compare (its stages: {', '.join(recipe.stage_keys)})")
    recipe = recipe.with_taps(arms, "--arms")
    files, skipped = expand_inputs(config.input)
    check_tasks_and_workers(config.tasks, config.workers)
    workers = config.workers or (os.cpu_count() or 1)  # mdr run's defaults
    tasks = config.tasks or default_tasks(len(files), workers)
    check_resources(recipe, tasks, workers, open_files_limit=open_files_limit())
    plan = RunPlan(recipe, files, AblationLayout(Path(config.out)).curation, tasks)
    try:
        resuming = check_output_dir(plan)
    except RecipeError as error:  # the runner words its refusals for `mdr run`, whose flag is --output
        raise RecipeError(str(error).replace("another --output", "another --out")) from None
    return Curation(plan, workers, skipped, resuming)


def curate(config: AblateConfig) -> AblateConfig:
    """Curates (or resumes, or finds complete) DIR/run for `config`; returns `config` reading it as its --run."""
    from mdr.pipeline.cli import skipped_lines
    from mdr.pipeline.executors import ExecutorOptions
    from mdr.pipeline.runner import run
    from mdr.pipeline.stats import check_invariants, funnel

    curation = check_curation(config)
    plan = curation.plan
    for line in skipped_lines(curation.skipped):
        _tell(line)
    if curation.resuming and funnel(plan.output)["complete"]:  # run() would rewrite run.json and the lock
        _tell(f"curated already: {plan.output}")
        return dataclasses.replace(config, run=str(plan.output))
    _tell(f"{'resuming' if curation.resuming else 'curating'} recipe {plan.recipe.name} on {len(plan.files)} "
          f"file(s), {plan.tasks} task(s), taps {', '.join(plan.tap_folders)} -> {plan.output}")
    result = run(plan, ExecutorOptions(kind="local", workers=curation.workers), progress=config.progress)
    _tell(f"{result['input_records']:,} records in, {result['output_docs']:,} documents out -> {plan.layout.data}")
    problems = check_invariants(result)
    if problems:
        _tell(f"warning: stats inconsistent: {'; '.join(problems)}")
    return dataclasses.replace(config, run=str(plan.output))


def _tell(line: str) -> None:
    """A line of the curation on stderr, as `mdr run` tells its own: file names are data (terminal.one_line)."""
    from mdr.pipeline.terminal import one_line

    print(one_line(f"mdr: ablate: {line}"), file=sys.stderr)
