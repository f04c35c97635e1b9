"""Text to token ids with the `tokenizers` library, the way the pipelines need them.

The folder's tokenizer.json is loaded with any padding or truncation baked into it switched off:
batches are padded to their own longest row (batching.py) and texts are truncated to the model's
maximum length unless a caller asks for windows. Pairs, offsets, word ids and overflow windows with
a stride come from tokenizers' Encoding objects. token_type_ids are never produced for the model.

One TextTokenizer is safe to share between threads: the tokenizers it encodes with are configured
once (one per truncation setting, made under a lock) and never changed afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Encoding, Tokenizer

from ..artifacts import TOKENIZER_NAME, read_json
from ..errors import ArtifactError

TextInput = str | tuple[str, str]
# transformers' clean_up_tokenization: spaces it removes before punctuation and contractions.
_CLEAN_UPS = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
    (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)
# transformers writes a huge sentinel (int(1e30)) for "no limit"; anything above this is one.
_NO_LIMIT = 1_000_000


class TextTokenizer:
    """Encodes texts and text pairs for a DistilBERT graph."""

    def __init__(self, folder: str | Path, model_max_positions: int):
        folder = Path(folder)
        path = folder / TOKENIZER_NAME
        if not path.is_file():
            raise ArtifactError(f"no {TOKENIZER_NAME} in {folder}: the folder needs its tokenizer")
        try:
            self._base = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on unreadable files
            raise ArtifactError(f"cannot read {path} ({exc}): re-export the folder") from None
        self._base.no_padding()
        self._base.no_truncation()
        settings = read_json(folder / "tokenizer_config.json")
        limit = settings.get("model_max_length")
        limit = limit if isinstance(limit, int) and 0 < limit < _NO_LIMIT else model_max_positions
        self.model_max_length = min(limit, model_max_positions)
        self.clean_up_spaces = bool(settings.get("clean_up_tokenization_spaces", False))
        specials = {**settings, **read_json(folder / "special_tokens_map.json")}
        self.mask_token = _token_text(specials.get("mask_token", "[MASK]"))
        self.pad_token_id = self._id(_token_text(specials.get("pad_token", "[PAD]")), default=0)
        self.cls_token_id = self._id(_token_text(specials.get("cls_token", "[CLS]")))
        self.unk_token_id = self._id(_token_text(specials.get("unk_token", "[UNK]")))
        self.mask_token_id = self._id(self.mask_token)
        self._truncating: dict[tuple, Tokenizer] = {}
        self._lock = threading.Lock()

    def _id(self, token: str, default: int | None = None) -> int | None:
        found = self._base.token_to_id(token)
        return default if found is None else found

    def encode(
        self,
        inputs: Sequence[TextInput],
        *,
        max_length: int | None = None,
        stride: int = 0,
        strategy: str = "longest_first",
        add_special_tokens: bool = True,
    ) -> list[Encoding]:
        """One Encoding per input, truncated to `max_length` (default: the model's maximum).

        With a stride, the tokens cut off are kept as overlapping windows in `Encoding.overflowing`.
        """
        tokenizer = self._tokenizer_for(max_length or self.model_max_length, stride, strategy)
        inputs = list(inputs)
        try:
            return tokenizer.encode_batch(inputs, add_special_tokens=add_special_tokens)
        except TypeError:
            _refuse_lone_surrogates(inputs)
            raise

    def _tokenizer_for(self, max_length: int, stride: int, strategy: str) -> Tokenizer:
        key = (max_length, stride, strategy)
        tokenizer = self._truncating.get(key)
        if tokenizer is None:
            with self._lock:
                tokenizer = self._truncating.get(key)
                if tokenizer is None:
                    tokenizer = Tokenizer.from_str(self._base.to_str())
                    tokenizer.enable_truncation(max_length, stride=stride, strategy=strategy)
                    self._truncating[key] = tokenizer
        return tokenizer

    @property
    def subword_prefix(self) -> str | None:
        """The prefix of a word's continuation pieces ('##' in WordPiece), when the model has one."""
        return getattr(self._base.model, "continuing_subword_prefix", None)

    def count_special_tokens(self, pair: bool) -> int:
        return self._base.num_special_tokens_to_add(pair)

    def token_to_id(self, token: str) -> int | None:
        return self._base.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._base.id_to_token(token_id)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Ids back to text, with the space clean-up tokenizer_config.json asks for (as transformers)."""
        text = self._base.decode(list(ids), skip_special_tokens=skip_special_tokens)
        if self.clean_up_spaces:
            for spaced, tight in _CLEAN_UPS:
                text = text.replace(spaced, tight)
        return text

    def tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Tokens back to text with the tokenizer's decoder ('##' pieces glued to the word)."""
        decoder = self._base.decoder
        return decoder.decode(list(tokens)) if decoder is not None else " ".join(tokens)


def windows(encoding: Encoding) -> list[Encoding]:
    """The encoding followed by its overflow windows, in text order."""
    return [encoding, *encoding.overflowing]


def _refuse_lone_surrogates(inputs: Sequence[TextInput]) -> None:
    """A ValueError naming the first lone surrogate in the texts (tokenizers' own error for it is a
    TypeError about its input types)."""
    for text in (part for item in inputs for part in ((item,) if isinstance(item, str) else item)):
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(f"a text holds a lone surrogate (\\u{ord(text[exc.start]):04x} at character "
                                 f"{exc.start}), which is not a character: pass valid Unicode text") from None


def _token_text(value) -> str:
    return value["content"] if isinstance(value, dict) else str(value)
