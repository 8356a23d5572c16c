"""The e-mail digest (issue 12): new messages by channel, in French, with a one-click
unsubscribe link (RFC 8058: `List-Unsubscribe` with an https URL and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and the same link in the body).

Pure: the caller gathers what to list (`DigestGroup`s) and the links; every value put into the
HTML is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Final

from notify.email import Email

MAX_ITEMS_SHOWN: Final = 10  # per channel; beyond, "et N autres"


@dataclass(frozen=True, slots=True)
class DigestItem:
    title: str  # the message's title, or what it is ("Annonce", "Devoirs pour le 12/09")
    author: str  # the author's name as published


@dataclass(frozen=True, slots=True)
class DigestGroup:
    channel: str  # the channel's name for people ("CP A", "École Jean Jaurès")
    items: tuple[DigestItem, ...]
    link: str  # opens the channel in the app


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _count(n: int) -> str:
    return "1 nouveau message" if n == 1 else f"{n} nouveaux messages"


def digest_email(to: str, school: str, groups: list[DigestGroup], unsubscribe: str, app_link: str) -> Email:
    """The digest e-mail to `to`, listing `groups` (non-empty)."""
    school = _one_line(school)
    total = sum(len(g.items) for g in groups)
    e = html.escape
    lines = ["Bonjour,", "", f"Voici ce qui est arrivé dans Liaison ({school}) :", ""]
    blocks = []
    for group in groups:
        name = _one_line(group.channel)
        lines.append(f"{name} — {_count(len(group.items))}")
        entries = []
        for item in group.items[:MAX_ITEMS_SHOWN]:
            lines.append(f"  • {_one_line(item.title)} ({_one_line(item.author)})")
            entries.append(f"<li>{e(_one_line(item.title))} <small>({e(_one_line(item.author))})</small></li>")
        hidden = len(group.items) - MAX_ITEMS_SHOWN
        if hidden > 0:
            lines.append(f"  • et {hidden} autre{'s' if hidden > 1 else ''}")
            entries.append(f"<li>et {hidden} autre{'s' if hidden > 1 else ''}</li>")
        lines.append(f"  {group.link}")
        lines.append("")
        blocks.append(f'<h3 style="margin-bottom: 0.2em"><a href="{e(group.link)}">{e(name)}</a> — '
                      f"{_count(len(group.items))}</h3><ul>{''.join(entries)}</ul>")
    lines += [
        f"Ouvrir Liaison : {app_link}",
        "",
        "Vous recevez ce résumé parce que vous n'avez pas lu ces messages dans l'application.",
        f"Ne plus recevoir ces résumés par e-mail : {unsubscribe}",
        "",
        f"Liaison, le cahier de liaison de {school}",
        "",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"></head>\n'
        '<body style="font-family: sans-serif; line-height: 1.5; color: #222">\n'
        f"<p>Bonjour,</p>\n<p>Voici ce qui est arrivé dans Liaison ({e(school)}) :</p>\n"
        + "\n".join(blocks)
        + f'\n<p><a href="{e(app_link)}" style="font-weight: bold">Ouvrir Liaison</a></p>\n'
        "<p><small>Vous recevez ce résumé parce que vous n'avez pas lu ces messages dans l'application."
        f' <a href="{e(unsubscribe)}">Ne plus recevoir ces résumés par e-mail</a></small></p>\n'
        f"<p>Liaison, le cahier de liaison de {e(school)}</p>\n</body></html>\n"
    )
    headers = (("List-Unsubscribe", f"<{unsubscribe}>"),
               ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    subject = f"Liaison : {_count(total)} — {school}"
    return Email(to, subject, "\n".join(lines), page, headers)
