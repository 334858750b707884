"""Training and generation must show the real model the same prompt tokens: one BOS, the chat template, one eos."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from trl.data_utils import _tokenize, common_prefix_length

from training.ml.data import dpo_rows, sft_rows
from training.ml.generate import Generator


@pytest.fixture(scope="module")
def real_tokenizer():
    """The bundled SmolLM2's tokenizer, from the checkpoint tests share (converted once, ~20 s)."""
    from transformers import AutoTokenizer

    from training.ml.checkpoints import prepare_base_checkpoint

    base = Path(__file__).resolve().parents[2] / "var" / "test-models" / "base-smollm2-135m-instruct"
    prepare_base_checkpoint("bundled", base, name=base.name)
    return AutoTokenizer.from_pretrained(str(base))


@pytest.mark.slow
def test_training_and_generation_tokenise_the_prompt_identically(real_tokenizer):
    tok = real_tokenizer
    toxic = "shut up you fool"
    # Generation: the real Generator._encode (left padding, pad = eos as Generator sets them).
    generating = SimpleNamespace(tokenizer=tok, device=SimpleNamespace(device="cpu"), family="causal", prefix=None)
    tok.padding_side = "left"
    generation_ids = Generator._encode(generating, [toxic])["input_ids"][0].tolist()

    # Training: our rows, tokenised exactly as TRL's SFT and DPO trainers tokenise non-conversational data.
    sft = sft_rows([{"prompt": toxic, "completion": "Please be quiet."}], tok)[0]
    dpo = dpo_rows([{"prompt": toxic, "chosen": "Please be quiet.", "rejected": toxic}], tok)[0]
    prompt_ids = _tokenize(tok, sft["prompt"])["input_ids"]
    assert _tokenize(tok, dpo["prompt"])["input_ids"] == prompt_ids == generation_ids

    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.eos_token_id
    assert prompt_ids[0] == start and prompt_ids[1] != start  # the template's opening token, not doubled
    if tok.bos_token_id is not None and tok.bos_token_id != start:
        assert tok.bos_token_id not in prompt_ids[:2]
    assert tok.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    for full in (sft["prompt"] + sft["completion"], dpo["prompt"] + dpo["chosen"], dpo["prompt"] + dpo["rejected"]):
        ids = _tokenize(tok, full)["input_ids"]
        assert common_prefix_length(prompt_ids, ids) == len(prompt_ids)  # the answer starts right after the prompt
        assert ids[-1] == end and ids[-2] != end  # one eos, where generation stops
