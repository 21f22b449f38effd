"""Recognising array proxies by what they declare, not by their class.

Kept below every module that asks (images, formats, daskarray), so none of
them needs :mod:`proxylib.arrayproxy` for the question.
"""

from __future__ import annotations

from typing import Any


def is_proxy(obj: Any) -> bool:
    """True when ``obj`` says it is an array proxy (``obj.is_proxy is True``)."""
    try:
        return obj.is_proxy is True
    except AttributeError:
        return False


__all__ = ["is_proxy"]
