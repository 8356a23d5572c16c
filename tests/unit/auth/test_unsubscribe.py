"""Signed unsubscribe tokens (auth/unsubscribe.py) and the digest e-mail (notify/digest_email.py):
pure functions, no I/O."""

from __future__ import annotations

import html

from auth.unsubscribe import make_token, read_token, unsubscribe_key
from notify.digest_email import MAX_ITEMS_SHOWN, DigestGroup, DigestItem, digest_email

KEY = unsubscribe_key(b"s" * 32)


def test_a_token_names_its_person_and_nothing_else() -> None:
    token = make_token(KEY, "p-lea-mere")
    assert read_token(KEY, token) == "p-lea-mere"
    assert read_token(KEY, make_token(KEY, "p-lea-pere")) == "p-lea-pere"
    who, mac = token.split(".")
    other_who = make_token(KEY, "p-lea-pere").split(".")[0]
    assert read_token(KEY, f"{other_who}.{mac}") is None  # someone else's name with this signature
    assert read_token(unsubscribe_key(b"t" * 32), token) is None  # another deployment's secret
    for broken in ("", "abc", f"{who}.", f".{mac}", f"{who}.{mac}.x", f"{who}.{mac[:-2]}", "%%%.%%%", "x" * 500):
        assert read_token(KEY, broken) is None
    assert KEY != b"s" * 32  # derived, not the JWT secret itself


def test_the_digest_e_mail() -> None:
    items = tuple(DigestItem(f"Publication : Sortie {i}", "Mme Martin") for i in range(MAX_ITEMS_SHOWN + 2))
    groups = [DigestGroup("CP A", items, "https://liaison.example/"),
              DigestGroup("<École & Cie>", (DigestItem("Annonce", "M. Bernard"),), "https://liaison.example/")]
    link = "https://liaison.example/api/v1/digest/unsubscribe?token=abc.def"
    mail = digest_email("claire@example.fr", "École Jean Jaurès", groups, link, "https://liaison.example/")
    assert mail.to == "claire@example.fr"
    assert mail.subject == "Liaison : 13 nouveaux messages — École Jean Jaurès"
    assert ("List-Unsubscribe", f"<{link}>") in mail.headers
    assert ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click") in mail.headers
    assert "CP A — 12 nouveaux messages" in mail.text and "et 2 autres" in mail.text
    assert "Sortie 9" in mail.text and "Sortie 10" not in mail.text
    assert link in mail.text and html.escape(link) in mail.html
    assert "<École & Cie>" not in mail.html and "&lt;École &amp; Cie&gt;" in mail.html  # escaped
