"""A small DistilBERT checkpoint folder made on the spot, for trying the tool offline.

Its weights are RANDOM (so its predictions mean nothing) and its tokenizer is a WordPiece vocabulary
trained on the package's built-in sample texts (samples.py). The folder has the Hugging Face layout
(config.json, model.safetensors, tokenizer.json, vocab.txt, tokenizer_config.json), so it goes through
exactly the path a real fine-tuned checkpoint does. The tests build their tiny checkpoints with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import save_file
from tokenizers.implementations import BertWordPieceTokenizer
from tokenizers.processors import BertProcessing

from ..config import parse_config
from ..samples import sample_texts
from ..tasks import get_task
from .modeling import build_model, init_weights

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DEMO_LABELS = {
    "text-classification": ["NEGATIVE", "POSITIVE"],
    "token-classification": ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"],
    "question-answering": ["LABEL_0", "LABEL_1"],
}


def train_tokenizer(texts: list[str], vocab_size: int = 2000, lowercase: bool = True) -> BertWordPieceTokenizer:
    """A BERT WordPiece tokenizer trained on `texts`, with [CLS] ... [SEP] post-processing."""
    tokenizer = BertWordPieceTokenizer(lowercase=lowercase)
    tokenizer.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS,
                                  show_progress=False)
    tokenizer.post_processor = BertProcessing(
        ("[SEP]", tokenizer.token_to_id("[SEP]")), ("[CLS]", tokenizer.token_to_id("[CLS]"))
    )
    return tokenizer


def make_checkpoint(
    folder: str | Path,
    task: str = "text-classification",
    *,
    dim: int = 128,
    n_layers: int = 2,
    n_heads: int = 4,
    hidden_dim: int = 512,
    max_position_embeddings: int = 512,
    labels: list[str] | None = None,
    activation: str = "gelu",
    sinusoidal_pos_embds: bool = False,
    seed: int = 0,
    tokenizer: BertWordPieceTokenizer | None = None,
    extra_config: dict | None = None,
) -> Path:
    """Write a random-weight checkpoint for `task` into `folder` (created if needed)."""
    spec = get_task(task)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer or train_tokenizer(sample_texts())
    labels = labels or DEMO_LABELS.get(spec.name, ["LABEL_0", "LABEL_1"])
    config = {
        "model_type": "distilbert",
        "architectures": [spec.architecture],
        "vocab_size": tokenizer.get_vocab_size(),
        "max_position_embeddings": max_position_embeddings,
        "sinusoidal_pos_embds": sinusoidal_pos_embds,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "dim": dim,
        "hidden_dim": hidden_dim,
        "activation": activation,
        "pad_token_id": tokenizer.token_to_id("[PAD]"),
        "id2label": {str(i): label for i, label in enumerate(labels)},
        "label2id": {label: i for i, label in enumerate(labels)},
        **(extra_config or {}),
    }
    parsed = parse_config(config)
    model = init_weights(build_model(parsed, spec.name), parsed, seed=seed)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    if parsed.tie_word_embeddings:
        state.pop("vocab_projector.weight", None)  # shared with the word embeddings; transformers saves one
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer.save_model(str(folder))  # vocab.txt
    tokenizer_config = {
        "tokenizer_class": "DistilBertTokenizer",
        "do_lower_case": True,
        "model_max_length": max_position_embeddings,
        **{name: token for name, token in zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"),
                                              SPECIAL_TOKENS)},
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
    return folder
