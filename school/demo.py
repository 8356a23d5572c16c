"""The demo school of protocol v1 (ids are stable; `liaison serve --demo` loads it)."""

from __future__ import annotations

from school.directory import Person, Role, School, SchoolClass, Student

SCHOOL_ID = "ecole-jaures"


def demo_school() -> list[School | Person | SchoolClass | Student]:
    guardian = Role.GUARDIAN
    return [
        School(SCHOOL_ID, "École Jean Jaurès", year="2026-2027", guardians_start_chats=True),
        Person("d-bernard", SCHOOL_ID, "M. Bernard", Role.DIRECTOR),
        Person("t-martin", SCHOOL_ID, "Mme Martin", Role.TEACHER),
        Person("t-nguyen", SCHOOL_ID, "M. Nguyen", Role.TEACHER),
        Person("p-lea-mere", SCHOOL_ID, "Claire Petit", guardian, "claire.petit@example.fr"),
        Person("p-lea-pere", SCHOOL_ID, "Julien Petit", guardian, "julien.petit@example.fr"),
        Person("p-durand", SCHOOL_ID, "Sophie Durand", guardian, "sophie.durand@example.fr"),
        Person("p-adam", SCHOOL_ID, "Karim Benali", guardian, "karim.benali@example.fr"),
        SchoolClass("cp-a", SCHOOL_ID, "CP A", teachers=("t-martin",)),
        SchoolClass("cm2-b", SCHOOL_ID, "CM2 B", teachers=("t-nguyen",)),
        Student("s-lea", SCHOOL_ID, "cp-a", "Léa Petit", guardians=("p-lea-mere", "p-lea-pere")),
        Student("s-hugo", SCHOOL_ID, "cp-a", "Hugo Durand", guardians=("p-durand",)),
        Student("s-ines", SCHOOL_ID, "cm2-b", "Inès Durand", guardians=("p-durand",)),
        Student("s-adam", SCHOOL_ID, "cm2-b", "Adam Benali", guardians=("p-adam",)),
    ]
