"""Every change mdr makes to a third-party library's internals, one module per library (issue 11.4).

mdr patches a library only where the measured gain or a bug leaves no public way (each module says which and why).
A patch reaches into private names that a new release may rename or change in meaning, so every module first calls
`require_tested(...)`: an installed version outside the series the patch was tested with fails loudly, naming both,
instead of patching blindly. `TESTED` below holds those series, one entry per module (each named after the
distribution it patches); pyproject.toml bounds each library to the same series (tests/test_packaging.py checks
it), and `check_installed` compares them with the installed versions without importing any library: `mdr run` calls
it in the driver, before anything is written, so that a task does not fail on it later.

    datatrove.py    task loggers with mdr's console sinks; Ray rank workers whose dead task processes fail the task
    huggingface_hub.py  datatrove imported without the Hub client, which a run needs for hf:// paths only
    justext.py      its stop-list made into a set once, not on every page trafilatura hands it
    ray.py          token authentication the way `ray start` sets it up
    trafilatura.py  its boilerplate XPath lists replaced by compiled Python predicates; readability skipped where it
                    cannot win
    warcio.py       strict readers: a cut gzip member or a lying length is an error, not a short record
"""

from __future__ import annotations

import re

from mdr.errors import UsageError

# distribution -> the major.minor series its patch module was tested with
TESTED = {"datatrove": ("0.10",), "huggingface_hub": ("2.4",), "justext": ("3.0",), "ray": ("2.60",),
          "trafilatura": ("2.3",), "warcio": ("1.8",)}
OPTIONAL = ("ray",)  # an extra: checked only for a run that uses it, and a local run needs no Ray installed


class UntestedVersionError(UsageError):
    """An installed library is outside the versions an mdr patch of its internals was tested with (one line, exit
    code 2: the user installs another version)."""


def _series(version: str) -> tuple[int, int]:
    """(major, minor) of a version string: "1.8.1" -> (1, 8), "2.60.0rc1" -> (2, 60), "3" -> (3, 0)."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    return (int(match[1]), int(match[2] or 0)) if match else (-1, -1)


def require_tested(distribution: str, what: str) -> str:
    """Returns the installed version of `distribution` if its major.minor series is one of TESTED[distribution];
    raises UntestedVersionError naming the installed and tested versions and `what` the patch changes otherwise."""
    from importlib import metadata  # here: `import mdr` reads no package metadata (mdr/patches/huggingface_hub.py)

    tested = TESTED[distribution]
    installed = metadata.version(distribution)
    if _series(installed) not in {_series(t) for t in tested}:
        raise UntestedVersionError(
            f"mdr patches {distribution}'s internals ({what}) and was tested with {distribution} "
            f"{' and '.join(s + '.x' for s in tested)}; {installed} is installed. Install a tested version "
            f"(pip install '{distribution}=={tested[-1]}.*') or check the patch in mdr/patches/ against {installed}.")
    return installed


def check_installed(optional: tuple[str, ...] = ()) -> None:
    """Raises UntestedVersionError if an installed library that mdr patches is outside its TESTED series; of the
    OPTIONAL ones, only those named in `optional` are checked. A library that is not installed is not patched."""
    from importlib import metadata

    for distribution in sorted(TESTED):
        if distribution in OPTIONAL and distribution not in optional:
            continue
        try:
            metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
        require_tested(distribution, f"mdr/patches/{distribution}.py")
