"""Small rendering helpers shared by the anomalies admins."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON in a ``<pre>``, for read-only admin fields."""
    return format_html(
        "<pre style='margin:0'>{}</pre>",
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )
