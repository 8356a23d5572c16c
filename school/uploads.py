"""Uploaded files, the pure part: what a file is from its first bytes, the file name kept for
downloads, and the attachments that reference an upload (`{upload, name?, students?}`).

A file is recognised by its bytes (magic numbers), never by its name or declared type: a
program renamed `photo.jpg` is refused. Images are then decoded and re-encoded by
realtime/services/imaging.py; a PDF is kept as sent, never rendered.
"""

from __future__ import annotations

import re
import unicodedata

# what the first bytes say -> (media type, kind)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic")
PDF = "application/pdf"
HEAD_BYTES = 32
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/heic": ".heic",
              PDF: ".pdf"}
VARIANTS = ("original", "screen", "thumb")
ACCEPTED = "JPEG, PNG, WebP or HEIC photos, or PDF documents"


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes (`HEAD_BYTES`), None when it is none of
    JPEG, PNG, WebP, HEIC/HEIF or PDF."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return PDF
    return None


def is_image(media_type: str) -> bool:
    return media_type in IMAGE_TYPES


def safe_filename(raw: str | None, media_type: str) -> str:
    """A file name for `Content-Disposition`: ASCII letters, digits, `._ -`, at most 100
    characters, with the extension of the type the bytes have (never the one sent)."""
    base = unicodedata.normalize("NFKD", raw or "").encode("ascii", "ignore").decode()
    base = base.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem = _UNSAFE.sub("_", base.rsplit(".", 1)[0] if "." in base else base)
    stem = " ".join(stem.split()).strip(" ._")[:80]
    return (stem or "fichier") + EXTENSIONS.get(media_type, "")


def is_upload_id(value: object) -> bool:
    return isinstance(value, str) and _UPLOAD_ID.fullmatch(value) is not None
