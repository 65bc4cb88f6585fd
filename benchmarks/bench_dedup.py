"""Deduplication quality and speed: mdr's MinHash vs exact Jaccard, vs datasketch and vs datatrove; exact-substring
dedup throughput and peak memory at three input sizes.

1. Quality (RW preset, 450 bands × 20 rows): a pair is detected when it shares a band. Exact Jaccard is computed on
   the same normalized word 5-gram shingle sets.
   - mccormick: every pair of `articles_N.train` with exact Jaccard ≥ 0.5, plus the labelled `.truth` pairs.
   - planted: real article texts of ../shared/data/extraction, each paired with a copy whose words were replaced
     at random at rates that give Jaccard ≈ 0.5 … 0.98; detection rate per Jaccard bin next to 1 − (1 − s^20)^450.
2. Speed, same documents, one process each in turn: signatures/s and total time of
   - mdr: its four phases (signatures, buckets, clusters, filter) run in-process over Parquet shards, one task;
   - datasketch 2.0: `MinHash(num_perm=9000, scheme="affine32", hashfunc=mdr's shingle hash).update_batch(shingles)`
     then `MinHashLSH(params=(450, 20))` insert + query of every document, union-find of the results;
   - datatrove 0.10.1: `MinhashDedupSignature/Buckets/Cluster/Filter` with `MinhashConfig(num_buckets=450,
     hashes_per_bucket=20, hash_config=HashConfig(precision=32, hash_fc="sha1"))` (FineWeb's sha1: its xxhash path
     fails on str with xxhash 4), in-process, 1 signature task, 450 bucket tasks
     (it requires a multiple of num_buckets).
3. Exact substring: `deduplicate_texts` (GPT-2 pre-tokens, ≥ 50 tokens, cut) on 1, 3 and 9 MB of real text (each
   corpus repeated as needed with 1 in 3 documents sharing a paragraph), each size in a fresh process: MB/s and
   peak RSS growth.

    .venv/bin/python benchmarks/bench_dedup.py [--docs 400] [--articles 1000] [--write-results]
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import platform
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
sys.path.insert(0, str(REPO))

from results import write_section  # noqa: E402
from mdr.dedup.exact_substring import ExactSubstringConfig, deduplicate_texts  # noqa: E402
from mdr.dedup.minhash import MinhashConfig, MinhashSignature, MinhashStage, detection_probability, shingle_hash  # noqa: E402


# --- data --------------------------------------------------------------------------------------------------------


def mccormick(n: int) -> tuple[dict[str, str], set]:
    folder = SHARED / "dedup" / "mccormick"
    texts = {}
    for line in (folder / f"articles_{n}.train").read_text().splitlines():
        if line.strip():
            name, text = line.split(" ", 1)
            texts[name] = text
    truth = {tuple(sorted(line.split())) for line in (folder / f"articles_{n}.truth").read_text().splitlines()[1:]
             if line.strip()}
    return texts, truth


def real_pages() -> list[str]:
    """Main-content ground truth of the extraction benchmarks: real article, forum, product… texts."""
    texts = [v["articleBody"] for v in json.loads((SHARED / "extraction" / "aeb" / "ground-truth.json").read_text()).values()]
    for path in sorted((SHARED / "extraction" / "wcxb-dev" / "ground-truth").glob("*.json")):
        texts.append(json.loads(path.read_text())["ground_truth"]["main_content"])
    return [t for t in texts if t and len(t.split()) >= 100]


def cc_texts() -> list[str]:
    texts = []
    for path in sorted((SHARED / "text" / "cc-derived").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt") as file:
            texts.extend(json.loads(line)["text"] for line in file)
    return texts


# --- quality -----------------------------------------------------------------------------------------------------


def shingle_sets(signer: MinhashSignature, texts: list[str]) -> list[set]:
    return [set(signer.shingles(t)) for t in texts]


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def candidate_pairs(keys: np.ndarray) -> set:
    pairs = set()
    for band in range(keys.shape[1]):
        column = keys[:, band]
        buckets = defaultdict(list)
        for doc in np.flatnonzero(column):
            buckets[int(column[doc])].append(int(doc))
        for members in buckets.values():
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    pairs.add((a, b))
    return pairs


def all_similar_pairs(sets: list[set], minimum: float) -> dict:
    """Exact Jaccard of every pair sharing a shingle, kept when ≥ minimum."""
    postings = defaultdict(list)
    for doc, shingles in enumerate(sets):
        for shingle in shingles:
            postings[shingle].append(doc)
    shared = defaultdict(int)
    for docs in postings.values():
        if len(docs) > 200:  # boilerplate n-grams: such pairs are counted through their other shingles too
            continue
        for i, a in enumerate(docs):
            for b in docs[i + 1:]:
                shared[(a, b)] += 1
    found = {}
    for (a, b), common in shared.items():
        similarity = common / (len(sets[a]) + len(sets[b]) - common)
        if similarity >= minimum:
            found[(a, b)] = jaccard(sets[a], sets[b])
    return found


def quality_mccormick(config: MinhashConfig, n: int) -> dict:
    texts, truth = mccormick(n)
    names = sorted(texts)
    signer = MinhashSignature(config)
    sets = shingle_sets(signer, [texts[k] for k in names])
    keys = signer.document_keys([texts[k] for k in names])
    detected = candidate_pairs(keys)
    similar = all_similar_pairs(sets, 0.5)
    high = {p for p, s in similar.items() if s >= 0.8}
    position = {name: i for i, name in enumerate(names)}
    truth_pairs = {tuple(sorted((position[a], position[b]))) for a, b in truth if a in position and b in position}
    detected_similarity = [jaccard(sets[a], sets[b]) for a, b in detected]
    return {
        "documents": len(names),
        "pairs_jaccard_ge_0.8": len(high),
        "recall_ge_0.8": len(high & detected) / len(high) if high else None,
        "truth_pairs": len(truth_pairs),
        "truth_recall": len(truth_pairs & detected) / len(truth_pairs) if truth_pairs else None,
        "truth_jaccard_min": min(jaccard(sets[a], sets[b]) for a, b in truth_pairs) if truth_pairs else None,
        "detected_pairs": len(detected),
        "precision_ge_0.7": (sum(s >= 0.7 for s in detected_similarity) / len(detected)) if detected else None,
    }


def edited(text_words: list[str], rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    return " ".join(rng.choice(vocabulary) if rng.random() < rate else w for w in text_words)


def quality_planted(config: MinhashConfig, pages: list[str], seed: int = 0) -> dict:
    rng = random.Random(seed)
    signer = MinhashSignature(config)
    vocabulary = [w for page in pages[:50] for w in page.split()]
    rates = [0.004, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.13]  # word replacement rates
    bins = np.round(np.arange(0.50, 1.0001, 0.05), 2)
    counts = defaultdict(lambda: [0, 0])
    pair_similarity, pair_detected = [], []
    for page in pages:
        words = page.split()
        for rate in rates:
            copy = edited(words, rate, rng, vocabulary)
            similarity = jaccard(set(signer.shingles(page)), set(signer.shingles(copy)))
            keys = signer.document_keys([page, copy])
            detected = bool((keys[0] == keys[1]).any())
            pair_similarity.append(similarity)
            pair_detected.append(detected)
            if similarity >= 0.5:
                low = bins[np.searchsorted(bins, similarity, side="right") - 1]
                counts[float(low)][0] += 1
                counts[float(low)][1] += detected
    similarity, detected = np.array(pair_similarity), np.array(pair_detected)
    curve = []
    for low in sorted(counts):
        inside = (similarity >= low) & (similarity < low + 0.05)
        middle = float(similarity[inside].mean())
        curve.append({"bin": f"[{low:.2f}, {low + 0.05:.2f})", "pairs": counts[low][0],
                      "detected": counts[low][1] / counts[low][0],
                      "theory_at_mean": float(detection_probability(similarity[inside], config.num_bands,
                                                                    config.rows_per_band).mean()),
                      "mean_jaccard": middle})
    high = similarity >= 0.8
    low = similarity < 0.6
    return {"pages": len(pages), "pairs": len(similarity), "recall_ge_0.8": float(detected[high].mean()),
            "pairs_ge_0.8": int(high.sum()), "false_detection_below_0.6": float(detected[low].mean()) if low.any() else None,
            "curve": curve}


# --- speed -------------------------------------------------------------------------------------------------------


def time_mdr(texts: list[str], config: MinhashConfig) -> dict:
    from tests.dedup.phases import context, document, kept_and_excluded, run_in_process, write_shards

    signer = MinhashSignature(config)
    start = time.perf_counter()
    keys = signer.document_keys(texts)
    signature_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        documents = [document(i, text) for i, text in enumerate(texts)]
        write_shards(root / "in", documents, 1)
        start = time.perf_counter()
        run_in_process(MinhashStage.build_phases(config, context(root, 1)))
        total = time.perf_counter() - start
        kept, excluded = kept_and_excluded(root, "minhash")
    return {"signatures_per_s": len(texts) / signature_seconds, "total_s": total, "removed": len(excluded),
            "_keys": keys}


def time_datasketch(texts: list[str], config: MinhashConfig, scheme: str = "affine32") -> dict:
    from datasketch import MinHash, MinHashLSH

    signer = MinhashSignature(config)
    start = time.perf_counter()
    sketches = []
    for text in texts:
        sketch = MinHash(num_perm=config.num_hashes, seed=config.seed, hashfunc=shingle_hash, scheme=scheme)
        shingles = signer.shingles(text)
        if shingles:
            sketch.update_batch(shingles)
        sketches.append(sketch)
    signature_seconds = time.perf_counter() - start
    lsh = MinHashLSH(num_perm=config.num_hashes, params=(config.num_bands, config.rows_per_band))
    for i, sketch in enumerate(sketches):
        lsh.insert(i, sketch)
    parent = list(range(len(texts)))

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, sketch in enumerate(sketches):
        for j in lsh.query(sketch):
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    removed = sum(root(i) != i for i in range(len(texts)))
    return {"signatures_per_s": len(texts) / signature_seconds, "total_s": time.perf_counter() - start,
            "removed": removed, "_sketches": sketches}


def _drain(steps) -> None:
    for _ in steps or ():
        pass


def time_datatrove(texts: list[str], config: MinhashConfig) -> dict:
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import (MinhashConfig as DTConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.utils.hashing import HashConfig
    from loguru import logger

    logger.remove()  # datatrove logs every step at INFO

    dt_config = DTConfig(n_grams=config.n_grams, num_buckets=config.num_bands, hashes_per_bucket=config.rows_per_band,
                         seed=config.seed, hash_config=HashConfig(precision=32, hash_fc="sha1"))
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as folder:
        signature = MinhashDedupSignature(f"{folder}/sigs", config=dt_config)
        start = time.perf_counter()
        _drain(signature.run(iter(docs), 0, 1))
        signature_seconds = time.perf_counter() - start
        buckets = MinhashDedupBuckets(f"{folder}/sigs", f"{folder}/buckets", config=dt_config)
        for rank in range(config.num_bands):
            _drain(buckets.run(None, rank, config.num_bands))
        _drain(MinhashDedupCluster(f"{folder}/buckets", f"{folder}/remove", config=dt_config).run(None, 0, 1))
        kept = sum(1 for _ in MinhashDedupFilter(f"{folder}/remove").run(iter(docs), 0, 1))
        total = time.perf_counter() - start
    return {"signatures_per_s": len(texts) / signature_seconds, "total_s": total, "removed": len(texts) - kept}


# --- exact substring ---------------------------------------------------------------------------------------------


def substring_corpus(megabytes: float, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool = real_pages() + cc_texts() + list(mccormick(2500)[0].values())
    rng.shuffle(pool)
    shared = [p.split("\n")[0] for p in pool[:20] if len(p.split("\n")[0].split()) >= 40] or [pool[0][:800]]
    texts, size, round_ = [], 0, 0
    while size < megabytes * 1e6:
        for text in pool:
            if rng.random() < 1 / 3:
                text = f"{text}\n{rng.choice(shared)}"
            if round_:
                text = f"(copy {round_}) {text}"
            texts.append(text)
            size += len(text.encode())
            if size >= megabytes * 1e6:
                break
        round_ += 1
    return texts


def _rss_mb(field: str = "VmRSS") -> float:
    """Current (VmRSS) or peak (VmHWM) resident memory of this process image. Not ru_maxrss: Linux carries it over
    from the parent through fork and exec."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:")) / 1024


def _substring_worker(path: str, queue) -> None:
    texts = json.loads(Path(path).read_text())
    size = sum(len(t.encode()) for t in texts)
    baseline = _rss_mb()  # interpreter, imports and the texts
    start = time.perf_counter()
    cut, spans = deduplicate_texts(texts, ExactSubstringConfig())
    seconds = time.perf_counter() - start
    peak = _rss_mb("VmHWM")
    removed = size - sum(len(t.encode()) for t in cut)
    passes = max((s["pass"] for doc in spans for s in doc), default=0)
    queue.put({"megabytes": size / 1e6, "documents": len(texts), "seconds": seconds, "mb_per_s": size / 1e6 / seconds,
               "peak_rss_growth_mb": peak - baseline, "bytes_removed_fraction": removed / size, "passes": passes})


def bench_substring(sizes: list[float]) -> list[dict]:
    """Each size in a fresh process that reads only its texts, so that its peak RSS is the dedup's."""
    context = multiprocessing.get_context("spawn")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for megabytes in sizes:
            path = Path(folder) / f"{megabytes}.json"
            path.write_text(json.dumps(substring_corpus(megabytes)))
            queue = context.Queue()
            process = context.Process(target=_substring_worker, args=(str(path), queue))
            process.start()
            results.append(queue.get())
            process.join()
    return results


# --- report ------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400, help="documents for the speed comparison")
    parser.add_argument("--articles", type=int, default=1000, choices=[100, 1000, 2500])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 3, 9], help="exact-substring sizes in MB")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    config = MinhashConfig()
    lines = [f"Machine: {platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} CPUs (shared), "
             f"Python {platform.python_version()}; `.venv/bin/python benchmarks/bench_dedup.py --docs {args.docs} "
             f"--articles {args.articles} --sizes {' '.join(map(str, args.sizes))}`."]

    print("quality: mccormick", flush=True)
    mc = quality_mccormick(config, args.articles)
    print(mc, flush=True)
    pages = real_pages()
    print(f"quality: planted edits on {len(pages)} pages", flush=True)
    planted = quality_planted(config, pages)
    print({k: v for k, v in planted.items() if k != "curve"}, flush=True)

    texts = list(mccormick(args.articles)[0].values())[: args.docs]
    rng = random.Random(1)
    texts += [" ".join(w for w in t.split() if rng.random() > 0.03) for t in texts[: args.docs // 10]]  # near copies
    print(f"speed on {len(texts)} documents", flush=True)
    speed = {}
    for name, run in (("mdr", time_mdr), ("datasketch", time_datasketch), ("datatrove", time_datatrove),
                      ("datasketch_legacy", lambda t, c: time_datasketch(t, c, scheme="legacy"))):
        speed[name] = run(texts, config)
        print(name, {k: v for k, v in speed[name].items() if not k.startswith("_")}, flush=True)
    # mdr's signatures are datasketch's: same permutations, same shingle hash
    same = all(np.array_equal(MinhashSignature(config).band_keys(s.hashvalues[None])[0], k)
               for s, k in zip(speed["datasketch"]["_sketches"][:20], speed["mdr"]["_keys"][:20]))

    print("exact substring", flush=True)
    substring = bench_substring(args.sizes)
    for row in substring:
        print(row, flush=True)

    lines += ["", "MinHash detection quality (RW preset 450 × 20, word 5-grams; a pair is detected when it shares a band):", "",
              "| corpus | pairs | recall at Jaccard ≥ 0.8 | other |", "|---|---|---|---|",
              f"| mccormick articles_{args.articles} ({mc['documents']} docs, all pairs) | {mc['pairs_jaccard_ge_0.8']} with J ≥ 0.8 | "
              f"{mc['recall_ge_0.8']:.3f} | labelled pairs found {mc['truth_recall']:.2f} ({mc['truth_pairs']}, min J "
              f"{mc['truth_jaccard_min']:.2f}); {mc['detected_pairs']} pairs detected, precision (J ≥ 0.7) "
              f"{mc['precision_ge_0.7']:.3f} |",
              f"| {planted['pages']} real pages + word-replaced copies | {planted['pairs_ge_0.8']} with J ≥ 0.8 "
              f"(of {planted['pairs']}) | {planted['recall_ge_0.8']:.3f} | detected below J 0.6: "
              f"{planted['false_detection_below_0.6']:.3f} |", "",
              "Measured detection probability vs the S-curve 1 − (1 − s^20)^450 (averaged over the pairs of each bin):", "",
              "| exact Jaccard | pairs | detected | theory |", "|---|---|---|---|"]
    lines += [f"| {c['bin']} | {c['pairs']} | {c['detected']:.3f} | {c['theory_at_mean']:.3f} |" for c in planted["curve"]]
    md, ds, dt, legacy = speed["mdr"], speed["datasketch"], speed["datatrove"], speed["datasketch_legacy"]
    from datasketch.lsh import _optimal_param

    choices = {t: _optimal_param(t, config.num_hashes, 0.5, 0.5) for t in (0.7, 0.72, 0.75, 0.8)}
    lines += ["", "datasketch's LSH parameter choice (`_optimal_param`, equal false-positive/negative weights) at 9,000 "
              "hashes: " + ", ".join(f"threshold {t} → {b} × {r}" for t, (b, r) in choices.items())
              + ". RW's 450 × 20 sits between the choices for 0.70 and 0.72: its S-curve midpoint is ≈ 0.74."]
    lines += ["", f"MinHash speed, {len(texts)} mccormick articles (+10% near copies), one process, same 9,000 hashes "
              f"and 450 × 20 bands (mdr's band keys equal datasketch's signatures: {same}):", "",
              "| tool | signatures/s | total dedup s | removed | mdr speed-up (signatures, total) |", "|---|---|---|---|---|"]
    for name, row in (("mdr", md), ("datasketch 2.0 MinHash (affine32) + MinHashLSH", ds),
                      ("datasketch MinHash (legacy scheme, < 2.0 default) + MinHashLSH", legacy),
                      ("datatrove Minhash* stages", dt)):
        ratio = "—" if row is md else (f"{md['signatures_per_s'] / row['signatures_per_s']:.1f}×, "
                                       f"{row['total_s'] / md['total_s']:.1f}×")
        lines.append(f"| {name} | {row['signatures_per_s']:.1f} | {row['total_s']:.1f} | {row['removed']} | {ratio} |")
    lines += ["", "Exact substring (`deduplicate_texts`, GPT-2 pre-tokens ≥ 50, cut; each size in a fresh process):", "",
              "| input MB | docs | seconds | MB/s | peak RSS growth MB (× input) | bytes removed | passes that cut |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['megabytes']:.1f} | {r['documents']} | {r['seconds']:.1f} | {r['mb_per_s']:.2f} | "
              f"{r['peak_rss_growth_mb']:.0f} ({r['peak_rss_growth_mb'] / r['megabytes']:.1f}×) | "
              f"{r['bytes_removed_fraction']:.1%} | {r['passes']} |" for r in substring]
    report = "\n".join(lines)
    print(report)
    if args.write_results:
        write_section(f"## Deduplication (issue 4)\n\n{report}\n", "## Deduplication (issue 4)")


if __name__ == "__main__":
    main()
