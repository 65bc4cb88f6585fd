"""`mdr report`: the HTML is self-contained, escapes page content, carries a CSP that admits only its own script and
style, and its numbers and samples agree with the run's stats and Parquet files."""

import base64
import hashlib
import json
import re
from html import unescape
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mdr.pipeline.report.collect import collect, html_preview
from mdr.pipeline.report.report import script_json
from tests.pipeline.commands import mdr_here, stats_json
from tests.pipeline.report.conftest import DROPPED_URL, IMG_PAYLOAD, KEPT_URL, SCRIPT_PAYLOAD, URL_PAYLOAD


def embedded_samples(html: str) -> dict:
    block = re.search(r'<script type="application/json" id="samples-data">(.*?)</script>', html, re.DOTALL)
    return json.loads(block.group(1))


def markup_outside_json(html: str) -> str:
    return re.sub(r'<script type="application/json" id="samples-data">.*?</script>', "", html, flags=re.DOTALL)


def excluded_rows(out: Path) -> list[dict]:
    return [row for path in sorted((out / "excluded").glob("*/*.parquet"))
            for row in pq.read_table(path, columns=["id", "url", "stage", "reason", "detail", "text"]).to_pylist()]


def test_page_content_is_escaped(report_file):
    html = report_file.read_text()
    for payload in (SCRIPT_PAYLOAD, IMG_PAYLOAD, URL_PAYLOAD, DROPPED_URL, KEPT_URL, "<script>window.__pwned",
                    "<img src=x onerror", "<img/src=x"):
        assert payload not in html
    assert html.count("<script") == 2  # the JSON block and the report's own script
    assert "\\u003cscript\\u003ewindow.__pwned=1" in html  # the payload travels as escaped JSON text
    samples = embedded_samples(html)
    urls = {doc["url"] for stage in samples["stages"] for reason in stage["reasons"] for doc in reason["docs"]}
    kept_texts = [doc["text"] for doc in samples["kept"]["docs"]]
    assert DROPPED_URL in urls and KEPT_URL in {doc["url"] for doc in samples["kept"]["docs"]}
    assert any(SCRIPT_PAYLOAD in text and IMG_PAYLOAD in text for text in kept_texts)


def test_script_json_cannot_close_the_script_element():
    value = {"text": "</script><!-- & \u2028\u2029 <b>", "n": [1, None]}
    encoded = script_json(value)
    assert not set("<>&\u2028\u2029") & set(encoded)
    assert json.loads(encoded) == value


def test_content_security_policy_admits_only_the_inline_script_and_style(report_file):
    html = report_file.read_text()
    policy = unescape(re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1))
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL).group(1)

    def sha(text):
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == sha(script)
    assert directives["style-src"] == sha(style)
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_report_is_self_contained(report_file):
    markup = markup_outside_json(report_file.read_text())
    assert not re.search(r"\s(?:src|href|action|srcset)\s*=", markup)
    assert "<link" not in markup and "@import" not in markup and "url(" not in markup
    assert " style=" not in markup  # inline style attributes would be refused by the CSP


def test_numbers_agree_with_stats_and_parquet(run_dir):
    view = collect(run_dir, per_reason=50, seed=0, max_chars=100)
    stats = stats_json(run_dir, mdr_here)
    names = [stage["name"] for stage in stats["stages"]]
    by_name = {stage["name"]: stage for stage in stats["stages"]}
    # every extracted document is either kept or dropped (with a stored row) by a later stage
    lengths = dict(view["lengths"]["series"])
    assert sum(lengths["kept"]) == stats["output_docs"]
    assert sum(map(sum, lengths.values())) == by_name["extract"]["docs_out"]
    languages = view["languages"]
    assert sum(n for _, n in languages["counts"]) == by_name["language"]["docs_in"]
    assert sum(languages["passed"]) == by_name["language"]["docs_out"]
    assert sum(languages["dropped"]) == sum(by_name["language"]["dropped"].values())
    assert languages["threshold"] == 0.65
    # samples: each reason's count is the stage's drop count from the stats; each doc is that reason's stored row
    rows = {row["id"]: row for row in excluded_rows(run_dir)}
    # the read stage's drops are samples too, but for not_response records (no pages), which it counts, not stores
    assert "read" in [stage["name"] for stage in view["samples"]["stages"]]
    unstored = view["samples"]["unstored"]
    assert unstored == {"not_response": by_name["read"]["dropped"]["not_response"]}
    for stage in view["samples"]["stages"]:
        assert {r["reason"]: r["count"] for r in stage["reasons"]} == {
            reason: count for reason, count in by_name[stage["name"]]["dropped"].items()
            if stage["name"] != "read" or reason not in unstored}
        for reason in stage["reasons"]:
            assert len(reason["docs"]) == min(50, reason["count"])
            for doc in reason["docs"]:
                row = rows[doc["id"]]
                assert (row["stage"], row["reason"], row["detail"], row["url"]) == (
                    stage["name"], reason["reason"], doc["detail"], doc["url"])
                assert doc["text"] == row["text"][:100] and doc["chars"] == len(row["text"])
        assert stage["html"] == (names.index(stage["name"]) <= names.index("extract"))
    assert view["samples"]["kept"]["count"] == stats["output_docs"]


def test_dedup_section_reads_the_dedup_stages(run_dir):
    view = collect(run_dir, per_reason=1, seed=0, max_chars=10)
    stats = {stage["name"]: stage for stage in stats_json(run_dir, mdr_here)["stages"]}
    dedup = {stage["name"]: stage for stage in view["dedup"]["stages"]}
    assert set(dedup) == {"minhash", "exact_substring", "url_dedup"}
    for name, stage in dedup.items():
        assert stage["docs_removed"] == sum(stats[name]["dropped"].values())
        assert stage["chars_removed"] == stage["chars_in"] - stats[name]["chars_out"] >= 0
    assert dedup["exact_substring"]["documents_cut"] > 0 and dedup["exact_substring"]["bytes_removed"] > 0
    sizes = view["dedup"]["cluster_sizes"]
    assert sizes and all(size >= 2 for size, _ in sizes)
    assert sum((size - 1) * clusters for size, clusters in sizes) == dedup["minhash"]["docs_removed"]


def test_samples_are_reproducible_and_capped(run_dir, tmp_path):
    paths = [tmp_path / name for name in ("a.html", "b.html", "c.html")]
    for path, seed in zip(paths, (7, 7, 8)):
        result = mdr_here("report", str(run_dir), "-o", str(path), "--samples", "1", "--seed", str(seed),
                     "--sample-chars", "60")
        assert result.returncode == 0, result.stderr
    a, b, c = (p.read_text() for p in paths)
    assert a == b
    samples = embedded_samples(a)
    docs = [doc for stage in samples["stages"] for reason in stage["reasons"] for doc in reason["docs"]]
    assert all(len(reason["docs"]) == 1 for stage in samples["stages"] for reason in stage["reasons"])
    assert len(samples["kept"]["docs"]) == 1 and all(len(doc["text"]) <= 60 for doc in docs)
    assert [d["id"] for d in docs] + [samples["kept"]["docs"][0]["id"]] != [
        d["id"] for s in embedded_samples(c)["stages"] for r in s["reasons"] for d in r["docs"]
    ] + [embedded_samples(c)["kept"]["docs"][0]["id"]]


def test_html_preview_keeps_visible_words_only():
    page = ("<html><head><style>p{color:red}</style><script>var x = '<p>';</script></head>"
            "<body><!-- hidden --><p>Fish &amp; chips</p><p>are\n\n good</p></body></html>")
    assert html_preview(page) == "Fish & chips are good"


def test_report_errors_are_one_line(tmp_path, run_dir):
    for args in ([str(tmp_path), "-o", str(tmp_path / "r.html")],
                 [str(run_dir), "-o", str(tmp_path / "missing" / "r.html")],
                 [str(run_dir), "-o", str(tmp_path / "r.html"), "--samples", "-1"]):
        result = mdr_here("report", *args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("content, is_run", [
    ('{"recipe": {}, "inputs": ["a.warc"], "tasks": 1, "phases": []}', True),  # what write_run_file records
    ('{"recipe": {}, "inputs": ["a.warc"], "tasks": 1}', True),  # an mdr run.json without phases
    ("{}", False),  # run.json is a generic name: a web app's, a benchmark's
    ('{"name": "my-app", "version": 2}', False),
    ('{"recipe": {}, "phases": []}', False),
    ("[1, 2]", False),
    ("not json", False),
])
def test_report_refuses_only_mdr_runs_above_its_output(tmp_path, content, is_run):
    """`mdr report -o` refuses a path inside an mdr run, known by its run.json's keys, and writes anywhere else: a
    folder up the path holding some other program's run.json is no run."""
    from mdr.pipeline.recipe import RecipeError
    from mdr.pipeline.report.cli import _check_report_path

    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "run.json").write_text(content)
    (tmp_path / "project" / "reports").mkdir()
    target = tmp_path / "project" / "reports" / "r.html"
    if is_run:
        with pytest.raises(RecipeError, match="inside the run directory"):
            _check_report_path(target)
    else:
        _check_report_path(target)
