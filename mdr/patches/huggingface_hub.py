"""datatrove imported without the Hugging Face Hub client, which an mdr run needs only for `hf://` paths (tested with
huggingface_hub 2.4 and datatrove 0.10).

Two of datatrove's modules import the Hub client when they are imported, and every datatrove step imports both:
- `datatrove/io.py`: `from huggingface_hub import HfFileSystem, cached_assets_path`. huggingface_hub's package
  attributes are lazy, so that line is what imports `huggingface_hub.hf_file_system`, hence `hf_api`, httpx and the
  rest: 0.34-0.35 CPU seconds per process on this project's 2-core box. datatrove.io uses the class for one thing,
  `isinstance(fs, HfFileSystem)` in `DataFolder.list_files`.
- `datatrove/pipeline/writers/__init__.py`: `from .huggingface import HuggingFaceBucketWriter, HuggingFaceDatasetWriter`,
  whose module imports `create_commit`, `preupload_lfs_files`, ... from huggingface_hub: 0.30-0.33 s (`python -X
  importtime`, `datatrove.pipeline.writers.huggingface`).
`mdr run` paid both in its driver and again in its forkserver (benchmarks/RESULTS.md, "Curation throughput (issue
15)"), and a Slurm or Ray task process pays them once more.

`defer_hub_imports()` (called by `mdr/__init__.py`, before any datatrove import) installs an import hook for those two
modules, and nothing else:
- while `datatrove.io` executes, `huggingface_hub.HfFileSystem` is `_DeferredHfFileSystem`: a class whose
  `isinstance`/`issubclass` answer is the real class's once `huggingface_hub.hf_file_system` has been imported, and
  False before (no object can be an instance of a class that was never imported); calling it builds the real class.
  The module attribute is removed right after, so `from huggingface_hub import HfFileSystem` anywhere else gets the
  real class, and `hf://` paths still open through fsspec's registry, which imports it then.
- while `datatrove.pipeline.writers` executes, its `huggingface` submodule is an empty placeholder; afterwards the two
  writer names are looked up by the package's module `__getattr__` (PEP 562), which imports the real submodule on
  first use: `from datatrove.pipeline.writers import HuggingFaceDatasetWriter` gets the real class, later.
Nothing changes for a module whose real import came first, or when huggingface_hub is outside the tested series
(then `mdr run` stops on `check_installed`, like every other patch). One visible difference: `from
datatrove.pipeline.writers import *` (the package has no `__all__`) no longer brings the two Hugging Face writers.
This module and what it imports at `import mdr` are the standard library only (tests/test_layout.py).
"""

from __future__ import annotations

import importlib
import sys
import types

_FILESYSTEM_MODULE = "huggingface_hub.hf_file_system"
_WRITERS = "datatrove.pipeline.writers"
_HUB_WRITERS = f"{_WRITERS}.huggingface"
_HUB_WRITER_NAMES = ("HuggingFaceBucketWriter", "HuggingFaceDatasetWriter")


class _Deferred(type):
    """Metaclass: isinstance/issubclass against the real HfFileSystem once it is imported, False until then."""

    def __instancecheck__(cls, instance) -> bool:
        module = sys.modules.get(_FILESYSTEM_MODULE)
        return module is not None and isinstance(instance, module.HfFileSystem)

    def __subclasscheck__(cls, subclass) -> bool:
        module = sys.modules.get(_FILESYSTEM_MODULE)
        return module is not None and issubclass(subclass, module.HfFileSystem)

    def __call__(cls, *args, **kwargs):
        from huggingface_hub.hf_file_system import HfFileSystem

        return HfFileSystem(*args, **kwargs)


class _DeferredHfFileSystem(metaclass=_Deferred):
    """Stands for huggingface_hub.HfFileSystem in datatrove.io's namespace (see the module's docstring)."""


def _exec_io(loader, module) -> None:
    import huggingface_hub  # its package import is cheap (lazy attributes): 5 ms

    if _FILESYSTEM_MODULE in sys.modules:  # already imported for real: nothing to save
        return loader.exec_module(module)
    huggingface_hub.HfFileSystem = _DeferredHfFileSystem
    try:
        loader.exec_module(module)
    finally:
        del huggingface_hub.HfFileSystem


def _hub_writer(name: str):
    """The writers package's module __getattr__: the Hugging Face writers, imported when first asked for."""
    if name in _HUB_WRITER_NAMES:
        return getattr(importlib.import_module(_HUB_WRITERS), name)
    raise AttributeError(f"module {_WRITERS!r} has no attribute {name!r}")


def _exec_writers(loader, module) -> None:
    if _HUB_WRITERS in sys.modules:
        return loader.exec_module(module)
    placeholder = types.ModuleType(_HUB_WRITERS)
    for name in _HUB_WRITER_NAMES:
        setattr(placeholder, name, None)
    sys.modules[_HUB_WRITERS] = placeholder
    try:
        loader.exec_module(module)
    finally:
        if sys.modules.get(_HUB_WRITERS) is placeholder:
            del sys.modules[_HUB_WRITERS]
    for name in _HUB_WRITER_NAMES:
        vars(module).pop(name, None)
    if vars(module).get("huggingface") is placeholder:
        del module.huggingface
    module.__getattr__ = _hub_writer


# The finder and loader protocols by duck typing: importlib.abc would import importlib.resources and tempfile with
# `import mdr` (17 ms of `mdr --help`).
class _Loader:
    """Runs the module's own loader through `execute` (one of the two above)."""

    def __init__(self, loader, execute):
        self.loader = loader
        self.execute = execute

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.execute(self.loader, module)

    def __getattr__(self, name):  # get_source, get_filename, is_package, ...: the module's own loader answers
        return getattr(self.loader, name)


class _Finder:
    targets = {"datatrove.io": _exec_io, _WRITERS: _exec_writers}

    def __init__(self):
        self.waiting = dict(self.targets)

    def find_spec(self, name, path=None, target=None):
        execute = self.waiting.pop(name, None)
        if execute is None:
            return None
        if not self.waiting:
            sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(name)  # the real spec: this finder no longer answers for `name`
        if spec is not None and spec.loader is not None and _tested():
            spec.loader = _Loader(spec.loader, execute)
        return spec


def _tested() -> bool:
    """Whether the installed huggingface_hub is of the tested series. Checked here, when datatrove is imported, not
    when mdr is (`mdr --help` reads no package metadata); an untested one is left alone, and `mdr run` stops on
    `check_installed` before anything is written."""
    from importlib import metadata

    from mdr.patches import UntestedVersionError, require_tested

    try:
        require_tested("huggingface_hub", "which names datatrove's modules import from it, and when")
    except (UntestedVersionError, metadata.PackageNotFoundError):
        return False
    return True


def defer_hub_imports() -> None:
    """Installs the hook for those of the two modules not imported yet (see the module's docstring)."""
    if any(isinstance(finder, _Finder) for finder in sys.meta_path):
        return
    finder = _Finder()
    finder.waiting = {name: execute for name, execute in finder.waiting.items() if name not in sys.modules}
    if finder.waiting:
        sys.meta_path.insert(0, finder)
