"""datatrove.io without huggingface_hub's HfFileSystem imported up front (tested with huggingface_hub 2.4).

`datatrove/io.py` (0.10) runs `from huggingface_hub import HfFileSystem, cached_assets_path` when imported, and every
datatrove step imports it; huggingface_hub's package attributes are lazy, so that line is what imports
`huggingface_hub.hf_file_system`, hence `hf_api`, httpx and the rest of the Hub client: 0.34-0.35 CPU seconds per
process on this project's 2-core box (benchmarks/RESULTS.md, "Curation throughput (issue 15)"), paid by `mdr run`'s
driver and again by its forkserver, though an mdr run reads no `hf://` path unless a user names one. datatrove.io uses
the class for one thing, `isinstance(fs, HfFileSystem)` in `DataFolder.list_files`.

`defer_hf_filesystem()` (called by `mdr/__init__.py`) installs an import hook that, while `datatrove.io` itself
executes, shows it `_DeferredHfFileSystem` under that name: a class whose `isinstance`/`issubclass` answer is the real
class's once `huggingface_hub.hf_file_system` has been imported, and False before (no object can be an instance of a
class that was never imported); calling it builds the real class. The module attribute is removed again right after,
so `from huggingface_hub import HfFileSystem` anywhere else gets the real class, and `hf://` paths still open through
fsspec's registry, which imports it then. Nothing changes if the real class was imported first or if the installed
huggingface_hub is outside the tested series (then `mdr run` stops on `check_installed`, like every other patch).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

_TARGET = "datatrove.io"
_REAL_MODULE = "huggingface_hub.hf_file_system"


class _Deferred(type):
    """Metaclass: isinstance/issubclass against the real HfFileSystem once it is imported, False until then."""

    def __instancecheck__(cls, instance) -> bool:
        module = sys.modules.get(_REAL_MODULE)
        return module is not None and isinstance(instance, module.HfFileSystem)

    def __subclasscheck__(cls, subclass) -> bool:
        module = sys.modules.get(_REAL_MODULE)
        return module is not None and issubclass(subclass, module.HfFileSystem)

    def __call__(cls, *args, **kwargs):
        from huggingface_hub.hf_file_system import HfFileSystem

        return HfFileSystem(*args, **kwargs)


class _DeferredHfFileSystem(metaclass=_Deferred):
    """Stands for huggingface_hub.HfFileSystem in datatrove.io's namespace (see the module's docstring)."""


class _Loader(importlib.abc.Loader):
    """Runs datatrove.io's own loader with the stand-in visible as `huggingface_hub.HfFileSystem`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        import huggingface_hub  # its package import is cheap (lazy attributes): 5 ms

        if _REAL_MODULE in sys.modules:  # already imported for real: nothing to save
            return self.loader.exec_module(module)
        huggingface_hub.HfFileSystem = _DeferredHfFileSystem
        try:
            self.loader.exec_module(module)
        finally:
            del huggingface_hub.HfFileSystem


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)  # once: find the real spec without this finder
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and _tested():
            spec.loader = _Loader(spec.loader)
        return spec


def _tested() -> bool:
    """Whether the installed huggingface_hub is of the tested series. Checked here, when datatrove.io is imported,
    not when mdr is (`mdr --help` reads no package metadata); an untested one is left alone, and `mdr run` stops on
    `check_installed` before anything is written."""
    from importlib import metadata

    from mdr.patches import UntestedVersionError, require_tested

    try:
        require_tested("huggingface_hub", "the HfFileSystem name in datatrove.io's namespace")
    except (UntestedVersionError, metadata.PackageNotFoundError):
        return False
    return True


def defer_hf_filesystem() -> None:
    """Installs the hook unless datatrove.io is already imported (see the module's docstring)."""
    if _TARGET not in sys.modules and not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
