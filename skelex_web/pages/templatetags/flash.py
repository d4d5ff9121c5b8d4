"""Where a page shows its flash messages.

An action whose form sits in one section of a page (the project page's Active learning or Members)
redirects back to that section (``#learning``), below the fold, where messages shown at the top of
the page go unseen. Such actions tag their messages ``at-<section>`` (``at("learning")``); the page
shows them inside that section, and the top of the page shows only the untagged ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template

register = template.Library()

PREFIX = "at-"


def at(section: str) -> str:
    """``extra_tags`` for a message shown in ``section`` of the page it redirects to."""
    return PREFIX + section


@register.filter
def in_section(messages: Iterable[Any], section: str = "") -> list[Any]:
    """The messages for ``section``; ``""`` = those tagged for no section (the top of the page)."""
    out = []
    for message in messages or []:
        tags = (getattr(message, "extra_tags", "") or "").split()
        where = next((t[len(PREFIX) :] for t in tags if t.startswith(PREFIX)), "")
        if where == section:
            out.append(message)
    return out
