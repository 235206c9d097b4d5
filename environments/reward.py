"""Reward expressions from the manifest (e.g. `1 / val_loss`), evaluated without `eval`.

Only arithmetic over metric names and numbers is allowed, plus a few pure functions:
a manifest is data, and must not be able to run code in the harness.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping

_BINOPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCS: dict[str, Callable[..., float]] = {
    "log": math.log,
    "exp": math.exp,
    "sqrt": math.sqrt,
    "min": min,
    "max": max,
    "abs": abs,
}


class RewardError(ValueError):
    """The expression is malformed, or cannot be computed from these metrics."""


def check_expression(expr: str) -> ast.Expression:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as e:
        raise RewardError(f"reward expression {expr!r} does not parse: {e.msg}") from None
    for node in ast.walk(tree):
        ok = isinstance(
            node,
            ast.Expression
            | ast.BinOp
            | ast.UnaryOp
            | ast.Constant
            | ast.Name
            | ast.Call
            | ast.Load
            | ast.operator
            | ast.unaryop,
        )
        if isinstance(node, ast.BinOp) and type(node.op) not in _BINOPS:
            ok = False
        if isinstance(node, ast.UnaryOp) and type(node.op) not in _UNARY:
            ok = False
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords
        ):
            ok = False
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            ok = False
        if not ok:
            raise RewardError(
                f"reward expression {expr!r}: only numbers, metric names, + - * / ** and "
                f"{', '.join(_FUNCS)} are allowed"
            )
    return tree


def metric_names(expr: str) -> set[str]:
    tree = check_expression(expr)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in _FUNCS}


def compute_reward(expr: str, metrics: Mapping[str, float]) -> float:
    """Evaluate `expr` over `metrics`; RewardError if a metric is missing or the math fails."""
    tree = check_expression(expr)

    def ev(node: ast.AST) -> float:
        match node:
            case ast.Expression(body=body):
                return ev(body)
            case ast.Constant(value=int() | float() as v):  # check_expression allows no other
                return float(v)
            case ast.Name(id=name):
                if name not in metrics:
                    raise RewardError(
                        f"reward needs metric {name!r}, which the evaluator did not report"
                    )
                return float(metrics[name])
            case ast.UnaryOp(op=op, operand=x):
                return _UNARY[type(op)](ev(x))
            case ast.BinOp(left=a, op=op, right=b):
                return _BINOPS[type(op)](ev(a), ev(b))
            case ast.Call(func=ast.Name(id=fn), args=args):
                return float(_FUNCS[fn](*(ev(a) for a in args)))
        raise RewardError(f"unsupported node in {expr!r}")

    try:
        value = ev(tree)
    except (ZeroDivisionError, OverflowError, ValueError) as e:
        if isinstance(e, RewardError):
            raise
        raise RewardError(f"reward {expr!r} cannot be computed: {e}") from None
    if math.isnan(value) or math.isinf(value):
        raise RewardError(f"reward {expr!r} is {value}")
    return value
