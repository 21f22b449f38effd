"""Parse a numpy key written as text ("..., 10:20", "5, :, :, 0") without eval.

The text is parsed as the inside of a subscript by :mod:`ast` and only
integer literals (optionally negative), slices of them, ``...``, ``None``,
``newaxis`` and lists of integers or booleans are accepted.
"""

from __future__ import annotations

import ast
from typing import Any

from ..errors import KeySyntaxError


def parse_key(text: str) -> Any:
    """The key ``text`` denotes; ``ValueError`` if it is not a plain literal index."""
    try:
        tree = ast.parse(f"_[{text}]", mode="eval")
    except SyntaxError as err:
        raise KeySyntaxError(f"cannot parse key {text!r}: {err.msg}") from None
    node = tree.body
    if not isinstance(node, ast.Subscript):
        raise KeySyntaxError(f"cannot parse key {text!r}")
    return _item(node.slice, text, top=True)


def _item(node: ast.AST, text: str, top: bool = False) -> Any:
    if top and isinstance(node, ast.Tuple):
        return tuple(_item(element, text) for element in node.elts)
    if isinstance(node, ast.Slice):
        return slice(*(None if part is None else _integer(part, text)
                       for part in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return Ellipsis
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    if isinstance(node, ast.Name) and node.id in ("None", "newaxis"):
        return None
    if isinstance(node, ast.List):
        return [_element(element, text) for element in node.elts]
    return _integer(node, text)


def _element(node: ast.AST, text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.List):
        return [_element(element, text) for element in node.elts]
    return _integer(node, text)


def _integer(node: ast.AST, text: str) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _integer(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise KeySyntaxError(
        f"key {text!r}: {ast.unparse(node)!r} is not allowed; use integers, slices "
        "(start:stop:step), ..., None and lists of integers")
