"""The board's lists as CSV for a spreadsheet (issue 17). Pure: rows in, bytes out.

For French Excel: UTF-8 with a byte order mark (without it Excel reads the accents as
Windows-1252) and `;` between cells — French Windows uses the comma as the decimal
separator, so Excel in French expects `;` as the list separator and opens such a file by a
double click into columns, where a comma-separated one lands in a single column.

Formulas: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return (also after
spaces) gets a leading `'`, so that a guardian named `=HYPERLINK(...)` or a phone number
`+33 6...` is shown as text and never run (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from school.board import in_list

BOM: Final = "\ufeff"
DELIMITER: Final = ";"
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
HEADER: Final = ("Classe", "Élève", "Responsable", "E-mail", "Téléphone", "Déjà connecté",
                 "Joignable", "Dernière lecture")


def inert(value: str) -> str:
    """The cell's text, with a leading `'` when a spreadsheet would take it for a formula."""
    return "'" + value if value.lstrip(" ").startswith(FORMULA_STARTS) else value


def _yes(flag: bool) -> str:
    return "oui" if flag else "non"


def _day(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def families_csv(rows: Iterable[Mapping[str, Any]], list_name: str | None) -> bytes:
    """One line per guardian of each family of the list (`None`: every family)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITER, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(HEADER)
    for row in rows:
        if list_name is not None and not in_list(row, list_name):
            continue
        for g in row["guardians"]:
            cells = (row["class_name"], row["student_name"], g["name"], g["email"] or "", g["phone"] or "",
                     _yes(g["signed_in"]), _yes(g["notifiable"]), _day(g["last_read"]))
            writer.writerow([inert(str(cell)) for cell in cells])
    return (BOM + out.getvalue()).encode("utf-8")
