"""Uploads across two gateways over one Redis and one store: a photo uploaded through one
gateway is downloaded through the other, and a consent withdrawn through one hides the photo
live for a family connected to the other (and showing it again reaches them too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import FAST
from tests.integration.test_http_api import KEY, Api
from tests.integration.test_uploads import connected, get, photo_post, small_png, upload
from tests.support.gateway_server import GatewayProcess, gateways_running
from tests.support.redis_servers import RedisServer


@pytest.fixture
def gateways(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[GatewayProcess]]:
    store = tmp_path / "shared.db"
    env = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_STORE_URL": f"sqlite:///{store}",
           "LIAISON_API_KEY": KEY}
    with gateways_running(tmp_path, 2, env) as started:
        yield started


async def test_a_consent_withdrawn_on_one_gateway_hides_the_photo_on_the_other(
        gateways: list[GatewayProcess]) -> None:
    one, two = gateways
    consent = {"guardian": "p-durand", "state": "granted"}
    assert Api(one.http).call("PUT", "/api/v1/admin/students/s-hugo/consents", consent).status == 200
    photo = upload(one.http, "t-martin", "sortie.png", small_png()).body
    teacher = await connected(one, "t-martin")
    family = await connected(two, "p-lea-mere")
    try:
        await teacher.ok("publish", channel="class:cp-a", kind="post", data=photo_post(photo["id"], ["s-hugo"]))
        shown = (await family.push("message"))["message"]["data"]["attachments"][0]
        assert get(two.http, shown["url"], "p-lea-mere")[0] == 200  # the blob is beside the shared store
        assert Api(one.http).call("PUT", "/api/v1/me/consents/s-hugo", {"state": "refused"},
                                  user="p-durand").status == 200
        hidden = (await family.push("update"))["message"]["data"]["attachments"][0]
        assert hidden["hidden"] is True and "url" not in hidden
        assert get(two.http, shown["url"], "p-lea-mere")[0] == 404
        assert get(two.http, shown["url"], "p-durand")[0] == 200
        assert Api(two.http).call("PUT", "/api/v1/me/consents/s-hugo", {"state": "granted"},
                                  user="p-durand").status == 200
        again = (await family.push("update"))["message"]["data"]["attachments"][0]
        assert again["url"] == shown["url"]
    finally:
        await teacher.close()
        await family.close()
