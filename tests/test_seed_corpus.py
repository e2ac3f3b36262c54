"""The seed corpus (models/seed_corpus) keeps the rules its checker states, the register balance among them."""

from __future__ import annotations

import sys
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parents[1] / "models" / "seed_corpus"
sys.path.insert(0, str(SEED_DIR))
import check  # noqa: E402


def test_the_corpus_passes_its_checks():
    rows, problems = check.load(SEED_DIR / "seed.jsonl")
    assert not problems + check.check(rows)


def test_a_label_that_owns_the_polite_register_is_rejected():
    """When 您 marks one collector label only, a model learns the pronoun as that label."""
    rows, _ = check.load(SEED_DIR / "seed.jsonl")
    shortcut = [dict(row, text=row["text"].replace("您", "你")) if row["label"] != "neutral_info" else row
                for row in rows]
    problems = check.check(shortcut)
    assert {p.split(":")[0] for p in problems} == {"threat_legal", "threat_third_party", "insult", "urgency",
                                                   "empathy"}
