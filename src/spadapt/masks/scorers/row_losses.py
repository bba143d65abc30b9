"""Each row's loss from one batched forward, for the Hugging Face heads whose loss is known.

Fisher scoring needs every calibration row's own gradient. Running the rows one at a time
costs one forward and one backward per row; one backward of the sum of the rows' losses gives
the same per-row gradients at each linear layer, if each row's loss is known. It is for a
sequence classifier (cross-entropy of the logits) and a causal LM (the mean next-token
cross-entropy over the row's labelled tokens, labels -100 ignored). The result is checked
against the model's own batch loss; anything else gets None, and the caller runs the rows
one at a time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORED_LABEL = -100  # Hugging Face's label for a token that has no loss


def row_losses(output: object, batch: dict) -> torch.Tensor | None:
    """(rows,) losses whose mean (classifier) or token-weighted mean (causal LM) is the
    model's batch loss; None for another head, or when they do not reproduce that loss."""
    logits, loss, labels = getattr(output, "logits", None), getattr(output, "loss", None), \
        batch.get("labels")
    if logits is None or loss is None or not torch.is_tensor(labels) or \
            labels.dtype != torch.long:
        return None
    if logits.dim() == 2 and labels.shape == logits.shape[:1] and logits.shape[1] > 1:
        rows = F.cross_entropy(logits.float(), labels, reduction="none")
        batch_loss = rows.mean()
    elif logits.dim() == 3 and labels.shape == logits.shape[:2]:
        targets = labels[:, 1:]
        tokens = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets,
                                 ignore_index=IGNORED_LABEL, reduction="none")
        counts = (targets != IGNORED_LABEL).sum(1)
        rows = tokens.sum(1) / counts.clamp(min=1)  # a row with no labelled token adds 0
        batch_loss = tokens.sum() / counts.sum().clamp(min=1)
    else:
        return None
    if not torch.allclose(batch_loss.detach(), loss.detach().float(), rtol=1e-4, atol=1e-6):
        return None
    return rows
