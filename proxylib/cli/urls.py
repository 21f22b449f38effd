"""What every command that takes files needs for URLs: ``--storage-options JSON``."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from ..io.remote import is_url
from ..loading import load


def add_storage_options(parser) -> None:
    parser.add_argument("--storage-options", metavar="JSON", default=None,
                        help="fsspec options for URL arguments, as a JSON object, e.g. "
                             "'{\"anon\": true}' or '{\"client_kwargs\": {\"endpoint_url\": "
                             "\"http://127.0.0.1:9000\"}}'")


def storage_options(args) -> Optional[Dict[str, Any]]:
    """The parsed ``--storage-options`` (None when not given)."""
    raw = getattr(args, "storage_options", None)
    if raw is None:
        return None
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"--storage-options is not valid JSON: {err}") from None
    if not isinstance(options, dict):
        raise ValueError("--storage-options must be a JSON object, e.g. '{\"anon\": true}'")
    return options


def load_any(name: str, args) -> Any:
    """``proxylib.load`` of a path or URL, with ``--storage-options`` for URLs only."""
    return load(name, storage_options=storage_options(args) if is_url(name) else None)
