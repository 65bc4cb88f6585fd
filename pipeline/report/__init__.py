"""Inspecting a run: the terminal funnel of `mdr stats` (and the comparison of two runs), the self-contained HTML
report of `mdr report`, and the terminal pager of dropped documents of `mdr inspect`."""

# Defaults shared by the modules and the CLI (which imports only this light module when `mdr` starts).
DEFAULT_SAMPLES = 10  # report: random documents per (stage, reason), and kept documents
DEFAULT_SAMPLE_CHARS = 10_000  # report: text kept per sampled document; `mdr inspect` shows the rest
DEFAULT_INSPECT_CHARS = 3000  # inspect: text characters shown per document (0: all)
DEFAULT_LIMIT_NOT_TTY = 10  # inspect: documents printed when stdout is not a terminal
