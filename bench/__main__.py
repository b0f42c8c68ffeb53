"""Run the benches: ``python -m bench`` runs every ``bench/*.py`` module that has a ``main()``;
``python -m bench images ocr`` runs only those. Each bench gets an empty argument list (its defaults).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import sys
import time
from collections.abc import Sequence

import bench

log = logging.getLogger("bench")


def bench_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(bench.__path__)
                  if not info.name.startswith("_") and not info.ispkg)


def run(names: Sequence[str]) -> int:
    """Run the named benches in order; return how many failed (a failure does not stop the others)."""
    failures = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        main = getattr(module, "main", None)
        if not callable(main):
            log.debug("bench.%s has no main(); skipped", name)
            continue
        log.info("=== bench.%s ===", name)
        started = time.perf_counter()
        try:
            main([]) if inspect.signature(main).parameters else main()
        except (Exception, SystemExit):
            failures += 1
            log.exception("bench.%s failed", name)
        log.info("=== bench.%s done in %.1f s ===", name, time.perf_counter() - started)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    available = bench_modules()
    names = list(sys.argv[1:] if argv is None else argv) or available
    unknown = [name for name in names if name not in available]
    if unknown:
        log.error("unknown bench(es): %s (available: %s)", ", ".join(unknown), ", ".join(available))
        return 2
    return 1 if run(names) else 0


if __name__ == "__main__":
    sys.exit(main())
