"""Dedup at dump scale (issue 15.4): per-document costs of every phase of mdr's three dedup methods, measured; the
MinHash buckets and clusters phases run on ≥ 10^6 synthetic signatures with planted clusters, checked and measured
per task; and from both, time and peak memory per task at 10^6, 10^8 and 3·10^9 documents.

1. **Real pages** (the extraction ground truth and Common Crawl texts of ../shared/data; data_samples/texts when it
   is absent): mdr's own stages (`MinhashStage` with the `fineweb` and `refinedweb` settings, `ExactSubstringStage`
   with 2 partitions, `UrlDedupStage`), every phase in a fresh process (spawn), one task after another as
   datatrove's executors run them, at two input sizes. Per task: CPU seconds (`time.process_time`) and peak RSS
   growth (VmHWM, reset through /proc/self/clear_refs before each task, less VmRSS when it starts). Per document: CPU
   seconds at the larger size, memory as the slope between the two sizes, disk as the bytes the phase leaves in its
   work folder.
2. **Synthetic signatures**: band-key files exactly as `MinhashSignatures` writes them (`signatures/g<group>/r<rank>
   .keys`, band-major uint64; `docs/r<rank>.parquet`), random keys except in planted clusters: a fraction of the
   documents are removable members of clusters of 2–10 documents, half exact copies of the cluster's source (every
   band, same text hash), half near copies that share each band with probability s^rows at Jaccard s = 0.85 (at least
   one band). The input order is a random permutation of the document numbers. `MinhashBuckets` (every task of a
   task count, one process, peak reset per task) then `MinhashClusters`; its removal lists must name exactly the
   planted non-kept members, each with the earliest member of its cluster as `duplicate_of` and the right reason.
3. **Models** fitted to the synthetic runs (least squares; fitted on the smaller N, with 3× the duplicates too, and
   checked against the larger) and the real per-document costs give the projected table: documents per task × cost
   per document for the per-shard phases; the buckets phase holds a whole band of the corpus at a time (at most
   `num_bands` tasks); the one clusters task holds the distinct pairs and a row per cluster member. Dump-scale assumptions (printed): 40% of documents removed as duplicates (FineWeb's 36T →
   20T tokens after per-dump MinHash, spec §12), every duplicate in a bucket of every band group (exact copies: the
   upper bound), real pages' mean size.

    .venv/bin/python benchmarks/bench_dedup_scale.py [--signatures 1000000] [--save RUN.json] [--write-results]
    .venv/bin/python benchmarks/bench_dedup_scale.py --load RUN.json   # the report again, without measuring
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import multiprocessing
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from results import machine, table, write_section  # noqa: E402

NODE = 128 * 2**30  # the node a task must fit in
GiB = 2**30
PRESETS = {"fineweb": (14, 8), "refinedweb": (450, 20)}  # MinHash bands × rows (recipes/*.yaml)
SIGNATURE_TASKS = 16  # signature tasks (files per band group) of the synthetic runs


# --- measuring a task --------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))


def _reset_peak() -> None:
    """Resets VmHWM to the current RSS (Linux: clear_refs 5), so that each task of a process has its own peak."""
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def measure(run) -> dict:
    """CPU and wall seconds and peak RSS growth (bytes) of run()."""
    _reset_peak()
    base = _status_kb("VmRSS")
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall,
            "peak_bytes": (_status_kb("VmHWM") - base) * 1024}


def _quiet():
    from loguru import logger

    logger.remove()  # datatrove logs each step at INFO


def in_fresh_process(target, *args):
    """target(*args) in a spawned process (its own memory image); returns what it returns."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_call, args=(queue, target, args))
    process.start()
    result = queue.get()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result


def _call(queue, target, args):
    try:
        queue.put(target(*args))
    except BaseException as error:  # noqa: BLE001 - handed to the parent, which raises it
        queue.put(RuntimeError(f"{target.__name__}: {error!r}"))


# --- 1. real pages -----------------------------------------------------------------------------------------------


def real_texts() -> tuple[list[str], str]:
    texts = []
    aeb = SHARED / "extraction" / "aeb" / "ground-truth.json"
    if aeb.exists():
        texts += [v["articleBody"] for v in json.loads(aeb.read_text()).values()]
        for path in sorted((SHARED / "extraction" / "wcxb-dev" / "ground-truth").glob("*.json")):
            texts.append(json.loads(path.read_text())["ground_truth"]["main_content"])
        for path in sorted((SHARED / "text" / "cc-derived").rglob("*.jsonl.gz")):
            with gzip.open(path, "rt") as file:
                texts.extend(json.loads(line)["text"] for line in file)
        source = "../shared/data: extraction ground truth (aeb, wcxb-dev) and cc-derived Common Crawl texts"
    else:
        print("../shared/data is absent: per-document costs from data_samples/texts (few, short pages)", flush=True)
        texts = [p.read_text() for p in sorted((REPO / "data_samples" / "texts").glob("*.txt"))]
        source = "data_samples/texts (../shared/data absent)"
    return [t for t in texts if t and len(t.split()) >= 50], source


def corpus(pool: list[str], n: int, seed: int = 0) -> list:
    """n documents from the real texts: the texts themselves, then copies with 30% of their words replaced (new
    documents for every method: Jaccard of 5-grams ≈ 0.2); 10% are near copies (1% of words replaced) of an earlier
    document and 10% repeat an earlier document's URL."""
    from tests.dedup.phases import document

    rng = random.Random(seed)
    vocabulary = [w for text in pool[:50] for w in text.split()]

    def edited(text, rate):
        return " ".join(rng.choice(vocabulary) if rng.random() < rate else w for w in text.split())

    texts, urls, docs = [], [], []
    for i in range(n):
        if i >= 10 and rng.random() < 0.1:
            text = edited(texts[rng.randrange(i)], 0.01)
        else:
            text = pool[i] if i < len(pool) else edited(pool[i % len(pool)], 0.3)
        url = urls[rng.randrange(i)] if i >= 10 and rng.random() < 0.1 else f"https://example.com/page-{i}"
        texts.append(text)
        urls.append(url)
        docs.append(document(i, text, url=url))
    return docs


def stage_config(method: str):
    from mdr.dedup.exact_substring import ExactSubstringConfig, ExactSubstringStage
    from mdr.dedup.minhash import MinhashConfig, MinhashStage
    from mdr.dedup.url_dedup import UrlDedupConfig, UrlDedupStage

    if method == "minhash_fineweb":
        return MinhashStage, MinhashConfig.fineweb()
    if method == "minhash_refinedweb":
        return MinhashStage, MinhashConfig()
    if method == "exact_substring":
        return ExactSubstringStage, ExactSubstringConfig(partitions=2)
    if method == "url_dedup_r1":
        return UrlDedupStage, UrlDedupConfig(resolve_tasks=1)
    return UrlDedupStage, UrlDedupConfig(resolve_tasks=4)


def _phase_worker(method: str, root: str, phase_index: int) -> dict:
    """Runs every task of one phase of the method's stage (1 shard task) and measures each."""
    _quiet()
    from collections import deque

    from tests.dedup.phases import context

    stage, config = stage_config(method)
    phase = stage.build_phases(config, context(Path(root), 1))[phase_index]
    tasks = []
    for rank in range(phase.tasks):
        def run():
            data = None
            for step in phase.pipeline:
                data = step(data, rank, phase.tasks)
            if data is not None:
                deque(data, maxlen=0)
        tasks.append(measure(run))
    return {"phase": phase.name, "tasks": tasks}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def real_costs(pool: list[str], sizes: list[int]) -> dict:
    """{method: {phase: {docs: {cpu_s, peak_bytes (max over tasks), tasks}}}, plus disk bytes per document."""
    from tests.dedup.phases import context, write_shards

    results: dict = {}
    for n in sizes:
        docs = corpus(pool, n)
        text_bytes = sum(len(d.text.encode()) for d in docs)
        for method in ("minhash_fineweb", "minhash_refinedweb", "exact_substring", "url_dedup_r1", "url_dedup_r4"):
            with tempfile.TemporaryDirectory() as folder:
                root = Path(folder)
                write_shards(root / "in", docs, 1)
                stage, config = stage_config(method)
                phases = stage.build_phases(config, context(root, 1))
                for index in range(2 if method == "url_dedup_r4" else len(phases)):  # r4: for its resolve phase
                    row = in_fresh_process(_phase_worker, method, str(root), index)
                    entry = results.setdefault(method, {}).setdefault(row["phase"], {})
                    entry[n] = {"cpu_s": sum(t["cpu_s"] for t in row["tasks"]),
                                "peak_bytes": max(t["peak_bytes"] for t in row["tasks"]),
                                "task_cpu_s": [t["cpu_s"] for t in row["tasks"]], "tasks": len(row["tasks"])}
                    print(f"  {n} docs {method:20s} {row['phase']:22s} cpu {entry[n]['cpu_s']:7.2f} s  peak "
                          f"{entry[n]['peak_bytes'] / 2**20:7.1f} MiB  ({len(row['tasks'])} tasks)", flush=True)
                work = Path(context(root, 1).work_dir(stage.key))
                disk = {sub.name: folder_bytes(sub) / n for sub in sorted(work.iterdir()) if sub.is_dir()}
                results.setdefault("_disk", {})[method] = disk
        results.setdefault("_text_bytes", {})[n] = text_bytes
    return results


# --- 2. synthetic signatures -------------------------------------------------------------------------------------


class Planted:
    """Planted clusters over n documents (see the module doc)."""

    def __init__(self, n: int, duplicate_fraction: float, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.n, self.seed = n, seed
        self.order_key = rng.permutation(n).astype(np.uint64)  # input order, unrelated to document numbers
        self.text_hash = rng.integers(1, 2**63, n, dtype=np.uint64)
        sizes = rng.choice([2, 3, 4, 6, 10], p=[0.5, 0.2, 0.15, 0.1, 0.05], size=max(1, int(n * duplicate_fraction)))
        sizes = sizes[: int(np.searchsorted(np.cumsum(sizes - 1), n * duplicate_fraction)) + 1]
        members = rng.permutation(n)[: int(sizes.sum())]
        cluster = np.repeat(np.arange(len(sizes)), sizes)
        firsts = np.r_[0, np.cumsum(sizes)[:-1]]
        self.clusters = [members[s : s + k] for s, k in zip(firsts, sizes)]
        self.source = members[firsts][cluster]  # each member's cluster source: the member the others copy
        copies = members != self.source
        self.copy, self.copy_source = members[copies], self.source[copies]
        self.exact = rng.random(len(self.copy)) < 0.5
        self.forced_band = rng.integers(0, 2**31, len(self.copy))  # every near copy shares at least this band
        self.text_hash[self.copy[self.exact]] = self.text_hash[self.copy_source[self.exact]]

    def band_keys(self, band: int, num_bands: int, share: float) -> tuple[np.ndarray, int]:
        """Band `band`'s keys of every document (the same whatever the band groups) and its bucket pairs."""
        rng = np.random.default_rng([self.seed, band])
        keys = rng.integers(1, 2**64 - 1, self.n, dtype=np.uint64, endpoint=True)
        shared = self.exact | (rng.random(len(self.copy)) < share) | (self.forced_band % num_bands == band)
        keys[self.copy[shared]] = keys[self.copy_source[shared]]
        return keys, int(shared.sum())

    def expected(self) -> dict[str, tuple[str, str]]:
        """{removed id: (kept id, reason)}."""
        removed = {}
        for members in self.clusters:
            keeper = members[np.argmin(self.order_key[members])]
            for member in members:
                if member != keeper:
                    exact = self.text_hash[member] == self.text_hash[keeper]
                    removed[doc_id(member)] = (doc_id(keeper), "exact_duplicate" if exact else "near_duplicate")
        return removed


def doc_id(number) -> str:
    return f"d{int(number):010d}"


def write_signatures(work: Path, planted: Planted, num_bands: int, rows: int, bucket_tasks: int) -> list[int]:
    """The band-key files and docs tables of SIGNATURE_TASKS signature tasks; returns the bucket pairs per band."""
    import pyarrow as pa
    from datatrove.io import get_datafolder

    from mdr.dedup.minhash import _docs_name, _signature_name, band_groups
    from mdr.dedup.shards import write_table

    bounds = np.linspace(0, planted.n, SIGNATURE_TASKS + 1).astype(int)
    folder = get_datafolder(str(work))
    for rank, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        write_table(folder, _docs_name(rank), pa.table({
            "order_key": pa.array(planted.order_key[lo:hi], pa.uint64()),
            "id": pa.array([doc_id(i) for i in range(lo, hi)], pa.string()),
            "text_hash": pa.array(planted.text_hash[lo:hi], pa.uint64())}))
    pairs_per_band = []
    for group, (start, end) in enumerate(band_groups(num_bands, bucket_tasks)):
        files = []
        for rank in range(SIGNATURE_TASKS):
            path = work / _signature_name(group, rank)
            path.parent.mkdir(parents=True, exist_ok=True)
            files.append(path.open("wb"))
        for band in range(start, end):
            keys, pairs = planted.band_keys(band, num_bands, 0.85**rows)
            pairs_per_band.append(pairs)
            for file, lo, hi in zip(files, bounds[:-1], bounds[1:]):
                file.write(keys[lo:hi].tobytes())
        for file in files:
            file.close()
    return pairs_per_band


def _synthetic_worker(work: str, num_bands: int, rows: int, bucket_tasks: int) -> dict:
    """Every buckets task of `bucket_tasks`, then the clusters task, each measured."""
    _quiet()
    from collections import deque

    from mdr.dedup.minhash import MinhashBuckets, MinhashClusters, MinhashConfig, band_groups, unique_pairs

    config = MinhashConfig(num_bands=num_bands, rows_per_band=rows)
    groups = len(band_groups(num_bands, bucket_tasks))
    buckets = []
    for rank in range(groups):
        step = MinhashBuckets(work, config, SIGNATURE_TASKS)
        buckets.append(measure(lambda: deque(step(None, rank, groups) or (), maxlen=0)))
        buckets[-1]["pairs_out"] = (Path(work) / f"pairs/g{rank:05d}.pairs").stat().st_size // 16
    step = MinhashClusters(work, SIGNATURE_TASKS, f"{work}/histogram.json")
    clusters = measure(lambda: deque(step(None, 0, 1) or (), maxlen=0))
    files = sorted((Path(work) / "pairs").glob("*.pairs"))  # after the measure: how many of the pairs are distinct
    clusters["distinct_pairs"] = len(unique_pairs(np.fromfile(f, dtype=np.int64).reshape(-1, 2) for f in files))
    return {"buckets": buckets, "clusters": clusters}


def check_removals(work: Path, planted: Planted) -> tuple[bool, str]:
    import pyarrow.parquet as pq

    found = {}
    for path in sorted((work / "removals").glob("r*.parquet")):
        for row in pq.read_table(path, columns=["id", "duplicate_of", "reason"]).to_pylist():
            found[row["id"]] = (row["duplicate_of"], row["reason"])
    expected = planted.expected()
    histogram = json.loads((work / "histogram.json").read_text())
    planted_sizes = Counter(len(members) for members in planted.clusters)
    same_histogram = {int(k): v for k, v in histogram.items()} == dict(planted_sizes)
    if found == expected and same_histogram:
        return True, f"{len(expected):,} removals and {len(planted.clusters):,} clusters exactly as planted"
    wrong = sum(found.get(k) != v for k, v in expected.items()) + len(set(found) - set(expected))
    return False, f"{wrong:,} removals differ from the {len(expected):,} planted; histogram equal: {same_histogram}"


def synthetic_runs(configs: list[tuple[int, float, str, int]]) -> list[dict]:
    """Each (documents, planted duplicate fraction, preset, buckets tasks): signatures written, phases run, checked."""
    from mdr.dedup.minhash import band_groups

    runs, planted_sets = [], {}
    for n, duplicate_fraction, preset, tasks in configs:
        if (n, duplicate_fraction) not in planted_sets:
            planted_sets = {(n, duplicate_fraction): Planted(n, duplicate_fraction)}  # one set in memory at a time
        planted = planted_sets[(n, duplicate_fraction)]
        nodes = int(sum(len(c) for c in planted.clusters))
        num_bands, rows = PRESETS[preset]
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            start = time.perf_counter()
            pairs_per_band = write_signatures(work, planted, num_bands, rows, tasks)
            written = time.perf_counter() - start
            result = in_fresh_process(_synthetic_worker, folder, num_bands, rows, tasks)
            ok, message = check_removals(work, planted)
        groups = band_groups(num_bands, tasks)
        for row, (start_band, end_band) in zip(result["buckets"], groups):
            row["bands"] = end_band - start_band
            row["pairs_in"] = sum(pairs_per_band[start_band:end_band])
        run = {"n": n, "duplicates": duplicate_fraction, "preset": preset, "tasks": len(groups), "nodes": nodes,
               "removed": len(planted.copy), "buckets": result["buckets"], "clusters": result["clusters"],
               "total_pairs": sum(r["pairs_out"] for r in result["buckets"]),
               "distinct_pairs": result["clusters"]["distinct_pairs"], "ok": ok, "check": message,
               "write_s": written}
        run["clusters"]["total_pairs"] = run["total_pairs"]
        runs.append(run)
        worst = max(result["buckets"], key=lambda r: r["peak_bytes"])
        print(f"  N={n:,} ({duplicate_fraction:.0%} dup.) {preset} {len(groups)} buckets task(s): buckets CPU "
              f"{sum(r['cpu_s'] for r in result['buckets']):.1f} s, peak/task {worst['peak_bytes'] / 2**20:.0f} MiB;"
              f" clusters {result['clusters']['cpu_s']:.1f} s, {result['clusters']['peak_bytes'] / 2**20:.0f} "
              f"MiB, {run['total_pairs']:,} pairs; {'OK' if ok else 'MISMATCH'}: {message}", flush=True)
    return runs


# --- 3. models ---------------------------------------------------------------------------------------------------


def fit(features: list[list[float]], values: list[float]) -> np.ndarray:
    """Non-negative least squares-ish: ordinary least squares, negative coefficients clipped to 0 and refitted."""
    x, y = np.array(features, dtype=float), np.array(values, dtype=float)
    keep = np.ones(x.shape[1], dtype=bool)
    while True:
        coef = np.zeros(x.shape[1])
        coef[keep] = np.linalg.lstsq(x[:, keep], y, rcond=None)[0]
        if (coef >= 0).all():
            return coef
        keep &= coef > 0


def bucket_features(row: dict, n: int) -> list[float]:
    # memory: a constant, one band of the whole corpus (keys, sort order, bucket arrays) and the pairs held: the
    # task's distinct pairs and the raw ones pending a merge (dedup.minhash.unique_pairs merges once as many as the
    # distinct ones, and at least 2^20, are pending)
    held = row["pairs_out"] + min(row["pairs_in"], max(row["pairs_out"], 2**20))
    return [1, n, held]


def bucket_time_features(row: dict, n: int) -> list[float]:
    # a constant, a sort of the whole band per band (n log n), the pairs' np.unique (a sort)
    return [1, row["bands"] * n * math.log2(n), row["pairs_in"] * math.log2(max(row["pairs_in"], 2))]


def cluster_features(run: dict) -> list[float]:
    # a constant, the distinct pairs of all pair files (merged as read) and np.unique's copies, the nodes' documents
    # and removal rows
    return [1, run["distinct_pairs"], run["nodes"]]


def cluster_time_features(run: dict) -> list[float]:
    return [1, run["total_pairs"] * math.log2(max(run["total_pairs"], 2)), run["nodes"]]


def models(runs: list[dict], fit_on: int | None) -> dict:
    """Coefficients fitted on the runs with n == fit_on (None: all runs)."""
    chosen = [r for r in runs if fit_on is None or r["n"] == fit_on]
    b_rows = [(b, r["n"]) for r in chosen for b in r["buckets"]]
    return {
        "bucket_mem": fit([bucket_features(b, n) for b, n in b_rows], [b["peak_bytes"] for b, _ in b_rows]),
        "bucket_cpu": fit([bucket_time_features(b, n) for b, n in b_rows], [b["cpu_s"] for b, _ in b_rows]),
        "cluster_mem": fit([cluster_features(r) for r in chosen], [r["clusters"]["peak_bytes"] for r in chosen]),
        "cluster_cpu": fit([cluster_time_features(r) for r in chosen], [r["clusters"]["cpu_s"] for r in chosen]),
    }


def predicted(coefficients: np.ndarray, features: list[float]) -> float:
    return float(np.dot(coefficients, features))


# --- 4. projection -----------------------------------------------------------------------------------------------


def per_doc(real: dict, method: str, phase: str, sizes: list[int]) -> tuple[float, float, float]:
    """(CPU s per document, at the larger size; peak-memory slope in bytes per document of a task; the intercept)."""
    small, large = sizes[0], sizes[-1]
    entry = real[method][phase]
    tasks = entry[large]["tasks"]  # the larger-size run's tasks each held large / tasks documents
    slope = max(0.0, (entry[large]["peak_bytes"] - entry[small]["peak_bytes"]) / ((large - small) / tasks))
    base = max(0.0, entry[small]["peak_bytes"] - slope * small / tasks)
    return entry[large]["cpu_s"] / large, slope, base


def url_resolve_split(real: dict, n: int) -> tuple[float, float]:
    """CPU per document that every resolve task pays (it reads every index file in full) and per document of its own
    share, from the same input resolved by 1 and by 4 tasks: total CPU = R·N·read + N·own."""
    one = real["url_dedup_r1"]["url_dedup_resolve"][n]["cpu_s"]
    four = real["url_dedup_r4"]["url_dedup_resolve"][n]["cpu_s"]
    read = max(0.0, (four - one) / 3 / n)
    return read, max(0.0, one / n - read)


def phase_costs(real: dict, sizes: list[int], fitted: dict, duplicate_fraction: float,
                nodes_per_removed: float) -> list[tuple]:
    """(name, what the tasks split, most tasks, cost(n, t) → (CPU s, peak bytes) of one task)."""
    d = duplicate_fraction
    phases = []

    def per_shard(method, phase):
        cpu, slope, base = per_doc(real, method, phase, sizes)
        return lambda n, t: (cpu * n / t, base + slope * n / t)

    for preset, (bands, _) in PRESETS.items():
        method = f"minhash_{preset}"
        phases.append((f"MinHash {preset} · signatures", "shards", None, per_shard(method, "minhash_signatures")))

        def buckets(n, t, bands=bands):
            # every duplicate's pair in each of the task's bands (raw), once after the merge (distinct)
            task = {"bands": math.ceil(bands / t), "pairs_in": math.ceil(bands / t) * d * n, "pairs_out": d * n}
            return (predicted(fitted["bucket_cpu"], bucket_time_features(task, n)),
                    predicted(fitted["bucket_mem"], bucket_features(task, n)))

        phases.append((f"MinHash {preset} · buckets", "band groups", bands, buckets))

        def clusters(n, t, bands=bands):
            run = {"total_pairs": min(t, bands) * d * n,  # each bucket task's pair file holds every duplicate's pair
                   "distinct_pairs": d * n, "nodes": d * n * nodes_per_removed}
            return (predicted(fitted["cluster_cpu"], cluster_time_features(run)),
                    predicted(fitted["cluster_mem"], cluster_features(run)))

        phases.append((f"MinHash {preset} · clusters: 1 task, after t buckets tasks", "cannot split", bands, clusters))
        phases.append((f"MinHash {preset} · filter", "shards", None, per_shard(method, "minhash")))
    phases.append(("exact substring · route", "shards", None, per_shard("exact_substring", "exact_substring_route")))
    phases.append(("exact substring · partition (suffix array)", "partitions", None,
                   per_shard("exact_substring", "exact_substring")))
    phases.append(("URL · index", "shards", None, per_shard("url_dedup_r1", "url_dedup_index")))
    read_cpu, own_cpu = url_resolve_split(real, sizes[-1])
    _, slope, base = per_doc(real, "url_dedup_r1", "url_dedup_resolve", sizes)
    phases.append(("URL · resolve (each task reads every index file)", "URL hash classes", None,
                   lambda n, t: (read_cpu * n + own_cpu * n / t, base + slope * n / t)))
    phases.append(("URL · filter", "shards", None, per_shard("url_dedup_r1", "url_dedup")))
    return phases


def fewest_tasks(cost, n: float, most: int | None, over: str) -> str:
    """The fewest tasks (a power of 2, or the phase's maximum) whose task fits a 128 GiB node."""
    if over == "cannot split":  # one task, and more bucket tasks before it only add pairs
        return "1 (its only task)" if cost(n, 1)[1] <= NODE else "none: 1 task, over 128 GiB even after 1 buckets task"
    t = 1
    while True:
        capped = min(t, most) if most else t
        if cost(n, capped)[1] <= NODE:
            return f"{capped:,}"
        if (most and capped == most) or t > 2**24:
            return f"none (≤ {most:,} tasks)" if most else "none"
        t *= 2


def fmt_time(seconds: float) -> str:
    for unit, scale in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def fmt_bytes(value: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def projected_tables(phases: list[tuple], scales: list[float], task_counts: list[int]) -> list[str]:
    lines = []
    for n in scales:
        header = ("phase", *(f"{t:,} tasks" for t in task_counts), "fewest tasks that fit")
        rows = [header]
        for name, over, most, cost in phases:
            cells = []
            for t in task_counts:
                if most and t > most:
                    cells.append(f"— (≤ {most})")
                    continue
                cpu, memory = cost(n, t)
                cells.append(f"{fmt_time(cpu)}, {fmt_bytes(memory)}" + (" **✗**" if memory > NODE else ""))
            rows.append((name, *cells, fewest_tasks(cost, n, most, over)))
        lines += [f"N = {n:,.0f} documents (CPU time, peak memory of one task; **✗**: over 128 GiB):", "",
                  *table(rows), ""]
    return lines


# --- report ------------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signatures", type=int, default=1_000_000, help="synthetic documents of the large run")
    parser.add_argument("--small", type=int, default=100_000, help="synthetic documents of the run models are fitted on")
    parser.add_argument("--duplicates", type=float, default=0.1, help="planted fraction of removable documents")
    parser.add_argument("--real-sizes", type=int, nargs=2, default=[3000, 9000], help="real-page documents")
    parser.add_argument("--dump-duplicates", type=float, default=0.4, help="removed fraction assumed at dump scale")
    parser.add_argument("--save", help="write the measurements to this JSON file")
    parser.add_argument("--load", help="report from a --save file instead of measuring")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    command = (f".venv/bin/python benchmarks/bench_dedup_scale.py --signatures {args.signatures} --small {args.small} "
               f"--duplicates {args.duplicates} --real-sizes {' '.join(map(str, args.real_sizes))} "
               f"--dump-duplicates {args.dump_duplicates}")

    pool, source = real_texts()
    if args.load:
        saved = json.loads(Path(args.load).read_text())
        real, runs = saved["real"], saved["runs"]
        for method, phases in real.items():  # JSON made the document counts strings
            if method != "_disk":
                real[method] = ({int(k): v for k, v in phases.items()} if method == "_text_bytes" else
                                {phase: {int(k): v for k, v in entry.items()} for phase, entry in phases.items()})
    else:
        print(f"1. per-document costs on real pages ({len(pool)} texts: {source})", flush=True)
        real = real_costs(pool, args.real_sizes)

    print(f"2. synthetic signatures: N = {args.small:,} and {args.signatures:,}, {args.duplicates:.0%} planted "
          "duplicates", flush=True)
    # the smaller N also with 3× the duplicates, so that pairs, nodes and N vary apart in the fit
    main_set = [("fineweb", 1), ("fineweb", 14), ("refinedweb", 1), ("refinedweb", 16), ("refinedweb", 450)]
    configs = [(args.small, args.duplicates, p, t) for p, t in main_set]
    configs += [(args.small, 3 * args.duplicates, p, t) for p, t in (("fineweb", 1), ("refinedweb", 16))]
    configs += [(args.signatures, args.duplicates, p, t) for p, t in main_set if (p, t) != ("refinedweb", 16)]
    if not args.load:
        runs = synthetic_runs(configs)
    if args.save:
        Path(args.save).write_text(json.dumps({"real": real, "runs": runs}))
    fitted_small, fitted = models(runs, args.small), models(runs, None)
    planted = Planted(args.small, args.duplicates)
    nodes_per_removed = sum(len(c) for c in planted.clusters) / len(planted.copy)

    large, small = args.real_sizes[1], args.real_sizes[0]
    lines = [f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()} (2 shared cores, noisy), numpy "
             f"{np.__version__}; one run of", "", f"    {command}", "",
             "**Measured** (sections 1–2) and **projected** (section 3) figures are kept apart.", "",
             f"**1. Measured: per-document costs of each phase on real pages** ({len(pool)} texts of {source}, "
             f"mean {np.mean([len(t.encode()) for t in pool]) / 1024:.1f} KiB; {small:,} and {large:,} documents "
             "built from them, 10% near copies and 10% repeated URLs; every phase in a fresh process, its tasks one "
             "after another, 1 shard task; exact substring with 2 partitions, URL resolve with 1 task and with 4). "
             f"CPU per document at {large:,} documents; memory per document = slope of a task's peak RSS growth "
             "between the two sizes (per document of that task); disk = the phase folders left in the stage's work "
             "folder at the larger size:", ""]
    rows = [("method · phase", "CPU µs/doc", "peak RSS/doc of a task", "task peak at " + f"{large:,}", "tasks")]
    for method, phases in real.items():
        if method.startswith("_"):
            continue
        for phase, entry in phases.items():
            cpu, slope, _ = per_doc(real, method, phase, args.real_sizes)
            rows.append((f"{method} · {phase}", f"{cpu * 1e6:,.0f}", fmt_bytes(slope),
                         fmt_bytes(entry[large]["peak_bytes"]), str(entry[large]["tasks"])))
    lines += table(rows) + [""]
    disk = real["_disk"]
    lines += ["Work-folder bytes per document: " + "; ".join(
        f"{method}: " + ", ".join(f"{sub}/ {value:,.0f} B" for sub, value in subs.items())
        for method, subs in disk.items() if method != "url_dedup_r4") + ".", ""]

    lines += [f"**2. Measured: MinHash buckets and clusters on synthetic signatures** ({SIGNATURE_TASKS} signature "
              f"tasks' files; {args.duplicates:.0%} of the documents planted as removable members of clusters of "
              "2–10, half exact copies, half near copies at Jaccard 0.85; per task: the largest over the phase's "
              "tasks; check: the removal lists and cluster-size histogram equal the planted ones):", ""]
    rows = [("N", "planted", "preset", "buckets tasks", "bucket task wall / CPU s (max)", "bucket task peak (max)",
             "raw / distinct pairs of a task (max)", "pairs to clusters (distinct)", "clusters wall / CPU s",
             "clusters peak", "check")]
    for r in runs:
        worst = max(r["buckets"], key=lambda b: b["peak_bytes"])
        rows.append((f"{r['n']:,}", f"{r['duplicates']:.0%}", r["preset"], str(r["tasks"]),
                     f"{max(b['wall_s'] for b in r['buckets']):.2f} / {max(b['cpu_s'] for b in r['buckets']):.2f}",
                     fmt_bytes(worst["peak_bytes"]), f"{max(b['pairs_in'] for b in r['buckets']):,} / "
                     f"{max(b['pairs_out'] for b in r['buckets']):,}", f"{r['total_pairs']:,} ({r['distinct_pairs']:,})", f"{r['clusters']['wall_s']:.2f} / {r['clusters']['cpu_s']:.2f}",
                     fmt_bytes(r["clusters"]["peak_bytes"]),
                     ("✓ " if r["ok"] else "✗ ") + r["check"]))
    lines += table(rows) + [""]

    lines += [f"**Scaling check**: models fitted on the N = {args.small:,} runs alone (bucket task: peak = a·N + "
              "b·pairs held (distinct + pending a merge), CPU = c·bands·N·log2 N + e·raw pairs·log2; clusters: peak = f·distinct pairs + g·nodes, CPU = "
              f"h·file pairs·log2 + i·nodes), predicting the N = {args.signatures:,} runs (measured / predicted):", ""]
    rows = [("preset", "buckets tasks", "bucket peak", "bucket CPU", "clusters peak", "clusters CPU")]
    for r in runs:
        if r["n"] != args.signatures:
            continue
        worst = max(r["buckets"], key=lambda b: b["peak_bytes"])
        slow = max(r["buckets"], key=lambda b: b["cpu_s"])
        ratio = lambda measured, value: f"{measured / value:.2f}" if value > 0 else "—"  # noqa: E731
        rows.append((r["preset"], str(r["tasks"]),
                     ratio(worst["peak_bytes"], predicted(fitted_small["bucket_mem"], bucket_features(worst, r["n"]))),
                     ratio(slow["cpu_s"], predicted(fitted_small["bucket_cpu"], bucket_time_features(slow, r["n"]))),
                     ratio(r["clusters"]["peak_bytes"], predicted(fitted_small["cluster_mem"], cluster_features(r))),
                     ratio(r["clusters"]["cpu_s"], predicted(fitted_small["cluster_cpu"], cluster_time_features(r)))))
    lines += table(rows) + [""]
    c = fitted
    lines += [f"Coefficients used for the projection (fitted on all the runs above): bucket task peak "
              f"{fmt_bytes(c['bucket_mem'][0])} + {c['bucket_mem'][1]:.1f} B × N + {c['bucket_mem'][2]:.1f} B × "
              f"pair held; clusters peak {fmt_bytes(c['cluster_mem'][0])} + {c['cluster_mem'][1]:.1f} B × distinct pair + "
              f"{c['cluster_mem'][2]:.0f} B × node; bucket CPU {c['bucket_cpu'][0]:.2f} s + "
              f"{c['bucket_cpu'][1] * 1e9:.2f} ns × bands·N·log2 N + {c['bucket_cpu'][2] * 1e9:.2f} ns × raw pair·log2; "
              f"clusters CPU {c['cluster_cpu'][0]:.2f} s + {c['cluster_cpu'][1] * 1e9:.2f} ns × file pair·log2 + "
              f"{c['cluster_cpu'][2] * 1e9:.0f} ns × node.", ""]

    phases = phase_costs(real, args.real_sizes, fitted, args.dump_duplicates, nodes_per_removed)
    lines += [f"**3. Projected** from sections 1–2 (not run at these sizes): CPU time and peak memory of ONE task "
              f"(wall time on one core ≈ CPU time); documents of the real pages' mean size; {args.dump_duplicates:.0%} "
              "of the documents removed as duplicates, each in a bucket of every band (exact copies: the upper bound "
              f"of the pairs), {nodes_per_removed:.2f} cluster members per removed document (as planted); tasks "
              "split the documents evenly. A phase's own limit on its tasks is marked —.", ""]
    lines += projected_tables(phases, [1e6, 1e8, 3e9], [1, 64, 1024, 8192])
    if not args.load:
        lines.append(f"Benchmark wall time: {time.perf_counter() - started:.0f} s.")
    report = "\n".join(lines)
    print(report)
    if args.write_results:
        write_section(f"## Dedup at dump scale (issue 15.4)\n\n{report}\n", "## Dedup at dump scale (issue 15.4)")


if __name__ == "__main__":
    main()
