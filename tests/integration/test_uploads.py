"""Uploads over a real `liaison serve` (issue 13): images made here with Pillow (EXIF with GPS
tags, an orientation-6 JPEG, oversized, a decompression bomb, truncated), a PDF, a program
renamed `.jpg`; what is stored and served; private downloads (a parent of another class, a
removed guardian, a teacher of another class, no token) and ranges; image consent refusing,
allowing, hiding live and in history, and showing again."""

from __future__ import annotations

import http.client
import io
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.integration.conftest import FAST, token
from tests.integration.test_http_api import KEY, Api, Reply
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.ws_client import UNIT, Client

RED, BLUE = (255, 0, 0), (0, 0, 255)
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    env = {**FAST, "LIAISON_API_KEY": KEY, "LIAISON_UPLOAD_IMAGE_BYTES": "2097152",
           "LIAISON_UPLOAD_PDF_BYTES": "3000000", "LIAISON_HTTP_PER_SECOND": "1000", "LIAISON_HTTP_BURST": "1000"}
    server = start_gateway(tmp_path, env=env)
    yield server
    server.stop()


def multipart(filename: str, data: bytes, declared_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = "liaison-test-" + os.urandom(8).hex()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {declared_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(base: str, user: str, filename: str, data: bytes, declared_type: str = "image/jpeg") -> Reply:
    body, content_type = multipart(filename, data, declared_type)
    return Api(base).call("POST", "/api/v1/uploads", raw=body, content_type=content_type, user=user)


def get(base: str, path: str, user: str | None,
        headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    parts = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=UNIT * 2)
    try:
        sent = {**(headers or {})}
        if user is not None:
            sent["Authorization"] = f"Bearer {token(user)}"
        connection.request("GET", path, headers=sent)
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def jpeg_with_gps_rotated() -> bytes:
    """400x200 blue, a red square at the stored top-left, EXIF orientation 6 (shown rotated 90°
    clockwise: 200x400, the red square at the top-right) and a GPS position."""
    image = Image.new("RGB", (400, 200), BLUE)
    image.paste(RED, (0, 0, 60, 60))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.6), "E", (2.0, 17.0, 40.2)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    return out.getvalue()


def noise_jpeg(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "JPEG", quality=95)
    return out.getvalue()


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (0, 128, 0)).save(out, "PNG")
    return out.getvalue()


def bomb_png() -> bytes:
    """30000x30000 one-bit pixels (900 megapixels), a few tens of kilobytes of PNG."""
    out = io.BytesIO()
    Image.new("1", (30_000, 30_000), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def minimal_pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")


def has_metadata(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data))
    return bool(image.getexif()) or b"Exif" in data or b"PhoneMaker" in data or "exif" in image.info


def test_a_photo_is_stored_without_exif_upright_with_variants(gateway: GatewayProcess) -> None:
    sent = jpeg_with_gps_rotated()
    reply = upload(gateway.http, "t-martin", "../../IMG_0001.JPG", sent)
    assert reply.status == 201, reply
    body = reply.body
    assert set(body) >= {"id", "type", "size"}
    assert body["type"] == "image/jpeg" and (body["width"], body["height"]) == (200, 400)
    status, original, headers = get(gateway.http, f"/api/v1/files/{body['id']}", "t-martin")
    assert status == 200 and len(original) == body["size"]
    assert not has_metadata(original), "EXIF (and its GPS position) must not leave the server"
    image = Image.open(io.BytesIO(original)).convert("RGB")
    assert image.size == (200, 400)
    top_right, top_left = image.getpixel((185, 15)), image.getpixel((15, 15))
    assert isinstance(top_right, tuple) and isinstance(top_left, tuple)
    assert top_right[0] > 200 and top_right[2] < 60, f"the red corner is top-right once upright: {top_right}"
    assert top_left[2] > 200 and top_left[0] < 60
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"].startswith("private")
    disposition = headers["content-disposition"]
    assert disposition.startswith("inline;") and "IMG_0001.jpg" in disposition
    assert ".." not in headers["content-disposition"]
    for variant, longest in (("thumb", 320), ("screen", 400)):
        status, data, headers = get(gateway.http, f"/api/v1/files/{body['id']}?variant={variant}", "t-martin")
        assert status == 200 and headers["content-type"] == "image/jpeg"
        assert not has_metadata(data)
        assert max(Image.open(io.BytesIO(data)).size) == longest
        assert Image.open(io.BytesIO(data)).size[1] == longest  # upright: taller than wide


def test_files_that_are_not_photos_or_pdfs_are_refused(gateway: GatewayProcess) -> None:
    elf = b"\x7fELF\x02\x01\x01\x00" + os.urandom(4000)
    refused = upload(gateway.http, "t-martin", "photo.jpg", elf, "image/jpeg")
    assert refused.status == 400 and refused.code == "bad_request"
    assert "recognised by their content" in refused.body["error"]["message"]
    truncated = jpeg_with_gps_rotated()[:600]
    refused = upload(gateway.http, "t-martin", "cut.jpg", truncated)
    assert refused.status == 400 and "damaged or incomplete" in refused.body["error"]["message"]
    empty = upload(gateway.http, "t-martin", "empty.jpg", b"")
    assert empty.status == 400
    png = upload(gateway.http, "t-martin", "notes.pdf", small_png(), "application/pdf")  # the name lies
    assert png.status == 201 and png.body["type"] == "image/png"


def test_pdfs_are_kept_as_sent_and_downloaded_as_attachments(gateway: GatewayProcess) -> None:
    pdf = minimal_pdf()
    reply = upload(gateway.http, "t-martin", "Sortie scolaire — autorisation.pdf", pdf, "application/octet-stream")
    assert reply.status == 201 and reply.body["type"] == "application/pdf" and reply.body["size"] == len(pdf)
    status, data, headers = get(gateway.http, f"/api/v1/files/{reply.body['id']}", "t-martin")
    assert status == 200 and data == pdf
    assert headers["content-disposition"] == 'attachment; filename="Sortie scolaire autorisation.pdf"'
    assert headers["content-type"] == "application/pdf"
    status, _, _ = get(gateway.http, f"/api/v1/files/{reply.body['id']}?variant=thumb", "t-martin")
    assert status == 404


def test_too_large_files_and_bombs_are_refused(gateway: GatewayProcess) -> None:
    big = noise_jpeg(1500)  # ~2.6 MB of noise: over the 2 MB photo limit of this server
    assert len(big) > 2_097_152
    refused = upload(gateway.http, "t-martin", "big.jpg", big)
    assert refused.status == 413 and refused.code == "too_large" and "2 MB" in refused.body["error"]["message"]
    # a Content-Length over every limit is refused from the header alone
    parts = urllib.parse.urlsplit(gateway.http)
    connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=UNIT)
    try:
        connection.putrequest("POST", "/api/v1/uploads")
        for name, value in (("Authorization", f"Bearer {token('t-martin')}"),
                            ("Content-Type", "multipart/form-data; boundary=x"), ("Content-Length", str(10**9))):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"]["code"] == "too_large"
    finally:
        connection.close()
    bomb = bomb_png()
    assert len(bomb) < 500_000
    refused = upload(gateway.http, "t-martin", "bomb.png", bomb, "image/png")
    assert refused.status == 413 and "megapixels" in refused.body["error"]["message"]
    assert "gateway_started" in gateway.logs() and "Traceback" not in gateway.logs()


async def connected(gateway: GatewayProcess, user: str) -> Client:
    client = await Client.open(gateway.ws)
    client.connected = await client.ok("connect", token=token(user))
    return client


def photo_post(upload_id: str, students: list[str] | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"upload": upload_id}
    if students is not None:
        attachment["students"] = students
    return {"text": "La sortie au musée", "attachments": [attachment]}


async def test_downloads_are_private_and_ranges_work(gateway: GatewayProcess) -> None:
    api = Api(gateway.http)
    assert api.call("PUT", "/api/v1/admin/students/s-hugo/consents",
                    {"guardian": "p-durand", "state": "granted"}).status == 200
    photo = upload(gateway.http, "t-martin", "sortie.jpg", noise_jpeg(500)).body
    url = f"/api/v1/files/{photo['id']}"
    parents = {u: await connected(gateway, u) for u in ("p-lea-mere", "p-lea-pere")}
    teacher = await connected(gateway, "t-martin")
    try:
        # before it is attached, only its uploader sees it
        assert get(gateway.http, url, "p-lea-mere")[0] == 404
        published = await teacher.ok("publish", channel="class:cp-a", kind="post",
                                     data=photo_post(photo["id"], ["s-hugo"]))
        message = (await parents["p-lea-mere"].push("message"))["message"]
        assert message["seq"] == published["seq"]
        attachment = message["data"]["attachments"][0]
        assert attachment["url"] == url and attachment["type"] == "image/jpeg"
        assert attachment["students"] == ["s-hugo"] and set(attachment["variants"]) == {"screen", "thumb"}
        status, whole, headers = get(gateway.http, attachment["url"], "p-lea-mere")
        assert status == 200 and len(whole) == attachment["size"] and headers["accept-ranges"] == "bytes"
        assert get(gateway.http, attachment["variants"]["thumb"], "p-lea-pere")[0] == 200
        status, part, headers = get(gateway.http, url, "p-lea-mere", {"Range": "bytes=100-199"})
        assert status == 206 and part == whole[100:200]
        assert headers["content-range"] == f"bytes 100-199/{len(whole)}"
        status, part, _ = get(gateway.http, url, "p-lea-mere", {"Range": "bytes=-50"})
        assert status == 206 and part == whole[-50:]
        status, _, headers = get(gateway.http, url, "p-lea-mere", {"Range": f"bytes={len(whole) + 10}-"})
        assert status == 416 and headers["content-range"] == f"bytes */{len(whole)}"
        # a parent of another class, a teacher of another class, a made-up id: 404, nothing confirmed
        assert get(gateway.http, url, "p-adam")[0] == 404
        assert get(gateway.http, url, "t-nguyen")[0] == 404
        assert get(gateway.http, "/api/v1/files/" + "0" * 40, "p-lea-mere")[0] == 404
        assert get(gateway.http, url, None)[0] == 401
        # a guardian removed from Léa's family no longer reads class:cp-a, nor the file
        assert api.call("PUT", "/api/v1/admin/students/s-lea", {"class_id": "cp-a", "name": "Léa Petit",
                                                               "guardians": ["p-lea-mere"]}).status == 200
        assert get(gateway.http, url, "p-lea-pere")[0] == 404
        assert get(gateway.http, url, "p-lea-mere")[0] == 200
    finally:
        for client in (*parents.values(), teacher):
            await client.close()


async def test_only_the_uploader_may_attach_an_upload(gateway: GatewayProcess) -> None:
    photo = upload(gateway.http, "t-martin", "sortie.jpg", small_png()).body
    other = await connected(gateway, "t-nguyen")
    try:
        reply = await other.call("publish", channel="class:cm2-b", kind="post", data=photo_post(photo["id"], []))
        assert reply["error"]["code"] == "bad_request" and "upload the file first" in reply["error"]["message"]
    finally:
        await other.close()


async def test_consent_refuses_allows_hides_and_shows_again(gateway: GatewayProcess) -> None:
    api = Api(gateway.http)
    assert api.call("PUT", "/api/v1/admin/students/s-lea/consents",
                    {"guardian": "p-lea-mere", "state": "granted"}).status == 200
    hugo = api.call("PUT", "/api/v1/admin/students/s-hugo/consents", {"guardian": "p-durand", "state": "granted"})
    assert hugo.body == {"student": "s-hugo", "complete": True,
                         "guardians": [{"guardian": "p-durand", "state": "granted"}]}
    photo = upload(gateway.http, "t-martin", "sortie.jpg", small_png()).body
    teacher = await connected(gateway, "t-martin")
    lea_mother = await connected(gateway, "p-lea-mere")
    try:
        # Léa's father has not answered: refused, naming her
        reply = await teacher.call("publish", channel="class:cp-a", kind="post",
                                   data=photo_post(photo["id"], ["s-hugo", "s-lea"]))
        assert reply["error"]["code"] == "consent_missing", reply
        assert reply["error"]["students"] == ["s-lea"] and "Léa Petit" in reply["error"]["message"]
        # not saying who appears is refused too, with what to do
        reply = await teacher.call("publish", channel="class:cp-a", kind="post",
                                   data=photo_post(photo["id"], None))
        assert reply["error"]["code"] == "bad_request" and "students" in reply["error"]["message"]
        # the staff view of the class says whose consent is missing
        status, raw, _ = get(gateway.http, "/api/v1/classes/cp-a/consents", "t-martin")
        states = {s["student"]: s["complete"] for s in json.loads(raw)["students"]}
        assert status == 200 and states == {"s-lea": False, "s-hugo": True}
        assert get(gateway.http, "/api/v1/classes/cp-a/consents", "p-durand")[0] == 404
        # Hugo alone: published
        published = await teacher.ok("publish", channel="class:cp-a", kind="post",
                                     data=photo_post(photo["id"], ["s-hugo"]))
        seen = (await lea_mother.push("message"))["message"]["data"]["attachments"][0]
        assert "url" in seen and not seen.get("hidden")
        # Hugo's guardian withdraws consent in the app: hidden live for Léa's mother
        answered = api.call("PUT", "/api/v1/me/consents/s-hugo", {"state": "refused"}, user="p-durand")
        assert answered.status == 200
        assert answered.body["children"][0] == {"student": "s-hugo", "name": "Hugo Durand", "state": "refused"}
        update = (await lea_mother.push("update"))["message"]
        assert update["seq"] == published["seq"]
        hidden = update["data"]["attachments"][0]
        assert hidden["hidden"] is True and "url" not in hidden and "variants" not in hidden
        url = f"/api/v1/files/{photo['id']}"
        assert get(gateway.http, url, "p-lea-mere")[0] == 404
        assert get(gateway.http, url + "?variant=thumb", "p-lea-mere")[0] == 404
        assert get(gateway.http, url, "p-durand")[0] == 200  # the child's own guardian
        assert get(gateway.http, url, "d-bernard")[0] == 200  # staff
        # in history too
        history = api.call("GET", "/api/v1/channels/class:cp-a/messages", user="p-lea-pere")
        stored = next(m for m in history.body["messages"] if m["seq"] == published["seq"])
        assert stored["data"]["attachments"][0]["hidden"] is True
        # a guardian may only answer for their own children
        assert api.call("PUT", "/api/v1/me/consents/s-hugo", {"state": "granted"}, user="p-adam").status == 403
        # granted again: shown again, live
        assert api.call("PUT", "/api/v1/me/consents/s-hugo", {"state": "granted"}, user="p-durand").status == 200
        shown = (await lea_mother.push("update"))["message"]["data"]["attachments"][0]
        assert shown["url"] == url and "hidden" not in shown
        assert get(gateway.http, url, "p-lea-mere")[0] == 200
    finally:
        await teacher.close()
        await lea_mother.close()


def test_bad_consent_requests_say_what_to_do(gateway: GatewayProcess) -> None:
    api = Api(gateway.http)
    wrong = api.call("PUT", "/api/v1/admin/students/s-hugo/consents", {"guardian": "p-durand", "state": "yes"})
    assert wrong.status == 400 and "granted, refused, not_asked" in wrong.body["error"]["message"]
    stranger = api.call("PUT", "/api/v1/admin/students/s-hugo/consents",
                        {"guardian": "p-adam", "state": "granted"})
    assert stranger.status == 404
    mine = api.call("GET", "/api/v1/me/consents", user="p-durand")
    assert mine.status == 200 and [c["student"] for c in mine.body["children"]] == ["s-hugo", "s-ines"]
    assert all(c["state"] == "not_asked" for c in mine.body["children"])




async def test_the_csv_import_records_consents_and_photos_follow(gateway: GatewayProcess) -> None:
    api = Api(gateway.http)
    for guardian in ("p-lea-mere", "p-lea-pere"):
        api.call("PUT", "/api/v1/admin/students/s-lea/consents", {"guardian": guardian, "state": "granted"})
    photo = upload(gateway.http, "t-martin", "sortie.jpg", small_png()).body
    teacher = await connected(gateway, "t-martin")
    neighbour = await connected(gateway, "p-durand")
    try:
        await teacher.ok("publish", channel="class:cp-a", kind="post", data=photo_post(photo["id"], ["s-lea"]))
        assert "url" in (await neighbour.push("message"))["message"]["data"]["attachments"][0]
        rows = [
            "eleve_id;eleve_prenom;eleve_nom;classe_id;responsable1_nom;responsable1_prenom;responsable1_email;"
            "responsable1_droit_image;responsable2_nom;responsable2_prenom;responsable2_email;responsable2_droit_image",
            "s-lea;Léa;Petit;cp-a;Petit;Claire;claire.petit@example.fr;oui;Petit;Julien;julien.petit@example.fr;non",
            "s-hugo;Hugo;Durand;cp-a;Durand;Sophie;sophie.durand@example.fr;oui;;;;",
            "s-ines;Inès;Durand;cm2-b;Durand;Sophie;sophie.durand@example.fr;;;;;",
            "s-adam;Adam;Benali;cm2-b;Benali;Karim;karim.benali@example.fr;;;;;",
        ]
        imported = api.call("POST", "/api/v1/admin/schools/ecole-jaures/import", raw="\n".join(rows).encode(),
                            content_type="text/csv")
        assert imported.status == 200, imported
        hidden = (await neighbour.push("update"))["message"]["data"]["attachments"][0]
        assert hidden["hidden"] is True and "url" not in hidden
        lea = api.call("GET", "/api/v1/admin/students/s-lea/consents").body
        assert lea["complete"] is False and {"guardian": "p-lea-pere", "state": "refused"} in lea["guardians"]
        assert api.call("GET", "/api/v1/admin/students/s-hugo/consents").body["complete"] is True
    finally:
        await teacher.close()
        await neighbour.close()


async def test_a_parent_attaches_a_document_in_a_chat(gateway: GatewayProcess) -> None:
    parent = await connected(gateway, "p-durand")
    try:
        channel = (await parent.ok("open_chat", student="s-hugo"))["channel"]
        pdf = upload(gateway.http, "p-durand", "certificat.pdf", minimal_pdf(), "application/pdf").body
        sent = await parent.ok("publish", channel=channel, kind="chat",
                               data={"text": "", "attachments": [{"upload": pdf["id"], "name": "Certificat"}]})
        stored = Api(gateway.http).call("GET", f"/api/v1/channels/{channel}/messages", user="t-martin").body
        attachment = next(m for m in stored["messages"] if m["seq"] == sent["seq"])["data"]["attachments"][0]
        assert attachment["name"] == "Certificat" and attachment["type"] == "application/pdf"
        assert "students" not in attachment and "variants" not in attachment  # no photo, no consent rule
        assert get(gateway.http, attachment["url"], "t-martin")[0] == 200  # the chat's staff member
        assert get(gateway.http, attachment["url"], "p-lea-mere")[0] == 404  # another family
    finally:
        await parent.close()


async def test_edits_keep_photos_and_check_new_ones(gateway: GatewayProcess) -> None:
    api = Api(gateway.http)
    api.call("PUT", "/api/v1/admin/students/s-hugo/consents", {"guardian": "p-durand", "state": "granted"})
    first = upload(gateway.http, "t-martin", "a.png", small_png()).body
    second = upload(gateway.http, "t-martin", "b.png", small_png()).body
    teacher, director = await connected(gateway, "t-martin"), await connected(gateway, "d-bernard")
    try:
        sent = await teacher.ok("publish", channel="class:cp-a", kind="post",
                                data=photo_post(first["id"], ["s-hugo"]))
        stored = api.call("GET", "/api/v1/channels/class:cp-a/messages", user="t-martin").body["messages"][-1]
        # the director corrects the text, sending the attachments back as received
        await director.ok("edit", channel="class:cp-a", seq=sent["seq"],
                          data={**stored["data"], "text": "La sortie au musée (corrigé)"})
        edited = api.call("GET", "/api/v1/channels/class:cp-a/messages", user="t-martin").body["messages"][-1]
        assert edited["data"]["text"].endswith("(corrigé)")
        assert edited["data"]["attachments"] == stored["data"]["attachments"]
        # the author adds a photo of Léa, whose guardians have not consented: refused
        more = {**edited["data"], "attachments": [*edited["data"]["attachments"],
                                                  {"upload": second["id"], "students": ["s-lea"]}]}
        reply = await teacher.call("edit", channel="class:cp-a", seq=sent["seq"], data=more)
        assert reply["error"]["code"] == "consent_missing" and reply["error"]["students"] == ["s-lea"]
        # nor may the director attach the teacher's other upload
        more["attachments"][-1]["students"] = ["s-hugo"]
        reply = await director.call("edit", channel="class:cp-a", seq=sent["seq"], data=more)
        assert reply["error"]["code"] == "bad_request"
        assert (await teacher.call("edit", channel="class:cp-a", seq=sent["seq"], data=more)).get("ok") == {}
    finally:
        await teacher.close()
        await director.close()


def test_uploads_per_minute_are_limited_per_user(tmp_path: Path) -> None:
    server = start_gateway(tmp_path, env={**FAST, "LIAISON_UPLOADS_PER_MINUTE": "3"})
    try:
        for _ in range(3):
            assert upload(server.http, "t-martin", "a.png", small_png()).status == 201
        refused = upload(server.http, "t-martin", "a.png", small_png())
        assert refused.status == 429 and refused.code == "rate_limited"
        assert int({k.lower(): v for k, v in refused.headers.items()}["retry-after"]) >= 1
        assert "3 uploads a minute" in refused.body["error"]["message"]
        assert upload(server.http, "t-nguyen", "a.png", small_png()).status == 201  # someone else
    finally:
        server.stop()
