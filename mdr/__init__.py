"""mdr: Macrodata Refinement. The code lives in the top-level folders pipeline/, filters/, dedup/ and train/,
installed as the subpackages mdr.pipeline, mdr.filters, mdr.dedup and mdr.train."""

__version__ = "0.1.0"

from mdr.patches.huggingface_hub import defer_hub_imports

defer_hub_imports()  # before any datatrove import: 0.65 CPU seconds per process (its docstring)
