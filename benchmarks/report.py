"""The end every benchmark shares: print its Markdown report, and also write it where --output says."""

from __future__ import annotations

from pathlib import Path


def emit(report: str, output: Path | None) -> str:
    print(report)
    if output:
        output.write_text(report)
    return report
