"""What each turn says and how: emotion, sentiment, offensive language, and the collector's tactic or the borrower's
state, from the project's text classifier (multilingual-e5-small fine-tuned with one head per task; trained by
models/classifier/train.py, weights installed with the package).

Saved layout: the encoder's `config.json` + `model.safetensors` (float16) as `save_pretrained` writes them, the
tokenizer files, and `heads.safetensors` with `<head>.weight` / `<head>.bias`. `config.json` also carries
`classifier_heads` ({head: [label, ...]}) and `classifier_max_length` (where training cut its texts), so the directory
describes itself.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .audio import sha256_of
from .result import Emotion, Turn

# Tokens read of each turn: the encoder's whole window, so a long turn is read to its end (a 15-character turn is
# ~10 tokens). Training cuts its texts shorter, for speed (models/classifier/model.py).
MAX_LENGTH = 512
BATCH = 64


class MultiTaskClassifier(torch.nn.Module):
    """The e5 encoder with one linear head per task on its mean-pooled output."""

    def __init__(self, encoder, heads: dict[str, list[str]]) -> None:
        super().__init__()
        self.encoder = encoder
        self.labels = heads
        hidden = encoder.config.hidden_size
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(hidden, len(labels)) for name, labels in heads.items()})
        self.dropout = torch.nn.Dropout(0.1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                heads: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Logits of the requested heads (all by default) from one encoder pass."""
        pooled = self.dropout(self.pool(input_ids, attention_mask))
        return {name: self.heads[name](pooled) for name in (heads or list(self.heads))}

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The encoder's output averaged over each text's tokens: what the heads read."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1)


def tokenize(tokenizer, texts: list[str], max_length: int = MAX_LENGTH) -> dict:
    # transformers 5 keeps truncation state between calls, so it is passed every time (models/e5/README.md)
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def by_length(texts: list[str], size: int = BATCH) -> list[list[int]]:
    """The texts' indices in batches of `size`, shortest first, so that one long text pads only its own batch."""
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    return [order[first:first + size] for first in range(0, len(order), size)]


def bundled_weights() -> Path:
    """The weights installed with the package; run from a source checkout (`python -m analyzer.cli` in the repo,
    which imports the package from the checkout), the same files in models/classifier/weights."""
    try:
        return Path(str(resources.files("analyzer.classifier_weights")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "models" / "classifier" / "weights"


def load_model(path: Path, device: str = "cpu"):
    """A saved classifier and its tokenizer, float32, eval mode, from local files only."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no "Loading weights" bar in a batch run's output

    if not (path / "heads.safetensors").is_file():
        raise FileNotFoundError(f"no text classifier at {path} (heads.safetensors missing)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoder = BertModel.from_pretrained(path, dtype=torch.float32, add_pooling_layer=False, local_files_only=True)
    model = MultiTaskClassifier(encoder, dict(encoder.config.classifier_heads))
    model.heads.load_state_dict({k: v.float() for k, v in load_file(path / "heads.safetensors").items()})
    return model.eval().to(device), tokenizer


def describe(path: Path | None = None) -> dict:
    """The classifier at `path` (the bundled one when None), as a result's provenance records it. The sha256 covers
    every weights, configuration and tokenizer file, so a refitted head is another classifier: a batch analyses
    its stored calls again."""
    path = path or bundled_weights()
    files = sorted(p for p in path.iterdir() if p.suffix in (".json", ".safetensors")) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no text classifier at {path} (no weights or configuration files)")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{sha256_of(file)}\n".encode())
    return {"name": f"e5-small-zh multi-task classifier ({path.name})", "path": str(path),
            "sha256": digest.hexdigest(), "max_tokens": MAX_LENGTH}


class Classifier:
    """Loaded once; scores batches of turns."""

    def __init__(self, path: Path | None = None, device: str = "cpu"):
        self.path = path or bundled_weights()
        self.model, self.tokenizer = load_model(self.path, device)
        self.device = device

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Probabilities per head: {head: (len(texts), labels)}, in the texts' order."""
        scores = {head: np.zeros((len(texts), len(labels))) for head, labels in self.model.labels.items()}
        with torch.inference_mode():
            for chunk in by_length(texts):
                batch = tokenize(self.tokenizer, [texts[index] for index in chunk])
                logits = self.model(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
                for head, values in logits.items():
                    scores[head][chunk] = torch.softmax(values, dim=-1).cpu().numpy()
        return scores


def annotate(turns: list[Turn], classifier: Classifier) -> None:
    """Give every turn its emotion, sentiment (-1 negative … 1 positive), offensive-language probability and
    its role's tactic (collector) or state (borrower) scores."""
    if not turns:
        return
    scores = classifier([turn.text for turn in turns])
    labels = classifier.model.labels
    for index, turn in enumerate(turns):
        emotion = dict(zip(labels["emotion"], scores["emotion"][index].round(3).tolist()))
        turn.emotion = Emotion(max(emotion, key=emotion.get), emotion)
        sentiment = dict(zip(labels["sentiment"], scores["sentiment"][index].tolist()))
        turn.sentiment = round(sentiment["positive"] - sentiment["negative"], 3)
        turn.offensive = round(float(scores["offensive"][index][labels["offensive"].index("offensive")]), 3)
        # the collector and borrower heads are named for the role they score; an unknown role gets neither
        head = turn.role if turn.role in ("collector", "borrower") else None
        turn.acts = dict(zip(labels[head], scores[head][index].round(3).tolist())) if head else {}
