"""Pillow's own test images through ``prepare_image``: how many are prepared, refused, or fail.

Run: ``.venv/bin/python -m bench.pillow_corpus DIR`` with ``DIR`` a copy of Pillow's ``Tests/images``
(about 1,060 files: every format and mode Pillow knows, damaged and hostile files among them). A
*failure* is anything but a prepared image or a refusal with a reason (:class:`ImageRejected`), or a
file taking over ``--slow`` seconds. Without a directory (as in ``make bench``) it says so and stops.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench._common import report
from bot.images import ImageRejected, prepare_image
from bot.images.formats import ALLOWED_FORMATS

log = logging.getLogger(__name__)


def run(directory: Path, slow: float) -> list[str]:
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    failures: list[str] = []
    started = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        begun = time.perf_counter()
        try:
            prepare_image(data)
            outcome = "prepared"
            kinds[path.suffix.lower() or "(none)"] += 1
        except ImageRejected:
            outcome = "refused"
        except Exception as error:  # what the pipeline must never let out
            outcome = "failed"
            failures.append(f"{path.name}: {type(error).__name__}: {error}")
        if time.perf_counter() - begun > slow:
            failures.append(f"{path.name}: took {time.perf_counter() - begun:.1f} s")
        outcomes[outcome] += 1
    seconds = time.perf_counter() - started
    top = ", ".join(f"{suffix} {count}" for suffix, count in kinds.most_common(12))
    lines = [
        f"Pillow's Tests/images ({len(files)} files), formats opened: {', '.join(ALLOWED_FORMATS)}; "
        f"{seconds:.0f} s in all.",
        f"- prepared {outcomes['prepared']}, refused with a reason {outcomes['refused']}, "
        f"failed {outcomes['failed']} (over {slow:g} s or an exception: {len(failures)})",
        f"- prepared by suffix: {top}",
    ]
    lines += [f"  - failure: {failure}" for failure in failures[:20]]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, help="a copy of Pillow's Tests/images")
    parser.add_argument("--slow", type=float, default=10.0, help="seconds after which a file counts as a failure")
    parser.add_argument("--write-readme", action="store_true", help="store the results in bench/README.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    warnings.simplefilter("ignore")  # Pillow warns about every damaged TIFF tag; the counts say enough
    if args.directory is None or not args.directory.is_dir():
        log.info("pillow_corpus: no directory of Pillow's Tests/images given; skipped")
        return
    report(run(args.directory, args.slow), write=args.write_readme, key="pillow-corpus", title="Pillow's test images",
           intro="`bench/pillow_corpus.py` runs `prepare_image` on every file of Pillow's `Tests/images`.")


if __name__ == "__main__":
    main()
