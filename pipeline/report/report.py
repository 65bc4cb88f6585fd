"""`mdr report DIR -o report.html`: one self-contained HTML file (inline CSS, JS and SVG; it opens offline) with the
funnel in documents and characters of text, drop reasons, time per stage, length and language distributions, dedup,
and a browser of random dropped and kept documents.

Page content is untrusted. Server-side text goes through `html.escape`; the samples travel as JSON in a
`<script type="application/json">` block with `<`, `>`, `&` and U+2028/2029 escaped, and the script puts them on
the page with `textContent` only. A Content-Security-Policy allows just the report's own script and style, by hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from pathlib import Path
from string import Template

from mdr.atomic import write_atomically
from mdr.formatting import quantity, size
from mdr.pipeline.report import DEFAULT_SAMPLE_CHARS, DEFAULT_SAMPLES, svg
from mdr.pipeline.report.collect import LID_SCORE_BINS, collect
from mdr.pipeline.report.table import partial_note, text_base
from mdr.pipeline.terminal import safe

ASSETS = Path(__file__).parent


def script_json(value) -> str:
    """JSON safe inside a <script> element: no `</script>`, `<!--` or HTML entities can form, and no line
    terminators that old JavaScript parsers reject."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def content_security_policy(script: str | None, style: str) -> str:
    """Nothing may load or connect; only this script (none when None) and this style block run; images only as
    data: URLs."""
    scripts = csp_hash(script) if script is not None else "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src {csp_hash(style)}; img-src data:; "
            f"base-uri 'none'; form-action 'none'")


def _percent(part: float | None, whole: float | None) -> str:
    return f"{part / whole:.1%}" if part is not None and whole else "-"


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(caption: str, plot: str) -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{plot}</figure>"


def section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{content}</section>'


def funnel_section(result: dict) -> str:
    stages, total = result["stages"], result["input_records"]
    base = text_base(result)
    last_chars = stages[-1].get("chars_out") if stages else None
    cards = [(f"{total:,}", "input records"), (f"{result['output_docs']:,}", "documents kept"),
             (_percent(result["output_docs"], total), "of input records kept")]
    if base is not None:
        cards += [(quantity(base), "characters extracted"), (quantity(last_chars), "characters kept"),
                  (_percent(last_chars, base), "of extracted text kept")]
    content = '<div class="cards">' + "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                                              for v, k in cards) + "</div>"
    doc_rows = [(s["name"], s["docs_out"], f"{s['docs_out']:,} ({_percent(s['docs_out'], total)})") for s in stages]
    plots = [figure("Documents remaining after each stage (% of input records)",
                    svg.hbars(doc_rows, "documents remaining", width=520, max_value=total or None))]
    text_rows = [(s["name"], s["chars_out"], f"{quantity(s['chars_out'])} ({_percent(s['chars_out'], base)})")
                 for s in stages if s.get("chars_out") is not None]
    if text_rows:
        plots.append(figure("Text remaining after each stage, in characters (% of extracted text)",
                            svg.hbars(text_rows, "characters remaining", width=520, colour=svg.PALETTE[2],
                                      max_value=base or None)))
    content += f'<div class="plots">{"".join(plots)}</div>'
    total_seconds = sum(s["seconds"] for s in stages)
    rows = [[s["name"], f"{s['docs_in']:,}", f"{s['docs_out']:,}", _percent(s["docs_out"], s["docs_in"]),
             _percent(s["docs_out"], total), quantity(s.get("chars_out")), _percent(s.get("chars_out"), base),
             f"{s['seconds']:.1f}", _percent(s["seconds"], total_seconds)] for s in stages]
    content += html_table(["stage", "docs in", "docs out", "kept", "of input", "text out (chars)", "of text", "seconds",
                           "time"], rows)
    content += ('<p class="note">Text is counted in characters of extracted text (datatrove\'s <code>doc_len</code> '
                "of the documents each stage forwards); stages before extraction pass HTML, so they have none.</p>")
    return section("funnel", "Funnel", content)


def reasons_section(result: dict) -> str:
    figures = []
    for stage in result["stages"]:
        if not stage["dropped"]:
            continue
        reasons = sorted(stage["dropped"].items(), key=lambda kv: (-kv[1], kv[0]))
        rows = [(reason, count, f"{count:,} ({_percent(count, stage['docs_in'])} of input)")
                for reason, count in reasons]
        figures.append(figure(f"{stage['name']}: {sum(stage['dropped'].values()):,} dropped of "
                              f"{stage['docs_in']:,}", svg.hbars(rows, f"{stage['name']} drop reasons",
                                                                 width=520, colour=svg.DROPPED_COLOUR)))
    content = f'<div class="plots">{"".join(figures)}</div>' if figures else '<p class="note">Nothing was dropped.</p>'
    return section("reasons", "Drop reasons per stage", content)


def time_section(result: dict) -> str:
    total = sum(s["seconds"] for s in result["stages"])
    # In seconds with a decimal, as the funnel table gives them, not mdr.formatting.duration: these are task seconds
    # summed over tasks, often under one for a light stage, which duration's whole "0m00s" would hide.
    rows = [(s["name"], s["seconds"], f"{s['seconds']:.1f} s ({_percent(s['seconds'], total)})")
            for s in result["stages"]]
    note = ('<p class="note">Seconds each stage spent on its documents, summed over tasks (so they can exceed the '
            "wall time).</p>")
    return section("time", "Time per stage", note + svg.hbars(rows, "seconds per stage", colour=svg.PALETTE[1]))


def lengths_section(lengths: dict) -> str:
    series = [(name, counts) for name, counts in lengths["series"] if any(counts)]
    if not series:
        return section("lengths", "Document lengths", '<p class="note">No extracted documents.</p>')
    colours = (svg.KEPT_COLOUR,) + tuple(c for c in svg.PALETTE if c != svg.KEPT_COLOUR)
    plot = svg.stacked_columns(lengths["bins"], series, "document lengths by fate", "characters (log scale, bin "
                               "start)", "documents", colours=colours)
    note = ('<p class="note">Extracted documents by length and fate: a whole column counts the documents before '
            "filtering, its green part the documents kept after it.</p>")
    return section("lengths", "Document lengths before and after filtering", note + plot)


def languages_section(languages: dict | None) -> str:
    if languages is None:
        return section("languages", "Languages", '<p class="note">No language identification in this run.</p>')
    rows = [(language, count, f"{count:,}") for language, count in languages["counts"]]
    plots = [figure("Documents per identified language", svg.hbars(rows, "languages", width=460))]
    threshold = languages["threshold"]
    marker = (threshold * LID_SCORE_BINS, f"threshold {threshold}") if isinstance(threshold, (int, float)) else None
    plots.append(figure("LID score of the top language", svg.stacked_columns(
        languages["score_bins"], [("passed the language stage", languages["passed"]),
                                 ("dropped by the language stage", languages["dropped"])],
        "language identification scores", "score (bin start)", "documents", width=620,
        colours=(svg.KEPT_COLOUR, svg.DROPPED_COLOUR), marker=marker)))
    note = '<p class="note">Documents that reached language identification (kept or dropped by any later stage).</p>'
    return section("languages", "Languages and LID scores", note + f'<div class="plots">{"".join(plots)}</div>')


def dedup_section(dedup: dict) -> str:
    if not dedup["stages"]:
        return section("dedup", "Deduplication", '<p class="note">This run has no dedup stages.</p>')
    rows = [[s["name"], f"{s['docs_in']:,}", f"{s['docs_removed']:,}", _percent(s["docs_removed"], s["docs_in"]),
             f"{s['documents_cut']:,}", quantity(s["chars_removed"]), _percent(s["chars_removed"], s["chars_in"]),
             quantity(s["bytes_removed"])] for s in dedup["stages"]]
    content = html_table(["stage", "docs in", "docs removed", "of docs", "docs cut", "characters removed", "of text",
                          "bytes removed"], rows)
    content += ('<p class="note">Characters removed: the stage\'s input text minus its output text; exact-substring '
                "dedup cuts repeated spans out of documents it keeps (docs cut). Bytes removed: UTF-8 bytes the stage "
                "counted as removed.</p>")
    plots = []
    bars = [(s["name"], s["bytes_removed"], size(s["bytes_removed"])) for s in dedup["stages"]
            if s["bytes_removed"] is not None]
    if bars:
        plots.append(figure("Bytes removed per dedup stage", svg.hbars(bars, "bytes removed",
                                                                       colour=svg.DROPPED_COLOUR, width=520)))
    if dedup["cluster_sizes"]:
        sizes = dedup["cluster_sizes"]
        plots.append(figure(f"MinHash cluster sizes ({sum(n for _, n in sizes):,} clusters)", svg.stacked_columns(
            [str(size) for size, _ in sizes], [("clusters", [count for _, count in sizes])], "cluster sizes",
            "documents in the cluster", "clusters", width=520, colours=(svg.PALETTE[3],))))
    else:
        content += '<p class="note">No MinHash cluster-size histogram was written.</p>'
    return section("dedup", "Deduplication", content + f'<div class="plots">{"".join(plots)}</div>')


def rewrites_section(rewrites: list[dict]) -> str:
    """Stages that replace text (pii): documents changed, replacements of each kind, and the snippets of changed
    documents they kept (before and after, escaped as every cell); nothing when the run has none."""
    if not rewrites:
        return ""
    rows = [[s["name"], f"{s['docs_in']:,}", f"{s['changed']:,}", _percent(s["changed"], s["docs_in"]),
             ", ".join(f"{kind} {count:,}" for kind, count in s["replaced"].items())] for s in rewrites]
    content = html_table(["stage", "docs in", "docs changed", "of docs", "replacements"], rows)
    for stage in rewrites:
        if stage["samples"]:
            content += html_table(
                ["url", "replaced", f"{stage['name']}: before", "after"],
                [[sample.get("url") or sample["id"], ", ".join(f"{k} {n}" for k, n in sample["replaced"].items() if n),
                  sample["before"], sample["after"]] for sample in stage["samples"]])
    note = ('<p class="note">Text replaced, no document dropped: e-mail and public IP addresses become fixed stand-ins '
            "(datatrove's PIIFormatter, as in FineWeb). The snippets are the first changed documents of each task, "
            "from a little before the first replacement.</p>")
    return section("rewrites", "Replacements (PII)", content + note)


def samples_section(seed: int, unstored: dict[str, int] | None = None) -> str:
    controls = ('<div class="controls"><label>stage <select id="sample-stage"></select></label>'
                '<label>reason <select id="sample-reason"></select></label></div>'
                '<p class="note" id="sample-summary"></p><div id="sample-list"></div>'
                '<noscript><p class="note">The sample browser needs JavaScript.</p></noscript>')
    note = (f'<p class="note">Random documents, drawn with seed {seed} (<code>mdr report --seed</code>); page through '
            "all of them with <code>mdr inspect DIR --stage S --reason R</code>.</p>")
    if unstored:
        listed = ", ".join(f"{reason} {count:,}" for reason, count in sorted(unstored.items(), key=lambda kv: -kv[1]))
        note += (f'<p class="note">The read stage counted {sum(unstored.values()):,} records it did not store '
                 f"({escape(listed)}): it stores the reasons in <code>reader.excluded_reasons</code>, by default all "
                 "but not_response (request, metadata and warcinfo records, no pages).</p>")
    return section("samples", "Sample browser", note + controls)


def recipe_section(run: dict) -> str:
    recipe = escape(json.dumps(run.get("recipe", {}), indent=2))
    # file names as the terminal shows them: run.json keeps undecodable bytes (\udcXX), HTML has no place for controls
    inputs = [safe(path) for path in run.get("inputs", [])]
    shown = "\n".join(inputs[:50]) + (f"\n… {len(inputs) - 50} more" if len(inputs) > 50 else "")
    return section("recipe", "Recipe and inputs",
                   f'<details class="recipe"><summary>recipe {escape(str(run.get("recipe", {}).get("name")))}, '
                   f"{len(inputs)} input file(s), {escape(str(run.get('tasks')))} task(s)</summary>"
                   f"<pre>{recipe}</pre><pre>{escape(shown)}</pre></details>")


def render(view: dict) -> str:
    """The report's HTML from `collect()`'s view of a run."""
    result, run = view["funnel"], view["run"]
    note = partial_note(result)
    body = "".join([
        f'<div class="partial">{escape(note)}</div>' if note else "",
        funnel_section(result),
        reasons_section(result),
        time_section(result),
        lengths_section(view["lengths"]),
        languages_section(view["languages"]),
        dedup_section(view["dedup"]),
        rewrites_section(view.get("rewrites", [])),
        samples_section(view["seed"], view["samples"].get("unstored")),
        recipe_section(run),
    ])
    title = f"mdr report: {Path(view['out']).name} ({run.get('recipe', {}).get('name')})"
    subtitle = (f"{view['out']} · {result['input_records']:,} records in, {result['output_docs']:,} documents out"
                + (" · partial" if note else ""))
    return html_page(title, subtitle, body, (ASSETS / "report.js").read_text(),
                     {"samples-data": {**view["samples"], "seed": view["seed"]}})


def html_page(title: str, subtitle: str, body: str, script: str | None = None,
              data: dict[str, object] | None = None) -> str:
    """A page in the report's template and style (also `mdr ablate`'s): `body` is HTML, escaped already; `title` and
    `subtitle` are text. `data` (element id → value) travels as JSON blocks for `script`; a page without a script
    gets a policy that runs none."""
    style = (ASSETS / "report.css").read_text()
    scripts = "".join(f'<script type="application/json" id="{escape(name)}">{script_json(value)}</script>\n'
                      for name, value in (data or {}).items())
    if script is not None:
        scripts += f"<script>{script}</script>\n"
    return Template((ASSETS / "template.html").read_text()).substitute(
        csp=escape(content_security_policy(script, style)), title=escape(title), subtitle=escape(subtitle),
        style=style, body=body, scripts=scripts)


def write_report(out: str | Path, path: str | Path, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                 sample_chars: int = DEFAULT_SAMPLE_CHARS) -> Path:
    """Builds the report of run directory `out` into `path` (written whole, then renamed into place)."""
    html = render(collect(out, per_reason=samples, seed=seed, max_chars=sample_chars))
    path = Path(path)
    write_atomically(path, html)  # a full disk leaves no half-written file behind, and the error names the file
    return path
