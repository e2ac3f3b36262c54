"""Training and evaluation sets for the multi-task text classifier, with the label mappings.

Shared by `train.py` and `benchmarks/classifier_eval.py`, so both see exactly the same splits; the flag
development sets are listed here for `role_heads.py` and `benchmarks/flags_eval.py` alike.
Every loader returns a list of `Example`; labels are names, `None` where a task has no label.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXT_DIR = REPO.parent / "shared" / "data" / "text"
LEXICON_DIR = REPO.parent / "shared" / "data" / "lexicons"
SEED = REPO / "models" / "seed_corpus" / "seed.jsonl"
FLAG_DIR = REPO / "benchmarks" / "flags_eval"
# the flag development sets by name (the held-out set, heldout.jsonl, is not one of them)
FLAG_SETS = {"development": "utterances.jsonl",
             **{path.stem: path.name for path in sorted(FLAG_DIR.glob("development_*.jsonl"),
                                                      key=lambda path: int(path.stem.split("_")[1]))}}

EMOTIONS = ["neutral", "happy", "angry", "sad", "anxious", "surprised", "disgusted"]
SENTIMENTS = ["negative", "neutral", "positive"]
OFFENSIVE = ["safe", "offensive"]
COLLECTOR = ["threat_legal", "threat_third_party", "insult", "urgency", "empathy", "neutral_info"]
BORROWER = ["distress", "self_harm", "hardship", "anger", "promise_to_pay", "refusal", "neutral"]
HEADS = {
    "emotion": EMOTIONS,
    "sentiment": SENTIMENTS,
    "offensive": OFFENSIVE,
    "collector": COLLECTOR,
    "borrower": BORROWER,
}

SMP_EMOTION = {"neutral": "neutral", "happy": "happy", "angry": "angry", "sad": "sad",
               "fear": "anxious", "surprise": "surprised"}
NLPCC_EMOTION = {"none": "neutral", "like": "happy", "happiness": "happy", "anger": "angry",
                 "sadness": "sad", "fear": "anxious", "surprise": "surprised", "disgust": "disgusted"}
# CPED's `negative-other` has no single emotion: it trains only the sentiment head.
CPED_EMOTION = {"neutral": "neutral", "happy": "happy", "relaxed": "happy", "positive-other": "happy",
                "grateful": "happy", "anger": "angry", "depress": "sad", "sadness": "sad",
                "worried": "anxious", "fear": "anxious", "astonished": "surprised", "disgust": "disgusted"}
# Polarity implied by an emotion, to train the sentiment head on the Weibo sets; surprise can go either way.
EMOTION_POLARITY = {"neutral": "neutral", "happy": "positive", "angry": "negative", "sad": "negative",
                    "anxious": "negative", "disgusted": "negative"}
# SMP2020 has 6 labels; its `angry` covers disgust.
MODEL_TO_SMP = {"neutral": "neutral", "happy": "happy", "angry": "angry", "sad": "sad", "anxious": "fear",
                "surprised": "surprise", "disgusted": "angry"}
SMP_LABELS = ["neutral", "happy", "angry", "sad", "fear", "surprise"]

# The role-head label each flag category means (threat -> threat_legal, the collector head's one threat label,
# which the rulebook reads for every kind of threat).
CATEGORY_LABEL = {"collector": {"threat": "threat_legal", "third_party": "threat_third_party", "insult": "insult"},
                  "borrower": {"self_harm": "self_harm", "hardship": "hardship"}}

# CPED ships valid/test splits only; the five shows of valid_split.csv are held out for evaluation.
CPED_TRAIN_FILE = "test_split.csv"
CPED_EVAL_FILE = "valid_split.csv"


@dataclass(frozen=True)
class Example:
    text: str
    emotion: str | None = None
    sentiment: str | None = None
    offensive: str | None = None
    collector: str | None = None
    borrower: str | None = None


@dataclass(frozen=True)
class CallText:
    """A call utterance for the collector or borrower head with the head's labels it may get. A seed row allows its
    one label. A flag development row is labelled by flag category, not by tactic or state: with categories it
    allows the labels they mean; with none (neutral talk, negated mentions, hard negatives) every label but the
    flag labels. A loss on the allowed labels together does not make a row choose between them."""
    text: str
    role: str
    allowed: frozenset[str]
    source: str  # "seed" or the development set's name


def _smp(name: str) -> list[Example]:
    rows = json.loads((TEXT_DIR / "smp2020_ewect" / name).read_text(encoding="utf-8"))
    out = []
    for row in rows:
        emotion = SMP_EMOTION[row["label"]]
        out.append(Example(row["content"].strip(), emotion=emotion, sentiment=EMOTION_POLARITY.get(emotion)))
    return [e for e in out if e.text]


def smp_train() -> list[Example]:
    return _smp("virus_train.txt") + _smp("virus_eval_labeled.txt")


def smp_usual_eval() -> list[Example]:
    return _smp("usual_eval_labeled.txt")


def smp_virus_test(train_texts: set[str]) -> list[Example]:
    """virus_test without the posts whose text also occurs in any training set."""
    return [e for e in _smp("virus_test_labeled.txt") if e.text not in train_texts]


def nlpcc() -> list[Example]:
    out, seen = [], set()
    with open(TEXT_DIR / "nlpcc2013" / "Nlpcc2013Train.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = row["文本"].strip()
            if text and text not in seen:  # the file repeats many posts
                seen.add(text)
                emotion = NLPCC_EMOTION[row["标签"]]
                out.append(Example(text, emotion=emotion, sentiment=EMOTION_POLARITY.get(emotion)))
    return out


def _cped(name: str) -> list[Example]:
    with open(TEXT_DIR / "cped" / name, encoding="utf-8-sig") as f:
        return [Example(row["Utterance"].strip(), emotion=CPED_EMOTION.get(row["Emotion"]),
                        sentiment=row["Sentiment"])
                for row in csv.DictReader(f) if row["Utterance"].strip()]


def cped_train() -> list[Example]:
    return _cped(CPED_TRAIN_FILE)


def cped_eval() -> list[Example]:
    return _cped(CPED_EVAL_FILE)


def _cold(name: str) -> list[Example]:
    with open(TEXT_DIR / "cold" / name, encoding="utf-8-sig") as f:
        return [Example(row["TEXT"].strip(), offensive=OFFENSIVE[int(row["label"])]) for row in csv.DictReader(f)]


def cold_train() -> list[Example]:
    return _cold("train.csv")


def cold_test() -> list[Example]:
    return _cold("test.csv")


def seed(split: str) -> list[Example]:
    out = []
    for line in SEED.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] == split:
            out.append(Example(row["text"], **{row["role"]: row["label"]}))
    return out


def seed_call_texts(split: str) -> list[CallText]:
    return [CallText(e.text, role, frozenset({getattr(e, role)}), "seed")
            for e in seed(split) for role in ("collector", "borrower") if getattr(e, role)]


def flag_call_texts(sets: list[str]) -> list[CallText]:
    """The rows of the named flag development sets (never the held-out set) as role-head training text."""
    out = []
    for name in sets:
        for line in (FLAG_DIR / FLAG_SETS[name]).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            role = row["role"]
            meant = {CATEGORY_LABEL[role][c] for c in row["categories"] if c in CATEGORY_LABEL[role]}
            allowed = meant or set(HEADS[role]) - set(CATEGORY_LABEL[role].values())
            out.append(CallText(row["text"], role, frozenset(allowed), name))
    return out
