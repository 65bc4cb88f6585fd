"""`mdr run` checks every patched library's version in the driver, before anything is written: an untested one is one
line and exit code 2 (not a traceback, nor a task failing after run.json is written); Ray, an extra, only for a run
on Ray."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from mdr.patches import UntestedVersionError, check_installed

SAMPLE = Path(__file__).parents[2] / "data_samples" / "sample-00000.warc.gz"

# a fresh `mdr run` process that sees the versions in argv[1] ("warcio=1.9.0") installed, as after a pip install
RUN_WITH_VERSIONS = """
import sys
from importlib import metadata

faked = dict(item.split("=") for item in sys.argv[1].split(","))
installed = metadata.version
metadata.version = lambda name: faked.get(name) or installed(name)
from mdr.cli import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("distribution, version, executor", [
    ("warcio", "1.9.0", "local"), ("datatrove", "0.11.0", "local"), ("trafilatura", "2.4.0", "local"),
    ("ray", "2.61.0", "ray"),
])
def test_an_untested_library_is_one_line_before_anything_is_written(tmp_path, distribution, version, executor):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", RUN_WITH_VERSIONS, f"{distribution}={version}", "run", "refinedweb",
                             "--input", str(SAMPLE), "--output", str(out), "--executor", executor, "--workers", "1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    series = {"warcio": "1.8", "datatrove": "0.10", "trafilatura": "2.3", "ray": "2.60"}[distribution]
    assert result.stderr.startswith("mdr: error: mdr patches ") and result.stderr.count("\n") == 1, result.stderr
    assert f"tested with {distribution} {series}.x; {version} is installed" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _faked(monkeypatch, versions: dict):
    installed = metadata.version

    def version(name):
        if name not in versions:
            return installed(name)
        if versions[name] is None:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(metadata, "version", version)


def test_ray_is_checked_only_for_a_run_on_ray_and_only_if_installed(monkeypatch):
    _faked(monkeypatch, {"ray": "2.61.0"})
    check_installed()  # a local run: Ray's patch does not apply
    with pytest.raises(UntestedVersionError, match=r"tested with ray 2\.60\.x; 2\.61\.0 is installed"):
        check_installed(optional=("ray",))
    _faked(monkeypatch, {"ray": None})  # a curation-only install without the ray extra
    check_installed(optional=("ray",))


def test_the_installed_libraries_are_tested_ones():
    check_installed(optional=("ray",))
