"""The role heads' training rows and loss (models/classifier): what each flag development row may be taught."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "classifier"))
import data  # noqa: E402
from model import allowed_label_loss, allowed_mask  # noqa: E402


def test_flag_rows_allow_the_labels_their_categories_mean():
    rows = data.flag_call_texts(list(data.FLAG_SETS))
    assert {row.source for row in rows} == set(data.FLAG_SETS)
    flag_labels = {role: set(meant.values()) for role, meant in data.CATEGORY_LABEL.items()}
    for row in rows:
        assert row.allowed and row.allowed <= set(data.HEADS[row.role])
        # a row allows either some flag labels only, or every label but them
        assert row.allowed <= flag_labels[row.role] or not row.allowed & flag_labels[row.role]
    threat_and_insult = [row for row in rows if row.allowed == {"threat_legal", "insult"}]
    assert threat_and_insult, "the sets have threat + insult rows"
    neutral = next(row for row in rows if row.role == "borrower" and "neutral" in row.allowed)
    assert neutral.allowed == {"distress", "anger", "promise_to_pay", "refusal", "neutral"}


def test_seed_rows_allow_their_one_label():
    rows = data.seed_call_texts("train")
    assert len(rows) == len(data.seed("train"))
    assert all(len(row.allowed) == 1 and row.source == "seed" for row in rows)


def test_the_loss_is_cross_entropy_for_one_label_and_uses_the_allowed_set_otherwise():
    torch.manual_seed(0)
    labels = data.COLLECTOR
    rows = [data.CallText("a", "collector", frozenset({"urgency"}), "seed"),
            data.CallText("b", "collector", frozenset({"threat_legal", "insult"}), "development")]
    logits = torch.randn(2, len(labels))
    allowed = allowed_mask(rows, labels)
    assert allowed.tolist()[1] == [label in ("threat_legal", "insult") for label in labels]
    one = allowed_label_loss(logits[:1], allowed[:1])
    assert torch.isclose(one, torch.nn.functional.cross_entropy(logits[:1], torch.tensor([labels.index("urgency")])))
    p = torch.softmax(logits[1], -1)
    both = p[labels.index("threat_legal")] + p[labels.index("insult")]
    assert torch.isclose(allowed_label_loss(logits[1:], allowed[1:]), -torch.log(both))
    weighted = allowed_label_loss(logits, allowed, torch.tensor([3.0, 1.0]))
    assert torch.isclose(weighted, (3 * one - torch.log(both)) / 4)
