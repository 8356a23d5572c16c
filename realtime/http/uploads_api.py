"""Uploads, private downloads and image consents over HTTP (issue 13).

- `POST /api/v1/uploads` (a user's token; `multipart/form-data`, the file in the field `file`)
  → 201 `{id, type, size, name, width?, height?, url}`. The body is parsed as it streams
  (python-multipart's push parser): the file goes to a temporary file on disk, never whole in
  memory; its first bytes say what it is (`school.uploads.sniff`) and so which limit applies
  (`LIAISON_UPLOAD_IMAGE_BYTES`, `LIAISON_UPLOAD_PDF_BYTES`), counted while it streams; a
  `Content-Length` over the largest limit is refused before anything is read. 413 `too_large`
  over a limit, 400 `bad_request` for anything that is not a JPEG, PNG, WebP, HEIC or PDF (or a
  damaged image), 429 past the per-user upload rate.
- `GET /api/v1/files/{id}?variant=original|screen|thumb` (a user's token) → the bytes, with
  `Cache-Control: private`, `Content-Disposition`, `X-Content-Type-Options: nosniff` and
  ranges (`Range: bytes=a-b` → 206, unsatisfiable → 416). 404 to whoever may not see it.
- Consents: `GET|PUT /api/v1/admin/students/{id}/consents` (API key), `GET /api/v1/me/consents`
  and `PUT /api/v1/me/consents/{student}` (a guardian, for their own children), `GET
  /api/v1/classes/{id}/consents` (the class's staff).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from channels.limits import Rate, UserLimits
from persistence.upload_store import Upload
from realtime.http.requests import json_object, require_api_key, require_user, services_of
from realtime.services import Services
from realtime.services.attachments import file_url
from school.consent import parse_state
from school.directory_rules import check_fields, entity_id
from school.errors import BadRequest, NotFound, RateLimited, TooLarge, Unavailable
from school.uploads import ACCEPTED, HEAD_BYTES, PDF, is_image, sniff

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers, a few small fields
MAX_PARTS = 8
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
CACHE = "private, max-age=3600"


def _uploads(request: Request) -> Services:
    services = services_of(request)
    if services.uploads is None or services.consents is None:
        raise Unavailable("uploads are not available on this server")
    return services


def megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):.3g} MB"


class _FilePart:
    """Collects the `file` part of a multipart body pushed through python-multipart, into a
    temporary file, checking its type and size as it comes."""

    def __init__(self, image_limit: int, pdf_limit: int) -> None:
        self.image_limit, self.pdf_limit = image_limit, pdf_limit
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.parts = 0
        self.in_file = False
        self.found = False
        self.filename: str | None = None
        self.head = b""
        self.type: str | None = None
        self.size = 0
        self.pending: list[bytes] = []
        self.done = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._part_begin, "on_part_data": self._part_data, "on_part_end": self._part_end,
            "on_header_field": self._header_field, "on_header_value": self._header_value,
            "on_header_end": self._header_end, "on_headers_finished": self._headers_finished,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(f"send at most {MAX_PARTS} form fields; the file goes in the field `file`")
        self.headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.in_file = options.get(b"name") == b"file" and not self.found
        if self.in_file:
            self.found = True
            raw = options.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file:
            return
        chunk = data[start:end]
        self.size += len(chunk)
        if self.type is None:
            self.head += chunk
            if len(self.head) >= HEAD_BYTES:
                self._identify()
        elif self.size > self.limit():
            raise self.too_large()
        self.pending.append(chunk)

    def _identify(self) -> None:
        self.type = sniff(self.head[:HEAD_BYTES])
        if self.type is None:
            raise BadRequest(f"this file is not one we take: send {ACCEPTED} (recognised by their content, "
                             "not their name)")
        if self.size > self.limit():
            raise self.too_large()

    def limit(self) -> int:
        return self.pdf_limit if self.type == PDF else self.image_limit

    def too_large(self) -> TooLarge:
        what = "a PDF" if self.type == PDF else "a photo"
        return TooLarge(f"this file is too large: {what} may have at most {megabytes(self.limit())}")

    def _part_end(self) -> None:
        if self.in_file and self.type is None:
            self._identify()
        self.in_file = False

    def _end(self) -> None:
        self.done = True


async def _receive_file(request: Request, services: Services) -> tuple[str, str, str | None]:
    """Stream the multipart body into a temporary file: `(path, media type, file name)`."""
    settings = services.settings
    largest = max(settings.upload_image_bytes, settings.upload_pdf_bytes)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > largest + MULTIPART_OVERHEAD:
        raise TooLarge(f"this file is too large: at most {megabytes(settings.upload_image_bytes)} for a photo and "
                       f"{megabytes(settings.upload_pdf_bytes)} for a PDF")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest("send the file as multipart/form-data, in the field `file`")
    part = _FilePart(settings.upload_image_bytes, settings.upload_pdf_bytes)
    parser = MultipartParser(boundary, part.callbacks(), max_size=largest + MULTIPART_OVERHEAD)
    handle: IO[bytes] = await asyncio.to_thread(tempfile.NamedTemporaryFile, prefix="liaison-in-", delete=False)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except FormParserError as exc:  # python-multipart's parse errors: a malformed body
                raise BadRequest(f"the multipart body is malformed ({type(exc).__name__}): send the file in "
                                 "the field `file` of multipart/form-data") from None
            if part.pending:
                data, part.pending = b"".join(part.pending), []
                await asyncio.to_thread(handle.write, data)
        parser.finalize()
        if not part.found:
            raise BadRequest("the form has no field `file`: send the file in the field `file`")
        if part.type is None or part.size == 0:
            raise BadRequest(f"the file is empty: send {ACCEPTED}")
        await asyncio.to_thread(handle.close)
        return handle.name, part.type, part.filename
    except BaseException:
        await asyncio.to_thread(handle.close)
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def upload_body(upload: Upload) -> dict[str, object]:
    original = upload.variants["original"]
    body: dict[str, object] = {"id": upload.id, "type": upload.type, "size": upload.size, "name": upload.name,
                               "url": file_url(upload.id)}
    if original.width is not None:
        body["width"], body["height"] = original.width, original.height
    return body


async def _upload_allowed(request: Request, services: Services, user_id: str) -> None:
    """`LIAISON_UPLOADS_PER_MINUTE` per user, through the deployment's limiter (shared by every
    gateway over Redis: a bucket of that many, refilled over a minute); in-process otherwise."""
    limits: UserLimits | None = getattr(request.app.state, "user_limits", None)
    per_minute = services.settings.uploads_per_minute
    if limits is None:
        assert services.upload_rate is not None
        services.upload_rate.take(user_id)
        return
    verdict = await (limits.exact or limits.limiter).hit("upload:" + user_id, Rate(per_minute / 60, per_minute))
    if not verdict.allowed:
        raise RateLimited(f"at most {per_minute} uploads a minute: wait a little", verdict.retry_after)


async def create_upload(request: Request) -> Response:
    services, person = await require_user(request)
    services = _uploads(request)
    assert services.uploads is not None
    await _upload_allowed(request, services, person.id)
    async with services.uploads.gate:
        path, media_type, filename = await _receive_file(request, services)
        try:
            upload = await services.uploads.take(person, path, media_type, filename)
        finally:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.unlink, path)
    return JSONResponse(upload_body(upload), status_code=201, headers={"Location": file_url(upload.id)})


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """The `[start, end)` a `Range: bytes=` header asks for; None for the whole file (no
    header, another unit, several ranges); `_Unsatisfiable` for a range outside the file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # another unit or several ranges: the whole file (RFC 9110 allows ignoring it)
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise _Unsatisfiable
        return max(size - length, 0), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        raise _Unsatisfiable
    return start, end


class _Unsatisfiable(Exception):
    pass


async def download(request: Request) -> Response:
    services, person = await require_user(request)
    services = _uploads(request)
    assert services.uploads is not None
    upload_id = request.path_params["id"]
    variant = request.query_params.get("variant", "original")
    if len(upload_id) > 64 or len(variant) > 16:
        raise NotFound("there is no such file, or you may not see it")
    upload, chosen = await services.uploads.readable(person, upload_id, variant)
    inline = is_image(chosen.type)
    name = upload.name if variant == "original" else f"{variant}-{upload.name.rsplit('.', 1)[0]}.jpg"
    headers = {
        "Cache-Control": CACHE, "X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes",
        "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{name}"',
    }
    size = chosen.size
    try:
        wanted = _range(request.headers.get("range"), size)
    except _Unsatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = wanted if wanted is not None else (0, size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=chosen.type)
    body: AsyncIterator[bytes] = services.uploads.blobs.read(chosen.key, start, end)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=chosen.type)


# -- image consents ---------------------------------------------------------------------------

async def admin_consents(request: Request) -> Response:
    require_api_key(request)
    services = _uploads(request)
    assert services.consents is not None
    student_id = entity_id(request.path_params["id"], "the student id")
    if request.method == "PUT":
        body = await json_object(request)
        check_fields(body, {"guardian", "state"}, set())
        guardian = entity_id(body.get("guardian"), "guardian")
        await services.consents.set("api-key", student_id, guardian, parse_state(body.get("state")))
    return JSONResponse(await services.consents.of_student(student_id))


async def my_consents(request: Request) -> Response:
    _, person = await require_user(request)
    services = _uploads(request)
    assert services.consents is not None
    return JSONResponse({"children": await services.consents.of_guardian(person)})


async def put_my_consent(request: Request) -> Response:
    _, person = await require_user(request)
    services = _uploads(request)
    assert services.consents is not None
    student_id = entity_id(request.path_params["student"], "the student id")
    body = await json_object(request)
    check_fields(body, {"state"}, set())
    await services.consents.set_by_guardian(person, student_id, parse_state(body.get("state")))
    return JSONResponse({"children": await services.consents.of_guardian(person)})


async def class_consents(request: Request) -> Response:
    _, person = await require_user(request)
    services = _uploads(request)
    assert services.consents is not None
    class_id = entity_id(request.path_params["id"], "the class id")
    return JSONResponse({"class": class_id, "students": await services.consents.of_class(person, class_id)})
