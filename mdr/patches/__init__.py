"""Every change mdr makes to a third-party library's internals, one module per library (issue 11.4).

mdr patches a library only where the measured gain or a bug leaves no public way (each module says which and why).
A patch reaches into private names that a new release may rename or change in meaning, so every module first calls
`require_tested(...)`: an installed version outside the series the patch was tested with fails loudly, naming both,
instead of patching blindly. pyproject.toml bounds each such library to the same series.

    datatrove.py    task loggers with mdr's console sinks; Ray rank workers whose dead task processes fail the task
    ray.py          token authentication the way `ray start` sets it up
    trafilatura.py  its boilerplate XPath lists replaced by compiled Python predicates
    warcio.py       strict readers: a cut gzip member or a lying length is an error, not a short record
"""

from __future__ import annotations

import re
from importlib import metadata


class UntestedVersionError(RuntimeError):
    """An installed library is outside the versions an mdr patch of its internals was tested with."""


def _series(version: str) -> tuple[int, int]:
    """(major, minor) of a version string: "1.8.1" -> (1, 8), "2.60.0rc1" -> (2, 60), "3" -> (3, 0)."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    return (int(match[1]), int(match[2] or 0)) if match else (-1, -1)


def require_tested(distribution: str, tested: tuple[str, ...], what: str) -> str:
    """Returns the installed version of `distribution` if its major.minor series is one of `tested` ("1.7", "1.8");
    raises UntestedVersionError naming the installed and tested versions and `what` the patch changes otherwise."""
    installed = metadata.version(distribution)
    if _series(installed) not in {_series(t) for t in tested}:
        raise UntestedVersionError(
            f"mdr patches {distribution}'s internals ({what}) and was tested with {distribution} "
            f"{' and '.join(s + '.x' for s in tested)}; {installed} is installed. Install a tested version "
            f"(pip install '{distribution}=={tested[-1]}.*') or check the patch in mdr/patches/ against {installed}.")
    return installed
