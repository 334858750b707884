"""Display helpers shared by the staff pages of several apps (no app imports)."""
from __future__ import annotations


def as_items(mapping: dict | None, prefix: str = "") -> list[tuple[str, str]]:
    """A settings or metrics dict as (key, value) lines for a page; nested dicts get dotted keys."""
    items: list[tuple[str, str]] = []
    for key, value in (mapping or {}).items():
        if isinstance(value, dict):
            items.extend(as_items(value, f"{prefix}{key}."))
        elif isinstance(value, float):
            items.append((f"{prefix}{key}", f"{value:.4g}"))
        elif isinstance(value, list) and len(value) > 12:
            items.append((f"{prefix}{key}", f"{len(value)} items"))
        else:
            items.append((f"{prefix}{key}", "–" if value is None else str(value)))
    return items
