"""The `pii` stage (mdr.filters.pii): e-mail and public IP addresses replaced as FineWeb's release did, i.e. exactly
as datatrove's `PIIFormatter` (run after MinHash in datatrove's examples/fineweb.py), with counts for the stats
and snippets of changed documents for `mdr report` and `mdr inspect`.

Every expected text is datatrove's own `PIIFormatter().format` of the same documents, in the same order; the
cases below also state what that behaviour is, so that a reader sees what FineWeb's text holds."""

import dataclasses
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document
from datatrove.pipeline.formatters.pii import PIIFormatter

from data_samples.make_samples import FILE_NAMES, PAGES, write_warc
from mdr.filters.pii import PIIConfig, PIIStep, load_samples, snippet
from mdr.layout import RunLayout
from mdr.pipeline.recipe import RecipeError, load_recipe, parse_recipe
from mdr.pipeline.report.collect import collect, dedup_stage_names
from mdr.pipeline.report.inspect import show_rewrites
from mdr.pipeline.report.report import rewrites_section
from tests.filters.texts import sample_texts, shared_file
from tests.pipeline.commands import mdr_here, run_args, stats_json

EMAILS = PIIConfig().email_replacement  # datatrove's stand-ins, used in turn
IPS = PIIConfig().ip_replacement


def run_step(texts: list[str], config: PIIConfig | None = None, rank: int = 0, step: PIIStep | None = None,
             samples_dir: str | None = None) -> tuple[list[str], dict]:
    """The texts after the stage, as one task in this order, and the task's counters."""
    step = step or PIIStep(config or PIIConfig(), samples_dir)
    docs = [Document(text=text, id=f"d{i}", metadata={"url": f"https://site.example.com/{i}"})
            for i, text in enumerate(texts)]
    out = [doc.text for doc in step.run(iter(docs), rank=rank, world_size=1)]
    counters = {name: value.total for name, value in step.stats.stats.items()}
    return out, counters


def datatrove(texts: list[str], **options) -> list[str]:
    """datatrove's PIIFormatter over the texts, one formatter for all, in order (as a datatrove task runs it)."""
    formatter = PIIFormatter(**options)
    return [formatter.format(text) for text in texts]


def stand_ins(text: str, strings) -> int:
    return sum(text.count(s) for s in strings)


# (text, replaced e-mails, replaced IPs, what it shows about datatrove's rules)
CASES = [
    ("For a copy of the minutes, write to the clerk at m.okafor@riverton-council.gov.uk before Friday.", 1, 0,
     "an address in prose"),
    ("Send corrections to news+corrections@riverton-gazette.com or to the editor, jane_doe@gazette-mail.net.", 2, 0,
     "two addresses: the stand-ins in turn"),
    ("Contact <a href='mailto:press@harbour-trust.org?subject=Tour'>us</a> for group tours.", 1, 0,
     "a mailto: URL"),
    ("The archive is at ftp://anonymous:guest@files.harbour-trust.org/pub/ and https://user@host.example.net/x.", 2, 0,
     "credentials in URLs are e-mail-shaped"),
    ("Write to jane at example dot com, jane [at] example [dot] com or jane(at)example.com.", 0, 0,
     "spelled-out addresses are not matched"),
    ("Our resolver is 8.8.8.8 and the status page answers on 45.33.32.156:8080.", 0, 2,
     "public addresses, with a port too"),
    ("The router is at 192.168.1.1, the NAS at 10.0.0.12, the VPN at 172.16.5.4, loopback 127.0.0.1, link-local "
     "169.254.10.20, carrier NAT 100.64.0.1 and the documentation range 192.0.2.15 and 203.0.113.7.", 0, 0,
     "private, loopback, link-local, shared and documentation ranges are kept (ipaddress.is_global)"),
    ("Upgrade to version 1.2.3.4 before the release of 10.0.0.1; Python 3.11.4.0 is fine.", 0, 2,
     "version numbers that are global addresses are replaced, those in private ranges kept"),
    ("Build 1.2.3.4.5 and serial 1234.5.6.78 and 999.1.1.1 and 300.1.1.1.", 0, 3,
     "no word boundaries: 1.2.3.4 of 1.2.3.4.5, 234.5.6.78 of 1234.5.6.78 and 99.1.1.1 of 999.1.1.1 are addresses"),
    ("The server answers on 2606:4700:4700::1111 and fe80::1.", 0, 0, "IPv6 addresses are not replaced"),
    ("Mail root@[8.8.4.4] about 8.8.4.4.", 1, 1, "an address-literal e-mail, then an IP"),
]


@pytest.mark.parametrize("text, emails, ips, why", CASES, ids=[case[3] for case in CASES])
def test_cases_are_replaced_as_datatrove_does(text, emails, ips, why):
    (ours,), counters = run_step([text])
    (theirs,) = datatrove([text])
    assert ours == theirs, why
    assert counters.get("replaced_email", 0) == emails == stand_ins(ours, EMAILS) - stand_ins(text, EMAILS), why
    assert counters.get("replaced_ip", 0) == ips, why
    assert counters.get("changed", 0) == (ours != text) == bool(emails or ips), why
    assert counters["total"] == counters["forwarded"] == 1


def test_what_the_cases_show():
    """The behaviours the cases name, spelled out on datatrove's output (so that a change of datatrove's rules is
    seen here, not only as an equality of two changed outputs)."""
    (prose, two, *_), _ = run_step([CASES[0][0], CASES[1][0]])
    assert "m.okafor@" not in prose and EMAILS[0] in prose
    # the next stand-in for each replacement, carried on across a task's documents: the first document took the
    # first, so the second document's first address gets the second
    assert two.index(EMAILS[1]) < two.index(EMAILS[0])
    (version, boundaries, private), _ = run_step([CASES[7][0], CASES[8][0], CASES[6][0]])
    assert "1.2.3.4" not in version and "3.11.4.0" not in version and "10.0.0.1" in version
    assert boundaries.startswith("Build ") and ".5 and serial 1" in boundaries and " and 9" in boundaries
    assert "999.1.1.1" not in boundaries and "300.1.1.1" in boundaries  # "00.1.1.1": a leading zero, no address
    assert private == CASES[6][0]


def test_options_turn_kinds_off_and_private_addresses_on():
    text = "Mail ops@harbour-trust.org; the router is 192.168.1.1 and the site 8.8.8.8."
    for options in ({"remove_emails": False}, {"remove_ips": False}, {"only_remove_public_ips": False},
                    {"email_replacement": ("[email]",), "ip_replacement": ("0.0.0.0", "[ip]")}):
        (ours,), counters = run_step([text], PIIConfig(**options))
        assert ours == datatrove([text], **options)[0], options
    (everything,), counters = run_step([text], PIIConfig(only_remove_public_ips=False))
    assert "192.168.1.1" not in everything and counters["replaced_ip"] == 2


def test_each_task_starts_the_stand_ins_afresh():
    """datatrove's rotation is state of the step object; mdr's output of a task depends on its documents only, so
    the second task (same step object, as a process running two tasks has) gives the first task's output again."""
    texts = ["Write to a.b@harbour-trust.org.", "Or to c.d@harbour-trust.org, from 8.8.8.8."]
    step = PIIStep(PIIConfig())
    first, _ = run_step(texts, step=step, rank=0)
    second, _ = run_step(texts, step=step, rank=1)
    assert first == second == datatrove(texts)
    assert datatrove(texts + texts)[2:] != first  # datatrove's one object carries on where the first task ended


def _real_texts() -> list[str]:
    """Real page texts: the main-content ground truth of the extraction benchmarks (aeb, wcxb-dev) and dolma's
    texts extracted from a CC-MAIN-2019-30 WARC (skips when ../shared/data is absent)."""
    texts = [entry["articleBody"] for entry in
             json.loads(shared_file("extraction/aeb/ground-truth.json").read_text()).values()]
    texts += [json.loads(path.read_text())["ground_truth"]["main_content"]
              for path in sorted(shared_file("extraction/wcxb-dev/ground-truth").glob("*.json"))]
    import gzip

    from tests.filters.texts import DOLMA_CC_SAMPLE
    with gzip.open(shared_file(DOLMA_CC_SAMPLE), "rt") as lines:
        texts += [json.loads(line)["text"] for line in lines]
    return [text for text in texts if text]


def _planted_texts() -> list[str]:
    """data_samples' page texts with addresses planted in memory: e-mails, public and private IPs, version numbers
    and a spelled-out address, one kind or another in most pages."""
    plants = ["Write to the editor at {0}.editor@riverton-gazette.com with your letters.",
              "Our mirror is at 45.33.{0}.17 and the printer at 192.168.0.{0}.",
              "Requires firmware 2.4.{0}.9 or later; mail support at example dot com.",
              "Questions? info{0}@harbour-trust.org or sales@{0}.example.net, or call us."]
    texts = sample_texts()
    return [text + ("\n" + plants[i % 5].format(i) if i % 5 < len(plants) else "") for i, text in enumerate(texts)]


@pytest.mark.parametrize("corpus", ["shared", "samples"])
def test_real_pages_equal_datatrove(corpus):
    """On real pages (a few hundred documents, one task) the stage's output is datatrove's, document for document,
    and the counters agree with what changed."""
    texts = _real_texts() if corpus == "shared" else _planted_texts()
    ours, counters = run_step(texts)
    theirs = datatrove(texts)
    assert ours == theirs
    changed = sum(a != b for a, b in zip(texts, theirs))
    assert changed >= 10, "too few documents with addresses to compare on"  # aeb+wcxb 15, dolma 25; planted more
    assert counters["changed"] == changed
    assert counters["replaced_email"] + counters["replaced_ip"] >= changed
    assert counters["total"] == counters["forwarded"] == len(texts)


def test_samples_are_written_per_task_and_snippets_show_the_first_change(tmp_path):
    texts = _planted_texts()
    run_step(texts, samples_dir=str(tmp_path), rank=3)
    samples = load_samples(tmp_path)
    assert (tmp_path / "samples" / "r00003.jsonl").is_file() and 0 < len(samples) <= 5
    after = datatrove(texts)
    for sample in samples:
        index = int(sample["id"][1:])
        assert texts[index][sample["offset"]:].startswith(sample["before"])
        assert after[index][sample["offset"]:].startswith(sample["after"])
        assert sample["before"] != sample["after"] and sum(sample["replaced"].values()) >= 1
    cut = snippet("x" * 500 + "a@b.org" + "y" * 500, "x" * 500 + "email@example.com" + "y" * 500)
    assert cut["offset"] == 440 and cut["before"].startswith("x" * 60 + "a@b.org")


def test_fineweb_recipe_runs_pii_after_minhash_with_datatrove_defaults():
    recipe = load_recipe("fineweb")
    assert recipe.stage_keys[-2:] == ["minhash", "pii"]
    config = recipe.stages[-1].config
    defaults = PIIFormatter()
    assert config.formatter().emails_replacer.replacements == defaults.emails_replacer.replacements
    assert config.formatter().ip_replacer.replacements == defaults.ip_replacer.replacements
    assert (config.remove_emails, config.remove_ips, config.only_remove_public_ips) == (True, True, True)
    assert "pii" not in dedup_stage_names({"recipe": recipe.raw})  # its own phase, but no dedup in the report


def test_any_recipe_can_use_pii_and_bad_options_are_one_line_errors():
    recipe = parse_recipe({"stages": [{"extract": {}}, {"pii": {"only_remove_public_ips": False}}]})
    assert recipe.stage_keys == ["extract", "pii"] and recipe.stages[1].is_dedup  # a phase after the filters
    for options, message in (({"email_replacement": []}, "must not be empty"),
                             ({"ip_replacement": [""]}, "must not be an empty string"),
                             ({"remove_ips": "yes"}, "expected true or false")):
        with pytest.raises(RecipeError, match=message):
            parse_recipe({"stages": [{"pii": options}]})
    with pytest.raises(RecipeError, match="after dedup stage 'pii'"):
        parse_recipe({"stages": [{"pii": {}}, {"c4": {}}]})


PLANT = ("Questions about this page go to the editor, {name}@coastal-mail.net, and our mirror runs at 45.33.32.{n} "
         "(the office printer at 192.168.1.{n} is not public).")


@pytest.fixture(scope="module")
def fineweb_run(tmp_path_factory):
    """`mdr fineweb` over data_samples' first WARC, rewritten with an address planted in every page it keeps."""
    folder = tmp_path_factory.mktemp("pii_run")
    pages = []
    for n, page in enumerate(page for page in PAGES if page.file == 0):
        if page.fate.get("kept"):
            planted = PLANT.format(name=f"maria.lopez{n}", n=n + 2)
            page = dataclasses.replace(page, paragraphs=page.paragraphs[:-1] + [f"{page.paragraphs[-1]} {planted}"])
        pages.append(page)
    warc = folder / FILE_NAMES[0]
    write_warc(warc, 0, pages)
    out = folder / "out"
    result = mdr_here(*run_args("fineweb", out, warc, tasks=1, workers=1))
    assert result.returncode == 0, result.stderr
    return out


def _texts(folder: Path) -> list[str]:
    return [text for path in sorted(folder.glob("*.parquet")) for text in pq.read_table(path)["text"].to_pylist()]


def test_fineweb_run_counts_replacements_and_equals_datatrove(fineweb_run):
    layout = RunLayout(fineweb_run)
    deduped, output = _texts(layout.deduped("minhash")), _texts(layout.data)
    assert output == datatrove(deduped)  # the pii phase is datatrove's PIIFormatter over MinHash's output
    planted = sum("@coastal-mail.net" in text for text in deduped)
    assert planted >= 3 and not any("@coastal-mail.net" in text for text in output)
    stats = stats_json(fineweb_run, run=mdr_here)
    names = [stage["name"] for stage in stats["stages"]]
    assert names[-2:] == ["minhash", "pii"]
    pii = stats["stages"][-1]
    assert pii["docs_in"] == pii["docs_out"] == len(deduped) and pii["dropped"] == {}
    assert pii["changed"] == planted and pii["replaced"] == {"email": planted, "ip": planted}
    table = mdr_here("stats", str(fineweb_run)).stdout
    assert f"changed {planted} " in table and f"replaced email {planted}, ip {planted}" in table


def test_report_and_inspect_show_changed_documents(fineweb_run):
    view = collect(fineweb_run, per_reason=1, seed=0, max_chars=100)
    (rewrites,) = view["rewrites"]
    assert rewrites["changed"] == len(rewrites["samples"]) or len(rewrites["samples"]) == 5
    assert all("@coastal-mail.net" in s["before"] and "@coastal-mail.net" not in s["after"]
               for s in rewrites["samples"])
    assert "pii" not in [stage["name"] for stage in view["dedup"]["stages"]]
    html = rewrites_section(view["rewrites"])
    assert "maria.lopez" in html and EMAILS[0] in html
    shown = mdr_here("inspect", str(fineweb_run), "--stage", "pii", "-n", "2")
    assert shown.returncode == 0, shown.stderr
    assert f"{rewrites['changed']} of {rewrites['docs_in']} documents changed by pii" in shown.stdout
    assert shown.stdout.count("before  ") == 2 and EMAILS[0] in shown.stdout


def test_snippets_are_neutralised_in_terminal_and_html():
    row = {"changed": 1, "docs_in": 1, "replaced": {"email": 1, "ip": 0}}
    sample = {"id": "x", "url": "https://e.example/\x1b]8;;evil\x07", "replaced": {"email": 1, "ip": 0}, "offset": 0,
              "before": "<script>alert(1)</script>\x1b[2J a@b.org",
              "after": "<script>alert(1)</script> email@example.com"}
    out = io.StringIO()
    with redirect_stdout(out):
        show_rewrites("pii", row, [sample], None)
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
    html = rewrites_section([{**row, "name": "pii", "samples": [sample]}])
    assert "<script>" not in html and "&lt;script&gt;" in html
