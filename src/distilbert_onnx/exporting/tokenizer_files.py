"""The tokenizer files of a deployable folder, taken from the checkpoint.

tokenizer.json is copied without the fixed padding or truncation some checkpoints bake into it (the
runtime pads each batch to its own longest row and truncates to the model's maximum length itself).
A checkpoint with only vocab.txt gets a tokenizer.json built from it: BERT WordPiece, lower-casing
and accent handling as its tokenizer_config.json says. tokenizer_config.json and
special_tokens_map.json are copied, or written with DistilBERT's defaults, so transformers and
Optimum can load the folder too.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from ..artifacts import read_json
from ..config import DistilBertConfig
from ..errors import CheckpointError

SPECIAL_TOKENS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def write_tokenizer_files(source: Path, target: Path, config: DistilBertConfig) -> dict:
    """Write the three tokenizer files into `target`; returns what was done, for the manifest."""
    settings = read_json(source / "tokenizer_config.json", CheckpointError)
    specials = _special_tokens(source, settings)
    if (source / "tokenizer.json").is_file():
        tokenizer = _load(source / "tokenizer.json")
        stripped = [name for name in ("padding", "truncation") if getattr(tokenizer, name)]
        tokenizer.no_padding()
        tokenizer.no_truncation()
        origin = "tokenizer.json"
    elif (source / "vocab.txt").is_file():
        tokenizer = _from_vocab(source / "vocab.txt", settings, specials)
        stripped = []
        origin = "vocab.txt"
    else:
        raise CheckpointError(f"no tokenizer in {source}: a checkpoint needs tokenizer.json or vocab.txt")
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise CheckpointError(
            f"the tokenizer has {tokenizer.get_vocab_size()} tokens but the model only {config.vocab_size} "
            "embeddings: the tokenizer does not belong to this checkpoint"
        )
    tokenizer.save(str(target / "tokenizer.json"))
    settings = {
        "tokenizer_class": "DistilBertTokenizer",
        "do_lower_case": True,
        "model_max_length": config.max_position_embeddings,
        **settings,
        **specials,
    }
    _write_json(target / "tokenizer_config.json", settings)
    _write_json(target / "special_tokens_map.json", specials)
    return {"built_from": origin, "removed_from_tokenizer_json": stripped}


def _load(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception for unreadable files
        raise CheckpointError(f"cannot read {path} ({exc}): is it a tokenizers JSON file?") from None


def _from_vocab(vocab: Path, settings: dict, specials: dict) -> BertWordPieceTokenizer:
    try:
        return BertWordPieceTokenizer.from_file(
            str(vocab),
            lowercase=settings.get("do_lower_case", True),
            strip_accents=settings.get("strip_accents"),
            handle_chinese_chars=settings.get("tokenize_chinese_chars", True),
            **specials,
        )
    except Exception as exc:  # a vocabulary without [CLS] / [SEP] raises TypeError, a bad file Exception
        raise CheckpointError(f"cannot build a tokenizer from {vocab} ({exc})") from None


def _special_tokens(source: Path, settings: dict) -> dict:
    """The five special tokens: from special_tokens_map.json, else tokenizer_config.json, else defaults."""
    mapped = read_json(source / "special_tokens_map.json", CheckpointError)
    tokens = {}
    for name, default in SPECIAL_TOKENS.items():
        value = mapped.get(name, settings.get(name, default))
        tokens[name] = value["content"] if isinstance(value, dict) else str(value)
    return tokens


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
