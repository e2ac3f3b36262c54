"""Training-side helpers around the runtime classifier (`analyzer.classify`): a fresh model on the converted e5
encoder, the role heads' loss, and saving in the layout `analyzer.classify.load_model` reads."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel, PreTrainedTokenizerBase

from analyzer.classify import MultiTaskClassifier
from data import CallText

# Training cuts texts at 64 tokens (19 % of SMP's training posts are longer), so that no batch pads past it and
# the run stays within the hour on 2 cores. The analyzer and the head refits read texts whole (classify.MAX_LENGTH).
TRAIN_MAX_LENGTH = 64


def load_base(path: Path, heads: dict[str, list[str]]) -> tuple[MultiTaskClassifier, PreTrainedTokenizerBase]:
    """The converted e5 encoder in float32 with freshly initialised heads."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = BertModel.from_pretrained(path, dtype=torch.float32, add_pooling_layer=False)
    return MultiTaskClassifier(encoder, heads), tokenizer


def allowed_mask(rows: list[CallText], labels: list[str]) -> torch.Tensor:
    """Which of the head's labels each row allows (rows x labels, bool)."""
    return torch.tensor([[label in row.allowed for label in labels] for row in rows])


def allowed_label_loss(logits: torch.Tensor, allowed: torch.Tensor,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """Minus the log of the probability the head gives the allowed labels together, averaged over the rows (weighted
    when `weights` is given): the cross-entropy for a row with one allowed label."""
    log_p = torch.log_softmax(logits, dim=-1)
    loss = -torch.logsumexp(log_p.masked_fill(~allowed, float("-inf")), dim=-1)
    return loss.mean() if weights is None else (weights * loss).sum() / weights.sum()


def save(model: MultiTaskClassifier, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config = model.encoder.config
    config.classifier_heads = model.labels
    config.classifier_pooling = "mean"
    config.classifier_max_length = TRAIN_MAX_LENGTH
    model.encoder.half().save_pretrained(out)
    model.encoder.float()
    tokenizer.save_pretrained(out)
    # save_pretrained indents tokenizer.json (1.4 MB); unindented it is 0.7 MB and tokenizes the same
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"), pretty=False)
    save_file({f"{name}.{key}": value.detach().half().contiguous()
               for name, head in model.heads.items() for key, value in head.state_dict().items()},
              out / "heads.safetensors")
