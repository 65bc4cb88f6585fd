"""benchmarks/RESULTS.md: each benchmark owns one `## ` section, which --write-results replaces in place."""

from pathlib import Path

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(section: str, heading: str) -> None:
    """Replace the section that starts with `heading` (up to the next `## `), or append `section` at the end."""
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text)
    print(f"wrote {RESULTS_MD}")
