"""mdr/patches/huggingface_hub.py: datatrove imported without the Hub client, each check in a fresh interpreter (the
patch acts when datatrove.io and datatrove.pipeline.writers are first imported)."""

import subprocess
import sys

import pytest


def run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_datatrove_io_imports_without_the_hub_client_and_recognises_its_filesystem():
    run(
        "import sys, fsspec\n"
        "import mdr, datatrove.io\n"
        "assert 'huggingface_hub.hf_file_system' not in sys.modules and 'huggingface_hub.hf_api' not in sys.modules\n"
        "assert not isinstance(fsspec.filesystem('file'), datatrove.io.HfFileSystem)\n"
        "from huggingface_hub import HfFileSystem\n"  # anywhere else: the real class
        "assert HfFileSystem.__module__ == 'huggingface_hub.hf_file_system'\n"
        "hf = fsspec.filesystem('hf')\n"  # how an hf:// path gets its filesystem
        "assert isinstance(hf, datatrove.io.HfFileSystem) and isinstance(hf, HfFileSystem)\n"
        "assert issubclass(type(hf), datatrove.io.HfFileSystem) and not issubclass(int, datatrove.io.HfFileSystem)\n"
        "assert isinstance(datatrove.io.HfFileSystem(), HfFileSystem)\n"
        "import datatrove.io as again, huggingface_hub\n"
        "assert again is datatrove.io\n"
    )


def test_datatrove_writers_import_without_the_hub_client_and_give_its_writers_when_asked():
    run(
        "import sys\n"
        "import mdr\n"
        "from datatrove.pipeline.filters.base_filter import BaseFilter\n"  # imports the writers package
        "from datatrove.pipeline.writers import ParquetWriter, JsonlWriter\n"
        "assert not [m for m in sys.modules if m.startswith('huggingface_hub.hf_') or m.endswith('.huggingface')]\n"
        "from datatrove.pipeline.writers import HuggingFaceDatasetWriter\n"
        "import datatrove.pipeline.writers as writers, datatrove.pipeline.writers.huggingface as module\n"
        "assert HuggingFaceDatasetWriter is module.HuggingFaceDatasetWriter and issubclass(HuggingFaceDatasetWriter,"
        " ParquetWriter)\n"
        "assert writers.HuggingFaceBucketWriter is module.HuggingFaceBucketWriter and writers.huggingface is module\n"
        "try:\n    writers.NoSuchWriter\nexcept AttributeError:\n    pass\nelse:\n    raise AssertionError\n"
    )


@pytest.mark.parametrize("setup", [
    "from huggingface_hub import HfFileSystem; import datatrove.pipeline.writers.huggingface",  # real ones first
    "import mdr.patches; mdr.patches.TESTED['huggingface_hub'] = ('0.1',)",  # an untested series: left alone
])
def test_datatrove_io_gets_the_real_class_when_it_was_imported_first_or_the_version_is_untested(setup):
    run(
        f"import sys, mdr\n{setup}\n"
        "import datatrove.io\n"
        "from huggingface_hub.hf_file_system import HfFileSystem\n"
        "assert datatrove.io.HfFileSystem is HfFileSystem\n"
        "import datatrove.pipeline.writers as writers\n"
        "assert 'datatrove.pipeline.writers.huggingface' in sys.modules\n"  # imported with the package, as datatrove does
        "assert writers.HuggingFaceDatasetWriter is writers.huggingface.HuggingFaceDatasetWriter\n"
    )
