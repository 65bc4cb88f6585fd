"""spaCy, imported without torch and without its command line: the word tokenizer (`mdr.filters.words`) and
datatrove's sentence splitter need spaCy's tokenizer only.

- torch: `import spacy` imports thinc, whose `thinc/compat.py` imports torch when it is installed (mdr's `train`
  extra) and asks CUDA for its device count. Measured on this project's 2-core box: `import spacy` 2.3-2.6 CPU seconds
  with torch installed, 0.65-0.72 s without, in every `mdr run` (the forkserver preloads it). torch is hidden for the
  length of the import only (a None entry in sys.modules makes `import torch` raise ImportError, which thinc catches:
  `has_torch = False`); a later `import torch` in the same process works as usual. Only thinc's torch-backed layers
  (unused by a blank pipeline's tokenizer and sentencizer) would notice.
- the command line: `spacy/__init__.py` (3.8) runs `from .cli.info import info` for `spacy.info()`, and `spacy.cli`
  imports every CLI command with weasel, typer, requests and httpx: 0.3 CPU seconds of the import on this box
  (`python -X importtime`: spacy.cli 0.28-0.31 s of spacy's 0.67-0.92 s; benchmarks/RESULTS.md, issue 15). Empty
  `spacy.cli` and `spacy.cli.info` modules stand in for the length of the import only; `spacy.info` is then a function
  that imports the real one when called, and `import spacy.cli` later imports the real package.

A process that has already imported torch or spaCy's CLI gets them as they are.
"""

import sys
import types


def _info(*args, **kwargs):
    """spacy.info, importing spaCy's command line on first use."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


def _import_spacy():
    hidden = {}
    if "torch" not in sys.modules:
        hidden["torch"] = None
    if "spacy" not in sys.modules and "spacy.cli" not in sys.modules:
        cli, cli_info = types.ModuleType("spacy.cli"), types.ModuleType("spacy.cli.info")
        cli_info.info = _info
        cli.info = cli_info
        hidden.update({"spacy.cli": cli, "spacy.cli.info": cli_info})
    sys.modules.update(hidden)
    try:
        import spacy
    finally:
        for name in hidden:
            del sys.modules[name]
    return spacy


spacy = _import_spacy()

__all__ = ["spacy"]
