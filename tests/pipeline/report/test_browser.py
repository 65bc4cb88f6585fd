"""The report in a real browser (Debian's headless Chromium driven by Playwright): every plot renders, the sample
browser switches stage and reason, planted script payloads do not run, and the Content-Security-Policy is enforced.
A screenshot is saved to tests/artifacts/report.png."""

import json
import re
from pathlib import Path

import pytest

from tests.pipeline.report.conftest import DROPPED_URL, IMG_PAYLOAD, KEPT_URL, REPO, SCRIPT_PAYLOAD

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="playwright not installed: pip install -e '.[test]'"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium"),
]

# Runs before the report's own script: records CSP violations the page reports.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


@pytest.fixture(scope="module")
def page(report_file, tmp_path_factory):
    """The report opened from file:// in a fresh profile, with console messages and page errors recorded."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.messages = []
        page.on("console", lambda message: page.messages.append((message.type, message.text)))
        page.on("pageerror", lambda error: page.messages.append(("pageerror", str(error))))
        page.add_init_script(RECORD_VIOLATIONS)
        page.goto(report_file.as_uri())
        page.wait_for_selector("#sample-list article")
        yield page
        context.close()


def embedded(report_file) -> dict:
    html = report_file.read_text()
    return json.loads(re.search(r'id="samples-data">(.*?)</script>', html, re.DOTALL).group(1))


def test_every_plot_rendered(page, report_file):
    plots = page.eval_on_selector_all("svg.plot", """(svgs) => svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return [box.width, box.height, svg.querySelectorAll('rect').length, svg.querySelectorAll('text').length];
    })""")
    assert len(plots) == report_file.read_text().count('<svg class="plot"') >= 10
    for width, height, rects, texts in plots:
        assert width > 100 and height > 20 and rects > 0 and texts > 0


def shown(page) -> list[dict]:
    return page.eval_on_selector_all("#sample-list article", """(cards) => cards.map((card) => ({
        stage: card.dataset.stage, reason: card.dataset.reason, url: card.querySelector('.url').textContent,
        detail: (card.querySelector('.detail') || {}).textContent || ''}))""")


def test_sample_browser_switches_stage_and_reason(page, report_file):
    samples = embedded(report_file)
    seen = set()
    for stage in samples["stages"]:
        page.select_option("#sample-stage", stage["name"])
        for index, reason in enumerate(stage["reasons"]):
            page.select_option("#sample-reason", str(index))
            cards = shown(page)
            assert {(c["stage"], c["reason"]) for c in cards} == {(stage["name"], reason["reason"])}
            assert [c["url"] for c in cards] == [doc["url"] or "(no URL)" for doc in reason["docs"]]
            assert [c["detail"] for c in cards] == [doc["detail"] for doc in reason["docs"]]
            assert f"of {reason['count']:,} documents dropped by {stage['name']} for {reason['reason']}" in \
                page.text_content("#sample-summary")
            seen.add(tuple(c["url"] for c in cards))
    assert len(seen) > 5  # the documents shown changed with the selection
    page.select_option("#sample-stage", "")
    cards = shown(page)
    assert {c["stage"] for c in cards} == {"kept"} and page.is_disabled("#sample-reason")
    assert [c["url"] for c in cards] == [doc["url"] for doc in samples["kept"]["docs"]]


def test_planted_payloads_show_as_text_and_never_run(page, report_file):
    page.select_option("#sample-stage", "")
    card = page.locator("#sample-list article", has=page.locator(".url", has_text=KEPT_URL))
    card.locator("summary").click()
    assert SCRIPT_PAYLOAD in card.locator("pre").text_content()
    assert IMG_PAYLOAD in card.locator("pre").text_content()
    page.select_option("#sample-stage", "url")
    url_stage = next(stage for stage in embedded(report_file)["stages"] if stage["name"] == "url")
    page.select_option("#sample-reason", str([r["reason"] for r in url_stage["reasons"]].index("hard_word")))
    dropped = page.locator("#sample-list article", has=page.locator(".url", has_text=DROPPED_URL))
    dropped.locator("summary").click()
    assert SCRIPT_PAYLOAD in dropped.locator("pre").text_content()
    page.wait_for_timeout(300)  # a broken <img> would have fired onerror by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title().startswith("mdr report: ") and "pwned" not in page.title()
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("window.__violations") == []
    assert [m for m in page.messages if m[0] in ("error", "pageerror")] == []


def test_content_security_policy_blocks_injected_script(page):
    """A control: a script injected into the page is refused by the CSP, and the refusal is seen."""
    page.evaluate("""() => { const s = document.createElement('script');
                             s.textContent = 'window.__injected = 1'; document.body.appendChild(s); }""")
    page.wait_for_timeout(100)
    assert page.evaluate("typeof window.__injected") == "undefined"
    assert any(v.startswith("script-src") for v in page.evaluate("window.__violations"))


def test_screenshot_artifact(page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.select_option("#sample-stage", "repetition")
    path = ARTIFACTS / "report.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"report screenshot: {path}")


def open_tab(page, path):
    """A new tab beside the report's on the page file at `path`, recording console messages, page errors and
    Content-Security-Policy violations (window.__violations): the tab and its list of messages."""
    tab = page.context.new_page()
    messages = []
    tab.on("console", lambda message: messages.append((message.type, message.text)))
    tab.on("pageerror", lambda error: messages.append(("pageerror", str(error))))
    tab.add_init_script(RECORD_VIOLATIONS)
    tab.goto(path.as_uri())
    return tab, messages


def test_ablation_page_renders_without_errors(page, tmp_path):
    """`mdr ablate`'s page (experiments/page.py, the report's template without a script), in a tab beside the
    report's: every chart drawn, no console error or policy violation, the planted eval-set name shown as text.
    Screenshot: tests/artifacts/ablation.png."""
    from mdr.experiments.page import write_page
    from tests.experiments.test_page import PAYLOAD, make_summary

    path = tmp_path / "ablation.html"
    write_page(path, make_summary())
    tab, messages = open_tab(page, path)
    plots = tab.eval_on_selector_all("svg.plot", """(svgs) => svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return [box.width, box.height, svg.querySelectorAll('circle').length];
    })""")
    assert len(plots) == 4  # a learning-curve chart and an error-bar chart per eval set
    assert all(width > 100 and height > 100 and circles > 0 for width, height, circles in plots)
    assert PAYLOAD in tab.text_content("#results") and tab.evaluate("document.images.length") == 0
    assert tab.evaluate("window.__violations") == [] and messages == []
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "ablation.png"), full_page=True)
    tab.close()


def test_scaling_page_renders_without_errors(page, tmp_path):
    """`mdr scale`'s page (experiments/scale_page.py, the report's template without a script), in a tab beside the
    report's: its three charts drawn with their marks, no console error or policy violation, the planted run name
    shown as text. Screenshot: tests/artifacts/scaling.png."""
    from mdr.experiments.scale_page import write_page
    from tests.experiments.test_scale_page import PAYLOAD, make_scaling

    scaling = make_scaling()
    path = tmp_path / "scaling.html"
    write_page(path, scaling)
    tab, messages = open_tab(page, path)
    plots = tab.eval_on_selector_all("svg.plot", """(svgs) => svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return [box.width, box.height, svg.querySelectorAll('circle, rect, polygon').length,
                svg.querySelectorAll('polyline').length];
    })""")
    assert len(plots) == 3  # IsoFLOP profiles, loss against compute, residuals
    assert all(width > 100 and height > 100 for width, height, _, _ in plots)
    runs = len(scaling["runs"]) - 1  # one diverged run is not plotted
    assert [marks >= runs for _, _, marks, _ in plots] == [True, True, True]
    assert [lines for _, _, _, lines in plots] == [3, 1, 1]  # a parabola per budget; the optimal curve; zero
    assert PAYLOAD in tab.text_content("#runs") and tab.evaluate("document.images.length") == 0
    assert tab.evaluate("window.__violations") == [] and messages == []
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "scaling.png"), full_page=True)
    tab.close()
