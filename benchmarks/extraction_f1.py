"""Bag-of-words precision/recall/F1 and docs/s of mdr's extraction (each recipe's settings) vs datatrove's Trafilatura.

Ground truth: shared/data/extraction/aeb (ground-truth.json -> articleBody) and wcxb-dev
(ground-truth/<id>.json -> ground_truth.main_content). Scores are per-page multiset word overlaps, averaged over
pages; a dropped page scores 0.

datatrove "as installed" runs in its own environment, as a user has it (`pip install "datatrove[processing]==0.10.1"`
resolves trafilatura 1.11, mdr runs 2.3): `--datatrove-python` names that environment's interpreter, which runs
`Trafilatura()` with its defaults in a child process on the same decoded pages. The in-process datatrove row runs the
same step on mdr's trafilatura.

    .venv/bin/python benchmarks/extraction_f1.py [--datatrove-python DTVENV/bin/python] [--limit N] [--data DIR]
                                                 [--variants]
"""

import argparse
import dataclasses
import gzip
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.extractors import Trafilatura
from trafilatura.utils import decode_file

from mdr.patches import trafilatura as fast_xpath_patch
from mdr.filters.extraction import ExtractionConfig, ExtractionStage
from mdr.pipeline.recipe import load_recipe

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "extraction"


def recipe_extraction(name: str) -> ExtractionConfig:
    """The extract stage's config of a built-in recipe."""
    return next(stage.config for stage in load_recipe(name).stages if stage.key == "extract")


def load_aeb(root: Path) -> list[tuple[str, str, str]]:
    truth = json.loads((root / "ground-truth.json").read_text())
    return [(page_id, _read_html(root / "html" / f"{page_id}.html.gz"), entry["articleBody"]) for page_id, entry in sorted(truth.items())]


def load_wcxb(root: Path) -> list[tuple[str, str, str]]:
    pages = []
    for truth_file in sorted((root / "ground-truth").glob("*.json")):
        truth = json.loads(truth_file.read_text())["ground_truth"]["main_content"]
        pages.append((truth_file.stem, _read_html(root / "html" / f"{truth_file.stem}.html.gz"), truth))
    return pages


def _read_html(path: Path) -> str:
    return decode_file(gzip.decompress(path.read_bytes()))


def bag_of_words(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.lower()))


def score(predicted: str, truth: str) -> tuple[float, float, float]:
    predicted_words, truth_words = bag_of_words(predicted), bag_of_words(truth)
    overlap = sum((predicted_words & truth_words).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision = overlap / sum(predicted_words.values())
    recall = overlap / sum(truth_words.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def evaluate(step, pages: list[tuple[str, str, str]]) -> dict:
    documents = (Document(text=html, id=page_id, metadata={}) for page_id, html, _ in pages)
    start = time.perf_counter()
    extracted = {doc.id: doc.text for doc in step.run(documents)}
    return scores(extracted, pages, time.perf_counter() - start)


# Runs in the datatrove environment: pages as JSON on stdin, {"texts", "stats", "versions", "seconds"} on stdout.
DATATROVE_CHILD = """
import json, sys, time
from importlib import metadata
from datatrove.data import Document
from datatrove.pipeline.extractors import Trafilatura
request = json.load(sys.stdin)
step = Trafilatura(**request["kwargs"])
documents = (Document(text=html, id=page_id, metadata={}) for page_id, html in request["pages"])
start = time.perf_counter()
texts = {doc.id: doc.text for doc in step.run(documents)}
seconds = time.perf_counter() - start
versions = {name: metadata.version(name) for name in ("datatrove", "trafilatura", "lxml")}
json.dump({"texts": texts, "stats": step.stats.to_dict(), "versions": versions, "seconds": seconds}, sys.stdout)
"""


def datatrove_installed(python: str, pages: list[tuple[str, str, str]], **kwargs) -> tuple[dict, float, str]:
    """datatrove's Trafilatura(**kwargs) run by `python` (its own environment): texts kept, seconds, a versions note."""
    request = json.dumps({"kwargs": kwargs, "pages": [(page_id, html) for page_id, html, _ in pages]})
    # PYTHONPATH cleared so that nothing of mdr's environment leaks into the child's imports
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    child = subprocess.run([python, "-c", DATATROVE_CHILD], input=request, capture_output=True, text=True, env=env)
    if child.returncode:
        sys.exit(f"datatrove child ({python}) failed:\n{child.stderr[-2000:]}")
    reply = json.loads(child.stdout)
    stats = {key: value["total"] if isinstance(value, dict) else value for key, value in reply["stats"]["stats"].items()}
    versions = " ".join(f"{name} {version}" for name, version in reply["versions"].items())
    note = f"{versions}; timeout {stats.get('timeout', 0)}, clean_error {stats.get('clean_error', 0)}"
    return reply["texts"], reply["seconds"], note


def scores(extracted: dict, pages: list[tuple[str, str, str]], seconds: float) -> dict:
    per_page = [score(extracted.get(page_id, ""), truth) for page_id, _, truth in pages]
    precision, recall, f1 = (sum(column) / len(per_page) for column in zip(*per_page))
    return {"precision": precision, "recall": recall, "f1": f1, "kept": len(extracted), "docs_per_s": len(pages) / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared/data/extraction folder")
    parser.add_argument("--datatrove-python", default=os.environ.get("MDR_DATATROVE_PYTHON"),
                        help="python of an environment with datatrove[processing]==0.10.1 as pip resolves it "
                             "(default $MDR_DATATROVE_PYTHON); without it that row is left out")
    parser.add_argument("--limit", type=int, default=None, help="first N pages of each set")
    parser.add_argument("--variants", action="store_true", help="also other trafilatura settings on mdr's stage")
    args = parser.parse_args()
    if not (args.data / "aeb").is_dir():
        parser.error(f"no extraction benchmark data under {args.data}; pass --data")

    fineweb, refinedweb = recipe_extraction("fineweb"), recipe_extraction("refinedweb")
    # label -> a step to run here, or the keyword arguments of Trafilatura() in the datatrove environment
    contenders = {
        # each recipe's extract stage as `mdr run` builds it (fast_xpath on: the same text as with lxml's XPath)
        "mdr fineweb recipe": lambda: ExtractionStage(fineweb),
        "mdr refinedweb recipe": lambda: ExtractionStage(refinedweb),
    }
    if args.datatrove_python:  # its defaults: favour_precision=True, deduplicate=True, timeout 1 s
        contenders["datatrove Trafilatura(), as installed"] = {}
    else:
        print("no --datatrove-python: datatrove as installed (trafilatura 1.11) left out", file=sys.stderr)
    contenders["datatrove Trafilatura(), mdr's trafilatura"] = lambda: Trafilatura()
    if args.variants:  # settings the recipes do not use, for the record
        for label, base, changes in (
            ("precision, no rescue (trafilatura as is)", fineweb, {"precision_rescue": False}),
            ("balanced, FineWeb post-processing", fineweb, {"favor_precision": False}),
            ("precision, fast=True", fineweb, {"fast": True}),
            ("balanced, fast=True, RW post-proc.", refinedweb, {"fast": True}),
        ):
            contenders[f"mdr, {label}"] = lambda config=dataclasses.replace(base, **changes): ExtractionStage(config)
        if args.datatrove_python:  # its quality without the losses of a 1 s budget on a busy machine
            contenders["datatrove Trafilatura(timeout=60), installed"] = {"timeout": 60}
    print(f"{'dataset':10} {'extractor':46} {'P':>6} {'R':>6} {'F1':>6} {'kept':>9} {'docs/s':>7}")
    for dataset, pages in (("aeb", load_aeb(args.data / "aeb")), ("wcxb-dev", load_wcxb(args.data / "wcxb-dev"))):
        pages = pages[: args.limit]
        for label, contender in contenders.items():
            note = ""
            if isinstance(contender, dict):
                extracted, seconds, note = datatrove_installed(args.datatrove_python, pages, **contender)
                result = scores(extracted, pages, seconds)
            else:
                # process-wide: mdr's stages install it again, datatrove's runs trafilatura as is
                fast_xpath_patch.uninstall()
                result = evaluate(contender(), pages)
            print(
                f"{dataset:10} {label:46} {result['precision']:6.3f} {result['recall']:6.3f} {result['f1']:6.3f} "
                f"{result['kept']:4}/{len(pages):<4} {result['docs_per_s']:7.1f}  {note}", flush=True
            )


if __name__ == "__main__":
    main()
