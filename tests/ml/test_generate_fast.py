"""The fast generation path on the tiny model: batched sampling, stop-at-first-line, backends, dedupe.

No timings are asserted here: bench/bench_generation.py measures speed.
"""
from __future__ import annotations

import importlib.util

import pytest

from training.ml.dedupe import candidate_key, dedupe
from training.ml.generate import (
    CT2_INT8,
    HF_FP32,
    TORCH_INT8,
    DecodingConfig,
    Generator,
    first_line_complete,
    get_generator,
)
from training.ml.prompting import clean_completion

TOXICS = ["you are a stupid idiot", "shut up you fool", "what the hell are you doing"]
CONFIG = DecodingConfig(num_candidates=3, temperature=1.0, top_p=0.95, max_new_tokens=12)


@pytest.fixture(scope="module")
def hf(tiny_checkpoint):
    return Generator(tiny_checkpoint, backend=HF_FP32)


def test_sample_batch_gives_num_candidates_per_prompt_and_is_seeded(hf):
    first = hf.sample_batch(TOXICS, CONFIG, seed=7)
    assert len(first) == len(TOXICS)
    assert all(len(rewrites) == CONFIG.num_candidates for rewrites in first)
    assert [[r.index for r in rs] for rs in first] == [[0, 1, 2]] * len(TOXICS)
    assert all(r.seed == 7 and r.backend == HF_FP32 and r.seconds > 0 for rs in first for r in rs)
    again = hf.sample_batch(TOXICS, CONFIG, seed=7)
    assert [[r.text for r in rs] for rs in again] == [[r.text for r in rs] for rs in first]


def test_sample_keeps_its_single_prompt_api(hf):
    rewrites = hf.sample(TOXICS[0], CONFIG, seed=3)
    assert len(rewrites) == 3 and [r.index for r in rewrites] == [0, 1, 2]
    assert [r.text for r in rewrites] == [r.text for r in hf.sample(TOXICS[0], CONFIG, seed=3)]
    assert hf.sample_batch([], CONFIG, seed=3) == []


def full_length_first_lines(generator: Generator, toxics: list[str], max_new_tokens: int) -> list[str]:
    """What the old path kept: greedy to max_new_tokens, no stopping criterion, then clean_completion."""
    import torch

    batch = generator._encode(toxics)
    with torch.inference_mode():
        output = generator.model.generate(
            **batch, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=generator.tokenizer.pad_token_id
        )
    return generator._decode(output, batch["input_ids"].shape[1])


def test_stop_at_first_line_keeps_exactly_what_a_full_run_keeps(hf):
    # The random tiny model emits newlines often (its vocabulary is small), so rows stop early.
    toxics = TOXICS + ["this is damn crap", "please be quiet", "you are not very smart you fool"]
    full = full_length_first_lines(hf, toxics, 40)
    assert hf.greedy(toxics, max_new_tokens=40) == full
    assert hf.greedy(toxics, max_new_tokens=40, batch_size=2) == full


@pytest.fixture(scope="module")
def chatty(tiny_checkpoint):
    """The tiny model with its newline logit raised by 3: it writes leading blank lines, control
    characters, content then a newline -- every case the stopping criterion must get right."""
    import torch

    generator = Generator(tiny_checkpoint, backend=HF_FP32)
    old = generator.model.lm_head
    head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(old.weight)
        head.bias.zero_()
        head.bias[generator._newline_ids] = 3.0
    generator.model.lm_head = head
    return generator


def test_sampling_with_stop_keeps_what_a_full_sampled_run_keeps(chatty):
    import torch

    toxics = TOXICS + ["this is damn crap"]
    config = DecodingConfig(num_candidates=3, temperature=1.0, top_p=0.95, max_new_tokens=30)
    batch = chatty._encode(toxics)
    length = batch["input_ids"].shape[1]
    torch.manual_seed(3)
    with torch.inference_mode():
        output = chatty.model.generate(
            **batch,
            do_sample=True,
            temperature=1.0,
            top_p=0.95,
            top_k=50,
            num_return_sequences=3,
            max_new_tokens=30,
            pad_token_id=chatty.tokenizer.pad_token_id,
        )
    raw = [chatty.tokenizer.decode(row[length:], skip_special_tokens=True) for row in output]
    assert sum(first_line_complete(text) for text in raw) >= 6  # the case under test does occur
    assert sum(text.startswith("\n") for text in raw) >= 2
    fast = [r.text for rewrites in chatty.sample_batch(toxics, config, seed=3) for r in rewrites]
    assert fast == [clean_completion(text) for text in raw]


def test_greedy_with_stop_matches_on_the_chatty_model(chatty):
    toxics = TOXICS + ["this is damn crap", "please be quiet"]
    assert chatty.greedy(toxics, max_new_tokens=30) == full_length_first_lines(chatty, toxics, 30)


@pytest.mark.parametrize(
    ("text", "complete"),
    [("", False), ("\n", False), ("  \n\n", False), ("hello", False), ("hello\n", True), ("\nhello\nmore", True),
     ("\x00\nhi", False), ("a.\n", True)],
)
def test_first_line_complete(text, complete):
    assert first_line_complete(text) is complete


def test_backend_label_is_in_the_provenance(hf):
    provenance = hf.provenance(CONFIG)
    assert provenance["backend"] == HF_FP32
    assert provenance["top_k"] == 50
    assert {k: v for k, v in provenance.items() if k not in ("backend", "top_k")} == CONFIG.as_dict()  # float32: no dtype


def test_a_half_precision_model_says_so_in_the_provenance(hf):
    """On a GPU the hf path runs in bf16 (``pick_device``); its candidates must not look float32."""
    import torch

    from training.ml.device import DeviceInfo

    original, hf.device = hf.device, DeviceInfo("cuda", torch.bfloat16, bf16=True, fp16=False)
    try:
        assert hf.provenance(CONFIG)["dtype"] == "bfloat16"
    finally:
        hf.device = original
    # The stored decoding dict keeps its keys (the pool and its tests read them).
    assert set(CONFIG.as_dict()) == {"num_candidates", "temperature", "top_p", "max_new_tokens"}


def test_torch_int8_backend_runs(tiny_checkpoint):
    generator = Generator(tiny_checkpoint, backend=TORCH_INT8)
    assert generator.backend == TORCH_INT8
    batches = generator.sample_batch(TOXICS[:2], CONFIG, seed=1)
    assert [len(b) for b in batches] == [3, 3] and batches[0][0].backend == TORCH_INT8
    assert len(generator.greedy(TOXICS, max_new_tokens=8)) == len(TOXICS)


def test_ct2_backend_runs_and_matches_the_reference_when_greedy(tiny_checkpoint, hf):
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed (pip install ctranslate2); the ct2-int8 backend falls back to hf-fp32")
    generator = Generator(tiny_checkpoint, backend=CT2_INT8)
    assert generator.backend == CT2_INT8
    assert (tiny_checkpoint / "ct2-int8" / "model.bin").exists()
    assert not list(tiny_checkpoint.glob(".tmp-*"))
    batches = generator.sample_batch(TOXICS, CONFIG, seed=5)
    assert [len(b) for b in batches] == [3, 3, 3] and batches[0][0].backend == CT2_INT8
    assert [[r.text for r in b] for b in generator.sample_batch(TOXICS, CONFIG, seed=5)] == [
        [r.text for r in b] for b in batches
    ]
    assert len(generator.greedy(TOXICS, max_new_tokens=20)) == len(TOXICS)


def test_unknown_backend_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError, match="unknown generation backend"):
        Generator(tiny_checkpoint, backend="gpu-magic")


def test_ct2_falls_back_to_hf_when_ctranslate2_is_missing(tiny_checkpoint, monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_ct2(name, *args, **kwargs):
        if name == "ctranslate2" or name.startswith("ctranslate2."):
            raise ImportError("no ctranslate2 here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ct2)
    generator = Generator(tiny_checkpoint, backend=CT2_INT8)
    assert generator.backend == HF_FP32
    assert "falls back" in caplog.text


def test_get_generator_defaults_from_the_environment(tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("GENERATION_BACKEND", TORCH_INT8)
    assert get_generator(tiny_checkpoint).backend == TORCH_INT8
    assert get_generator(tiny_checkpoint, backend=HF_FP32).backend == HF_FP32


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("They are murderers.", "they are Murderers"),
        ("  you are  wrong !", "You are wrong"),
        ("\u201cPlease stop.\u201d", '"please stop"'),
        ("That is bad...", "that is bad\u2026"),
        ("Stop it!!", "stop it!"),
        ("I disagree , sorry.", "i disagree, sorry"),
    ],
)
def test_candidate_key_treats_near_duplicates_as_one(a, b):
    assert candidate_key(a) == candidate_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("you are wrong", "you are not wrong"), ("stop it", "stop, it"), ("be kind", "be kinder")],
)
def test_candidate_key_keeps_real_differences(a, b):
    assert candidate_key(a) != candidate_key(b)


def test_dedupe_keeps_the_first_of_each_key_and_drops_empty_texts():
    assert dedupe(["They are murderers.", "they are Murderers", "...", "", "Be nice"]) == [
        "They are murderers.",
        "Be nice",
    ]


def test_ct2_stop_at_first_line_keeps_what_a_full_ct2_run_keeps(tiny_checkpoint):
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed")
    generator = Generator(tiny_checkpoint, backend=CT2_INT8)
    toxics = TOXICS + ["this is damn crap", "please be quiet"]
    starts = [
        generator.tokenizer.convert_ids_to_tokens(generator._encode([t])["input_ids"][0].tolist()) for t in toxics
    ]
    with generator._ct2.engine(None) as engine:
        results = engine.generate_batch(
            starts, max_length=30, end_token=generator._end_ids, include_prompt_in_result=False, sampling_topk=1
        )
    full = [clean_completion(generator.tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True)) for r in results]
    assert generator.greedy(toxics, max_new_tokens=30) == full


def test_ct2_without_reproducibility_says_so_in_the_provenance(tiny_checkpoint):
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed")
    generator = Generator(tiny_checkpoint, backend=CT2_INT8, reproducible=False)
    assert [len(b) for b in generator.sample_batch(TOXICS, CONFIG, seed=5)] == [3, 3, 3]
    assert generator.provenance(CONFIG)["reproducible"] is False
    assert "reproducible" not in Generator(tiny_checkpoint, backend=CT2_INT8).provenance(CONFIG)
