"""A small synthetic NER sample for the quickstart and tests: DEMO DATA, not CoNLL-2003 text.

Sentences are filled from templates with invented names, written in CoNLL column format (token, tag) with IOB2
tags for PER, ORG, LOC and MISC. ``python -m trainers.demo_data`` regenerates the shipped files exactly.

The test split also draws on names and sentence templates that the train and validation splits never use (about
half of each), as real test data would: a model that only memorized the training names scores visibly below 1.0.
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
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
SLOTS = {"PER": PEOPLE, "PER2": PEOPLE, "ORG": ORGS, "ORG2": ORGS, "LOC": PLACES, "MISC": MISC}
TEST_SLOTS = {"PER": TEST_PEOPLE, "PER2": TEST_PEOPLE, "ORG": TEST_ORGS, "ORG2": TEST_ORGS, "LOC": TEST_PLACES,
              "MISC": TEST_MISC}
UNSEEN_SHARE = 0.5  # the test split's chance of an unseen template, and (per slot) of an unseen name


def make_sentence(rng: random.Random, unseen: bool = False) -> list[tuple[str, str]]:
    """One sentence as (word, tag) pairs; ``unseen`` mixes in the test-only templates and names."""
    templates = TEST_TEMPLATES if unseen and rng.random() < UNSEEN_SHARE else TEMPLATES
    words = []
    for piece in rng.choice(templates).split():
        slot = piece.strip("{}") if piece.startswith("{") else None
        if slot == "day":
            words.append((rng.choice(DAYS), "O"))
        elif slot:
            entity_type = slot.rstrip("2")
            pool = TEST_SLOTS[slot] if unseen and rng.random() < UNSEEN_SHARE else SLOTS[slot]
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
                words = make_sentence(rng, unseen=split == "test")
                f.write("".join(f"{word} {tag}\n" for word, tag in words) + "\n")

