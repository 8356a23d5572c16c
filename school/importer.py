"""Import of a school's CSV export (one row per student) into the directory.

`plan_import(text, school_id, current)` reads the export and compares it with the
current directory. It does no I/O. The `ImportPlan` it returns either has errors
(each one naming its line) and nothing to write, or the entities to upsert and
the ids to delete, to be saved in one transaction. The columns, the ids and what a
re-import does are described in docs/import.md.

Ids, stable from one import to the next:
- student: the `eleve_id` column, else `s-` + the first 12 hex digits of
  SHA-256("<school_id>:<student number>") (spaces removed, upper case);
- guardian: the id of the guardian who already has this e-mail (case-insensitive),
  else `p-` + the first 12 hex digits of SHA-256(<lowercased e-mail>);
- class: the `classe_id` column, else the school's class whose name gives the same
  slug, else the slug of the name ("CM2 B" -> `cm2-b`), prefixed with
  `<school_id>-` when another school already has that id.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace

from school.channels import valid_id
from school.consent import ConsentState
from school.directory import Directory, Person, Role, School, SchoolClass, Student
from school.text import strip_bidi

ImportItem = School | Person | SchoolClass | Student

MAX_GUARDIANS = 2


# -- columns ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the format: its key, its documented (French) header and its aliases."""

    key: str
    header: str
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.header, *self.aliases)


def _student_columns() -> tuple[Column, ...]:
    return (
        Column("student_id", "eleve_id", ("id_eleve", "identifiant", "student_id", "id")),
        Column(
            "student_number",
            "eleve_numero",
            ("numero", "numero_eleve", "ine", "eleve_ine", "student_number", "number"),
        ),
        Column(
            "first_name",
            "eleve_prenom",
            ("prenom", "prenom_eleve", "student_first_name", "first_name", "firstname"),
        ),
        Column(
            "last_name",
            "eleve_nom",
            ("nom", "nom_eleve", "student_last_name", "last_name", "lastname", "surname"),
        ),
        Column("class_id", "classe_id", ("id_classe", "class_id")),
        Column("class_name", "classe", ("classe_nom", "nom_classe", "division", "class", "class_name")),
    )


def _guardian_columns(k: int) -> tuple[Column, ...]:
    r, g, p = f"responsable{k}", f"guardian{k}", f"parent{k}"
    return (
        Column(f"{g}_name", f"{r}_nom", (f"nom_{r}", f"{g}_name", f"{g}_last_name", f"{p}_name")),
        Column(f"{g}_first_name", f"{r}_prenom", (f"prenom_{r}", f"{g}_first_name", f"{p}_first_name")),
        Column(
            f"{g}_email",
            f"{r}_email",
            (f"{r}_courriel", f"{r}_mail", f"courriel_{r}", f"{g}_email", f"{p}_email"),
        ),
        Column(
            f"{g}_phone",
            f"{r}_telephone",
            (
                f"{r}_tel",
                f"{r}_portable",
                f"{r}_mobile",
                f"telephone_{r}",
                f"{g}_phone",
                f"{p}_phone",
            ),
        ),
        # issue 13: the guardian's image consent (droit à l'image) for this student
        Column(f"{g}_image_consent", f"{r}_droit_image",
               (f"droit_image_{r}", f"{r}_droit_a_l_image", f"{g}_image_consent", f"{p}_image_consent")),
    )


COLUMNS: tuple[Column, ...] = _student_columns() + _guardian_columns(1) + _guardian_columns(2)
_BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}
_EXTRA_GUARDIAN = re.compile(r"(?:responsable|guardian|parent)(\d+)")


def compact(label: str) -> str:
    """A header reduced to lowercase ASCII letters and digits: 'Élève prénom' -> 'eleveprenom'."""
    return re.sub(r"[^a-z0-9]", "", _ascii(label).lower())


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _index_aliases() -> dict[str, Column]:
    index: dict[str, Column] = {}
    for column in COLUMNS:
        for name in column.names:
            index[compact(name)] = column
    return index


_BY_COMPACT = _index_aliases()

# Each group needs one of its columns in the header.
_REQUIRED_HEADER: tuple[tuple[str, ...], ...] = (
    ("student_id", "student_number"),
    ("first_name",),
    ("last_name",),
    ("class_id", "class_name"),
    ("guardian1_name",),
    ("guardian1_email",),
)


# -- values -----------------------------------------------------------------

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_DIGITS = re.compile(r"[0-9]+")
# French overseas departments: national prefix -> country calling code.
_OVERSEAS = {
    "0590": "590", "0690": "590", "0691": "590",
    "0594": "594", "0694": "594",
    "0596": "596", "0696": "596", "0697": "596",
    "0262": "262", "0263": "262", "0692": "262", "0693": "262",
    "0269": "262", "0639": "262",
}  # fmt: skip


def normalize_email(raw: str) -> str | None:
    """The lowercased address, or None when it is not an e-mail address."""
    value = raw.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        return None
    return value


def normalize_phone(raw: str) -> str | None:
    """A phone number in E.164 (`+33612345678`), or None when it is not one.

    Accepts French national numbers with any separators (`06 12 34 56 78`,
    `06.12.34.56.78`), a leading zero lost by a spreadsheet (`612345678`),
    `+33 (0)6 ...`, `0033 6 ...` and any international `+<8 to 15 digits>`.
    """
    value = re.sub(r"\(0\)", "", raw.strip())
    value = re.sub(r"[\s.\-/()]", "", value)
    if value.startswith("00"):
        value = "+" + value[2:]
    if value.startswith("+"):
        return _international(value[1:])
    if _DIGITS.fullmatch(value) and len(value) == 9 and value[0] != "0":
        value = "0" + value
    if _DIGITS.fullmatch(value) and len(value) == 10 and value[0] == "0" and value[1] != "0":
        country = _OVERSEAS.get(value[:4], "33")
        return f"+{country}{value[1:]}"
    return None


def _international(digits: str) -> str | None:
    if not _DIGITS.fullmatch(digits) or digits[0] == "0":
        return None
    if digits.startswith("330"):
        digits = "33" + digits[3:]
    if digits.startswith("33") and len(digits) != 11:
        return None
    return "+" + digits if 8 <= len(digits) <= 15 else None


def slug(text: str) -> str:
    """A class id made from a class name: 'CM2 B' -> 'cm2-b', '6ème A' -> '6eme-a'."""
    return re.sub(r"[^a-z0-9]+", "-", _ascii(text).lower()).strip("-")[:64].strip("-")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def derive_student_id(school_id: str, number: str) -> str:
    """The id of a student known by the school's student number: `s-<12 hex digits>`."""
    return "s-" + _short_hash(f"{school_id}:{''.join(number.split()).upper()}")


def derive_guardian_id(email: str) -> str:
    """The id of a new guardian: `p-<12 hex digits>` from the lowercased e-mail."""
    return "p-" + _short_hash(email.strip().lower())


def _entity_id_ok(value: str) -> bool:
    # `~` separates the student and the staff member in chat ids.
    return valid_id(value) and "~" not in value


def _clean(value: str) -> str:
    return " ".join(strip_bidi(value).split())  # a name from the file cannot spoof another


def _quote(value: str) -> str:
    return f"'{value if len(value) <= 40 else value[:39] + '…'}'"


def decode_csv(data: bytes) -> str:
    """Decode an export: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# -- errors and the plan ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem in the file: `line` as in the file (1 is the header; None: the whole import),
    `field` the column as written in the header (None: the whole row or file)."""

    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


class ImportRejected(Exception):
    """Raised when the changes of a plan with errors are asked for."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        super().__init__(f"the import has {len(errors)} error(s); nothing may be written")
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    classes_created: int = 0
    students_added: int = 0
    students_updated: int = 0
    students_removed: int = 0
    students_unchanged: int = 0
    guardians_added: int = 0
    guardians_updated: int = 0
    guardians_removed: int = 0
    guardians_unchanged: int = 0

    @property
    def unchanged(self) -> int:
        return self.students_unchanged + self.guardians_unchanged

    def as_dict(self) -> dict[str, int]:
        counts = {f.name: int(getattr(self, f.name)) for f in fields(self)}
        return counts | {"unchanged": self.unchanged}


@dataclass(frozen=True, slots=True)
class _Changes:
    rows: int = 0
    classes_created: tuple[SchoolClass, ...] = ()
    students_added: tuple[Student, ...] = ()
    students_updated: tuple[tuple[Student, Student], ...] = ()
    students_removed: tuple[Student, ...] = ()
    students_unchanged: int = 0
    guardians_added: tuple[Person, ...] = ()
    guardians_updated: tuple[tuple[Person, Person], ...] = ()
    guardians_removed: tuple[Person, ...] = ()
    guardians_unchanged: int = 0
    chats_removed: tuple[str, ...] = ()
    classes_emptied: tuple[str, ...] = ()
    consents: tuple[tuple[str, str, ConsentState], ...] = ()  # (student, guardian, state) from the file


@dataclass(frozen=True)
class ImportPlan:
    """What an import would change. With any error, it changes nothing: `upserts()` and
    `deletions()` raise `ImportRejected`, so that a caller cannot write part of a bad file."""

    school_id: str
    errors: list[RowError]
    _changes: _Changes = field(default_factory=_Changes, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def upserts(self) -> list[ImportItem]:
        """The entities to write: created classes, then guardians, then students."""
        changes = self._checked()
        items: list[ImportItem] = list(changes.classes_created)
        items.extend(changes.guardians_added)
        items.extend(new for _, new in changes.guardians_updated)
        items.extend(changes.students_added)
        items.extend(new for _, new in changes.students_updated)
        return items

    def deletions(self) -> dict[str, list[str]]:
        """Ids to delete by kind: "students", "people" (guardians only), "classes" (always
        empty: an import never deletes a class) and "chats" (those about removed students)."""
        changes = self._checked()
        return {
            "students": [s.id for s in changes.students_removed],
            "people": [p.id for p in changes.guardians_removed],
            "classes": [],
            "chats": list(changes.chats_removed),
        }

    def consents(self) -> list[tuple[str, str, ConsentState]]:
        """The image consents the file records: `(student id, guardian id, state)` (issue 13)."""
        return list(self._checked().consents)

    def summary(self) -> ImportSummary:
        c = self._changes
        return ImportSummary(
            classes_created=len(c.classes_created),
            students_added=len(c.students_added),
            students_updated=len(c.students_updated),
            students_removed=len(c.students_removed),
            students_unchanged=c.students_unchanged,
            guardians_added=len(c.guardians_added),
            guardians_updated=len(c.guardians_updated),
            guardians_removed=len(c.guardians_removed),
            guardians_unchanged=c.guardians_unchanged,
        )

    def describe(self, limit: int = 5) -> list[str]:
        """Human lines for a dry run: the errors, or what would change (`limit` ids per list)."""
        if self.errors:
            head = f"{_count(len(self.errors), 'error')} in the file; nothing would be imported:"
            return [head, *(f"  {e}" for e in self.errors)]
        return _describe_changes(self.school_id, self._changes, max(limit, 1))

    def _checked(self) -> _Changes:
        if self.errors:
            raise ImportRejected(self.errors)
        return self._changes


# -- describing ---------------------------------------------------------------


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun}{'es' if noun.endswith('ss') else 's'}"


def _listing(verb: str, noun: str, entries: Sequence[str], limit: int) -> list[str]:
    if not entries:
        return []
    shown = ", ".join(entries[:limit])
    more = f", and {len(entries) - limit} more" if len(entries) > limit else ""
    return [f"would {verb} {_count(len(entries), noun)}: {shown}{more}"]


def _student_changes(old: Student, new: Student) -> str:
    parts = []
    if old.name != new.name:
        parts.append("name")
    if old.class_id != new.class_id:
        parts.append(f"class {old.class_id} -> {new.class_id}")
    if old.guardians != new.guardians:
        parts.append("guardians")
    return f"{new.id} ({', '.join(parts)})"


def _guardian_changes(old: Person, new: Person) -> str:
    labels = (("name", "name"), ("email", "e-mail"), ("phone", "phone"), ("school_id", "school"))
    parts = [label for attr, label in labels if getattr(old, attr) != getattr(new, attr)]
    return f"{new.id} ({', '.join(parts)})"


def _describe_changes(school_id: str, c: _Changes, limit: int) -> list[str]:
    lines = [f"school {school_id}: {_count(c.rows, 'student')} in the file"]
    lines += _listing("create", "class", [f"{k.id} ({k.name})" for k in c.classes_created], limit)
    lines += _listing("add", "student", [f"{s.id} ({s.name}, {s.class_id})" for s in c.students_added], limit)
    lines += _listing("update", "student", [_student_changes(o, n) for o, n in c.students_updated], limit)
    lines += _listing("remove", "student", [f"{s.id} ({s.name})" for s in c.students_removed], limit)
    lines += _listing("add", "guardian", [f"{p.id} ({p.name})" for p in c.guardians_added], limit)
    lines += _listing("update", "guardian", [_guardian_changes(o, n) for o, n in c.guardians_updated], limit)
    lines += _listing(
        "remove",
        "guardian",
        [f"{p.id} ({p.name}, no child left)" for p in c.guardians_removed],
        limit,
    )
    lines += _listing("delete", "chat", [f"chat:{chat}" for chat in c.chats_removed], limit)
    lines += [f"class {k} would have no students left (it is kept)" for k in c.classes_emptied]
    if len(lines) == 1:
        lines.append("nothing would change")
    lines.append(
        f"unchanged: {_count(c.students_unchanged, 'student')}, {_count(c.guardians_unchanged, 'guardian')}"
    )
    return lines


# -- reading the file ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    cells: list[str]


def sniff_delimiter(text: str) -> str:
    """`;`, `,` or a tab: the most frequent one outside quotes in the first non-blank line."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {d: unquoted.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_lines(text: str) -> tuple[list[_Line], list[RowError]]:
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text))
    lines: list[_Line] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                lines.append(_Line(start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        return lines, [RowError(start, None, f"the file cannot be read from here on: {exc}")]
    return lines, []


@dataclass(frozen=True, slots=True)
class _Header:
    line: int
    index: dict[str, int]
    labels: dict[str, str]
    extra_guardians: dict[int, str]
    width: int

    def label(self, key: str) -> str:
        return self.labels.get(key) or _BY_KEY[key].header


def _read_header(line: _Line) -> tuple[_Header, list[RowError]]:
    index: dict[str, int] = {}
    labels: dict[str, str] = {}
    extra: dict[int, str] = {}
    errors: list[RowError] = []
    for position, raw in enumerate(line.cells):
        label = _clean(raw.removeprefix("\ufeff"))
        column = _BY_COMPACT.get(compact(label))
        if column is None:
            found = _EXTRA_GUARDIAN.search(compact(label))
            if found and int(found.group(1)) > MAX_GUARDIANS:
                extra[position] = label
            continue
        if column.key in index:
            message = f"columns '{labels[column.key]}' and '{label}' both give {column.header}"
            errors.append(RowError(line.number, label, message))
            continue
        index[column.key] = position
        labels[column.key] = label
    header = _Header(line.number, index, labels, extra, len(line.cells))
    return header, errors + _missing_columns(header, line.cells)


def _missing_columns(header: _Header, cells: Sequence[str]) -> list[RowError]:
    groups = list(_REQUIRED_HEADER)
    if any(k in header.index for k in ("guardian2_name", "guardian2_email", "guardian2_phone")):
        groups += [("guardian2_name",), ("guardian2_email",)]
    missing = [g for g in groups if not any(k in header.index for k in g)]
    if not missing:
        return []
    names = ", ".join(" or ".join(_BY_KEY[k].header for k in group) for group in missing)
    found = ", ".join(_clean(c) for c in cells if c.strip()) or "nothing"
    message = f"missing columns: {names}; found: {found} (accepted names and aliases: docs/import.md)"
    return [RowError(header.line, None, message)]


# -- parsing the rows ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _GuardianRow:
    label: str  # the e-mail column's header, for messages
    email: str
    name: str
    phone: str | None
    phone_known: bool
    consent: ConsentState | None = None  # the image consent column, when filled


@dataclass(frozen=True, slots=True)
class _StudentRow:
    line: int
    id: str
    id_label: str
    id_value: str
    name: str
    class_id: str | None
    class_name: str | None
    guardians: tuple[_GuardianRow, ...]


class _RowReader:
    """The cells of one row by column key, and the errors found in it."""

    def __init__(self, header: _Header, line: _Line) -> None:
        self.header = header
        self.line = line.number
        self.cells = line.cells
        self.errors: list[RowError] = []

    def has(self, key: str) -> bool:
        return key in self.header.index

    def get(self, key: str) -> str:
        position = self.header.index.get(key)
        if position is None or position >= len(self.cells):
            return ""
        return _clean(self.cells[position])

    def error(self, key: str | None, message: str) -> None:
        label = self.header.label(key) if key else None
        text = f"{label} {message}" if label else message
        self.errors.append(RowError(self.line, label, text))

    def error_at(self, label: str, message: str) -> None:
        self.errors.append(RowError(self.line, label, f"{label} {message}"))


def _parse_row(header: _Header, line: _Line, school_id: str) -> tuple[_StudentRow | None, list[RowError]]:
    row = _RowReader(header, line)
    _check_width(row)
    _check_extra_guardians(row)
    student_id, id_key = _student_id(row, school_id)
    first, last = row.get("first_name"), row.get("last_name")
    for key, value in (("first_name", first), ("last_name", last)):
        if not value:
            row.error(key, "is empty (required)")
    class_id, class_name = row.get("class_id") or None, row.get("class_name") or None
    if class_id is None and class_name is None:
        row.error("class_name" if row.has("class_name") else "class_id", "is empty (required)")
    elif class_id is not None and not _entity_id_ok(class_id):
        row.error("class_id", f"{_quote(class_id)} is not a valid id (letters, digits, '.', '_', '-')")
    guardians = _guardians(row)
    if row.errors or student_id is None:
        return None, row.errors
    parsed = _StudentRow(
        line.number, student_id, header.label(id_key), row.get(id_key), f"{first} {last}",
        class_id, class_name, guardians,
    )  # fmt: skip
    return parsed, []


def _check_width(row: _RowReader) -> None:
    extra = [c for c in row.cells[row.header.width :] if c.strip()]
    if extra:
        row.error(
            None,
            f"{len(row.cells)} values but the header has {row.header.width} columns "
            "(quote any value that contains the delimiter)",
        )


def _check_extra_guardians(row: _RowReader) -> None:
    for position, label in row.header.extra_guardians.items():
        if position < len(row.cells) and row.cells[position].strip():
            row.error_at(label, f"is filled: a student has at most {MAX_GUARDIANS} guardians in Liaison")
            return


def _student_id(row: _RowReader, school_id: str) -> tuple[str | None, str]:
    given = row.get("student_id")
    if given:
        if not _entity_id_ok(given):
            row.error(
                "student_id",
                f"{_quote(given)} is not a valid id (letters, digits, '.', '_', '-'; at most 128 characters)",
            )
            return None, "student_id"
        return given, "student_id"
    number = row.get("student_number")
    if number:
        return derive_student_id(school_id, number), "student_number"
    key = "student_id" if row.has("student_id") else "student_number"
    other = "student_number" if key == "student_id" else "student_id"
    row.error(key, f"is empty: give the student's id or number ({_BY_KEY[other].header})")
    return None, key


def _guardians(row: _RowReader) -> tuple[_GuardianRow, ...]:
    slots = [_guardian(row, k) for k in range(1, MAX_GUARDIANS + 1)]
    if not any(present for present, _ in slots):
        row.error("guardian1_email", "is empty: each student needs at least one guardian")
    found = [g for _, g in slots if g is not None]
    if len(found) == 2 and found[0].email == found[1].email:
        row.error(
            "guardian2_email",
            f"{_quote(found[1].email)} is the same guardian as {found[0].label}",
        )
    return tuple(found)


def _guardian(row: _RowReader, k: int) -> tuple[bool, _GuardianRow | None]:
    """Whether the row fills guardian `k`'s columns, and the guardian when they are valid."""
    keys = [f"guardian{k}_{part}" for part in ("name", "first_name", "email", "phone", "image_consent")]
    name_key, first_key, email_key, phone_key, consent_key = keys
    if not any(row.get(key) for key in keys):
        return False, None
    count = len(row.errors)
    if not row.get(name_key):
        row.error(name_key, "is empty (required when another guardian column is filled)")
    email = _guardian_email(row, email_key)
    phone = _guardian_phone(row, phone_key)
    consent = _guardian_consent(row, consent_key)
    if len(row.errors) > count or email is None:
        return True, None
    name = _clean(f"{row.get(first_key)} {row.get(name_key)}")
    return True, _GuardianRow(row.header.label(email_key), email, name, phone, row.has(phone_key), consent)


_CONSENT_WORDS = {
    "oui": ConsentState.GRANTED, "o": ConsentState.GRANTED, "yes": ConsentState.GRANTED, "y": ConsentState.GRANTED,
    "1": ConsentState.GRANTED, "x": ConsentState.GRANTED, "accord": ConsentState.GRANTED,
    "autorise": ConsentState.GRANTED, "granted": ConsentState.GRANTED,
    "non": ConsentState.REFUSED, "n": ConsentState.REFUSED, "no": ConsentState.REFUSED, "0": ConsentState.REFUSED,
    "refus": ConsentState.REFUSED, "refuse": ConsentState.REFUSED, "refused": ConsentState.REFUSED,
}


def _guardian_consent(row: _RowReader, key: str) -> ConsentState | None:
    """The image consent column: oui / non (and their usual spellings); empty: not recorded."""
    raw = row.get(key)
    if not raw:
        return None
    state = _CONSENT_WORDS.get(compact(raw))
    if state is None:
        row.error(key, f"{_quote(raw)} must be oui or non (or empty when the guardian has not answered)")
    return state


def _guardian_email(row: _RowReader, key: str) -> str | None:
    raw = row.get(key)
    if not raw:
        row.error(key, "is empty: a guardian is identified by their e-mail address")
        return None
    email = normalize_email(raw)
    if email is None:
        row.error(key, f"{_quote(raw)} is not an e-mail address")
    return email


def _guardian_phone(row: _RowReader, key: str) -> str | None:
    raw = row.get(key)
    if not raw:
        return None
    phone = normalize_phone(raw)
    if phone is None:
        row.error(key, f"{_quote(raw)} is not a phone number (e.g. 06 12 34 56 78 or +33 6 12 34 56 78)")
    return phone


# -- checks across rows -------------------------------------------------------


@dataclass(slots=True)
class _GuardianInfo:
    email: str
    name: str
    phone: str | None
    phone_known: bool
    line: int


def _check_duplicates(rows: Sequence[_StudentRow]) -> list[RowError]:
    seen: dict[str, int] = {}
    errors = []
    for row in rows:
        first = seen.setdefault(row.id, row.line)
        if first != row.line:
            message = f"{row.id_label} {_quote(row.id_value)} is already used on line {first}"
            errors.append(RowError(row.line, row.id_label, message))
    return errors


def _merge_guardians(
    rows: Sequence[_StudentRow],
) -> tuple[dict[str, _GuardianInfo], list[RowError]]:
    """One record per e-mail; the same guardian must have the same details on every row."""
    merged: dict[str, _GuardianInfo] = {}
    errors: list[RowError] = []
    for row in rows:
        for g in row.guardians:
            info = merged.get(g.email)
            if info is None:
                merged[g.email] = _GuardianInfo(g.email, g.name, g.phone, g.phone_known, row.line)
                continue
            conflict = _conflict(info, g)
            if conflict:
                message = (
                    f"{g.label} {_quote(g.email)}: the {conflict} differs from line {info.line}; "
                    "the same guardian must have the same details on every row"
                )
                errors.append(RowError(row.line, g.label, message))
            elif info.phone is None and g.phone is not None:
                info.phone = g.phone
            info.phone_known = info.phone_known or g.phone_known
    return merged, errors


def _conflict(info: _GuardianInfo, g: _GuardianRow) -> str | None:
    if info.name.casefold() != g.name.casefold():
        return "name"
    if info.phone is not None and g.phone is not None and info.phone != g.phone:
        return "phone"
    return None


# -- resolving against the directory ------------------------------------------


class _ClassResolver:
    """Finds or creates the class of each row, in file order."""

    def __init__(self, school_id: str, current: Directory) -> None:
        self.school_id = school_id
        self.current = current
        own = [k for k in current.classes.values() if k.school_id == school_id]
        self.by_id: dict[str, SchoolClass] = {k.id: k for k in own}
        self.by_slug: dict[str, str] = {}
        for klass in sorted(own, key=lambda k: k.id):
            self.by_slug.setdefault(slug(klass.name), klass.id)
        self.created: dict[str, SchoolClass] = {}

    def resolve(self, row: _StudentRow) -> str | RowError:
        if row.class_id is not None:
            return self._by_id(row, row.class_id)
        name = row.class_name or ""
        key = slug(name)
        if not key:
            return RowError(row.line, None, f"class {_quote(name)} has no letter or digit")
        known = self.by_slug.get(key)
        if known is not None:
            return known
        if key in self.current.classes and key not in self.by_id:
            key = f"{self.school_id}-{key}"
        return self._by_id(row, key)

    def _by_id(self, row: _StudentRow, class_id: str) -> str | RowError:
        if class_id in self.by_id:
            return class_id
        other = self.current.classes.get(class_id)
        if other is not None:
            message = f"class {_quote(class_id)} belongs to school {_quote(other.school_id)}"
            return RowError(row.line, None, message)
        klass = SchoolClass(class_id, self.school_id, row.class_name or class_id)
        self.by_id[class_id] = klass
        self.by_slug.setdefault(slug(klass.name), class_id)
        self.created[class_id] = klass
        return class_id


def _guardian_ids(merged: dict[str, _GuardianInfo], current: Directory) -> tuple[dict[str, str], list[RowError]]:
    by_email: dict[str, str] = {}
    for person in sorted(current.people.values(), key=lambda p: p.id):
        if person.role is Role.GUARDIAN and person.email:
            by_email.setdefault(person.email.strip().lower(), person.id)
    ids: dict[str, str] = {}
    errors: list[RowError] = []
    for email, info in merged.items():
        gid = by_email.get(email) or derive_guardian_id(email)
        holder = current.people.get(gid)
        if email not in by_email and holder is not None:
            message = f"the id {gid} for guardian {_quote(email)} is already used by {holder.name}"
            errors.append(RowError(info.line, None, message))
        ids[email] = gid
    return ids, errors


def _guardian_person(gid: str, info: _GuardianInfo, school_id: str, current: Directory) -> Person:
    existing = current.people.get(gid)
    home = existing.school_id if existing is not None else school_id
    phone = info.phone
    if not info.phone_known and existing is not None:
        phone = existing.phone
    return Person(gid, home, info.name, Role.GUARDIAN, info.email, phone)


def _check_students(rows: Sequence[_StudentRow], school_id: str, current: Directory) -> list[RowError]:
    errors = []
    for row in rows:
        existing = current.students.get(row.id)
        if existing is not None and existing.school_id != school_id:
            message = (
                f"{row.id_label} {_quote(row.id_value)}: {row.id} is a student of school "
                f"{_quote(existing.school_id)}"
            )
            errors.append(RowError(row.line, row.id_label, message))
    return errors


# -- comparing ----------------------------------------------------------------


@dataclass(slots=True)
class _Target:
    """The school's students and the file's guardians as they will be after the import."""

    students: dict[str, Student]
    guardians: dict[str, Person]
    classes_created: tuple[SchoolClass, ...]
    consents: tuple[tuple[str, str, ConsentState], ...] = ()


def _diff_students(
    target: _Target, school_id: str, current: Directory
) -> tuple[list[Student], list[tuple[Student, Student]], list[Student], int]:
    before = {s.id: s for s in current.students.values() if s.school_id == school_id}
    added: list[Student] = []
    updated: list[tuple[Student, Student]] = []
    for sid, new in target.students.items():
        old = before.get(sid)
        if old is None:
            added.append(new)
        elif old != new:
            updated.append((old, new))
    removed = [before[sid] for sid in sorted(before) if sid not in target.students]
    unchanged = len(target.students) - len(added) - len(updated)
    return added, updated, removed, unchanged


def _diff_guardians(target: _Target, current: Directory) -> tuple[list[Person], list[tuple[Person, Person]], int]:
    added: list[Person] = []
    updated: list[tuple[Person, Person]] = []
    for gid, new in target.guardians.items():
        old = current.people.get(gid)
        if old is None:
            added.append(new)
        elif old != new:
            updated.append((old, new))
    return added, updated, len(target.guardians) - len(added) - len(updated)


def _left_guardians(
    target: _Target, school_id: str, current: Directory
) -> tuple[list[Person], list[tuple[Person, Person]]]:
    """Guardians of the school missing from the file: removed when they have no child left,
    else moved to the school of a remaining child. Staff are never touched."""
    candidates = {g for s in current.students.values() if s.school_id == school_id for g in s.guardians}
    candidates |= {p.id for p in current.people.values() if p.role is Role.GUARDIAN and p.school_id == school_id}
    removed: list[Person] = []
    moved: list[tuple[Person, Person]] = []
    for gid in sorted(candidates - target.guardians.keys()):
        person = current.people.get(gid)
        if person is None or person.role is not Role.GUARDIAN:
            continue
        elsewhere = {s.school_id for s in current.children_of(gid) if s.school_id != school_id}
        if not elsewhere:
            removed.append(person)
        elif person.school_id == school_id:
            moved.append((person, replace(person, school_id=min(elsewhere))))
    return removed, moved


def _emptied_classes(
    target: _Target, removed: Iterable[Student], updated: Iterable[tuple[Student, Student]]
) -> tuple[str, ...]:
    left = {s.class_id for s in removed} | {old.class_id for old, _ in updated}
    still = {s.class_id for s in target.students.values()}
    return tuple(sorted(left - still))


def _compare(target: _Target, school_id: str, current: Directory, rows: int) -> _Changes:
    s_added, s_updated, s_removed, s_same = _diff_students(target, school_id, current)
    g_added, g_updated, g_same = _diff_guardians(target, current)
    g_removed, g_moved = _left_guardians(target, school_id, current)
    gone = {s.id for s in s_removed}
    chats = sorted(c.id for c in current.chats.values() if c.student_id in gone)
    return _Changes(
        rows=rows,
        classes_created=target.classes_created,
        students_added=tuple(s_added),
        students_updated=tuple(s_updated),
        students_removed=tuple(s_removed),
        students_unchanged=s_same,
        guardians_added=tuple(g_added),
        guardians_updated=tuple(g_updated + g_moved),
        guardians_removed=tuple(g_removed),
        guardians_unchanged=g_same,
        chats_removed=tuple(chats),
        classes_emptied=_emptied_classes(target, s_removed, s_updated),
        consents=target.consents,
    )


# -- the whole import ----------------------------------------------------------


def plan_import(text: str, school_id: str, current: Directory) -> ImportPlan:
    """Read a school's CSV export and plan the changes that make the directory match it."""
    rows, errors, fatal = _parse(text, school_id, current)
    if fatal:
        return ImportPlan(school_id, errors)
    target, resolve_errors = _resolve(rows, school_id, current)
    errors = sorted(errors + resolve_errors, key=lambda e: e.line or 0)
    if errors or target is None:
        return ImportPlan(school_id, errors)
    return ImportPlan(school_id, [], _compare(target, school_id, current, len(rows)))


def _parse(text: str, school_id: str, current: Directory) -> tuple[list[_StudentRow], list[RowError], bool]:
    """The valid rows, the errors, and whether they are fatal (nothing more to check)."""
    if school_id not in current.schools:
        message = f"school {_quote(school_id)} does not exist: create it before importing"
        return [], [RowError(None, None, message)], True
    lines, errors = _read_lines(text)
    if not lines:
        message = "the file is empty: expected a header line (eleve_id;eleve_prenom;eleve_nom;...)"
        return [], errors or [RowError(1, None, message)], True
    header, header_errors = _read_header(lines[0])
    if header_errors:
        return [], header_errors + errors, True
    if len(lines) == 1 and not errors:
        message = "no student after the header: an import never empties a school"
        return [], [RowError(lines[0].number, None, message)], True
    rows: list[_StudentRow] = []
    for line in lines[1:]:
        row, row_errors = _parse_row(header, line, school_id)
        errors.extend(row_errors)
        if row is not None:
            rows.append(row)
    errors.extend(_check_duplicates(rows))
    errors.extend(_check_students(rows, school_id, current))
    return rows, errors, False


def _resolve(
    rows: Sequence[_StudentRow], school_id: str, current: Directory
) -> tuple[_Target | None, list[RowError]]:
    merged, errors = _merge_guardians(rows)
    ids, id_errors = _guardian_ids(merged, current)
    classes = _ClassResolver(school_id, current)
    students: dict[str, Student] = {}
    for row in rows:
        class_id = classes.resolve(row)
        if isinstance(class_id, RowError):
            errors.append(class_id)
            continue
        guardians = tuple(ids[g.email] for g in row.guardians)
        students[row.id] = Student(row.id, school_id, class_id, row.name, guardians)
    errors += id_errors
    if errors:
        return None, errors
    people = {ids[e]: _guardian_person(ids[e], info, school_id, current) for e, info in merged.items()}
    consents = tuple((row.id, ids[g.email], g.consent) for row in rows for g in row.guardians
                     if g.consent is not None)
    return _Target(students, people, tuple(classes.created.values()), consents), []
