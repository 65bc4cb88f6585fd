"""Bag-of-words precision/recall/F1 and docs/s of mdr's extraction (each recipe's settings) vs datatrove's Trafilatura.

Ground truth: shared/data/extraction/aeb (ground-truth.json -> articleBody) and wcxb-dev
(ground-truth/<id>.json -> ground_truth.main_content). Scores are per-page multiset word overlaps, averaged over
pages; a dropped page scores 0.

    .venv/bin/python benchmarks/extraction_f1.py [--limit N] [--data DIR] [--variants]
"""

import argparse
import dataclasses
import gzip
import json
import re
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
    seconds = time.perf_counter() - start
    scores = [score(extracted.get(page_id, ""), truth) for page_id, _, truth in pages]
    precision, recall, f1 = (sum(column) / len(scores) for column in zip(*scores))
    return {"precision": precision, "recall": recall, "f1": f1, "kept": len(extracted), "docs_per_s": len(pages) / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared/data/extraction folder")
    parser.add_argument("--limit", type=int, default=None, help="first N pages of each set")
    parser.add_argument("--variants", action="store_true", help="also other trafilatura settings on mdr's stage")
    args = parser.parse_args()
    if not (args.data / "aeb").is_dir():
        parser.error(f"no extraction benchmark data under {args.data}; pass --data")

    contenders = {
        # each recipe's extract stage as `mdr run` builds it (fast_xpath on: the same text as with lxml's XPath)
        **{f"mdr {name} recipe": (lambda config=recipe_extraction(name): ExtractionStage(config))
           for name in ("refinedweb", "fineweb")},
        "datatrove Trafilatura()": lambda: Trafilatura(),  # favour_precision=True, deduplicate=True, timeout 1 s
    }
    if args.variants:  # trafilatura settings the recipes do not use, for the record
        base = recipe_extraction("refinedweb")
        for label, changes in (("balanced, fast=True", {"fast": True}),
                               ("favor_precision", {"favor_precision": True}),
                               ("favor_precision, fast=True", {"favor_precision": True, "fast": True})):
            contenders[f"mdr, {label}"] = lambda config=dataclasses.replace(base, **changes): ExtractionStage(config)
    print(f"{'dataset':10} {'extractor':36} {'P':>6} {'R':>6} {'F1':>6} {'kept':>9} {'docs/s':>7}")
    for dataset, pages in (("aeb", load_aeb(args.data / "aeb")), ("wcxb-dev", load_wcxb(args.data / "wcxb-dev"))):
        pages = pages[: args.limit]
        for label, make_step in contenders.items():
            # process-wide: mdr's stages install it again, datatrove's runs trafilatura as is
            fast_xpath_patch.uninstall()
            result = evaluate(make_step(), pages)
            print(
                f"{dataset:10} {label:36} {result['precision']:6.3f} {result['recall']:6.3f} {result['f1']:6.3f} "
                f"{result['kept']:4}/{len(pages):<4} {result['docs_per_s']:7.1f}"
            )


if __name__ == "__main__":
    main()
