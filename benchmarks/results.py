"""benchmarks/RESULTS.md: each benchmark owns one `## ` section, which --write-results replaces in place."""

import os
import platform
import subprocess
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


def machine() -> str:
    """'N cores, CPU model, Python version' for a results section."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        lscpu = ""
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")),
                 platform.processor() or "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def table(rows: list[tuple]) -> list[str]:
    """Markdown table lines; the first row is the header."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows[1:]]
