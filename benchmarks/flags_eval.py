"""Precision and recall of the rulebook per category on the labelled call utterances in benchmarks/flags_eval/
(written apart from the rules and from the classifier's training text), with the rulebook's classifier-only and
lexicon-only variants beside it.

    python benchmarks/flags_eval.py [--rules FILE] [--classifier DIR] [--errors]
                                    [--set heldout|development|development_2|...]

Each utterance is scored as a one-turn call of its role; a category counts as found when any rule of it fires.
The development sets are those the rules were revised against; `heldout` (heldout.jsonl) is not, and its errors
are never listed (see flags_eval/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analyzer import classify, flags
from analyzer.result import Turn, Word

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "classifier"))
from data import FLAG_DIR, FLAG_SETS  # noqa: E402  (the development sets, as role_heads.py reads them)

SETS = {"heldout": "heldout.jsonl", **FLAG_SETS}
CATEGORIES = ("threat", "third_party", "insult", "self_harm", "hardship")
VARIANTS = {
    "rulebook": None,
    "classifier only": {"act", "offensive"},
    "lexicon only": {"lexicon", "regex", "other_party"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rules", type=Path, help="a rulebook file (default: the installed one)")
    parser.add_argument("--classifier", type=Path, help="a text classifier directory (default: the installed one)")
    parser.add_argument("--set", choices=list(SETS), default="heldout", dest="which")
    parser.add_argument("--errors", action="store_true",
                        help="list the rulebook's misses and false alarms (development sets only)")
    args = parser.parse_args()
    text = (FLAG_DIR / SETS[args.which]).read_text(encoding="utf-8")
    items = [json.loads(line) for line in text.splitlines() if line.strip()]
    turns = [Turn(0.0, 5.0, "S1", item["role"], item["text"], [Word(0.0, 5.0, item["text"], 1.0)]) for item in items]
    classify.annotate(turns, classify.Classifier(args.classifier))
    rulebook = flags.load(args.rules)

    print(f"{args.which}: {len(items)} utterances; rulebook {rulebook.name} {rulebook.version}\n")
    print("| category | positives | " + " | ".join(f"{v}: precision | recall" for v in VARIANTS) + " |")
    print("|---|---|" + "---|---|" * len(VARIANTS))
    found = {}
    for variant, kinds in VARIANTS.items():
        book = rulebook.only(kinds) if kinds else rulebook
        found[variant] = [{f.category for f in flags.apply(book, [turn], 5.0)} for turn in turns]
    for category in CATEGORIES:
        expected = [category in item["categories"] for item in items]
        cells = []
        for variant in VARIANTS:
            predicted = [category in categories for categories in found[variant]]
            hits = sum(e and p for e, p in zip(expected, predicted))
            precision = hits / sum(predicted) if sum(predicted) else float("nan")
            recall = hits / sum(expected)
            cells.append(f"{precision:.3f} | {recall:.3f}")
        print(f"| {category} | {sum(expected)} | " + " | ".join(cells) + " |")

    kinds = sorted({item["kind"] for item in items})
    print("\nRulebook, utterances with a wrong category or a missed one, by kind:")
    for kind in kinds:
        members = [i for i, item in enumerate(items) if item["kind"] == kind]
        wrong = [i for i in members if found["rulebook"][i] & set(CATEGORIES) != set(items[i]["categories"])]
        print(f"- {kind}: {len(wrong)} of {len(members)}")
    if args.errors and args.which != "heldout":
        print()
        for item, categories in zip(items, found["rulebook"]):
            if categories & set(CATEGORIES) != set(item["categories"]):
                print(f"{item['id']} {item['kind']:13} {item['role']:9} expected {sorted(item['categories'])} "
                      f"found {sorted(categories)}: {item['text']}")


if __name__ == "__main__":
    main()
