"""Children's data (issue 15) against a real `liaison serve`, end to end through the HTTP
contract (protocol.md, "HTTP contract points"): a family is added, signs in by code, chats
with the teacher; an import names it; the admin exports the family's data (a zip) and erases
the mother (dry run, then for real): the teacher's open WebSocket sees her messages become
"deleted by their author" live. Then `liaison privacy export|erase|run` on the same store. And
the promise "no texts in the logs": the server's JSON logs, at debug level, are scanned for
every text, name, e-mail address and phone number the scenario used."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from tests.integration.conftest import token
from tests.integration.signin_helpers import demo_sign_in
from tests.integration.test_http_api import KEY, Api
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.waiting import UNIT
from tests.support.ws_client import Client

ADMIN = "/api/v1/admin"
SCHOOL = "ecole-jaures"
MOTHER = {"id": "p-ysolde", "name": "Ysolde Marchetti-Quennec", "email": "ysolde.mq@famille-exemple.test",
          "phone": "+33 6 47 58 69 70"}
FATHER = {"id": "p-anatole", "name": "Anatole Quennec", "email": "anatole.quennec@famille-exemple.test",
          "phone": "+33 7 13 24 35 46"}
CHILD = {"id": "s-philemon", "name": "Philémon Quennec"}
TEXTS = ("Philémon a oublié son cartable violet", "Rendez-vous chez l'orthophoniste mercredi",
         "Merci pour la photo du potager")
TEACHER_TEXT = "Bien reçu, bonne soirée"
IMPORTED = ("Ermengarde Tillyard", "ermengarde.tillyard@famille-exemple.test", "06 58 47 36 25", "Cunégonde")


def secrets() -> list[str]:
    """Everything personal the scenario used, and the digits of each phone on their own."""
    found = [*TEXTS, TEACHER_TEXT, "Message parti trop vite", CHILD["name"], *IMPORTED, "0658473625"]
    for person in (MOTHER, FATHER):
        found += [person["name"], person["email"], person["phone"], re.sub(r"\D", "", person["phone"])[-9:]]
    return found


CLI_LOGS: list[bytes] = []  # the commands' standard error: their JSON logs, scanned with the server's


def liaison(gw_dir: Path, db: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LIAISON_STORE_URL": f"sqlite:///{db}", "LIAISON_JWT_SECRET": "s" * 40,
           "LIAISON_LOG_LEVEL": "debug"}
    done = subprocess.run([sys.executable, "-m", "realtime.process.cli", *args], cwd=gw_dir, env=env,
                          capture_output=True, timeout=UNIT * 8, check=False)
    CLI_LOGS.append(done.stderr)
    return done


async def test_export_erase_live_and_no_texts_in_the_logs(tmp_path: Path) -> None:
    gw = start_gateway(tmp_path, env={"LIAISON_API_KEY": KEY, "LIAISON_LOG_LEVEL": "debug"}, demo=True)
    api = Api(gw.http)
    teacher: Client | None = None
    mother: Client | None = None
    try:
        for person in (MOTHER, FATHER):
            body = {k: v for k, v in person.items() if k != "id"} | {"school_id": SCHOOL, "role": "guardian"}
            assert api.call("PUT", f"{ADMIN}/people/{person['id']}", body).status == 201
        assert api.call("PUT", f"{ADMIN}/students/{CHILD['id']}", {
            "class_id": "cp-a", "name": CHILD["name"], "guardians": [MOTHER["id"], FATHER["id"]]}).status == 201
        csv = ("eleve_id;eleve_prenom;eleve_nom;classe;responsable1_nom;responsable1_email;responsable1_telephone;"
               f"responsable2_nom;responsable2_email\n{CHILD['id']};Philémon;Quennec;CP A;{MOTHER['name']};"
               f"{MOTHER['email']};{MOTHER['phone']};{FATHER['name']};{FATHER['email']}\n")
        imported = api.call("POST", f"{ADMIN}/schools/{SCHOOL}/import?dry_run=1", raw=csv.encode(),
                            content_type="text/csv")
        assert imported.status == 200, imported
        bis = {"name": "École bis", "year": "2026-2027"}
        assert api.call("PUT", f"{ADMIN}/schools/ecole-bis", bis).status == 201
        other = (f"{csv.splitlines()[0]}\ns-cune;{IMPORTED[3]};Tillyard;CE1;{IMPORTED[0]};{IMPORTED[1]};"
                 f"{IMPORTED[2]};;\n")
        assert api.call("POST", f"{ADMIN}/schools/ecole-bis/import", raw=other.encode(),
                        content_type="text/csv").status == 200
        access = await demo_sign_in(gw.http, MOTHER["email"])
        mother = await Client.open(gw.ws)
        await mother.ok("connect", token=access)
        channel = (await mother.ok("open_chat", student=CHILD["id"]))["channel"]
        teacher = await Client.open(gw.ws)
        await teacher.ok("connect", token=token("t-martin"))
        hers = [(await mother.ok("publish", channel=channel, kind="chat", data={"text": text}))["seq"]
                for text in TEXTS]
        sent = await teacher.ok("publish", channel=channel, kind="chat", data={"text": "Bien reçu"})
        await teacher.ok("edit", channel=channel, seq=sent["seq"], data={"text": TEACHER_TEXT})
        slip = await teacher.ok("publish", channel=channel, kind="chat", data={"text": "Message parti trop vite"})
        await teacher.ok("delete", channel=channel, seq=slip["seq"])

        exported = api.call("GET", f"{ADMIN}/people/{MOTHER['id']}/export")
        assert exported.status == 200 and exported.headers["content-type"] == "application/zip"
        archive = _zip(gw, MOTHER["id"])
        messages = json.loads(archive.read("messages.json"))
        assert [m["data"]["text"] for m in messages] == list(TEXTS)
        assert json.loads(archive.read("directory.json"))["profile"]["email"] == MOTHER["email"]
        everything = b"".join(archive.read(n) for n in archive.namelist())
        assert TEACHER_TEXT.encode() not in everything and FATHER["email"].encode() not in everything

        dry = api.call("POST", f"{ADMIN}/people/{MOTHER['id']}/erase", {"dry_run": True})
        assert dry.status == 200 and dry.body["dry_run"] is True and dry.body["counts"]["messages"] == 3
        assert api.call("POST", f"{ADMIN}/people/{MOTHER['id']}/erase", {"dry_run": "yes"}).status == 400
        erased = api.call("POST", f"{ADMIN}/people/{MOTHER['id']}/erase", {"dry_run": False})
        assert erased.status == 200 and erased.body["counts"]["messages"] == 3 and erased.body["total"] >= 4
        seen: list[dict[str, Any]] = []
        while len(seen) < len(hers):  # past the updates of the teacher's own edit and delete
            update = await teacher.push("update")
            if update["message"]["seq"] in hers:
                seen.append(update)
        assert [(u["message"]["deleted"], u["message"]["data"], u["message"]["from"]["name"]) for u in seen] == [
            (True, {}, "")] * 3
        assert await mother.closed() is not None, "her connection ends"
        history = api.call("GET", f"/api/v1/channels/{channel}/messages", user="t-martin")
        assert history.status == 200
        texts = json.dumps(history.body, ensure_ascii=False)
        assert TEACHER_TEXT in texts and not any(t in texts for t in TEXTS) and MOTHER["name"] not in texts
        again = api.call("POST", f"{ADMIN}/people/{MOTHER['id']}/erase", {"dry_run": False})
        assert again.status == 200 and again.body["total"] == 0
        audit = api.call("GET", f"{ADMIN}/schools/{SCHOOL}/audit?limit=200")
        assert audit.status == 200
        actions = {e["action"] for e in audit.body["entries"]}
        assert {"published", "edited", "deleted", "exported", "erased", "sessions_ended"} <= actions, actions
        assert not any(t in json.dumps(audit.body, ensure_ascii=False) for t in secrets())
        assert api.call("GET", f"{ADMIN}/schools/{SCHOOL}/audit", user="p-adam").status == 403
        imports = api.call("GET", f"{ADMIN}/schools/ecole-bis/audit").body["entries"]
        assert [(e["action"], e["details"]["students_added"]) for e in imports] == [("imported", 1)]
        assert api.call("GET", f"{ADMIN}/schools/{SCHOOL}/retention", user="d-bernard").status == 200
        default = api.call("GET", f"{ADMIN}/schools/{SCHOOL}/year").body
        # the default end of "2026-2027", recorded by the daily job at start-up since it is ahead
        assert (default["ends"], default["frozen"]) == ("2027-07-03", False)
        bad = api.call("PUT", f"{ADMIN}/schools/{SCHOOL}/year", {"ends": "03/07/2027"}, user="d-bernard")
        assert bad.status == 400 and "YYYY-MM-DD" in bad.body["error"]["message"]
        teacher_put = api.call("PUT", f"{ADMIN}/schools/{SCHOOL}/year", {"ends": "2027-07-02"}, user="t-martin")
        assert teacher_put.status == 403
        year = api.call("PUT", f"{ADMIN}/schools/{SCHOOL}/year", {"ends": "2027-07-02", "purge_after_months": 6},
                        user="d-bernard")
        assert year.status == 200 and (year.body["purge_on"], year.body["recorded"]) == ("2028-01-02", True)
        assert api.call("GET", f"{ADMIN}/schools/nowhere/retention").status == 404

        db = tmp_path / "liaison.db"
        out = tmp_path / "father.zip"
        done = liaison(tmp_path, db, "privacy", "export", FATHER["id"], "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert json.loads(zipfile.ZipFile(out).read("directory.json"))["profile"]["name"] == FATHER["name"]
        done = liaison(tmp_path, db, "privacy", "erase", FATHER["id"], "--dry-run")
        assert done.returncode == 0 and json.loads(done.stdout)["counts"]["directory"] == 1, done.stderr
        done = liaison(tmp_path, db, "privacy", "run", "--dry-run")
        assert done.returncode == 0, done.stderr
    finally:
        for client in (teacher, mother):
            if client is not None:
                await client.close()
        gw.stop()
    logs = gw.logs() + b"".join(CLI_LOGS).decode(errors="replace")
    assert logs.count("\n") > 20, "the scenario logged"
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every structured line is JSON
    for secret in secrets():
        assert secret not in logs, f"the logs hold {secret!r}"


def _zip(gw: GatewayProcess, person: str) -> zipfile.ZipFile:
    """The export, read as bytes (Api decodes bodies as text)."""
    request = urllib.request.Request(f"{gw.http}{ADMIN}/people/{person}/export",
                                     headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=UNIT * 2) as response:
        return zipfile.ZipFile(io.BytesIO(response.read()))

