"""Checkpoint loading: weight formats, bare encoders, missing heads, bad configs, the Hub, tokenizers."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from distilbert_onnx.errors import CheckpointError, ConfigError, MissingExtraError, MissingWeightsError, TaskError
from distilbert_onnx.exporting.checkpoint import load_checkpoint
from distilbert_onnx.exporting.tokenizer_files import write_tokenizer_files
from distilbert_onnx.config import load_config


def copy_checkpoint(source, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def state(folder):
    return load_file(folder / "model.safetensors")


def outputs(folder, task=None):
    loaded = load_checkpoint(folder, task)
    input_ids = torch.arange(1, 11).reshape(2, 5)
    with torch.no_grad():
        return loaded.model(input_ids, torch.ones_like(input_ids))


def test_task_comes_from_architectures(checkpoints):
    assert load_checkpoint(checkpoints["question-answering"]).task.name == "question-answering"
    assert load_checkpoint(checkpoints["text-classification"], "sequence-classification").task.name == "text-classification"


def test_sharded_safetensors(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    tensors = state(folder)
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in halves.items():
        save_file({key: tensors[key] for key in keys}, folder / file)
    index = {"metadata": {}, "weight_map": {key: file for file, keys in halves.items() for key in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model.safetensors").unlink()
    loaded = load_checkpoint(folder)
    assert sorted(loaded.weight_files) == sorted(halves)
    torch.testing.assert_close(outputs(folder), outputs(checkpoints["text-classification"]))


def test_missing_shard_is_named(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    index = {"weight_map": {name: "model-00001-of-00002.safetensors" for name in state(folder)}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors"):
        load_checkpoint(folder)


def test_pytorch_bin_is_read_with_weights_only(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["token-classification"], tmp_path)
    torch.save(state(folder), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    torch.testing.assert_close(outputs(folder), outputs(checkpoints["token-classification"]))


class Payload:
    """A pickle that would run code when unpickled without weights_only."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickled_code_in_pytorch_bin_is_refused_not_run(checkpoints, tmp_path, monkeypatch):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    torch.save({"weights": Payload()}, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(folder)
    assert not (tmp_path / "PWNED").exists()


def test_bare_encoder_checkpoint_exports_features_and_refuses_a_head(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["feature-extraction"], tmp_path)
    assert not any(key.startswith("distilbert.") for key in state(folder))
    assert load_checkpoint(folder).task.name == "feature-extraction"
    with pytest.raises(MissingWeightsError) as error:
        load_checkpoint(folder, "text-classification")
    message = str(error.value)
    assert "pre_classifier.weight" in message and "classifier.bias" in message and "--task" in message


def test_head_checkpoint_exports_its_encoder(checkpoints):
    encoder = load_checkpoint(checkpoints["question-answering"], "feature-extraction")
    head = load_checkpoint(checkpoints["question-answering"])
    torch.testing.assert_close(
        encoder.model.embeddings.word_embeddings.weight, head.model.distilbert.embeddings.word_embeddings.weight
    )


def test_extra_weights_are_fine(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    tensors = state(folder)
    tensors["vocab_transform.weight"] = torch.zeros(32, 32)
    tensors["distilbert.embeddings.position_ids"] = torch.arange(512)[None]
    save_file(tensors, folder / "model.safetensors")
    torch.testing.assert_close(outputs(folder), outputs(checkpoints["text-classification"]))


def test_missing_head_weight_is_named(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["question-answering"], tmp_path)
    tensors = state(folder)
    del tensors["qa_outputs.weight"]
    save_file(tensors, folder / "model.safetensors")
    with pytest.raises(MissingWeightsError, match=r"qa_outputs\.weight"):
        load_checkpoint(folder)


def test_derivable_weights_may_be_left_out(make_tiny, tmp_path):
    folder = make_tiny("fill-mask", "sinusoidal_mlm", sinusoidal_pos_embds=True)
    expected = outputs(folder)
    tensors = state(folder)
    assert "vocab_projector.weight" not in tensors  # tied: saved once, as transformers does
    del tensors["distilbert.embeddings.position_embeddings.weight"]  # sinusoidal: recomputed
    save_file(tensors, folder / "model.safetensors")
    torch.testing.assert_close(outputs(folder), expected)


def test_shape_mismatch_between_config_and_weights(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "A", "1": "B", "2": "C"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"classifier\.weight has shape \(2, 32\)"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no config.json"),
        ("{not json", "not valid JSON"),
        ('{"model_type": "bert"}', "model_type 'bert'"),
        ('{"dim": 30, "n_heads": 4}', "not divisible"),
        ('{"activation": "swish"}', "activation 'swish'"),
        ('{"n_layers": -1}', "n_layers must be a positive integer"),
    ],
)
def test_bad_config_is_a_clear_error(checkpoints, tmp_path, content, message):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    if content is None:
        (folder / "config.json").unlink()
    else:
        (folder / "config.json").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_checkpoint(folder)


def test_unknown_architecture_asks_for_a_task(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["DistilBertForCausalLM"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(TaskError, match="--task"):
        load_checkpoint(folder)
    assert load_checkpoint(folder, "text-classification").task.name == "text-classification"


def test_unknown_task_lists_the_choices(checkpoints):
    with pytest.raises(TaskError, match="feature-extraction, fill-mask"):
        load_checkpoint(checkpoints["text-classification"], "summarization")


def test_corrupt_or_missing_weights(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        load_checkpoint(folder)


def test_missing_path_is_not_mistaken_for_a_hub_id(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "nowhere" / "at" / "all")


def test_hub_ids_go_through_huggingface_hub(checkpoints, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        return str(checkpoints["text-classification"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = load_checkpoint("someone/tiny-distilbert", revision="v1")
    assert loaded.source == "someone/tiny-distilbert"
    assert calls[0][:2] == ("someone/tiny-distilbert", "v1")
    assert "*.safetensors*" in calls[0][2]


def test_hub_failure_is_one_clear_error(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore details")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="fetching it from the Hugging Face Hub failed .*couldn't connect"):
        load_checkpoint("someone/tiny-distilbert")


def test_hub_without_huggingface_hub_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingExtraError, match="pip install huggingface_hub"):
        load_checkpoint("someone/tiny-distilbert")


def test_vocab_txt_only_builds_the_same_tokenizer_as_transformers(checkpoints, tmp_path):
    from transformers import AutoTokenizer

    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    (folder / "tokenizer.json").unlink()
    target = tmp_path / "out"
    target.mkdir()
    info = write_tokenizer_files(folder, target, load_config(folder))
    assert info["built_from"] == "vocab.txt"
    ours = Tokenizer.from_file(str(target / "tokenizer.json"))
    theirs = AutoTokenizer.from_pretrained(folder)  # converts vocab.txt itself
    for text in ["Hello, World! It's 12:30.", "Maria Gonzalez lives in Paris", "naïve café — déjà vu"]:
        assert ours.encode(text).ids == theirs(text)["input_ids"]
        assert ours.encode(text, "a pair").ids == theirs(text, "a pair")["input_ids"]


def test_baked_in_padding_and_truncation_are_stripped(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    baked = Tokenizer.from_file(str(folder / "tokenizer.json"))
    natural = len(baked.encode("hello world").ids)
    baked.enable_padding(length=128)
    baked.enable_truncation(max_length=128)
    baked.save(str(folder / "tokenizer.json"))
    target = tmp_path / "out"
    target.mkdir()
    info = write_tokenizer_files(folder, target, load_config(folder))
    assert info["removed_from_tokenizer_json"] == ["padding", "truncation"]
    written = Tokenizer.from_file(str(target / "tokenizer.json"))
    assert written.padding is None and written.truncation is None
    assert len(written.encode("hello world").ids) == natural < 128


def test_tokenizer_larger_than_the_model_is_refused(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 100
    (folder / "config.json").write_text(json.dumps(config))
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(CheckpointError, match="does not belong"):
        write_tokenizer_files(folder, target, load_config(folder))


def test_checkpoint_without_tokenizer(checkpoints, tmp_path):
    folder = copy_checkpoint(checkpoints["text-classification"], tmp_path)
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").unlink()
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(CheckpointError, match="needs tokenizer.json or vocab.txt"):
        write_tokenizer_files(folder, target, load_config(folder))
