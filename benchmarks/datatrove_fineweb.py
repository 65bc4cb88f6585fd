"""datatrove's FineWeb example (`examples/fineweb.py` of datatrove 0.10.1) on local WARCs: the datatrove side of
`bench_curation.py`, run with the python of a venv that holds datatrove as its users install it (see that script's
docstring for the venv). It imports datatrove and the standard library only, never mdr.

    DTPY benchmarks/datatrove_fineweb.py prepare --lid-model lid.176.ftz
    DTPY benchmarks/datatrove_fineweb.py run --input WARC [WARC ...] --output OUT --logs LOGS [--tasks T] [--workers W] [--no-dedup]

`prepare` (outside the timed runs) unpacks URLFilter's bundled blocklists into datatrove's asset cache
(HF_ASSETS_CACHE) and puts the given fastText model where datatrove's FT176LID would have downloaded lid.176.bin, so
that LanguageFilter runs unchanged and offline. `run` is the example's filtering phase, then its MinHash stages 1-4
with stage 4's PIIFormatter; each phase's datatrove logs (stats.json) go to LOGS/<phase>/.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

FT176_URL = "https://dl.fbaipublicfiles.com/fasttext/supervised-models/lid.176.bin"  # datatrove.utils.lid.FT176LID
PHASES = ("filtering", "minhash-signatures", "minhash-buckets", "minhash-clusters", "minhash-filter")


def filtering(inputs: list[Path], out: Path) -> list:
    """The example's first (filtering) pipeline; its `exclusion_writer`s and output as the example has them."""
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        URLFilter,
    )
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from tldextract import TLDExtract

    removed = out / "removed"
    url_filter = URLFilter(exclusion_writer=JsonlWriter(str(removed / "1_url")))
    url_filter.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())  # offline: tldextract's bundled list
    folder = inputs[0].parent
    if any(path.parent != folder for path in inputs):
        raise SystemExit("datatrove_fineweb.py: the inputs must be in one folder (WarcReader reads one data folder)")
    return [
        # WarcReader gives each file to one task (files are spread over tasks, not records)
        WarcReader(str(folder), paths_file=_paths_file(inputs, out), default_metadata={"dump": "bench"}),
        url_filter,
        Trafilatura(favour_precision=True),  # datatrove's default timeout: 1 s per document, in a forked process
        LanguageFilter(
            languages=["en"],  # the example relies on an older default (English); 0.10.1's default keeps any language
            exclusion_writer=JsonlWriter(str(removed / "2_non_english"), output_filename="${language}/${rank}.jsonl.gz"),
        ),
        GopherRepetitionFilter(exclusion_writer=JsonlWriter(str(removed / "3_gopher_rep"))),
        GopherQualityFilter(exclusion_writer=JsonlWriter(str(removed / "4_gopher_qual"))),
        C4QualityFilter(filter_no_terminal_punct=False, exclusion_writer=JsonlWriter(str(removed / "5_c4"))),
        FineWebQualityFilter(exclusion_writer=JsonlWriter(str(removed / "6_fineweb_qual"))),
        JsonlWriter(str(out / "output")),
    ]


def _paths_file(inputs: list[Path], out: Path) -> str:
    """A paths file naming the inputs relative to their folder (WarcReader's `paths_file`)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "inputs.txt"
    paths.write_text("".join(f"{path.name}\n" for path in inputs))
    return str(paths)


def minhash(out: Path, tasks: int) -> list[tuple[str, list, int]]:
    """The example's MinHash stages 1-4 as (phase, pipeline, tasks), stage 4 with its PIIFormatter after the filter.
    Left out: TokensCounter (it downloads the GPT-2 tokenizer; the example says "you can remove this one")."""
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    config = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    base = out / "minhash"
    return [
        ("minhash-signatures", [JsonlReader(str(out / "output")),
                                MinhashDedupSignature(output_folder=str(base / "signatures"), config=config)], tasks),
        ("minhash-buckets", [MinhashDedupBuckets(input_folder=str(base / "signatures"),
                                                 output_folder=str(base / "buckets"), config=config)],
         config.num_buckets),
        ("minhash-clusters", [MinhashDedupCluster(input_folder=str(base / "buckets"),
                                                  output_folder=str(base / "remove_ids"), config=config)], 1),
        ("minhash-filter", [JsonlReader(str(out / "output")),
                            MinhashDedupFilter(input_folder=str(base / "remove_ids")),
                            PIIFormatter(),
                            JsonlWriter(str(base / "deduped_output"))], tasks),
    ]


def run(inputs: list[Path], out: Path, logs: Path, tasks: int, workers: int, dedup: bool) -> None:
    from datatrove.executor import LocalPipelineExecutor

    LocalPipelineExecutor(pipeline=filtering(inputs, out), tasks=tasks, workers=workers,
                          logging_dir=str(logs / "filtering")).run()
    for name, pipeline, phase_tasks in minhash(out, tasks) if dedup else []:
        LocalPipelineExecutor(pipeline=pipeline, tasks=phase_tasks, workers=workers,
                              logging_dir=str(logs / name)).run()


def prepare(lid_model: Path) -> None:
    """Fills datatrove's asset cache as a first online run would: URLFilter's blocklists, and `lid_model` under the
    name FT176LID looks up (datatrove.io.cached_asset_path_or_download: the file, then its `.completed` marker)."""
    from datatrove.io import cached_assets_path, strip_protocol
    from datatrove.pipeline.filters import URLFilter

    URLFilter().download_data()
    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder="ft176")
    target = os.path.join(folder, strip_protocol(FT176_URL).replace("/", "_"))
    shutil.copyfile(lid_model, target)
    Path(f"{target}.completed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    prepare_parser = commands.add_parser("prepare")
    prepare_parser.add_argument("--lid-model", type=Path, required=True, help="a lid.176 fastText model (.bin/.ftz)")
    run_parser = commands.add_parser("run")
    run_parser.add_argument("--input", type=Path, nargs="+", required=True)
    run_parser.add_argument("--output", type=Path, required=True)
    run_parser.add_argument("--logs", type=Path, required=True,
                            help="the folder of the phases' logging dirs (bench_curation.py passes mdr's RunLayout "
                                 "one, so that both sides' stats are read from the same places)")
    run_parser.add_argument("--tasks", type=int, default=1)
    run_parser.add_argument("--workers", type=int, default=1)
    run_parser.add_argument("--no-dedup", action="store_true")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.lid_model)
    else:
        run([path.resolve() for path in args.input], args.output.resolve(), args.logs.resolve(), args.tasks,
            args.workers, dedup=not args.no_dedup)


if __name__ == "__main__":
    main()
