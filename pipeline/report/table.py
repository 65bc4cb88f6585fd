"""`mdr stats` in the terminal: the funnel of one run, or two runs side by side with what changed in their recipes.

Documents are counted at every stage; text is counted in characters (datatrove's `doc_len` counter of the documents
each stage forwards) from extraction on, since before it documents are HTML.
"""

from __future__ import annotations

import json
from pathlib import Path

from mdr.formatting import quantity
from mdr.layout import RunLayout
from mdr.pipeline.stats import funnel

TOP_REASONS = 3  # drop reasons listed per stage in the funnel table


def _percent(part: float, whole: float | None) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def text_base(result: dict) -> int | None:
    """Characters of text the first text-producing stage forwarded: 100% of the text funnel."""
    return next((stage["chars_out"] for stage in result["stages"] if stage.get("chars_out") is not None), None)


def partial_note(result: dict) -> str:
    if result.get("complete", True):
        return ""
    return (f"PARTIAL: {result.get('tasks_done', '?')} of {result.get('tasks', '?')} tasks finished (run still going "
            f"or interrupted); the numbers cover finished tasks only")


def format_funnel(result: dict) -> str:
    """The funnel table: documents and text kept after each stage, as counts and % of the input; top drop reasons
    (with their % of the stage's input), or for a stage that rewrites text the documents it changed and its
    replacements of each kind; seconds and share of time per stage."""
    total_docs = result["input_records"]
    base_chars = text_base(result)
    total_seconds = sum(stage["seconds"] for stage in result["stages"])
    header = (f"{'stage':<16}{'docs in':>10}{'docs out':>10}{'kept':>8}{'of input':>10}{'text out':>10}"
              f"{'of text':>9}{'seconds':>9}{'time':>7}  top drop reasons (% of stage input)")
    rows = [note] if (note := partial_note(result)) else []
    rows.append(header)
    for stage in result["stages"]:
        chars = stage.get("chars_out")
        reasons = sorted(stage["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{reason} {count:,} ({_percent(count, stage['docs_in'])})"
                          for reason, count in reasons[:TOP_REASONS])
        if len(reasons) > TOP_REASONS:
            shown += f", +{len(reasons) - TOP_REASONS} more"
        if "replaced" in stage:  # a stage that rewrites text: what it changed, in the same column
            kinds = ", ".join(f"{kind} {count:,}" for kind, count in stage["replaced"].items())
            shown = f"changed {stage['changed']:,} ({_percent(stage['changed'], stage['docs_in'])}): replaced {kinds}"
        rows.append(
            f"{stage['name']:<16}{stage['docs_in']:>10,}{stage['docs_out']:>10,}"
            f"{_percent(stage['docs_out'], stage['docs_in']):>8}{_percent(stage['docs_out'], total_docs):>10}"
            f"{quantity(chars):>10}{(_percent(chars, base_chars) if chars is not None else '-'):>9}"
            f"{stage['seconds']:>9.1f}{_percent(stage['seconds'], total_seconds):>7}  {shown}"
        )
    last_chars = result["stages"][-1].get("chars_out") if result["stages"] else None
    text = (f", {quantity(last_chars)} characters of text ({_percent(last_chars, base_chars)} of the extracted text)"
            if last_chars is not None else "")
    rows.append(f"output: {result['output_docs']:,} documents ({_percent(result['output_docs'], total_docs)} of "
                f"{total_docs:,} input records){text}")
    return "\n".join(rows)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _recipe_settings(recipe: dict) -> dict:
    """{"repetition.dup_line_frac": 0.3, "reader.http_statuses": [200], ...}; stages keyed by their name."""
    settings = {}
    for key, value in recipe.items():
        if key == "stages":
            for stage in value:
                settings.update(_flatten(stage))
        elif key != "name":
            settings.update(_flatten(value, key))
    return settings


def recipe_changes(recipe_a: dict, recipe_b: dict) -> list[dict]:
    """The settings that differ between two recorded recipes: [{"setting", "a", "b"}] (absent: None)."""
    a, b = _recipe_settings(recipe_a), _recipe_settings(recipe_b)
    changes = [{"setting": key, "a": a.get(key), "b": b.get(key)} for key in dict.fromkeys([*a, *b])
               if a.get(key) != b.get(key)]
    stages_a = [next(iter(s)) for s in recipe_a.get("stages", [])]
    stages_b = [next(iter(s)) for s in recipe_b.get("stages", [])]
    if stages_a != stages_b:
        changes.insert(0, {"setting": "stages", "a": stages_a, "b": stages_b})
    return changes


def load_run(out: str | Path) -> tuple[dict, dict]:
    """(funnel, run.json) of a run directory; FileNotFoundError when it is not one."""
    result = funnel(out)
    return result, json.loads(RunLayout(out).run_file.read_text())


def compare(out_a: str | Path, out_b: str | Path) -> dict:
    """Two runs stage by stage: {"a", "b" (their dirs, recipe names, funnels), "same_inputs", "recipe_changes",
    "stages": [{"name", "a", "b"}] (a stage's funnel entry per run, None where a run lacks it)}."""
    (funnel_a, run_a), (funnel_b, run_b) = load_run(out_a), load_run(out_b)
    names_a = [stage["name"] for stage in funnel_a["stages"]]
    names = names_a + [s["name"] for s in funnel_b["stages"] if s["name"] not in names_a]
    by_name_a = {stage["name"]: stage for stage in funnel_a["stages"]}
    by_name_b = {stage["name"]: stage for stage in funnel_b["stages"]}
    return {
        "a": {"dir": str(out_a), "recipe": run_a["recipe"].get("name"), "funnel": funnel_a},
        "b": {"dir": str(out_b), "recipe": run_b["recipe"].get("name"), "funnel": funnel_b},
        "same_inputs": run_a.get("inputs") == run_b.get("inputs"),
        "recipe_changes": recipe_changes(run_a["recipe"], run_b["recipe"]),
        "stages": [{"name": name, "a": by_name_a.get(name), "b": by_name_b.get(name)} for name in names],
    }


def _delta(a: float | None, b: float | None, fmt=lambda n: f"{n:+,}") -> str:
    if a is None or b is None:
        return "-"
    return fmt(b - a)


def _signed_quantity(n: float) -> str:
    return ("+" if n > 0 else "") + quantity(n)


def format_comparison(comparison: dict) -> str:
    """`mdr stats A B`: recipe differences, documents and text out per stage in both runs, the drop reasons whose
    counts differ, and the outputs."""
    a, b = comparison["a"], comparison["b"]
    rows = []
    for label, side in (("A", a), ("B", b)):
        note = partial_note(side["funnel"])
        rows.append(f"{label}: {side['dir']}  recipe {side['recipe']}" + (f"  [{note}]" if note else ""))
    if not comparison["same_inputs"]:
        rows.append("note: the runs read different inputs, so their counts differ for that reason too")
    changes = comparison["recipe_changes"]
    rows.append("recipe changes A -> B:" + ("" if changes else " none"))
    for change in changes:
        rows.append(f"  {change['setting']}: {json.dumps(change['a'])} -> {json.dumps(change['b'])}")
    rows.append("")
    rows.append(f"{'stage':<16}{'A docs out':>12}{'B docs out':>12}{'Δ docs':>9}{'A kept':>8}{'B kept':>8}"
                f"{'A text out':>12}{'B text out':>12}{'Δ text':>9}")
    for stage in comparison["stages"]:
        sa, sb = stage["a"], stage["b"]
        docs_a, docs_b = (sa or {}).get("docs_out"), (sb or {}).get("docs_out")
        chars_a, chars_b = (sa or {}).get("chars_out"), (sb or {}).get("chars_out")
        rows.append(
            f"{stage['name']:<16}{'-' if sa is None else f'{docs_a:,}':>12}{'-' if sb is None else f'{docs_b:,}':>12}"
            f"{_delta(docs_a, docs_b):>9}"
            f"{(_percent(docs_a, sa['docs_in']) if sa else '-'):>8}{(_percent(docs_b, sb['docs_in']) if sb else '-'):>8}"
            f"{quantity(chars_a):>12}{quantity(chars_b):>12}{_delta(chars_a, chars_b, _signed_quantity):>9}"
        )
    changed, unchanged = [], 0
    for stage in comparison["stages"]:
        dropped_a, dropped_b = (stage["a"] or {}).get("dropped", {}), (stage["b"] or {}).get("dropped", {})
        for reason in sorted({*dropped_a, *dropped_b}):
            count_a, count_b = dropped_a.get(reason, 0), dropped_b.get(reason, 0)
            if count_a == count_b:
                unchanged += 1
            else:
                changed.append(f"{stage['name']:<16}{reason:<32}{count_a:>9,}{count_b:>9,}{count_b - count_a:>+9,}")
    rows.append("")
    if changed:
        rows.append(f"{'drop reasons':<16}{'that changed':<32}{'A':>9}{'B':>9}{'Δ':>9}")
        rows.extend(changed)
    rows.append(f"drop reasons with the same count in both runs: {unchanged}" if changed or unchanged else
                "no drop reasons in either run")
    out_a, out_b = a["funnel"]["output_docs"], b["funnel"]["output_docs"]
    change = f", {(out_b - out_a) / out_a:+.1%}" if out_a else ""
    rows.append(f"output documents: {out_a:,} -> {out_b:,} ({out_b - out_a:+,}{change})")
    return "\n".join(rows)
