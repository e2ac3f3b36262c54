"""Refit the emotion head on the trained encoder: a logistic regression over every emotion row, chosen on held-out rows.

train.py trains the emotion head in small batches, through a head that moves with the encoder.
With the encoder fixed, the head can see every emotion row: the pooled sentence vectors are computed once (about ten
minutes on 2 cores, for the three sources) and a multinomial logistic regression is fitted on them, which is the
head's own form (softmax over one linear layer), so its coefficients become the head's weights unchanged.

Choice, made on rows held out from the head's fit (not from the encoder's: train.py trains on them), never on
the evaluation sets: virus_eval (SMP2020's Weibo posts)
and a seeded fifth of NLPCC 2013 (general Weibo), scored by the mean of their macro-F1 (SMP's six labels for
virus_eval, seven for NLPCC). The grid: which training sources (SMP; SMP + NLPCC; SMP + NLPCC + CPED), how the
classes are weighted (not at all; by the inverse square root of their share, as train.py does; balanced), and the
regularisation C. The chosen setting is then fitted on all rows of its sources. The other heads and the encoder
stay as they are, so the flags, which read the collector, borrower and offensive heads, do not move.

    python models/classifier/emotion_head.py [--weights DIR] [--out DIR]

`--out` (default: the weights directory itself) gets a copy of the weights with the new heads.safetensors.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import EMOTIONS, MODEL_TO_SMP, SMP_LABELS, _smp, cped_train, nlpcc  # noqa: E402
from role_heads import pooled, save_heads  # noqa: E402

from analyzer import classify  # noqa: E402

SOURCES = {"smp": lambda: _smp("virus_train.txt") + _smp("virus_eval_labeled.txt"), "nlpcc": nlpcc,
           "cped": cped_train}
SOURCE_CHOICES = (("smp",), ("smp", "nlpcc"), ("smp", "nlpcc", "cped"))
WEIGHTINGS = ("none", "inverse_sqrt", "balanced")
C_VALUES = (0.03, 0.1, 0.3, 1.0)
HELD_OUT_SHARE = 5   # one row in five of NLPCC and CPED is held out for the choice; of SMP, virus_eval


def held_out_mask(source: str, size: int) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    if source == "smp":
        mask[len(_smp("virus_train.txt")):] = True
    else:
        mask[np.random.default_rng(0).permutation(size)[: size // HELD_OUT_SHARE]] = True
    return mask


def fit(features: np.ndarray, labels: np.ndarray, weighting: str, c: float) -> LogisticRegression:
    sample_weight = None
    if weighting == "inverse_sqrt":
        names, counts = np.unique(labels, return_counts=True)
        share = dict(zip(names, counts / len(labels)))
        sample_weight = np.array([share[label] ** -0.5 for label in labels])
        sample_weight /= sample_weight.mean()
    regression = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if weighting == "balanced" else None)
    return regression.fit(features, labels, sample_weight=sample_weight)


def emotion_probabilities(regression: LogisticRegression, features: np.ndarray) -> np.ndarray:
    """Probabilities over EMOTIONS in the head's order (a class missing from the training rows gets 0)."""
    probabilities = np.zeros((len(features), len(EMOTIONS)))
    probabilities[:, [EMOTIONS.index(name) for name in regression.classes_]] = regression.predict_proba(features)
    return probabilities


def smp_macro_f1(gold: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro-F1 on SMP's six labels, the seven emotions' probabilities summed into them (disgusted into angry)."""
    folded = np.zeros((len(probabilities), len(SMP_LABELS)))
    for index, emotion in enumerate(EMOTIONS):
        folded[:, SMP_LABELS.index(MODEL_TO_SMP[emotion])] += probabilities[:, index]
    return f1_score([MODEL_TO_SMP[e] for e in gold], [SMP_LABELS[i] for i in folded.argmax(1)], average="macro")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=classify.bundled_weights())
    parser.add_argument("--out", type=Path, help="where the weights with the new head go (default: --weights)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, tokenizer = classify.load_model(args.weights)
    rows = {}
    for source, load in SOURCES.items():
        examples = [e for e in load() if e.emotion]
        features = pooled(model, tokenizer, [e.text for e in examples]).float().numpy()
        labels = np.array([e.emotion for e in examples])
        rows[source] = (features, labels, held_out_mask(source, len(examples)))
        print(f"{source}: {len(examples)} rows with an emotion, {int(rows[source][2].sum())} held out", flush=True)

    smp_features, smp_labels, smp_held = rows["smp"]
    nlpcc_features, nlpcc_labels, nlpcc_held = rows["nlpcc"]
    print("| sources | weighting | C | virus_eval macro-F1 | NLPCC held-out macro-F1 | mean |")
    print("|---|---|---|---|---|---|")
    scores = {}
    for sources, weighting, c in itertools.product(SOURCE_CHOICES, WEIGHTINGS, C_VALUES):
        regression = fit(np.concatenate([rows[s][0][~rows[s][2]] for s in sources]),
                         np.concatenate([rows[s][1][~rows[s][2]] for s in sources]), weighting, c)
        virus_eval = smp_macro_f1(smp_labels[smp_held], emotion_probabilities(regression, smp_features[smp_held]))
        nlpcc_probabilities = emotion_probabilities(regression, nlpcc_features[nlpcc_held])
        nlpcc_f1 = f1_score(nlpcc_labels[nlpcc_held], np.array(EMOTIONS)[nlpcc_probabilities.argmax(1)],
                            average="macro")
        scores[sources, weighting, c] = (virus_eval + nlpcc_f1) / 2
        print(f"| {' + '.join(sources)} | {weighting} | {c} | {virus_eval:.3f} | {nlpcc_f1:.3f} | "
              f"{scores[sources, weighting, c]:.3f} |", flush=True)
    sources, weighting, c = max(scores, key=scores.get)
    print(f"chosen: {' + '.join(sources)}, {weighting}, C={c}; fitted again on all their rows")

    regression = fit(np.concatenate([rows[s][0] for s in sources]), np.concatenate([rows[s][1] for s in sources]),
                     weighting, c)
    head = model.heads["emotion"]
    order = [list(regression.classes_).index(name) for name in EMOTIONS]   # every emotion occurs in NLPCC
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(regression.coef_[order]))
        head.bias.copy_(torch.from_numpy(regression.intercept_[order]))
    save_heads(model, args.weights, args.out)


if __name__ == "__main__":
    main()
