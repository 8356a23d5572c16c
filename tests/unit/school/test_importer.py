"""The import of a school's CSV export: parsing, validation, ids and the plan of changes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from school.directory import Chat, Directory, Person, Role, School, SchoolClass, Student
from school.importer import (
    ImportPlan,
    ImportRejected,
    decode_csv,
    derive_guardian_id,
    derive_student_id,
    normalize_email,
    normalize_phone,
    plan_import,
    slug,
)

SCHOOL = "ecole-jaures"
SAMPLE = Path(__file__).resolve().parents[3] / "docs" / "samples" / "import-example.csv"

HEADER = (
    "eleve_id;eleve_prenom;eleve_nom;classe;"
    "responsable1_prenom;responsable1_nom;responsable1_email;responsable1_telephone;"
    "responsable2_prenom;responsable2_nom;responsable2_email;responsable2_telephone"
)
# The demo school of protocol.md, as its export would give it.
DEMO_ROWS = [
    "s-lea;Léa;Petit;CP A;Claire;Petit;claire.petit@example.fr;06 12 34 56 78;"
    "Julien;Petit;julien.petit@example.fr;06.11.11.11.11",
    "s-hugo;Hugo;Durand;CP A;Sophie;Durand;sophie.durand@example.fr;06 22 22 22 22;;;;",
    "s-ines;Inès;Durand;CM2 B;Sophie;Durand;Sophie.Durand@Example.fr;;;;;",
    "s-adam;Adam;Benali;CM2 B;Karim;Benali;karim.benali@example.fr;;;;;",
]


def csv_text(rows: list[str], header: str = HEADER, delimiter: str = ";") -> str:
    lines = [header, *rows]
    return "\n".join(line.replace(";", delimiter) for line in lines) + "\n"


def school_only() -> Directory:
    directory = Directory()
    directory.put(
        School(SCHOOL, "École Jean Jaurès", "2025-2026", guardians_start_chats=True),
        Person("d-bernard", SCHOOL, "M. Bernard", Role.DIRECTOR),
    )
    return directory


def demo_directory() -> Directory:
    directory = school_only()
    directory.put(
        Person("t-martin", SCHOOL, "Mme Martin", Role.TEACHER),
        Person("t-nguyen", SCHOOL, "M. Nguyen", Role.TEACHER),
        SchoolClass("cp-a", SCHOOL, "CP A", ("t-martin",)),
        SchoolClass("cm2-b", SCHOOL, "CM2 B", ("t-nguyen",)),
        guardian("p-lea-mere", "Claire Petit", "claire.petit@example.fr", "+33612345678"),
        guardian("p-lea-pere", "Julien Petit", "julien.petit@example.fr", "+33611111111"),
        guardian("p-durand", "Sophie Durand", "sophie.durand@example.fr", "+33622222222"),
        guardian("p-adam", "Karim Benali", "karim.benali@example.fr", None),
        Student("s-lea", SCHOOL, "cp-a", "Léa Petit", ("p-lea-mere", "p-lea-pere")),
        Student("s-hugo", SCHOOL, "cp-a", "Hugo Durand", ("p-durand",)),
        Student("s-ines", SCHOOL, "cm2-b", "Inès Durand", ("p-durand",)),
        Student("s-adam", SCHOOL, "cm2-b", "Adam Benali", ("p-adam",)),
        Chat("s-adam~t-nguyen", SCHOOL, "s-adam", "t-nguyen"),
    )
    return directory


def guardian(gid: str, name: str, email: str, phone: str | None, school: str = SCHOOL) -> Person:
    return Person(gid, school, name, Role.GUARDIAN, email, phone)


def apply(current: Directory, plan: ImportPlan) -> Directory:
    """What the store does with a plan, in memory."""
    gone = {kind: set(ids) for kind, ids in plan.deletions().items()}
    result = Directory(
        schools=dict(current.schools),
        people={k: v for k, v in current.people.items() if k not in gone["people"]},
        classes={k: v for k, v in current.classes.items() if k not in gone["classes"]},
        students={k: v for k, v in current.students.items() if k not in gone["students"]},
        chats={k: v for k, v in current.chats.items() if k not in gone["chats"]},
    )
    result.put(*plan.upserts())
    return result


def single_error(plan: ImportPlan) -> str:
    assert not plan.ok
    assert len(plan.errors) == 1, [str(e) for e in plan.errors]
    return str(plan.errors[0])


# -- good files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("delimiter", "prefix", "newline"),
    [(";", "\ufeff", "\n"), (",", "", "\n"), (";", "", "\r\n"), (",", "\ufeff", "\r\n")],
)
def test_a_good_file_with_either_delimiter_and_bom(delimiter: str, prefix: str, newline: str) -> None:
    text = prefix + csv_text(DEMO_ROWS, delimiter=delimiter).replace("\n", newline)
    plan = plan_import(text, SCHOOL, school_only())

    assert plan.ok, plan.errors
    summary = plan.summary()
    assert (summary.classes_created, summary.students_added, summary.guardians_added) == (2, 4, 4)
    after = apply(school_only(), plan)
    assert sorted(after.classes) == ["cm2-b", "cp-a"]
    assert after.students["s-lea"].class_id == "cp-a"
    assert after.students["s-ines"].name == "Inès Durand"


def test_both_delimiters_give_the_same_plan() -> None:
    semicolon = plan_import(csv_text(DEMO_ROWS), SCHOOL, school_only())
    comma = plan_import("\ufeff" + csv_text(DEMO_ROWS, delimiter=","), SCHOOL, school_only())
    assert semicolon.upserts() == comma.upserts()


def test_new_guardians_get_ids_from_their_email_and_normalized_details() -> None:
    plan = plan_import(csv_text(DEMO_ROWS), SCHOOL, school_only())
    after = apply(school_only(), plan)

    sophie = after.people[derive_guardian_id("sophie.durand@example.fr")]
    assert sophie.id.startswith("p-") and len(sophie.id) == 14
    assert (sophie.name, sophie.email, sophie.phone, sophie.role) == (
        "Sophie Durand",
        "sophie.durand@example.fr",
        "+33622222222",
        Role.GUARDIAN,
    )
    assert after.people[derive_guardian_id("julien.petit@example.fr")].phone == "+33611111111"


def test_a_parent_with_two_children_in_two_classes_is_one_guardian() -> None:
    plan = plan_import(csv_text(DEMO_ROWS), SCHOOL, school_only())
    after = apply(school_only(), plan)

    sophie = derive_guardian_id("sophie.durand@example.fr")
    assert [p.id for p in after.people.values() if p.email == "sophie.durand@example.fr"] == [sophie]
    assert [s.id for s in after.children_of(sophie)] == ["s-hugo", "s-ines"]
    assert {"class:cp-a", "class:cm2-b"} <= set(after.home_channels(sophie))


def test_separated_parents_are_two_guardians_of_the_same_child() -> None:
    plan = plan_import(csv_text(DEMO_ROWS), SCHOOL, school_only())
    after = apply(school_only(), plan)

    mother = derive_guardian_id("claire.petit@example.fr")
    father = derive_guardian_id("julien.petit@example.fr")
    assert after.students["s-lea"].guardians == (mother, father)
    for parent in (mother, father):
        assert "class:cp-a" in after.home_channels(parent)
        assert "class:cm2-b" not in after.home_channels(parent)


def test_english_headers_and_student_numbers() -> None:
    header = "student_number,first_name,last_name,class,guardian1_name,guardian1_email,guardian1_phone"
    rows = ["  123 456 ,Zoé,Petit,CE1 Élodie,Marc Petit,marc@example.fr,+32 470 12 34 56"]
    plan = plan_import(csv_text(rows, header=header), SCHOOL, school_only())

    assert plan.ok, plan.errors
    after = apply(school_only(), plan)
    student = after.students[derive_student_id(SCHOOL, "123456")]
    assert student.class_id == "ce1-elodie"
    assert after.classes["ce1-elodie"].name == "CE1 Élodie"
    assert after.people[student.guardians[0]].phone == "+32470123456"


def test_headers_are_matched_without_case_accents_or_separators() -> None:
    header = (
        "Élève ID;Élève Prénom;Élève Nom;Classe;Responsable 1 Nom;Responsable 1 E-mail;"
        "Responsable 1 Téléphone;Civilité;Date de naissance"
    )
    rows = ["s-1;Jade;Roux;CP A;Sylvie Roux;sylvie@example.fr;0612345678;Mme;2019-03-02"]
    plan = plan_import(csv_text(rows, header=header), SCHOOL, school_only())

    assert plan.ok, plan.errors
    assert plan.summary().students_added == 1


def test_blank_and_empty_rows_are_skipped_and_lines_still_count() -> None:
    rows = ["", DEMO_ROWS[0], ";;;;;;;;;;;", "s-x;X;;CP A;A;B;b@example.fr;;;;;"]
    plan = plan_import(csv_text(rows), SCHOOL, school_only())
    assert single_error(plan) == "line 5: eleve_nom is empty (required)"


def test_a_quoted_value_over_two_lines_keeps_line_numbers_right() -> None:
    rows = [
        's-1;Jade;Roux;CP A;;"Roux\nSylvie";sylvie@example.fr;;;;;',
        "s-2;Tom;Roux;CP A;;Roux;tom@;;;;;",
    ]
    plan = plan_import(csv_text(rows), SCHOOL, school_only())
    assert single_error(plan) == "line 4: responsable1_email 'tom@' is not an e-mail address"


def test_the_documented_sample_file_imports_cleanly() -> None:
    text = decode_csv(SAMPLE.read_bytes())
    plan = plan_import(text, SCHOOL, school_only())
    assert plan.ok, [str(e) for e in plan.errors]
    assert plan.summary().students_added >= 4


# -- re-imports ---------------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing() -> None:
    plan = plan_import(csv_text(DEMO_ROWS), SCHOOL, demo_directory())

    assert plan.ok, plan.errors
    assert plan.upserts() == []
    assert plan.deletions() == {"students": [], "people": [], "classes": [], "chats": []}
    assert plan.summary().unchanged == 8
    assert plan.describe() == [
        "school ecole-jaures: 4 students in the file",
        "nothing would change",
        "unchanged: 4 students, 4 guardians",
    ]


def test_ids_are_stable_from_one_import_to_the_next() -> None:
    first = plan_import(csv_text(DEMO_ROWS), SCHOOL, school_only())
    after = apply(school_only(), first)
    again = plan_import(csv_text(list(reversed(DEMO_ROWS))), SCHOOL, after)

    assert again.ok and again.upserts() == []
    assert again.summary().unchanged == 8


def test_update_moves_a_class_changes_a_phone_and_removes_a_student_and_their_guardian() -> None:
    rows = [
        DEMO_ROWS[0],
        "s-hugo;Hugo;Durand;CM2 B;Sophie;Durand;sophie.durand@example.fr;07 99 88 77 66;;;;",
        DEMO_ROWS[2],
    ]
    current = demo_directory()
    plan = plan_import(csv_text(rows), SCHOOL, current)

    assert plan.ok, plan.errors
    summary = plan.summary()
    assert summary.as_dict() == {
        "classes_created": 0,
        "students_added": 0,
        "students_updated": 1,
        "students_removed": 1,
        "students_unchanged": 2,
        "guardians_added": 0,
        "guardians_updated": 1,
        "guardians_removed": 1,
        "guardians_unchanged": 2,
        "unchanged": 4,
    }
    assert plan.deletions() == {
        "students": ["s-adam"],
        "people": ["p-adam"],
        "classes": [],
        "chats": ["s-adam~t-nguyen"],
    }
    after = apply(current, plan)
    assert after.students["s-hugo"].class_id == "cm2-b"
    assert after.people["p-durand"].phone == "+33799887766"
    assert after.classes["cp-a"].teachers == ("t-martin",)
    assert after.classes["cm2-b"].teachers == ("t-nguyen",)
    assert {"t-martin", "t-nguyen", "d-bernard"} <= set(after.people)
    assert "class:cp-a" not in after.home_channels("p-durand")
    text = "\n".join(plan.describe())
    assert "would update 1 student: s-hugo (class cp-a -> cm2-b)" in text
    assert "would update 1 guardian: p-durand (phone)" in text
    assert "would remove 1 student: s-adam (Adam Benali)" in text
    assert "would remove 1 guardian: p-adam (Karim Benali, no child left)" in text
    assert "would delete 1 chat: chat:s-adam~t-nguyen" in text


def test_a_file_without_phone_column_keeps_the_phones() -> None:
    header = "eleve_id;eleve_prenom;eleve_nom;classe;responsable1_nom;responsable1_email"
    rows = ["s-hugo;Hugo;Durand;CP A;Sophie Durand;sophie.durand@example.fr"]
    current = demo_directory()
    plan = plan_import(csv_text(rows, header=header), SCHOOL, current)

    assert plan.ok, plan.errors
    assert apply(current, plan).people["p-durand"].phone == "+33622222222"


def test_a_class_emptied_by_the_import_is_kept() -> None:
    current = demo_directory()
    plan = plan_import(csv_text(DEMO_ROWS[:2]), SCHOOL, current)

    assert plan.ok
    assert plan.deletions()["classes"] == []
    assert "class cm2-b would have no students left (it is kept)" in plan.describe()
    assert apply(current, plan).classes["cm2-b"].teachers == ("t-nguyen",)


def test_a_guardian_with_a_child_in_another_school_is_kept_and_moved_there() -> None:
    current = demo_directory()
    current.put(
        School("ecole-ferry", "École Jules Ferry", "2025-2026"),
        SchoolClass("ce1", "ecole-ferry", "CE1"),
        Student("s-sam", "ecole-ferry", "ce1", "Sam Benali", ("p-adam",)),
    )
    plan = plan_import(csv_text(DEMO_ROWS[:3]), SCHOOL, current)

    assert plan.ok
    assert plan.deletions()["people"] == []
    assert apply(current, plan).people["p-adam"].school_id == "ecole-ferry"


def test_staff_are_never_deleted() -> None:
    current = demo_directory()
    current.put(Student("s-odd", SCHOOL, "cp-a", "Odd Case", ("t-martin",)))
    plan = plan_import(csv_text(DEMO_ROWS), SCHOOL, current)

    assert plan.ok
    assert plan.deletions()["students"] == ["s-odd"]
    assert plan.deletions()["people"] == []


def test_classes_are_found_by_name_or_id_and_created_with_a_slug() -> None:
    current = demo_directory()
    current.put(
        School("ecole-ferry", "École Jules Ferry", "2025-2026"),
        SchoolClass("ce2-a", "ecole-ferry", "CE2 A"),
    )
    header = "eleve_id;eleve_prenom;eleve_nom;classe_id;classe;responsable1_nom;responsable1_email"
    rows = [
        "s-1;Jade;Roux;;cm2  b;Sylvie Roux;sylvie@example.fr",
        "s-2;Tom;Roux;cp-a;;Sylvie Roux;sylvie@example.fr",
        "s-3;Lina;Petit;;CE2 A;Marc Petit;marc@example.fr",
        "s-4;Noah;Petit;;ce2-a;Marc Petit;marc@example.fr",
        "s-5;Rose;Faure;cm1-x;CM1 Mixte;Julie Faure;julie@example.fr",
    ]
    plan = plan_import(csv_text(rows, header=header), SCHOOL, current)

    assert plan.ok, plan.errors
    after = apply(current, plan)
    classes = {sid: after.students[sid].class_id for sid in ("s-1", "s-2", "s-3", "s-4", "s-5")}
    assert classes == {
        "s-1": "cm2-b",
        "s-2": "cp-a",
        "s-3": "ecole-jaures-ce2-a",
        "s-4": "ecole-jaures-ce2-a",
        "s-5": "cm1-x",
    }
    assert after.classes["ecole-jaures-ce2-a"].school_id == SCHOOL
    assert after.classes["cm1-x"].name == "CM1 Mixte"
    assert plan.summary().classes_created == 2


def test_the_dry_run_lists_a_limited_number_of_ids() -> None:
    rows = [f"s-{n};Élève;N{n};CP A;;Parent {n};p{n}@example.fr;;;;;" for n in range(12)]
    plan = plan_import(csv_text(rows), SCHOOL, school_only())

    lines = plan.describe(limit=3)
    added = next(line for line in lines if line.startswith("would add 12 students"))
    assert added == (
        "would add 12 students: s-0 (Élève N0, cp-a), s-1 (Élève N1, cp-a), s-2 (Élève N2, cp-a), and 9 more"
    )
    assert lines[0] == "school ecole-jaures: 12 students in the file"


# -- bad files and rows ---------------------------------------------------------


BAD_ROWS = [
    pytest.param(
        "s-9;;Roux;CP A;;Roux;r@example.fr;;;;;",
        "line 6: eleve_prenom is empty (required)",
        id="missing-first-name",
    ),
    pytest.param(
        "s-9;Jade;Roux;;;Roux;r@example.fr;;;;;",
        "line 6: classe is empty (required)",
        id="missing-class",
    ),
    pytest.param(
        ";Jade;Roux;CP A;;Roux;r@example.fr;;;;;",
        "line 6: eleve_id is empty: give the student's id or number (eleve_numero)",
        id="missing-id",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;Roux;marie@;;;;;",
        "line 6: responsable1_email 'marie@' is not an e-mail address",
        id="bad-email",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;Roux;marie@example.fr;06 12 34;;;;",
        "line 6: responsable1_telephone '06 12 34' is not a phone number "
        "(e.g. 06 12 34 56 78 or +33 6 12 34 56 78)",
        id="bad-phone",
    ),
    pytest.param(
        "s-hugo;Jade;Roux;CP A;Marie;Roux;marie@example.fr;;;;;",
        "line 6: eleve_id 's-hugo' is already used on line 3",
        id="duplicate-student",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;Roux;marie@example.fr;;Marie;Roux;MARIE@example.fr;",
        "line 6: responsable2_email 'marie@example.fr' is the same guardian as responsable1_email",
        id="same-guardian-twice",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;;;;;;;;",
        "line 6: responsable1_email is empty: each student needs at least one guardian",
        id="no-guardian",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;;marie@example.fr;;;;;",
        "line 6: responsable1_nom is empty (required when another guardian column is filled)",
        id="guardian-without-name",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;Roux;;0612345678;;;;",
        "line 6: responsable1_email is empty: a guardian is identified by their e-mail address",
        id="guardian-without-email",
    ),
    pytest.param(
        "s 9;Jade;Roux;CP A;Marie;Roux;marie@example.fr;;;;;",
        "line 6: eleve_id 's 9' is not a valid id (letters, digits, '.', '_', '-'; at most 128 characters)",
        id="bad-student-id",
    ),
    pytest.param(
        "s-9;Jade;Roux;CP A;Marie;Roux;marie@example.fr;;;;;;extra",
        "line 6: 13 values but the header has 12 columns (quote any value that contains the delimiter)",
        id="too-many-values",
    ),
    pytest.param(
        "s-9;Jade;Durand;CP A;Annie;Durand;sophie.durand@example.fr;;;;;",
        "line 6: responsable1_email 'sophie.durand@example.fr': the name differs from line 3; "
        "the same guardian must have the same details on every row",
        id="conflicting-guardian",
    ),
    pytest.param(
        "s-9;Jade;Durand;CP A;Sophie;Durand;sophie.durand@example.fr;06 00 00 00 01;;;;",
        "line 6: responsable1_email 'sophie.durand@example.fr': the phone differs from line 3; "
        "the same guardian must have the same details on every row",
        id="conflicting-phone",
    ),
    pytest.param(
        "s-9;Jade;Roux;!!;Marie;Roux;marie@example.fr;;;;;",
        "line 6: class '!!' has no letter or digit",
        id="bad-class-name",
    ),
]


@pytest.mark.parametrize(("row", "expected"), BAD_ROWS)
def test_a_bad_row_names_its_line_and_changes_nothing(row: str, expected: str) -> None:
    plan = plan_import(csv_text([*DEMO_ROWS, row]), SCHOOL, demo_directory())

    assert single_error(plan) == expected
    with pytest.raises(ImportRejected):
        plan.upserts()
    with pytest.raises(ImportRejected):
        plan.deletions()


def test_more_than_two_guardians_is_refused() -> None:
    header = HEADER + ";responsable3_nom;responsable3_email"
    rows = [row + ";;" for row in DEMO_ROWS] + [
        "s-9;Jade;Roux;CP A;Marie;Roux;m@example.fr;;Luc;Roux;l@example.fr;;Eve Roux;e@example.fr"
    ]
    plan = plan_import(csv_text(rows, header=header), SCHOOL, demo_directory())

    error = plan.errors[0]
    assert single_error(plan) == (
        "line 6: responsable3_nom is filled: a student has at most 2 guardians in Liaison"
    )
    assert (error.line, error.field) == (6, "responsable3_nom")


def test_errors_of_several_rows_are_all_reported_in_line_order() -> None:
    rows = [
        "s-1;Jade;Roux;CP A;;Roux;bad;;;;;",
        DEMO_ROWS[1],
        "s-1;Tom;;CP A;;Roux;r@example.fr;1;;;;",
    ]
    plan = plan_import(csv_text(rows), SCHOOL, school_only())

    assert [e.line for e in plan.errors] == [2, 4, 4]
    assert [e.field for e in plan.errors] == [
        "responsable1_email",
        "eleve_nom",
        "responsable1_telephone",
    ]


def test_a_plan_with_errors_exposes_nothing_to_write() -> None:
    plan = plan_import(csv_text([*DEMO_ROWS, "s-9;;;;;;;;;;;x"]), SCHOOL, demo_directory())

    assert not plan.ok
    with pytest.raises(ImportRejected) as caught:
        plan.upserts()
    assert caught.value.errors == plan.errors
    assert plan.summary().as_dict() == dict.fromkeys(plan.summary().as_dict(), 0)
    lines = plan.describe()
    assert lines[0] == f"{len(plan.errors)} errors in the file; nothing would be imported:"
    assert all(line.startswith("  line 6: ") for line in lines[1:])


def test_an_empty_file() -> None:
    for text in ("", "\ufeff", "\n\n  \n"):
        plan = plan_import(text, SCHOOL, demo_directory())
        assert single_error(plan).startswith("line 1: the file is empty")


def test_a_header_without_rows_never_empties_a_school() -> None:
    plan = plan_import(HEADER + "\n", SCHOOL, demo_directory())
    assert single_error(plan) == ("line 1: no student after the header: an import never empties a school")


def test_missing_columns_say_which_and_what_was_found() -> None:
    text = "id;prenom;nom;responsable1_nom;courriel\ns-1;Jade;Roux;Roux;r@example.fr\n"
    message = single_error(plan_import(text, SCHOOL, demo_directory()))

    assert message.startswith("line 1: missing columns: classe_id or classe, responsable1_email;")
    assert "found: id, prenom, nom, responsable1_nom, courriel" in message


def test_two_columns_with_the_same_meaning() -> None:
    text = "eleve_nom;nom\n"
    errors = plan_import(text, SCHOOL, demo_directory()).errors
    assert str(errors[0]) == "line 1: columns 'eleve_nom' and 'nom' both give eleve_nom"


def test_an_unknown_school() -> None:
    plan = plan_import(csv_text(DEMO_ROWS), "nowhere", demo_directory())
    assert single_error(plan) == "school 'nowhere' does not exist: create it before importing"
    assert plan.errors[0].line is None


def test_ids_of_another_school_are_refused() -> None:
    current = demo_directory()
    current.put(
        School("ecole-ferry", "École Jules Ferry", "2025-2026"),
        SchoolClass("ce1", "ecole-ferry", "CE1"),
        Student("s-sam", "ecole-ferry", "ce1", "Sam Benali", ("p-adam",)),
    )
    header = "eleve_id;eleve_prenom;eleve_nom;classe_id;responsable1_nom;responsable1_email"
    rows = ["s-sam;Sam;Benali;cp-a;K;k@example.fr", "s-new;Nina;Benali;ce1;K;k@example.fr"]
    plan = plan_import(csv_text(rows, header=header), SCHOOL, current)

    assert [str(e) for e in plan.errors] == [
        "line 2: eleve_id 's-sam': s-sam is a student of school 'ecole-ferry'",
        "line 3: class 'ce1' belongs to school 'ecole-ferry'",
    ]


# -- scale ------------------------------------------------------------------------


def generated_file(classes: int, per_class: int) -> str:
    rows = []
    for c in range(classes):
        for n in range(per_class):
            i = c * per_class + n
            shared = i % 20 == 0 and i >= per_class  # a second child of the previous class
            family = i - per_class if shared else i
            second = f"Parent2 {i};p2-{i}@example.fr;06 00 00 {i // 100:02d} {i % 100:02d}"
            rows.append(
                f"{i + 1000};Élève;N{i};CLASSE {c};Parent {family};p-{family}@example.fr;"
                f"07 00 00 {family // 100:02d} {family % 100:02d};" + (second if i % 10 == 3 else ";;")
            )
    header = (
        "eleve_numero;eleve_prenom;eleve_nom;classe;responsable1_nom;responsable1_email;"
        "responsable1_telephone;responsable2_nom;responsable2_email;responsable2_telephone"
    )
    return csv_text(rows, header=header)


def test_300_students_in_12_classes_plan_well_under_a_second() -> None:
    text = generated_file(12, 25)
    started = time.perf_counter()
    plan = plan_import(text, SCHOOL, demo_directory())
    elapsed = time.perf_counter() - started

    assert plan.ok, plan.errors[:3]
    assert elapsed < 0.5
    summary = plan.summary()
    assert (summary.classes_created, summary.students_added, summary.students_removed) == (12, 300, 4)
    assert summary.guardians_added == 300 - 13 + 30
    after = apply(demo_directory(), plan)

    started = time.perf_counter()
    again = plan_import(text, SCHOOL, after)
    assert time.perf_counter() - started < 0.5
    assert again.ok and again.upserts() == []


# -- values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("0612345678", "+33612345678"),
        ("612345678", "+33612345678"),
        ("01 23 45 67 89", "+33123456789"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("+330612345678", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("06\u00a012\u00a034\u00a056\u00a078", "+33612345678"),
        ("0692 12 34 56", "+262692123456"),
        ("0590 12 34 56", "+590590123456"),
        ("+32 470 12 34 56", "+32470123456"),
        ("06 12 34", None),
        ("00 33 12 34", None),
        ("+33 6 12 34", None),
        ("phone", None),
        ("+", None),
        ("06 12 34 56 78 90", None),
    ],
)
def test_phone_numbers_are_normalized_to_e164(raw: str, expected: str | None) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Marie.Curie@Example.FR ", "marie.curie@example.fr"),
        ("a+b@sub.example.org", "a+b@sub.example.org"),
        ("marie@", None),
        ("marie@example", None),
        ("marie curie@example.fr", None),
        ("@example.fr", None),
        ("a@b@example.fr", None),
    ],
)
def test_email_addresses(raw: str, expected: str | None) -> None:
    assert normalize_email(raw) == expected


def test_slugs_and_derived_ids() -> None:
    assert slug("CM2 B") == "cm2-b"
    assert slug(" 6ème  A ") == "6eme-a"
    assert slug("CE1/CE2") == "ce1-ce2"
    assert derive_student_id(SCHOOL, "12 ab") == derive_student_id(SCHOOL, "12AB")
    assert derive_student_id(SCHOOL, "1") != derive_student_id("other", "1")
    assert derive_guardian_id("Marie@Example.fr") == derive_guardian_id("marie@example.fr")


def test_decoding_an_export() -> None:
    text = "eleve_prenom;classe\nInès;CE1\n"
    assert decode_csv(b"\xef\xbb\xbf" + text.encode()) == text
    assert decode_csv(text.encode()) == text
    assert decode_csv(text.encode("cp1252")) == text
    assert decode_csv(text.encode("utf-16")) == text
