"""DistilBERT in plain PyTorch: the encoder and its six task heads, for inference and export.

Module and parameter names are those of transformers' DistilBert* classes, so their state dicts
load as they are. Dropout is left out (this model only runs in eval mode).

Attention is written in the form onnxruntime's transformer optimizer fuses into one Attention op:
  q = (x @ Wq + bq) -> Reshape(B, S, H, D) -> Transpose(0, 2, 1, 3)
  k = (x @ Wk + bk) -> Reshape(B, S, H, D) -> Transpose(0, 2, 3, 1)
  scores = MatMul(q, k) / sqrt(D) + mask_bias,  mask_bias = (1 - mask[:, None, None, :]) * -10000
  context = Softmax(scores) @ v -> Transpose -> Reshape(B, S, dim) -> out_lin
Position ids are a Range over the input's sequence length (the pattern the embedding-layer fusion
matches), GELU is the exact erf form, and -10000 is onnxruntime's default mask filter value. Every
masked score underflows to exactly zero after the softmax, as with transformers' own mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DistilBertConfig
from ..tasks import get_task

MASK_FILL = -10000.0
LAYER_NORM_EPS = 1e-12
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def sinusoidal_positions(n_positions: int, dim: int) -> torch.Tensor:
    """The fixed position table of `sinusoidal_pos_embds: true` checkpoints (sin on even, cos on odd)."""
    position = torch.arange(n_positions, dtype=torch.float64)[:, None]
    frequency = torch.pow(10000.0, 2 * (torch.arange(dim) // 2) / dim).to(torch.float64)
    angles = position / frequency
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class Embeddings(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0).expand_as(input_ids)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(positions))


class MultiHeadSelfAttention(nn.Module):
    # True: torch's fused scaled_dot_product_attention, for PyTorch speed baselines (`benchmark
    # --compare-torch`, as transformers runs by default). Export always traces the explicit form.
    sdpa = False

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.head_dim = config.head_dim
        self.scale = math.sqrt(config.head_dim)
        self.q_lin = nn.Linear(config.dim, config.dim)
        self.k_lin = nn.Linear(config.dim, config.dim)
        self.v_lin = nn.Linear(config.dim, config.dim)
        self.out_lin = nn.Linear(config.dim, config.dim)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape
        heads = (batch, seq, self.n_heads, self.head_dim)
        q = self.q_lin(x).view(heads).transpose(1, 2)  # (B, H, S, D)
        k = self.k_lin(x).view(heads).permute(0, 2, 3, 1)  # (B, H, D, S)
        v = self.v_lin(x).view(heads).transpose(1, 2)  # (B, H, S, D)
        if self.sdpa:
            context = F.scaled_dot_product_attention(q, k.transpose(-1, -2), v, attn_mask=mask_bias.to(q.dtype))
        else:
            scores = torch.matmul(q, k) / self.scale + mask_bias
            context = torch.matmul(scores.softmax(dim=-1), v)  # (B, H, S, D)
        return self.out_lin(context.transpose(1, 2).reshape(batch, seq, dim))


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.activation = ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.activation(self.lin1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.attention = MultiHeadSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.sa_layer_norm(self.attention(x, mask_bias) + x)
        return self.output_layer_norm(self.ffn(x) + x)


class Transformer(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        for block in self.layer:
            x = block(x, mask_bias)
        return x


class DistilBertModel(nn.Module):
    """The bare encoder: feature-extraction. Returns (last_hidden_state,)."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embeddings(input_ids)
        mask_bias = (1.0 - attention_mask.unsqueeze(1).unsqueeze(2).to(hidden.dtype)) * MASK_FILL
        return self.transformer(hidden, mask_bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.encode(input_ids, attention_mask),)


class DistilBertForMaskedLM(nn.Module):
    """fill-mask. Returns (logits [B, S, vocab],); vocab_projector shares the word embeddings when tied."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.vocab_transform = nn.Linear(config.dim, config.dim)
        self.vocab_layer_norm = nn.LayerNorm(config.dim, eps=LAYER_NORM_EPS)
        self.vocab_projector = nn.Linear(config.dim, config.vocab_size)
        self.activation = ACTIVATIONS[config.activation]
        if config.tie_word_embeddings:
            self.vocab_projector.weight = self.distilbert.embeddings.word_embeddings.weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        hidden = self.distilbert.encode(input_ids, attention_mask)
        hidden = self.vocab_layer_norm(self.activation(self.vocab_transform(hidden)))
        return (self.vocab_projector(hidden),)


class DistilBertForSequenceClassification(nn.Module):
    """text-classification. Returns (logits [B, num_labels],) from the first ([CLS]) position."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        pooled = self.distilbert.encode(input_ids, attention_mask)[:, 0]
        return (self.classifier(F.relu(self.pre_classifier(pooled))),)


class DistilBertForTokenClassification(nn.Module):
    """token-classification. Returns (logits [B, S, num_labels],)."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.classifier = nn.Linear(config.dim, config.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.classifier(self.distilbert.encode(input_ids, attention_mask)),)


class DistilBertForQuestionAnswering(nn.Module):
    """question-answering. Returns (start_logits [B, S], end_logits [B, S])."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.qa_outputs = nn.Linear(config.dim, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.qa_outputs(self.distilbert.encode(input_ids, attention_mask))
        return logits[..., 0], logits[..., 1]


class DistilBertForMultipleChoice(nn.Module):
    """multiple-choice. Takes [B, C, S] inputs; returns (logits [B, C],)."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        num_choices, seq = input_ids.shape[1], input_ids.shape[2]
        hidden = self.distilbert.encode(input_ids.reshape(-1, seq), attention_mask.reshape(-1, seq))
        scores = self.classifier(F.relu(self.pre_classifier(hidden[:, 0])))
        return (scores.reshape(-1, num_choices),)


# The class of each head by its architecture name (TaskSpec.architecture), which is the class name.
HEADS: dict[str, type[nn.Module]] = {
    head.__name__: head
    for head in (
        DistilBertModel,
        DistilBertForMaskedLM,
        DistilBertForSequenceClassification,
        DistilBertForTokenClassification,
        DistilBertForQuestionAnswering,
        DistilBertForMultipleChoice,
    )
}


def use_sdpa(model: nn.Module) -> nn.Module:
    """Switch every attention layer of `model` to torch's scaled_dot_product_attention."""
    for module in model.modules():
        if isinstance(module, MultiHeadSelfAttention):
            module.sdpa = True
    return model


def build_model(config: DistilBertConfig, task: str) -> nn.Module:
    """An eval-mode model for `task` (a task name or alias), its weights still to be loaded or initialised.

    Built on the CPU: torch's meta-device context would save the default initialisation (0.4 s for
    distilbert-base) but costs a second to set itself up.
    """
    return HEADS[get_task(task).architecture](config).eval()


def init_weights(model: nn.Module, config: DistilBertConfig, seed: int = 0) -> nn.Module:
    """Random weights for demo and test checkpoints.

    Every parameter is random, biases and layer-norm scales included, so that a parity test
    exercises each of them (transformers' own init leaves biases at zero).
    """
    generator = torch.Generator().manual_seed(seed)

    def noise(shape: torch.Size) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * config.initializer_range

    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data = noise(module.weight.shape)
        if isinstance(module, nn.Linear):
            module.bias.data = noise(module.bias.shape)
        elif isinstance(module, nn.LayerNorm):
            module.weight.data = 1.0 + noise(module.weight.shape) * 5
            module.bias.data = noise(module.bias.shape)
    if config.sinusoidal_pos_embds:
        encoder = model if isinstance(model, DistilBertModel) else model.distilbert
        encoder.embeddings.position_embeddings.weight.data = sinusoidal_positions(
            config.max_position_embeddings, config.dim
        )
    return model
