"""Removed APIs: :class:`ExpiredDeprecationError` is what calling one raises."""

from .errors import ExpiredDeprecationError

__all__ = ["ExpiredDeprecationError"]
