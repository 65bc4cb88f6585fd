"""The per-stage funnel of a run, merged from every task's datatrove stats file.

datatrove's own merged `stats.json` only covers the tasks of the last invocation, so after a resume it misses the
tasks completed before the kill. Here every `logs/<phase>/stats/<rank>.json` (`RunLayout.stats`) is summed instead:
each completed task wrote exactly one, and a rerun task overwrites its own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from mdr.layout import RunLayout


def _total(value) -> float:
    if isinstance(value, dict):
        return value.get("total", 0)
    return value or 0


def _step_key(step_name: str) -> str:
    # datatrove names a step "<type>: <name>"; our steps' names are their stage keys.
    return step_name.split(": ", 1)[-1]


def _is_extractor(step_name: str) -> bool:
    # datatrove's extractors are typed "🛢 - EXTRAC": the step where HTML documents become text.
    return "EXTRAC" in step_name.split(": ", 1)[0]


def load_phase_stats(layout: RunLayout, phase: str) -> tuple[list[dict], int]:
    """Sums a phase's per-task stats; returns (steps in pipeline order, number of tasks with stats)."""
    steps: list[dict] = []
    files = []
    for path in sorted(layout.stats(phase).glob("[0-9]*.json")):
        try:
            files.append(json.loads(path.read_text()))
        except ValueError:  # cut short by a full disk (datatrove writes it in place); that task reruns on resume
            continue
    for task_stats in files:
        for index, step in enumerate(task_stats):
            if index == len(steps):
                steps.append({"name": _step_key(step["name"]), "counters": defaultdict(float), "seconds": 0.0,
                              "extractor": _is_extractor(step["name"])})
            merged = steps[index]
            for counter, value in step.get("stats", {}).items():
                merged["counters"][counter] += _total(value)
            merged["seconds"] += _total(step.get("time_stats", 0))
    return steps, len(files)


def _chars_out(counters: dict) -> int | None:
    if "doc_len" in counters or not counters.get("forwarded"):  # nothing forwarded: no doc_len counter, 0 chars
        return int(counters.get("doc_len", 0))
    return None  # a step that does not count lengths


def count_rows(folder: Path) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in sorted(folder.glob("*.parquet")))


def funnel(out: str | Path) -> dict:
    """The JSON of `mdr stats --json`:
    {"input_records", "stages": [{"name", "docs_in", "docs_out", "dropped": {reason: n}, "seconds"}], "output_docs"}
    plus "complete" (False while tasks are missing, i.e. mid-run or after a kill), "tasks" and "tasks_done" (summed
    over phases), and per stage "chars_out": characters of text it forwarded (datatrove's `doc_len` counter),
    null for stages whose output is still HTML (before extraction) or that do not count lengths; a stage that
    replaces text without dropping (`pii`) also has "changed" (documents whose text changed) and "replaced"
    ({kind: replacements})."""
    layout = RunLayout(out)
    if not layout.run_file.is_file():
        raise FileNotFoundError(f"{layout.root} is not an mdr run directory (no {layout.run_file.name})")
    phases = json.loads(layout.run_file.read_text()).get("phases", [])
    stages, complete, tasks_done = [], True, 0
    loaded = [(phase, *load_phase_stats(layout, phase["name"])) for phase in phases]
    # Whether documents are text yet: a run without an extractor step reads text (WET) from the start.
    text = not any(step["extractor"] for _phase, steps, _done in loaded for step in steps)
    for phase, steps, done in loaded:
        complete = complete and done >= phase["tasks"]
        tasks_done += min(done, phase["tasks"])
        for step in steps:
            text = text or step["extractor"]
            if step["name"] not in phase["stages"]:
                continue
            counters = step["counters"]
            dropped = {
                counter[len("dropped_"):]: int(value)
                for counter, value in sorted(counters.items())
                if counter.startswith("dropped_") and value
            }
            unexplained = int(counters.get("dropped", 0)) - sum(dropped.values())
            if unexplained > 0:  # a step that dropped without giving a reason
                dropped["unspecified"] = unexplained
            stages.append(
                {
                    "name": step["name"],
                    "docs_in": int(counters.get("total", 0)),
                    "docs_out": int(counters.get("forwarded", 0)),
                    "dropped": dropped,
                    "seconds": round(step["seconds"], 3),
                    "chars_out": _chars_out(counters) if text else None,
                }
            )
            replaced = {counter[len("replaced_"):]: int(value) for counter, value in sorted(counters.items())
                        if counter.startswith("replaced_")}
            if replaced:  # a stage that rewrites text (pii): documents changed, replacements of each kind
                stages[-1].update(changed=int(counters.get("changed", 0)), replaced=replaced)
    return {
        "input_records": stages[0]["docs_in"] if stages else 0,
        "stages": stages,
        "output_docs": count_rows(layout.data),
        "complete": complete,
        "tasks": sum(phase["tasks"] for phase in phases),
        "tasks_done": tasks_done,
    }


def check_invariants(result: dict) -> list[str]:
    """The funnel's invariants; returns the violations (empty when it is consistent)."""
    problems = []
    stages = result["stages"]
    if stages and stages[0]["docs_in"] != result["input_records"]:
        problems.append("first stage's docs_in != input_records")
    for previous, stage in zip([None] + stages[:-1], stages):
        if stage["docs_in"] != stage["docs_out"] + sum(stage["dropped"].values()):
            problems.append(f"{stage['name']}: docs_in != docs_out + dropped")
        if previous is not None and stage["docs_in"] != previous["docs_out"]:
            problems.append(f"{stage['name']}: docs_in != {previous['name']}.docs_out")
    if stages and result.get("complete", True) and stages[-1]["docs_out"] != result["output_docs"]:
        problems.append("last stage's docs_out != output_docs")
    return problems
