"""The pure part of uploads: files recognised by their bytes, safe file names, upload
attachments in message data, and the image-consent rules."""

from __future__ import annotations

from typing import Any

import pytest

from school.consent import ConsentState, may_see_hidden, missing, parse_state, refuse_missing
from school.demo import demo_school
from school.directory import Directory
from school.errors import BadRequest, ConsentMissing, ErrorCode
from school.importer import plan_import
from school.kinds import ContentLimits, KindError, validate
from school.uploads import safe_filename, sniff

GRANTED, REFUSED = ConsentState.GRANTED, ConsentState.REFUSED
UPLOAD = "0123456789abcdef0123"


def directory() -> Directory:
    d = Directory()
    d.put(*demo_school())
    return d


@pytest.mark.parametrize(("head", "expected"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00", "image/heic"),
    (b"%PDF-1.7\n%\xe2\xe3", "application/pdf"),
    (b"\x7fELF\x02\x01\x01\x00", None),
    (b"MZ\x90\x00\x03\x00", None),
    (b"GIF89a\x01\x00", None),
    (b"<svg xmlns=", None),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
    (b"", None),
])
def test_files_are_recognised_by_their_first_bytes(head: bytes, expected: str | None) -> None:
    assert sniff(head) == expected


@pytest.mark.parametrize(("raw", "media_type", "expected"), [
    ("IMG_0001.JPG", "image/jpeg", "IMG_0001.jpg"),
    ("../../etc/passwd", "application/pdf", "passwd.pdf"),
    ("C:\\Users\\x\\menu.exe", "application/pdf", "menu.pdf"),
    ('Sortie "école".jpg', "image/jpeg", "Sortie _ecole.jpg"),
    ("", "image/png", "fichier.png"),
    (None, "image/png", "fichier.png"),
    ("\u202egpj.exe", "image/jpeg", "gpj.jpg"),
])
def test_file_names_are_made_safe_with_the_extension_of_the_bytes(raw: str | None, media_type: str,
                                                                  expected: str) -> None:
    assert safe_filename(raw, media_type) == expected


def test_an_upload_attachment_keeps_only_what_the_publisher_may_say() -> None:
    data = validate("post", {"text": "", "attachments": [
        {"upload": UPLOAD, "name": "Sortie", "students": ["s-lea", "s-lea", "s-hugo"],
         "url": "https://evil.example/x", "type": "text/html", "size": 1, "hidden": False}]}, ContentLimits())
    expected = {"upload": UPLOAD, "name": "Sortie", "students": ["s-lea", "s-hugo"]}
    assert data == {"text": "", "attachments": [expected]}


@pytest.mark.parametrize(("attachment", "fragment"), [
    ({"upload": "../x"}, "the id answered by POST /api/v1/uploads"),
    ({"upload": UPLOAD, "students": "s-lea"}, "list of student ids"),
    ({"upload": UPLOAD, "students": [3]}, "list of student ids"),
    ({"upload": UPLOAD, "owner": "me"}, "unknown field"),
    ({"upload": UPLOAD, "name": ""}, "non-empty"),
])
def test_bad_upload_attachments_are_refused_saying_why(attachment: dict[str, Any], fragment: str) -> None:
    with pytest.raises(KindError) as refused:
        validate("homework", {"text": "x", "due": "2026-10-01", "attachments": [attachment]}, ContentLimits())
    assert fragment in refused.value.message


def test_too_many_students_is_too_large() -> None:
    with pytest.raises(KindError) as refused:
        validate("event", {"title": "Kermesse", "starts_at": "2026-06-20T14:00",
                           "attachments": [{"upload": UPLOAD, "students": [f"s{i}" for i in range(101)]}]},
                 ContentLimits())
    assert refused.value.code is ErrorCode.TOO_LARGE


def test_a_student_needs_a_grant_from_every_guardian() -> None:
    d = directory()
    assert missing(d, ["s-lea", "s-hugo"], {}) == ["s-lea", "s-hugo"]
    half = {"s-lea": {"p-lea-mere": GRANTED}, "s-hugo": {"p-durand": GRANTED}}
    assert missing(d, ["s-lea", "s-hugo"], half) == ["s-lea"]
    both = {"s-lea": {"p-lea-mere": GRANTED, "p-lea-pere": GRANTED}}
    assert missing(d, ["s-lea"], both) == []
    refused = {"s-lea": {"p-lea-mere": GRANTED, "p-lea-pere": REFUSED}}
    assert missing(d, ["s-lea"], refused) == ["s-lea"]
    assert missing(d, ["s-unknown"], {}) == ["s-unknown"]
    assert missing(d, [], {}) == []


def test_consent_missing_names_the_students() -> None:
    with pytest.raises(ConsentMissing) as refused:
        refuse_missing(directory(), ["s-hugo", "s-lea"], {"s-hugo": {"p-durand": GRANTED}})
    assert refused.value.code is ErrorCode.CONSENT_MISSING
    assert refused.value.body()["students"] == ["s-lea"] and "Léa Petit" in refused.value.message


def test_hidden_photos_stay_visible_to_staff_and_the_childs_guardians() -> None:
    d = directory()
    assert may_see_hidden(d, "t-nguyen", ["s-hugo"]) and may_see_hidden(d, "d-bernard", ["s-hugo"])
    assert may_see_hidden(d, "p-durand", ["s-hugo"])
    assert not may_see_hidden(d, "p-lea-mere", ["s-hugo"])
    assert not may_see_hidden(d, "nobody", ["s-hugo"])


def test_consent_states_are_parsed_strictly() -> None:
    assert parse_state("granted") is GRANTED
    for bad in ("yes", None, 1, "GRANTED"):
        with pytest.raises(BadRequest):
            parse_state(bad)


HEADER = ("eleve_id;eleve_prenom;eleve_nom;classe_id;responsable1_nom;responsable1_prenom;responsable1_email;"
          "responsable1_droit_image;responsable2_nom;responsable2_prenom;responsable2_email;"
          "Responsable2 droit à l'image\n")
IMPORT_CSV = HEADER + """\
s-lea;Léa;Petit;cp-a;Petit;Claire;claire.petit@example.fr;oui;Petit;Julien;julien.petit@example.fr;Non
s-hugo;Hugo;Durand;cp-a;Durand;Sophie;sophie.durand@example.fr;;;;;
s-ines;Inès;Durand;cm2-b;Durand;Sophie;sophie.durand@example.fr;X;;;;
s-adam;Adam;Benali;cm2-b;Benali;Karim;karim.benali@example.fr;;;;;
"""


def test_the_import_reads_the_image_consent_columns() -> None:
    plan = plan_import(IMPORT_CSV, "ecole-jaures", directory())
    assert plan.ok, plan.errors
    assert plan.consents() == [("s-lea", "p-lea-mere", GRANTED), ("s-lea", "p-lea-pere", REFUSED),
                               ("s-ines", "p-durand", GRANTED)]


def test_an_unreadable_consent_cell_is_a_line_error() -> None:
    plan = plan_import(IMPORT_CSV.replace(";oui;", ";peut-être;"), "ecole-jaures", directory())
    assert not plan.ok
    assert plan.errors[0].line == 2 and "must be oui or non" in plan.errors[0].message
