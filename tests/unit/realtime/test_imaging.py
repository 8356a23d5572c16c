"""Photo re-encoding (realtime/services/imaging.py), in this process: metadata removed,
orientation applied, variants, bombs and damaged files refused; and the per-user upload rate."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from realtime.services.imaging import WORKER_NICE, ImageRefused, ImagingPool, reencode
from realtime.services.uploads import UploadRate
from school.errors import RateLimited
from tests.support.clock import FakeClock


def write(tmp_path: Path, image: Image.Image, fmt: str, **params: object) -> str:
    path = tmp_path / f"in.{fmt.lower()}"
    image.save(path, fmt, **params)
    return str(path)


def test_a_png_with_text_chunks_and_alpha_keeps_none_of_its_metadata(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("Comment", "GPS 48.85N 2.29E")
    image = Image.new("RGBA", (2000, 1000), (0, 200, 0, 128))
    out = reencode(write(tmp_path, image, "PNG", pnginfo=info), str(tmp_path))
    with Image.open(out["original"].path) as original:
        assert original.format == "PNG" and original.size == (2000, 1000) and "Comment" not in original.info
    assert b"GPS" not in Path(out["original"].path).read_bytes()
    with Image.open(out["screen"].path) as screen, Image.open(out["thumb"].path) as thumb:
        assert screen.size == (1600, 800) and thumb.size == (320, 160)
        assert screen.format == thumb.format == "JPEG"


def test_a_webp_stays_webp(tmp_path: Path) -> None:
    out = reencode(write(tmp_path, Image.new("RGB", (100, 50), (1, 2, 3)), "WEBP"), str(tmp_path))
    assert out["original"].type == "image/webp" and (out["original"].width, out["original"].height) == (100, 50)


def test_bombs_and_damaged_files_are_refused(tmp_path: Path) -> None:
    big = write(tmp_path, Image.new("1", (10_000, 6_000)), "PNG")
    with pytest.raises(ImageRefused) as refused:
        reencode(big, str(tmp_path), max_pixels=50_000_000)
    assert refused.value.too_large and "megapixels" in refused.value.message
    data = io.BytesIO()
    Image.new("RGB", (300, 300), (9, 9, 9)).save(data, "JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data.getvalue()[:300])
    with pytest.raises(ImageRefused) as damaged:
        reencode(str(cut), str(tmp_path))
    assert not damaged.value.too_large and "damaged" in damaged.value.message
    gif = write(tmp_path, Image.new("RGB", (10, 10)), "GIF")
    with pytest.raises(ImageRefused):
        reencode(gif, str(tmp_path))


def test_the_upload_rate_counts_a_minute_per_user() -> None:
    clock = FakeClock(1000.0)
    rate = UploadRate(3, clock=clock)
    for _ in range(3):
        rate.take("t-martin")
    with pytest.raises(RateLimited) as refused:
        rate.take("t-martin")
    assert refused.value.retry_after == pytest.approx(60.0)
    rate.take("t-nguyen")  # another user is not held back
    clock.advance(60.5)
    rate.take("t-martin")


def test_a_heic_photo_is_decoded_and_stored_as_jpeg(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = reencode(write(tmp_path, Image.new("RGB", (640, 480), (10, 200, 30)), "HEIF"), str(tmp_path))
    assert out["original"].type == "image/jpeg" and (out["original"].width, out["original"].height) == (640, 480)
    with Image.open(out["thumb"].path) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (320, 240)


def scheduling() -> tuple[int, int, int | None]:
    """Run in a worker: its pid, nice level and scheduling class (None where there is none)."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, 0), policy


async def test_the_workers_yield_the_cpu_to_the_gateway() -> None:
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    pool = ImagingPool(workers=2)
    try:
        seen = await asyncio.wait_for(asyncio.gather(*(pool.call(scheduling) for _ in range(4))), 60)
    finally:
        pool.close()
    for pid, nice, policy in seen:
        assert pid != os.getpid()
        assert nice == WORKER_NICE, "a worker runs at the lowest priority"
        if sys.platform == "linux":
            assert policy in (os.SCHED_IDLE, os.SCHED_BATCH), f"a worker's scheduling class is {policy}"
    assert os.getpriority(os.PRIO_PROCESS, 0) == ours, "the gateway's own priority is untouched"
