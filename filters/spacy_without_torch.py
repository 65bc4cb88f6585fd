"""spaCy, imported without torch: the word tokenizer (`mdr.filters.words`) and datatrove's sentence splitter need
spaCy's tokenizer only, but `import spacy` imports thinc, whose `thinc/compat.py` imports torch when it is installed
(mdr's `train` extra) and asks CUDA for its device count. Measured on this project's 2-core box: `import spacy` 2.3-2.6
CPU seconds with torch installed, 0.65-0.72 s without, in every `mdr run` (the forkserver preloads it).

torch is hidden for the length of the import only (a None entry in sys.modules makes `import torch` raise
ImportError, which thinc catches: `has_torch = False`); a later `import torch` in the same process works as usual.
Only thinc's torch-backed layers (unused by a blank pipeline's tokenizer and sentencizer) would notice. A process that
has already imported torch gets spaCy as it is.
"""

import sys

if "torch" in sys.modules:
    import spacy
else:
    sys.modules["torch"] = None
    try:
        import spacy
    finally:
        del sys.modules["torch"]

__all__ = ["spacy"]
