"""Attachments that reference uploads (`{upload, name?, students?}`), filled at publish time.

`fill` turns each one into what every reader sees: the upload's `type`, `size`, dimensions,
`url` (`/api/v1/files/<id>`, fetched with the reader's token) and `variants` (`screen`,
`thumb`), after checking that the publisher uploaded it, and, for a photo in a class or school
channel, that it says which students appear (`students`, `[]` for none) and that every
guardian of each of them has consented (`ConsentMissing` otherwise). `referenced` records
where a message carries an upload, which is what downloads are authorised by.

A photo whose consent was withdrawn after it was published is `hidden: true`, without `url`
nor `variants` (realtime/services/consents.py edits the stored messages); an edit of such a
message keeps it hidden rather than refusing the edit.
"""

from __future__ import annotations

from typing import Any

from persistence.upload_store import Reference, Upload, UploadStore
from school.channels import ChannelName, ChannelType
from school.consent import missing, refuse_missing
from school.directory import Directory, Person
from school.errors import BadRequest
from school.messages import JSONDict, Message

FILES = "/api/v1/files"
CONSENT_CHANNELS = (ChannelType.CLASS, ChannelType.SCHOOL)


def file_url(upload_id: str, variant: str | None = None) -> str:
    return f"{FILES}/{upload_id}" + (f"?variant={variant}" if variant else "")


def rendered(upload: Upload, given: JSONDict, hidden: bool) -> JSONDict:
    """The attachment every reader sees for `upload` (`given`: what the publisher sent)."""
    original = upload.variants["original"]
    out: dict[str, Any] = {"upload": upload.id, "name": given.get("name") or upload.name, "type": upload.type,
                           "size": original.size}
    if original.width is not None:
        out["width"], out["height"] = original.width, original.height
    if "students" in given:
        out["students"] = list(given["students"])
    if hidden:
        out["hidden"] = True
        return out
    out["url"] = file_url(upload.id)
    extra = {name: file_url(upload.id, name) for name in upload.variants if name != "original"}
    if extra:
        out["variants"] = extra
    return out


def upload_attachments(data: JSONDict) -> list[JSONDict]:
    raw = data.get("attachments")
    return [a for a in raw if isinstance(a, dict) and "upload" in a] if isinstance(raw, list) else []


class Attachments:
    def __init__(self, uploads: UploadStore, directory: Directory) -> None:
        self.uploads = uploads
        self.directory = directory

    async def fill(self, person: Person, channel: ChannelName, data: JSONDict,
                   previous: JSONDict | None = None) -> JSONDict:
        """`data` with its upload attachments filled; `previous` is the data an edit replaces
        (its photos stay, hidden if consent is now missing, instead of being refused)."""
        if not upload_attachments(data):
            return data
        kept = {a["upload"] for a in upload_attachments(previous or {})}
        filled: list[JSONDict] = []
        for index, given in enumerate(data["attachments"]):
            if not (isinstance(given, dict) and "upload" in given):
                filled.append(given)
                continue
            filled.append(await self._one(person, channel, given, f"data.attachments[{index}]",
                                          given["upload"] in kept))
        return {**data, "attachments": filled}

    async def _one(self, person: Person, channel: ChannelName, given: JSONDict, where: str,
                   kept: bool) -> JSONDict:
        upload = await self.uploads.get_upload(str(given["upload"]))
        # a new attachment must be the publisher's own upload; one the message already carries
        # stays when someone else who may edit it (a teacher of the class, a director) does
        if upload is None or (upload.owner != person.id and not kept):
            raise BadRequest(f"{where}.upload: there is no upload {given['upload']!r} of yours; upload the file "
                             "first (POST /api/v1/uploads) and attach the id it answers")
        students = given.get("students")
        hidden = False
        if upload.is_image and channel.type in CONSENT_CHANNELS:
            if students is None:
                raise BadRequest(f"{where}.students: say which students appear in this photo (tick them), or "
                                 "send [] when none does")
            unknown = [s for s in students if self._school_student(s, channel) is None]
            if unknown:
                raise BadRequest(f"{where}.students: there is no student {unknown[0]!r} in this school")
            consents = await self.uploads.consents(students)
            if kept:
                hidden = bool(missing(self.directory, students, consents))
            else:
                refuse_missing(self.directory, list(students), consents)
        return rendered(upload, given, hidden)

    def _school_student(self, student_id: str, channel: ChannelName) -> str | None:
        student = self.directory.students.get(student_id)
        if student is None:
            return None
        klass = self.directory.classes.get(channel.id) if channel.type is ChannelType.CLASS else None
        school = klass.school_id if klass is not None else channel.id
        return student.id if student.school_id == school else None

    async def referenced(self, message: Message) -> None:
        """Record that `message` carries its uploads (downloads are authorised by this)."""
        refs = [Reference(str(a["upload"]), message.channel, message.seq, tuple(a.get("students") or ()))
                for a in upload_attachments(message.data)]
        await self.uploads.add_references(refs)
