"""The PyTorch model against transformers' DistilBert* classes: same weights, same outputs (1e-5)."""

from __future__ import annotations

import pytest
import torch
import transformers

from distilbert_onnx.exporting.checkpoint import load_checkpoint
from distilbert_onnx.exporting.modeling import sinusoidal_positions, use_sdpa
from distilbert_onnx.tasks import TASK_NAMES, get_task

ATOL = 1e-5


def padded_batch(vocab_size: int, shape=(3, 13)):
    """Full, right-padded and left-padded rows."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, vocab_size, shape, generator=generator)
    attention_mask = torch.ones(shape, dtype=torch.long)
    attention_mask[1, 8:] = 0
    attention_mask[2, :5] = 0
    input_ids[attention_mask == 0] = 0
    return input_ids, attention_mask


def reference(folder, task):
    spec = get_task(task)
    return getattr(transformers, spec.architecture).from_pretrained(folder).eval()


def compare(folder, task):
    ours = load_checkpoint(folder, task)
    theirs = reference(folder, task)
    input_ids, attention_mask = padded_batch(ours.config.vocab_size)
    if task == "multiple-choice":
        input_ids = torch.stack([input_ids, input_ids.flip(0)], dim=0)
        attention_mask = torch.stack([attention_mask, attention_mask.flip(0)], dim=0)
    with torch.no_grad():
        outputs = ours.model(input_ids, attention_mask)
        expected = theirs(input_ids=input_ids, attention_mask=attention_mask)
    mask = attention_mask.bool()
    for name, value in zip(ours.task.output_names, outputs, strict=True):
        want = expected[name]
        assert value.shape == want.shape
        if name in ours.task.per_token_outputs():  # padded positions mean nothing
            value, want = value[mask], want[mask]
        torch.testing.assert_close(value, want, atol=ATOL, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_head_matches_transformers_with_padding(checkpoints, task):
    compare(checkpoints[task], task)


def test_sinusoidal_positions_and_relu(make_tiny):
    folder = make_tiny("text-classification", "sinusoidal_relu", sinusoidal_pos_embds=True, activation="relu")
    compare(folder, "text-classification")


def test_sinusoidal_table_matches_transformers():
    from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

    expected = create_sinusoidal_embeddings(64, 32, torch.empty(64, 32))
    torch.testing.assert_close(sinusoidal_positions(64, 32), expected, atol=1e-6, rtol=0)


def test_untied_masked_lm_projection(make_tiny):
    folder = make_tiny("fill-mask", "untied", extra_config={"tie_word_embeddings": False})
    compare(folder, "fill-mask")
    loaded = load_checkpoint(folder)
    assert loaded.model.vocab_projector.weight is not loaded.model.distilbert.embeddings.word_embeddings.weight


def test_tied_masked_lm_projection_shares_the_embeddings(checkpoints):
    model = load_checkpoint(checkpoints["fill-mask"]).model
    assert model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight


def test_sdpa_attention_matches_the_exported_form(checkpoints):
    explicit = load_checkpoint(checkpoints["question-answering"])
    fused = use_sdpa(load_checkpoint(checkpoints["question-answering"]).model)
    input_ids, attention_mask = padded_batch(explicit.config.vocab_size)
    mask = attention_mask.bool()
    with torch.no_grad():
        for a, b in zip(explicit.model(input_ids, attention_mask), fused(input_ids, attention_mask)):
            torch.testing.assert_close(a[mask], b[mask], atol=ATOL, rtol=0)
