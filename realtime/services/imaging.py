"""Decoding and re-encoding uploaded photos (Pillow), run in worker processes
(`ImagingPool`), never on the event loop.

What leaves this module is a new image: pixels only, with the EXIF orientation applied
(`ImageOps.exif_transpose`) and every piece of metadata left behind (EXIF and its GPS
position, XMP, ICC comments, text chunks). Three files are written: `original` (the full
size, re-encoded), `screen` (at most 1600 px) and `thumb` (at most 320 px). Decompression
bombs are refused before decoding: more than `max_pixels` (50 MP by default) in the header,
and Pillow's own `DecompressionBombError` as a second fence. A truncated or undecodable file is
refused too. Errors are `ImageRefused` (a message for the user, and `too_large`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pillow_heif
from PIL import Image, ImageOps

MAX_PIXELS = 50_000_000
SIZES = {"screen": 1600, "thumb": 320}
T = TypeVar("T")
_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "HEIF": "image/heic"}


class ImageRefused(Exception):
    """The file is not an image we take; `args[0]` says why and what to do, `args[1]` whether
    it is a size refusal."""

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def too_large(self) -> bool:
        return bool(self.args[1]) if len(self.args) > 1 else False


@dataclass(frozen=True, slots=True)
class Encoded:
    path: str
    type: str
    width: int
    height: int


def _flatten(image: Image.Image) -> Image.Image:
    """RGB (over white where there was transparency), the form every JPEG variant takes."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def reencode(source: str, out_dir: str, max_pixels: int = MAX_PIXELS) -> dict[str, Encoded]:
    """Decode the image at `source` and write its metadata-free `original`, `screen` and `thumb`
    into `out_dir`; raise `ImageRefused`. Runs in a worker process."""
    pillow_heif.register_heif_opener()
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as opened:
                media_type = _FORMATS.get(opened.format or "")
                if media_type is None:
                    raise ImageRefused("this file is not a JPEG, PNG, WebP or HEIC photo", False)
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageRefused(f"this image has {width}x{height} pixels; send at most "
                                       f"{max_pixels // 1_000_000} megapixels", True)
                opened.seek(0)
                opened.load()
                upright = ImageOps.exif_transpose(opened)
        except ImageRefused:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused(f"this image is too large once decoded; send at most {max_pixels // 1_000_000} "
                               "megapixels", True) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise ImageRefused("this image is damaged or incomplete (could not be decoded): send it again",
                               False) from None
    # a new image of the same pixels: nothing of the file's metadata comes along
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    clean.info = {}
    out: dict[str, Encoded] = {}
    if media_type == "image/png":
        out["original"] = _save(clean, out_dir, "original", "PNG")
    elif media_type == "image/webp":
        out["original"] = _save(clean, out_dir, "original", "WEBP")
    else:  # JPEG, and HEIC re-encoded as JPEG for every browser
        out["original"] = _save(_flatten(clean), out_dir, "original", "JPEG")
    for name, size in SIZES.items():
        variant = _flatten(clean)
        variant.thumbnail((size, size), Image.Resampling.LANCZOS)
        out[name] = _save(variant, out_dir, name, "JPEG")
    return out


def _save(image: Image.Image, out_dir: str, name: str, fmt: str) -> Encoded:
    path = os.path.join(out_dir, name)
    params: dict[str, Any] = {"quality": 88} if fmt in ("JPEG", "WEBP") else {"optimize": False}
    if fmt == "JPEG":
        params["optimize"] = True
    image.save(path, fmt, **params)
    media = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    return Encoded(path, media, image.width, image.height)


WORKER_NICE = 19


def lower_priority() -> None:
    """Run once in each worker (the pool's initializer): the worker yields the CPU to the
    gateway. Nice 19, the lowest priority (which also lowers its disk I/O priority), and on
    Linux the `SCHED_IDLE` class: a gateway that wakes up (a frame to fan out) takes the core at
    once, and re-encoding only uses the CPU nobody else wants. `SCHED_BATCH` where `SCHED_IDLE`
    is refused, nice alone where neither exists (macOS). Threads started later (libheif)
    inherit both. A setting refused leaves the worker working, at whatever it got."""
    with contextlib.suppress(OSError):
        os.nice(max(0, WORKER_NICE - os.nice(0)))
    setscheduler = getattr(os, "sched_setscheduler", None)
    if setscheduler is None:
        return
    for name in ("SCHED_IDLE", "SCHED_BATCH"):
        policy = getattr(os, name, None)
        if policy is None:
            continue
        try:
            setscheduler(0, policy, os.sched_param(0))
            return
        except OSError:
            continue


class ImagingPool:
    """A few worker processes (spawned, so nothing of the server's threads or sockets is
    inherited; at the lowest CPU priority, `lower_priority`) re-encoding photos, with at most `workers * 2` jobs
    waiting: a burst of uploads queues here, and the event loop only awaits."""

    def __init__(self, workers: int = 2, max_pixels: int = MAX_PIXELS) -> None:
        self.workers = max(1, workers)
        self.max_pixels = max_pixels
        self._pool: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(self.workers * 2)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=lower_priority)
        return self._pool

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker (a picklable, module-level `fn`), within the pool's slots."""
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor(), fn, *args)

    async def reencode(self, source: str, out_dir: str) -> dict[str, Encoded]:
        return await self.call(reencode, source, out_dir, self.max_pixels)

    def close(self) -> None:
        """Stop the workers: what is queued is dropped, a photo being re-encoded is finished (a
        few seconds at most). Not waiting left the worker processes and their semaphores behind
        (`resource_tracker: ... leaked semaphore objects` at exit)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
