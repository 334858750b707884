"""The one prompt template shared by generation, SFT, DPO and evaluation.

Keeping it in one place means a model is always asked the question it was trained on. Causal models
get a chat template; encoder-decoder models (T5) a plain task prefix, as they were fine-tuned.
"""
from __future__ import annotations

import re
from typing import Any

from .families import CAUSAL, SEQ2SEQ

INSTRUCTION = "Rewrite the user's message politely. Keep its meaning."
# T5 models learn tasks as "prefix: text"; seq2seq checkpoints are asked this way unless their config declares
# another prefix (``families.task_prefix``; ``register_base_model --prompt-prefix``).
SEQ2SEQ_PREFIX = "detoxify: "

# Used when a tokenizer carries no chat template of its own (a bare tokenizer, a tiny test model).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_messages(toxic: str) -> list[dict[str, str]]:
    """Chat messages asking for a polite rewrite of ``toxic`` (a compact prompt, ~20 tokens + text)."""
    return [
        {"role": "system", "content": INSTRUCTION},
        {"role": "user", "content": toxic.strip()},
    ]


def render_prompt(tokenizer: Any, toxic: str, *, family: str = CAUSAL, prefix: str | None = None) -> str:
    """The exact text fed to the model before its answer: the chat prompt (generation prompt included) of a
    causal model, the encoder input of a seq2seq one (``prefix``, default ``SEQ2SEQ_PREFIX``, then the text)."""
    if family == SEQ2SEQ:
        return (SEQ2SEQ_PREFIX if prefix is None else prefix) + toxic.strip()
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer.apply_chat_template(build_messages(toxic), tokenize=False, add_generation_prompt=True)


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_completion(text: str) -> str:
    """Normalise a decoded completion: first line only, stripped (the model sometimes rambles on).

    Control characters go too: a byte-level tokenizer can emit NUL, which PostgreSQL text refuses.
    """
    text = _CONTROL_CHARS.sub("", text).strip()
    for stop in ("<|im_end|>", "<|im_start|>", "\n"):
        text = text.split(stop, 1)[0]
    return text.strip()
