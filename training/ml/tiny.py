"""Tiny random models, causal (Llama) and encoder-decoder (T5), with a tokenizer trained on the spot, for
tests that must run in seconds.

The model shares the real pipeline (chat template, safetensors checkpoint, ``version.json``), so a
test on it exercises the same code paths as the bundled model.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .checkpoints import atomic_directory, write_version_file
from .prompting import CHATML_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
DEFAULT_CORPUS = [
    "you are a stupid idiot",
    "you are not very smart",
    "shut up you fool",
    "please be quiet",
    "this is damn crap",
    "this is not good",
    "what the hell are you doing",
    "what are you doing",
    "system user assistant rewrite the message politely keep its meaning",
]


def _byte_level_bpe(texts: list[str], special_tokens: list[str], *, unk_token: str | None = None) -> Any:
    """A 400-token byte-level BPE ``tokenizers.Tokenizer`` trained on ``texts`` (any text stays encodable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE(unk_token=unk_token))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return bpe


def _save(destination: Path, model: Any, tokenizer: Any, name: str) -> Path:
    with atomic_directory(Path(destination)) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_version_file(tmp, {"name": name, "kind": "base", "source": name, "parent": None})
    return Path(destination)


def build_tiny_checkpoint(destination: Path, *, corpus: Iterable[str] = (), seed: int = 0) -> Path:
    """Write a ~100k-parameter Llama checkpoint with a BPE tokenizer to ``destination``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(list(DEFAULT_CORPUS) + list(corpus), SPECIAL_TOKENS),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return _save(destination, LlamaForCausalLM(config), tokenizer, "tiny")


SEQ2SEQ_SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]


def build_tiny_seq2seq_checkpoint(destination: Path, *, corpus: Iterable[str] = (), seed: int = 0) -> Path:
    """Write a ~100k-parameter T5 checkpoint to ``destination``, with a BPE tokenizer that, like T5's own,
    appends ``</s>`` to every encoded text and starts decoding from ``<pad>``."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    from .prompting import SEQ2SEQ_PREFIX

    texts = list(DEFAULT_CORPUS) + [SEQ2SEQ_PREFIX] + list(corpus)
    bpe = _byte_level_bpe(texts, SEQ2SEQ_SPECIAL_TOKENS, unk_token="<unk>")
    eos_id = bpe.token_to_id("</s>")
    bpe.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return _save(destination, T5ForConditionalGeneration(config), tokenizer, "tiny-t5")
