"""The README's "from a crawl's name to a trained model" block, run line by line as it is written, against a local
server holding a crawl built from data_samples/ (tests/pipeline/crawl_server.py; the project's generated WARCs,
whose pages the fineweb recipe keeps some of, where --seed 0's two files of the real Common Crawl samples keep none): `mdr run fineweb
--input cc:...` → `mdr tokenizer train` → `mdr tokenize` → `mdr train` → `mdr eval`. What the test changes: the
crawl's name (the server's), the endpoint (MDR_CC_ENDPOINT), and flags appended to `mdr train` for a micro budget
(argparse keeps the last value of a flag)."""

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from tests.pipeline.commands import MDR
from tests.pipeline.crawl_server import CrawlServer, build_crawl
from tests.pipeline.test_crawl_inputs import CRAWL, FAST

REPO = Path(__file__).resolve().parents[1]
MICRO_TRAINING = ["--max-steps", "4", "--seq-len", "16", "--batch-size", "2", "--val-fraction", "0.2",
                  "--eval-interval", "2", "--no-progress"]

pytest.importorskip("torch")


def readme_block() -> list[list[str]]:
    """The command lines of the README's bash block that starts with `mdr run fineweb --input cc:`."""
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    [block] = [b for b in blocks if b.startswith("mdr run fineweb --input cc:")]
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_readme_takes_a_crawl_name_to_a_trained_model(tmp_path):
    import subprocess

    lines = readme_block()
    assert [line[:2] for line in lines] == [["mdr", "run"], ["mdr", "tokenizer"], ["mdr", "tokenize"],
                                            ["mdr", "train"], ["mdr", "eval"]]
    root = tmp_path / "www"
    build_crawl(root, sorted((REPO / "data_samples").glob("*.warc.gz")), CRAWL)
    server = CrawlServer(root)
    env = {**os.environ, **FAST, "MDR_CC_ENDPOINT": server.url}
    try:
        for line in lines:
            arguments = [re.sub(r"^cc:CC-MAIN-\d{4}-\d{2}$", f"cc:{CRAWL}", word) for word in line[1:]]
            if arguments[0] == "train":
                arguments += MICRO_TRAINING
            if arguments[0] == "run":
                arguments += ["--no-progress"]
            result = subprocess.run([*MDR, *arguments], cwd=tmp_path, env=env, capture_output=True, text=True)
            assert result.returncode == 0, (line, result.stderr[-3000:])
    finally:
        server.close()
    out = tmp_path / "out"
    run_json = json.loads((out / "cc" / "run.json").read_text())
    assert len(run_json["inputs"]) == 2 and all(server.url in json.dumps(item) for item in run_json["inputs"])
    manifest = json.loads((out / "cc-run" / "manifest.json").read_text())
    assert manifest["config"]["max_steps"] == 4
    metrics = json.loads(result.stdout)  # the last line: mdr eval --json
    assert metrics["tokens"] > 0 and metrics["nll"] > 0
