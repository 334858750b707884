"""Number formats for the quality pages: missing values show as a dash, not "None"."""
from django import template

register = template.Library()
DASH = "–"


@register.filter
def percent(value) -> str:
    return DASH if value is None else f"{value:.0%}"


@register.filter
def decimal(value, places: int = 2) -> str:
    return DASH if value is None else f"{value:.{int(places)}f}"


@register.filter
def pvalue(value) -> str:
    if value is None:
        return DASH
    return "< 0.001" if value < 0.001 else f"{value:.3f}"
