"""A small synthetic NER sample for the quickstart and tests: DEMO DATA, not CoNLL-2003 text.

Sentences are filled from templates with invented names, written in CoNLL column format (token, tag) with IOB2
tags for PER, ORG, LOC and MISC. ``python -m trainers.demo_data`` regenerates the shipped files exactly.

The validation and test splits also draw on names and sentence templates that the train split never uses (about
half of each), each from its own held-out pool, as real held-out data would: a model that only memorized the
training names scores visibly below 1.0 on both, and choosing on validation does not peek at the test's names.
"""

from __future__ import annotations

import os
import random

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
SPLIT_SIZES = {"train": 400, "validation": 100, "test": 100}

PEOPLE = ["Mara Velden", "Tomas Oduya", "Ilse Brandqvist", "Kofi Mensa", "Anika Ravel", "Joss Harlan",
          "Priya Sandoval", "Lev Okonkwo", "Rina Takeda", "Bram Costel", "Elin Moravec", "Dario Falk",
          "Noor Haddane", "Sven Aalto", "Greta Lindqvar", "Oren Castell"]
ORGS = ["Norvane Bank", "Helix Motors", "the Tarsin Institute", "Quillon Group", "Aster Airways",
        "Brightwater Council", "Kestrel Labs", "the Orlo Football Club", "Veyra Energy", "Calden Press"]
PLACES = ["Port Aldane", "Veskaria", "Lake Miren", "Talbrook", "the Osric Valley", "Nordhaven", "Carrow",
          "East Belmora", "Sundgard", "Rivelle"]
MISC = ["Veskarian", "Talbrook Open", "Aldane Cup", "Nordic Rail Act", "Belmoran", "Orlo Derby"]
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last {day} .",
    "{ORG} said on {day} that {PER} would lead its office in {LOC} .",
    "The {MISC} team beat {ORG} 3-1 in {LOC} .",
    "{PER} , a {MISC} citizen , moved to {LOC} .",
    "Shares in {ORG} rose after {PER} spoke in {LOC} .",
    "{PER} won the {MISC} on {day} .",
    "Talks between {ORG} and {ORG2} ended in {LOC} without a deal .",
    "{PER} met {PER2} at the {MISC} in {LOC} .",
    "Rain delayed the {MISC} in {LOC} on {day} .",
    "{ORG} opened a plant near {LOC} , {PER} told reporters .",
]
# Only in the test split: unseen names and unseen contexts
TEST_PEOPLE = ["Halvard Quist", "Odile Marchetti", "Yusuf Demirel", "Catalina Reyes", "Ansel Voigt",
               "Mireille Dufort", "Tavi Runeberg", "Saoirse Kealy"]
TEST_ORGS = ["Pellucid Systems", "Ostrava Mills", "the Corvin Trust", "Silverline Freight", "Haldor Insurance",
             "Marrow Foods"]
TEST_PLACES = ["Kelmarsh", "Dunmore Heights", "Quenby", "the Eskar Coast", "Lowfield", "Varnholm"]
TEST_MISC = ["Quenby Marathon", "Varnese", "Harvest Accord", "Eskari"]
TEST_TEMPLATES = [
    "Officials in {LOC} confirmed that {PER} had left {ORG} .",
    "{PER} , who chairs {ORG} , flew to {LOC} for the {MISC} .",
    "According to {ORG} , the {MISC} drew record crowds in {LOC} .",
    "In {LOC} , {PER} and {PER2} signed for {ORG} on {day} .",
    "{MISC} fans gathered outside the offices of {ORG} on {day} .",
    "A spokesman for {ORG} declined to comment on {PER} .",
]
# Only in the validation split: its own unseen names and contexts (none of them in the test split either)
VALIDATION_PEOPLE = ["Ingrid Solberg", "Matteo Ruggeri", "Amara Nwosu", "Kenji Arakawa", "Liesel Brandt",
                     "Tobias Wren", "Farah Qadir", "Emeric Dassin"]
VALIDATION_ORGS = ["Granite Mutual", "Oakhurst Textiles", "the Pemberly Foundation", "Tidewater Shipping",
                   "Corbel Analytics", "Lumen Brewers"]
VALIDATION_PLACES = ["Ashcombe", "Greyfell", "Marlow Sound", "the Tavrin Hills", "Brackwater", "Seldon"]
VALIDATION_MISC = ["Greyfell Regatta", "Tavrinese", "Coastal Charter", "Ashcombe Trophy"]
VALIDATION_TEMPLATES = [
    "{PER} told {ORG} staff in {LOC} that the {MISC} would go ahead .",
    "Police in {LOC} said {PER} was not linked to {ORG} .",
    "{ORG} bought a stake in {ORG2} , its chairman {PER} said on {day} .",
    "Visitors to {LOC} for the {MISC} praised {PER} .",
    "On {day} , {PER} resigned from {ORG} after a vote in {LOC} .",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
SLOTS = {"PER": PEOPLE, "PER2": PEOPLE, "ORG": ORGS, "ORG2": ORGS, "LOC": PLACES, "MISC": MISC}


def _slots(people: list[str], orgs: list[str], places: list[str], misc: list[str]) -> dict[str, list[str]]:
    return {"PER": people, "PER2": people, "ORG": orgs, "ORG2": orgs, "LOC": places, "MISC": misc}


# Per held-out split: the templates and names only it uses
HELD_OUT = {
    "validation": (VALIDATION_TEMPLATES,
                   _slots(VALIDATION_PEOPLE, VALIDATION_ORGS, VALIDATION_PLACES, VALIDATION_MISC)),
    "test": (TEST_TEMPLATES, _slots(TEST_PEOPLE, TEST_ORGS, TEST_PLACES, TEST_MISC)),
}
UNSEEN_SHARE = 0.5  # a held-out split's chance of an unseen template, and (per slot) of an unseen name


def make_sentence(rng: random.Random, split: str = "train") -> list[tuple[str, str]]:
    """One sentence as (word, tag) pairs; a held-out split (``HELD_OUT``) mixes in its own templates and names."""
    unseen = split in HELD_OUT
    unseen_templates, unseen_slots = HELD_OUT.get(split, (TEMPLATES, SLOTS))
    templates = unseen_templates if unseen and rng.random() < UNSEEN_SHARE else TEMPLATES
    words = []
    for piece in rng.choice(templates).split():
        slot = piece.strip("{}") if piece.startswith("{") else None
        if slot == "day":
            words.append((rng.choice(DAYS), "O"))
        elif slot:
            entity_type = slot.rstrip("2")
            pool = unseen_slots[slot] if unseen and rng.random() < UNSEEN_SHARE else SLOTS[slot]
            for i, word in enumerate(rng.choice(pool).split()):
                if word == "the":
                    words.append((word, "O"))
                    continue
                inside = i > 0 and words[-1][1] != "O"
                words.append((word, ("I-" if inside else "B-") + entity_type))
        else:
            words.append((piece, "O"))
    return words


def write_demo_data(directory: str = DEMO_DIR, seed: int = 13) -> None:
    rng = random.Random(seed)
    for split, size in SPLIT_SIZES.items():
        with open(os.path.join(directory, f"demo_{split}.txt"), "w", encoding="utf-8") as f:
            f.write("-DOCSTART- O\n\n")
            for _ in range(size):
                words = make_sentence(rng, split)
                f.write("".join(f"{word} {tag}\n" for word, tag in words) + "\n")

