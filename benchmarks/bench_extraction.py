"""trafilatura's CPU time on real pages with lxml's XPath vs mdr.filters.fast_xpath, and the check that both give
the same text.

Each (variant, mode) runs in its own process, in alternation, `--repeat` times: trafilatura.extract over every HTML
page of the WARC (decoded by mdr's reader), in process, no child process or timeout; CPU seconds of the extraction
loop (time.process_time), medians. Modes: trafilatura's precision mode (the `fineweb` recipe, datatrove's default)
and its balanced default (the `refinedweb` recipe), both with include_comments=False, deduplicate=False. The texts
of every variant are compared page by page.

    .venv/bin/python benchmarks/bench_extraction.py [--repeat 3] [--warc PATH] [--limit N]
"""

import argparse
import hashlib
import itertools
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WARC = REPO / ".." / "shared" / "data" / "warc" / "pages" / "dev-pages-531.warc.gz"
VARIANTS = {"lxml XPath (trafilatura as is)": False, "fast_xpath (mdr's default)": True}
MODES = {"precision (fineweb)": True, "balanced (refinedweb)": False}


def child(pages_file: Path, compiled: bool, favor_precision: bool) -> None:
    import trafilatura

    from mdr.patches import trafilatura as fast_xpath_patch

    pages = pickle.loads(pages_file.read_bytes())
    if compiled:
        fast_xpath_patch.install()
    options = dict(favor_precision=favor_precision, include_comments=False, deduplicate=False)
    trafilatura.extract("<html><body><p>warm-up</p></body></html>", **options)
    start = time.process_time()
    texts = [trafilatura.extract(page, **options) for page in pages]
    seconds = time.process_time() - start
    digests = [hashlib.sha1((text or "").encode()).hexdigest() for text in texts]
    print(json.dumps({"seconds": seconds, "digests": digests}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warc", type=Path, default=DEFAULT_WARC)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, help="first N pages")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1] == "1", args.child[2] == "1")
        return 0
    if not args.warc.is_file():
        print(f"bench_extraction: {args.warc} not found (pass --warc PATH). Skipping.", file=sys.stderr)
        return 0
    from mdr.pipeline.reader import WarcRecordReader

    with tempfile.TemporaryDirectory() as tmp:
        pages = [doc.text for doc in itertools.islice(WarcRecordReader([str(args.warc)]).run(), args.limit)]
        pages_file = Path(tmp) / "pages.pkl"
        pages_file.write_bytes(pickle.dumps(pages))
        print(f"{args.warc.name}: {len(pages)} HTML pages, {sum(map(len, pages)) / 1e6:.0f} M characters",
              file=sys.stderr)
        results = {(variant, mode): [] for mode in MODES for variant in VARIANTS}
        for round_ in range(args.repeat):
            for (variant, mode), runs in results.items():
                out = subprocess.run([sys.executable, __file__, "--child", str(pages_file), str(int(VARIANTS[variant])),
                                      str(int(MODES[mode]))], check=True, capture_output=True, text=True, cwd=REPO)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"round {round_ + 1}: {mode}, {variant}: {runs[-1]['seconds']:.1f} s", file=sys.stderr)
    print("| mode | XPath evaluation | CPU s (median) | runs | speed-up | pages with a different text |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        base = results[(next(iter(VARIANTS)), mode)]
        base_median = statistics.median(run["seconds"] for run in base)
        for variant in VARIANTS:
            runs = results[(variant, mode)]
            median = statistics.median(run["seconds"] for run in runs)
            differing = sum(a != b for run in runs for a, b in zip(run["digests"], base[0]["digests"]))
            seconds = " ".join(f"{run['seconds']:.1f}" for run in runs)
            print(f"| {mode} | {variant} | {median:.1f} | {seconds} | "
                  f"{base_median / median:.2f}x | {differing} of {len(base[0]['digests']) * len(runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
