"""The export of one person's data (issue 15): a zip archive, streamed.

`archive(person_id, sections)` yields the archive's bytes as it is written: `manifest.json`
(the person's id, when, the sections), one `<section>.json` per registered privacy section,
then the files of the sections that have some (`PersonalFiles`: the uploads' bytes, read
chunk by chunk from the blob store). Only the current entry is in memory, never the whole
archive; the zip is written without seeking (data descriptors), so it can go straight to the
HTTP response or a file.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator, Callable
from typing import cast

from realtime.services.privacy import PersonalData, PersonalFiles

MEDIA_TYPE = "application/zip"


class _Sink(io.RawIOBase):
    """A write-only, unseekable file whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        data = bytes(cast(bytes, b))
        self._chunks.append(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True, default=str).encode()


async def archive(person_id: str, sections: list[PersonalData], clock: Callable[[], float]
                  ) -> AsyncIterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        manifest = {"person": person_id, "exported_at": clock(), "sections": [s.name for s in sections],
                    "format": "one JSON file per section; files/ holds the person's uploaded files"}
        zf.writestr("manifest.json", _json(manifest))
        yield sink.take()
        for section in sections:
            zf.writestr(f"{section.name}.json", _json(await section.export(person_id)))
            yield sink.take()
        seen: set[str] = set()
        for section in sections:
            files = getattr(section, "files", None)
            if files is None:
                continue
            async for path, chunks in cast(PersonalFiles, section).files(person_id):
                name = _unique(f"files/{section.name}/{path}", seen)
                with zf.open(name, "w", force_zip64=True) as entry:
                    async for chunk in chunks:
                        entry.write(chunk)
                        yield sink.take()
                yield sink.take()
    yield sink.take()


def _unique(name: str, seen: set[str]) -> str:
    name = name.replace("\\", "/").replace("..", "_")
    candidate, n = name, 1
    while candidate in seen:
        n += 1
        candidate = f"{name}.{n}"
    seen.add(candidate)
    return candidate
