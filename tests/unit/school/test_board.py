"""The board's rules (school/board.py) and its CSV (school/board_csv.py) on the demo school."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest

from school import board
from school.board_csv import families_csv, inert
from school.demo import demo_school
from school.directory import Directory, Person
from school.messages import Author, Message

NOW = 1_800_000_000.0
DAY = 86_400.0
MARTIN = Author("t-martin", "Mme Martin", "teacher")


def directory() -> Directory:
    d = Directory()
    d.put(*demo_school())
    return d


def post(seq: int, at: float, channel: str = "class:cp-a") -> Message:
    return Message(f"m{seq}", seq, channel, int(at * 1000), MARTIN, "post", {"text": f"Message {seq}"})


def facts(**changes: object) -> board.Facts:
    base = board.Facts(now=NOW, signed_in=set(), reachable=set(), last_read={}, marks={}, recent={}, week={},
                       first_reads={})
    return replace(base, **changes)  # type: ignore[arg-type]


def test_one_guardian_reading_reaches_the_family() -> None:
    d = directory()
    posts = [post(1, NOW - 3 * DAY), post(2, NOW - 2 * DAY), post(3, NOW - DAY)]
    f = facts(signed_in={"p-lea-pere"}, last_read={"p-lea-pere": NOW - 60, "p-durand": NOW - 40 * DAY},
              marks={"class:cp-a": {"p-lea-pere": 3, "p-durand": 1}}, recent={"class:cp-a": posts},
              week={"class:cp-a": [(m.seq, m.ts) for m in posts]},
              first_reads={"class:cp-a": {1: NOW - 3 * DAY + 30, 2: NOW - 2 * DAY + 90}})
    figures = board.class_figures(d, d.classes["cp-a"], f)
    assert [p["families_read"] for p in figures["last_posts"]] == [2, 1, 1]
    assert (figures["seen_median"], figures["seen_lowest"]) == (0.5, 0.5)
    assert figures["families_never_signed_in"] == 0  # Sophie Durand read once: she came, without a code
    assert figures["families_inactive"] == 1  # her read is 40 days old
    assert figures["first_read_median_seconds"] == 60.0
    unseen = board.class_figures(d, d.classes["cp-a"], facts(signed_in={"p-lea-pere"}))
    assert unseen["families_never_signed_in"] == 1  # Hugo's: nobody ever signed in nor read
    assert figures["posts_this_week"] == 3 and figures["week_posts_unread"] == 0


def test_notifiable_means_a_device_a_push_subscription_or_an_e_mail() -> None:
    d = directory()
    d.put(Person("p-durand", "ecole-jaures", "Sophie Durand", d.people["p-durand"].role))  # no e-mail
    rows = {r["student"]: r for r in (board.family_row(d, s, facts()) for s in board.families_of(d, ["cp-a"]))}
    assert rows["s-hugo"]["not_notifiable"] and board.in_list(rows["s-hugo"], "not_notifiable")
    reachable = {r["student"]: r for r in (board.family_row(d, s, facts(reachable={"p-durand"}))
                                           for s in board.families_of(d, ["cp-a"]))}
    assert not reachable["s-hugo"]["not_notifiable"]


def test_an_announcement_read_by_every_family_leaves_the_list() -> None:
    d = directory()
    director = Author("d-bernard", "M. Bernard", "director")
    notice = Message("a1", 4, "school:ecole-jaures", int(NOW * 1000), director, "announcement",
                     {"title": "Grève", "text": "Jeudi", "urgent": True})
    some = facts(recent={"school:ecole-jaures": [notice]}, marks={"school:ecole-jaures": {"p-durand": 4}})
    [pending] = board.announcements(d, "ecole-jaures", some)
    assert (pending["families_read"], pending["families_total"], pending["urgent"]) == (2, 4, True)
    everyone = {g: 4 for g in d.guardians_of_school("ecole-jaures")}
    assert board.announcements(d, "ecole-jaures", facts(recent={"school:ecole-jaures": [notice]},
                                                        marks={"school:ecole-jaures": everyone})) == []


@pytest.mark.parametrize("cell", ["=1+1", "+33612345678", "-2", "@SUM(A1)", "\tx", "\rx", "  =cmd|' /C calc'!A0"])
def test_formula_cells_are_made_inert(cell: str) -> None:
    assert inert(cell) == "'" + cell


def test_plain_cells_stay_as_they_are() -> None:
    assert inert("Léa Petit") == "Léa Petit" and inert("claire.petit@example.fr") == "claire.petit@example.fr"


def test_the_csv_is_for_french_excel() -> None:
    d = directory()
    d.put(Person("p-adam", "ecole-jaures", "=HYPERLINK(\"http://x\";\"y\")", d.people["p-adam"].role,
                 "karim.benali@example.fr", "+33612345678"))
    rows = [board.family_row(d, s, facts()) for s in board.families_of(d, ["cp-a", "cm2-b"])]
    body = families_csv(rows, "never_signed_in")
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert lines[0][0] == "Classe" and len(lines) == 1 + 5  # every guardian of the four families
    adam = next(line for line in lines if line[1] == "Adam Benali")
    assert adam[2].startswith("'=") and adam[4] == "'+33612345678"
    assert families_csv(rows, "inactive").count(b"\r\n") == 6
