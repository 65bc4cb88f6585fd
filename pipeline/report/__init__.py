"""Inspecting a run: the terminal funnel of `mdr stats` (and the comparison of two runs), the self-contained HTML
report of `mdr report`, and the terminal pager of dropped documents of `mdr inspect`."""
