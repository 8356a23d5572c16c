"""The board's reminder e-mail (issue 17): a short French message to the guardians of the
families that have not seen an announcement, with a link to open it. Its text says neither who
else has not read it nor the announcement's text (the family reads it in the app)."""

from __future__ import annotations

import html

from notify.email import Email


def reminder_email(to: str, school: str, title: str, link: str) -> Email:
    school, title = " ".join(school.split()), " ".join(title.split())
    subject = f"{school} : une annonce vous attend"
    text = (f"Bonjour,\n\n{school} a publié une annonce que vous n'avez pas encore lue : « {title} ».\n"
            f"Pour la lire : {link}\n\nCe message est envoyé une seule fois.\n")
    body = (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"></head>\n<body>\n'
            f"<p>Bonjour,</p>\n<p>{html.escape(school)} a publié une annonce que vous n'avez pas encore lue : "
            f"« {html.escape(title)} ».</p>\n"
            f"<p><a href=\"{html.escape(link, quote=True)}\">Lire l'annonce</a></p>\n"
            f"<p>Ce message est envoyé une seule fois.</p>\n</body></html>\n")
    return Email(to=to, subject=subject, text=text, html=body)
