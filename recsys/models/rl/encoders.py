"""State encoders of the RL recommenders: (B, L) item histories -> (B, hidden_dim) states.

Histories are left-padded with the padding index n_items (`trajectories.user_histories`),
so column L - 1 holds the most recent item. `RLConfig.encoder` picks one:

* `"gru"`: a GRU over the item embeddings; the state is its last hidden state.
* `"sasrec"`: SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation",
  ICDM 2018): item embedding * sqrt(d) + learned positional embedding, dropout, then
  `attention_blocks` pre-norm causal self-attention blocks (multi-head attention and a
  point-wise feed-forward layer, each with a residual, layer norm and dropout) and a final
  layer norm; the state is the output at the last (most recent) position.

Item embeddings of either can start from MF item factors (`item_init`, (n_items, embedding_dim)).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from recsys.config import RLConfig


def _item_embedding(n_items: int, dim: int, item_init: np.ndarray | None) -> nn.Embedding:
    embedding = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
    if item_init is not None:
        with torch.no_grad():
            embedding.weight[:n_items] = torch.from_numpy(item_init.astype(np.float32))
    return embedding


class GRUEncoder(nn.Module):
    """GRU over item embeddings of the recent history; (B, L) indices -> (B, hidden_dim)."""

    def __init__(self, n_items: int, config: RLConfig, item_init: np.ndarray | None = None) -> None:
        super().__init__()
        self.embedding = _item_embedding(n_items, config.embedding_dim, item_init)
        self.gru = nn.GRU(config.embedding_dim, config.hidden_dim, batch_first=True)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.embedding(history))
        return h[-1]


class SASRecEncoder(nn.Module):
    """Causal self-attention over the history; (B, L) indices -> (B, hidden_dim), L <= history_len.

    Padded positions are masked as keys, so the state does not depend on how much left
    padding there is. Each position may always attend to itself: a padded query (every
    query of an empty history) would otherwise have no key at all, and a fully masked
    softmax row is NaN in the forward pass and in the gradients.
    """

    def __init__(self, n_items: int, config: RLConfig, item_init: np.ndarray | None = None) -> None:
        super().__init__()
        d = config.hidden_dim
        if d % config.attention_heads:
            raise ValueError(f"RLConfig.hidden_dim ({d}) must be divisible by RLConfig.attention_heads "
                             f"({config.attention_heads}) for the sasrec encoder")
        self.n_items, self.heads, self.scale = n_items, config.attention_heads, math.sqrt(d)
        self.embedding = _item_embedding(n_items, config.embedding_dim, item_init)
        # MF factors come in embedding_dim; attention works in hidden_dim
        self.project = nn.Linear(config.embedding_dim, d) if config.embedding_dim != d else nn.Identity()
        self.position = nn.Embedding(config.history_len, d)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, config.attention_heads, dim_feedforward=d, dropout=config.dropout,
                                       batch_first=True, norm_first=True)
            for _ in range(config.attention_blocks))
        self.norm = nn.LayerNorm(d)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        length, max_len = history.shape[1], self.position.num_embeddings
        if length > max_len:
            raise ValueError(f"history of length {length} is longer than RLConfig.history_len ({max_len})")
        pad = history == self.n_items
        # left padding: the most recent item always sits at the last position
        x = self.project(self.embedding(history)) * self.scale + self.position(torch.arange(max_len - length, max_len))
        x = self.dropout(x.masked_fill(pad[..., None], 0.0))
        mask = self.attention_mask(pad)
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return self.norm(x[:, -1])

    def attention_mask(self, pad: torch.Tensor) -> torch.Tensor:
        """(B * heads, L, L) bool, True = may not attend: later positions and padded keys, never itself."""
        length = pad.shape[1]
        blocked = torch.ones(length, length, dtype=torch.bool).triu(1) | pad[:, None, :]
        blocked &= ~torch.eye(length, dtype=torch.bool)
        return blocked.repeat_interleave(self.heads, dim=0)


ENCODERS = {"gru": GRUEncoder, "sasrec": SASRecEncoder}


def make_encoder(n_items: int, config: RLConfig, item_init: np.ndarray | None = None) -> nn.Module:
    """The state encoder named by `config.encoder`.

    Raises:
        ValueError: an unknown encoder name, or attention heads that do not divide hidden_dim.
    """
    if config.encoder not in ENCODERS:
        raise ValueError(f"RLConfig.encoder (RECSYS_RL_ENCODER) must be one of {sorted(ENCODERS)}, "
                         f"got {config.encoder!r}")
    return ENCODERS[config.encoder](n_items, config, item_init)
