"""How a stage says why it dropped a document: a reason for the stats, a detail with the measured value for reports."""

from datatrove.data import Document


def drop(doc: Document, reason: str, detail: str) -> tuple[bool, str]:
    """Records `detail` in `doc.metadata["drop_detail"]` and returns BaseFilter's `(False, reason)`."""
    doc.metadata["drop_detail"] = detail
    return False, reason


def compared(name: str, value: float, op: str, threshold: float) -> str:
    """`"dup_line_frac 0.4123 > 0.3"`: the measured value, the comparison that failed and the threshold."""
    shown = str(value) if isinstance(value, int) else f"{value:.4g}"
    if threshold is not None and value != threshold and float(shown) == threshold:
        shown = repr(float(value))  # just past the threshold: show the digits that make the difference
    return f"{name} {shown} {op} {threshold}"
