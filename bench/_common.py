"""What every bench shares: the machine line and writing its figures into bench/README.md."""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

README = Path(__file__).with_name("README.md")
log = logging.getLogger("bench")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(*versions: str) -> str:
    """Date, CPU, cores and Python, then whatever library versions the bench names."""
    parts = [time.strftime("%Y-%m-%d"), f"{cpu_name()}, {os.cpu_count()} cores", f"Python {platform.python_version()}"]
    return "; ".join(parts + list(versions))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_section(key: str, title: str, intro: str, lines: Sequence[str]) -> None:
    """Replace the `<!-- bench:KEY:start/end -->` block of bench/README.md, or add the section at its end."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = start + "\n" + "\n".join(lines) + "\n" + end
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        text = head + block + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + f"\n\n## {title}\n\n{intro}\n\n{block}\n"
    README.write_text(text, encoding="utf-8")
    log.info("results written to %s", README)


def report(lines: Sequence[str], *, write: bool, key: str, title: str, intro: str = "") -> None:
    """Log a bench's result lines and, with ``--write-readme``, store them in its README section."""
    for line in lines:
        log.info("%s", line)
    if write:
        write_section(key, title, intro, lines)
