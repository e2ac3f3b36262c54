"""Validate seed.jsonl and print its counts table.

    python models/seed_corpus/check.py [path/to/seed.jsonl]

Exits 1 with one line per problem when the file breaks a rule below.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections import Counter
from pathlib import Path

LABELS: dict[str, tuple[str, ...]] = {
    "collector": ("threat_legal", "threat_third_party", "insult", "urgency", "empathy", "neutral_info"),
    "borrower": ("distress", "self_harm", "hardship", "anger", "promise_to_pay", "refusal", "neutral"),
}
SPLITS = ("train", "test")
FIELDS = {"text", "role", "label", "split"}
MIN_TOTAL, MIN_TRAIN, MIN_TEST = 60, 45, 12
NEAR_DUPLICATE = 0.85  # difflib ratio at or above which a test text counts as a copy of a train text
# Collectors say 您 in every kind of line. When one label holds most of the 您 lines, a model learns the pronoun as
# that label (the first corpus had 您 almost only in neutral_info, and a retrained encoder read polite empathy as
# information), so each collector label needs both registers.
POLITE = "您"
MIN_REGISTER_SHARE = 0.25

# Whisper mis-hearings written into the corpus (wrong form -> intended word); used to report their share.
HOMOPHONES = {
    "海款": "还款", "一七": "逾期", "正信": "征信", "吹收": "催收", "分七": "分期", "力息": "利息",
    "本京": "本金", "起速": "起诉", "发息": "罚息", "剪免": "减免", "律师寒": "律师函",
    "经济联系人": "紧急联系人", "通迅录": "通讯录", "通迅路": "通讯录", "制纳金": "滞纳金",
    "强制直行": "强制执行", "老来": "老赖", "接款": "借款", "鞋商": "协商", "一了白了": "一了百了",
    "征心": "征信", "实信": "失信", "法物": "法务", "发院": "法院", "直行": "执行", "欠宽": "欠款",
    "环钱": "还钱", "环款": "还款", "环不上": "还不上", "先海": "先还", "鱼期": "逾期", "款限": "宽限",
    "减面": "减免", "本斤": "本金", "高利代": "高利贷", "暴利催收": "暴力催收", "扫扰": "骚扰",
    "片子": "骗子", "沙比": "傻逼", "还怕": "害怕", "安眠要": "安眠药", "别再吹了": "别再催了",
    "不想火了": "不想活了", "实业": "失业",
}


def load(path: Path) -> tuple[list[dict], list[str]]:
    rows, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc})")
            continue
        if not isinstance(row, dict) or set(row) != FIELDS:
            problems.append(f"line {n}: fields must be exactly {sorted(FIELDS)}")
            continue
        if not isinstance(row["text"], str) or not row["text"].strip() or row["text"] != row["text"].strip():
            problems.append(f"line {n}: text must be a non-empty string without outer whitespace")
        if row["label"] not in LABELS.get(row["role"], ()):
            problems.append(f"line {n}: label {row['label']!r} is not a {row['role']!r} label")
        if row["split"] not in SPLITS:
            problems.append(f"line {n}: split must be one of {SPLITS}")
        rows.append(row)
    return rows, problems


def check(rows: list[dict]) -> list[str]:
    problems = []
    counts = Counter((r["label"], r["split"]) for r in rows)
    for labels in LABELS.values():
        for label in labels:
            train, test = counts[label, "train"], counts[label, "test"]
            if train + test < MIN_TOTAL or train < MIN_TRAIN or test < MIN_TEST:
                problems.append(f"{label}: {train} train + {test} test, need >= {MIN_TRAIN} + {MIN_TEST} "
                                f"and >= {MIN_TOTAL} in all")

    for label in LABELS["collector"]:
        texts = [r["text"] for r in rows if r["label"] == label]
        polite = sum(POLITE in t for t in texts)
        if texts and min(polite, len(texts) - polite) < MIN_REGISTER_SHARE * len(texts):
            problems.append(f"{label}: {polite} of {len(texts)} texts say {POLITE}, need between "
                            f"{MIN_REGISTER_SHARE:.0%} and {1 - MIN_REGISTER_SHARE:.0%}")

    seen: dict[str, dict] = {}
    for r in rows:
        if r["text"] in seen:
            problems.append(f"duplicate text {r['text']!r}")
        seen[r["text"]] = r

    train = [r["text"] for r in rows if r["split"] == "train"]
    matcher = difflib.SequenceMatcher(autojunk=False)
    for r in rows:
        if r["split"] != "test":
            continue
        matcher.set_seq2(r["text"])
        for other in train:
            matcher.set_seq1(other)
            # The quick upper bounds skip most pairs before the exact ratio is computed.
            if matcher.real_quick_ratio() >= NEAR_DUPLICATE and matcher.quick_ratio() >= NEAR_DUPLICATE \
                    and matcher.ratio() >= NEAR_DUPLICATE:
                problems.append(f"test {r['text']!r} ~ train {other!r} (ratio {matcher.ratio():.2f})")
    return problems


def print_table(rows: list[dict]) -> None:
    counts = Counter((r["label"], r["split"]) for r in rows)
    polite = Counter(r["label"] for r in rows if POLITE in r["text"])
    print(f"{'role':<10} {'label':<19} {'train':>5} {'test':>5} {'total':>5} {POLITE:>4}")
    for role, labels in LABELS.items():
        for label in labels:
            train, test = counts[label, "train"], counts[label, "test"]
            print(f"{role:<10} {label:<19} {train:>5} {test:>5} {train + test:>5} {polite[label]:>5}")
    n_train = sum(r["split"] == "train" for r in rows)
    print(f"{'all':<30} {n_train:>5} {len(rows) - n_train:>5} {len(rows):>5}")
    noisy = sum(any(w in r["text"] for w in HOMOPHONES) for r in rows)
    print(f"with a listed Whisper homophone error: {noisy} ({noisy / len(rows):.0%})")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("seed.jsonl")
    if not path.is_file():
        print(f"error: {path} not found", file=sys.stderr)
        return 1
    rows, problems = load(path)
    problems += check(rows)
    if rows:
        print_table(rows)
    for p in problems:
        print("FAIL:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
