"""Refit a role head (borrower, collector or both) on the trained encoder, from the seed corpus and the flag sets.

The flag development sets in benchmarks/flags_eval (utterances written to test the rulebook: veiled threats,
slang, indirect farewells, negations and hard negatives) are call text, labelled by flag category rather than by
tactic or state (`data.CallText` says what each row allows). train.py can draw them too (`--flag-sets`); this
script keeps the encoder as it is and fits a role head again on the seed train split and the development sets:
full batch, Adam, L2 on the weights, a seed row counting two or four times (`SEED_WEIGHT`), started from the
heads train.py made, seeded: on an idle machine the same inputs give the same heads (beside another job a few
weights have come out one float16 step apart). The held-out
flag set is never read here.

    python models/classifier/role_heads.py [--dev development development_2 …] [--heads collector borrower]
                                           [--weights DIR] [--out DIR]

`--dev` defaults to every development set in benchmarks/flags_eval. The shipped role heads were refitted so on the
sixth run's encoder, `--heads collector borrower --dev development development_{2..18}` (train.py had drawn sets
1-12): with sets 1-17 the heads found more of development_18's threats (models/classifier/README.md, Training).

`--out` (default: the weights directory itself) gets a copy of the weights with the new heads.safetensors.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import BORROWER, COLLECTOR, FLAG_SETS, flag_call_texts, seed, seed_call_texts  # noqa: E402
from model import allowed_label_loss, allowed_mask  # noqa: E402

from analyzer import classify  # noqa: E402

LABELS = {"collector": COLLECTOR, "borrower": BORROWER}
STEPS = 600
LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-3
# what a seed row counts for against a development row: its one exact label keeps the head's finer classes apart
# (the collector's deadline, 看不到钱你就等着吧, stays urgency at 4; at 2 and 3 it became a legal threat)
SEED_WEIGHT = {"collector": 4.0, "borrower": 2.0}


def examples(role: str, dev_sets: list[str]) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Texts of one role, which of the head's labels each allows, and each one's weight in the loss."""
    rows = [row for row in seed_call_texts("train") + flag_call_texts(dev_sets) if row.role == role]
    weights = torch.tensor([SEED_WEIGHT[role] if row.source == "seed" else 1.0 for row in rows])
    return [row.text for row in rows], allowed_mask(rows, LABELS[role]), weights


def pooled(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """The encoder's pooled vector of each text, in the texts' order (batched by length, so little padding)."""
    features = torch.empty(len(texts), model.encoder.config.hidden_size)
    with torch.no_grad():  # not inference_mode: the features go into a fit
        for chunk in classify.by_length(texts):
            batch = classify.tokenize(tokenizer, [texts[index] for index in chunk])
            features[chunk] = model.pool(batch["input_ids"], batch["attention_mask"])
    return features


def save_heads(model, weights: Path, out: Path | None) -> None:
    """Write the model's heads (float16) into `out`, a copy of `weights` (or into `weights` itself)."""
    out = out or weights
    if out != weights:
        shutil.copytree(weights, out, dirs_exist_ok=True)
    heads = {k: v.half().contiguous() for k, v in model.heads.state_dict().items()}
    save_file(heads, out / "heads.safetensors")
    print(f"heads written to {out / 'heads.safetensors'}")


def fit(head: torch.nn.Linear, features: torch.Tensor, allowed: torch.Tensor, weights: torch.Tensor) -> None:
    optimizer = torch.optim.Adam(head.parameters(), lr=LEARNING_RATE)
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = allowed_label_loss(head(features), allowed, weights) + WEIGHT_DECAY * head.weight.pow(2).sum()
        loss.backward()
        optimizer.step()


def seed_test_f1(model, tokenizer, role: str) -> float:
    test = [e for e in seed("test") if getattr(e, role)]
    with torch.inference_mode():
        logits = model.heads[role](pooled(model, tokenizer, [e.text for e in test]))
    predicted = [LABELS[role][i] for i in logits.argmax(-1).tolist()]
    return f1_score([getattr(e, role) for e in test], predicted, average="macro")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", nargs="*", choices=list(FLAG_SETS), default=list(FLAG_SETS))
    parser.add_argument("--heads", nargs="+", choices=list(LABELS), default=["collector"])
    parser.add_argument("--weights", type=Path, default=classify.bundled_weights())
    parser.add_argument("--out", type=Path, help="where the weights with the new heads go (default: --weights)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model, tokenizer = classify.load_model(args.weights)
    before = {role: seed_test_f1(model, tokenizer, role) for role in args.heads}
    for role in args.heads:
        texts, allowed, weights = examples(role, args.dev)
        features = pooled(model, tokenizer, texts)
        fit(model.heads[role], features, allowed, weights)
        print(f"{role}: {len(texts)} texts, {int((allowed.sum(dim=1) > 1).sum())} of them allowing several labels")
    after = {role: seed_test_f1(model, tokenizer, role) for role in args.heads}
    for role in args.heads:
        print(f"seed test macro-F1, {role}: {before[role]:.3f} -> {after[role]:.3f}")
    save_heads(model, args.weights, args.out)


if __name__ == "__main__":
    main()
