"""A small, safe arithmetic-expression language for calculated and algebraic questions.

Text is parsed with Python's `ast` module (parse only: nothing is ever compiled to code,
`eval`/`exec` are never called) and the tree is checked node by node against a short
whitelist: numbers, names, `+ - * / **`, unary `+`/`-`, and calls of the functions in
FUNCTIONS by plain name. Anything else (attributes, subscripts, strings, lambdas,
comprehensions, comparisons, keyword arguments ...) is refused with a clear message
*before* anything is evaluated. The checked tree is converted into our own small node
classes, and only those are evaluated.

Arithmetic stays exact (Fractions) where it can: `0.1 + 0.2` is exactly `3/10`. Functions
such as `sqrt` or `exp`, and non-integer powers, switch to floats. `floor`, `ceil` and
`round` always give exact values (a float is first read as its shortest decimal, so
`round(2.675, 2)` is 2.68); `round` takes halves away from zero (`round(-2.5)` is -3);
`mod(a, b)` is `a - b*floor(a/b)`, with the sign of `b`, as in mathematics and Python.

Sizes are capped: input length, nesting depth, number of nodes, exponents, the digits of
`round` and the size of exact intermediate values, so `9**9**9` fails quickly with
"number too large" instead of hanging.

Students may write `^` for powers, `×`/`·` for multiplication, `÷` and the Unicode minus.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

Number = Fraction | float

# Bounds on an expression (a student's algebraic answer or an author's formula). With
# them, parsing and evaluating any expression at every sample point takes about a
# millisecond at worst (bench/grading_worst.py).
MAX_LENGTH = 500
MAX_DEPTH = 60
MAX_NODES = 300
MAX_EXACT_BITS = 4096  # beyond this an exact value becomes a float (or "too large")
MAX_EXACT_EXPONENT = 1024
MAX_ARGS = 20
MAX_ROUND_DIGITS = 30  # round(x, n): n from -30 to 30, as numbers have at most 30 digits

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


class ExpressionError(ValueError):
    """An expression that cannot be used; the message is meant for the person who typed it."""


class ExpressionSyntaxError(ExpressionError):
    """The text is not an expression of this language (refused before any evaluation)."""


class ExpressionTooLarge(ExpressionSyntaxError):
    """Beyond a size bound (length, nesting, number of parts): a question type refuses it
    at save time rather than storing something it will not parse."""


class EvaluationError(ExpressionError):
    """A well-formed expression with no value here: division by zero, domain error, overflow."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise EvaluationError("the result is not a finite number")
    return value


def _float(value: Number) -> float:
    try:
        return _finite(float(value))
    except OverflowError:
        raise EvaluationError("number too large") from None


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _unary_float(fn: Callable[[float], float]) -> Callable[[list[Number]], Number]:
    return lambda args: fn(_float(args[0]))


def _log_call(args: list[Number]) -> Number:
    return _log(*(_float(a) for a in args))


def _abs(args: list[Number]) -> Number:
    value = args[0]
    return -value if value < 0 else value


def _min(args: list[Number]) -> Number:
    return min(args)


def _max(args: list[Number]) -> Number:
    return max(args)


def _relu(args: list[Number]) -> Number:
    return args[0] if args[0] > 0 else Fraction(0)


def _floor(args: list[Number]) -> Number:
    return Fraction(math.floor(args[0]))


def _ceil(args: list[Number]) -> Number:
    return Fraction(math.ceil(args[0]))


def _half_away_from_zero(value: Fraction) -> int:
    whole = math.floor(abs(value) + Fraction(1, 2))
    return whole if value >= 0 else -whole


def _round(args: list[Number]) -> Number:
    """round(x) or round(x, digits): halves away from zero, on the exact value."""
    value = to_fraction(args[0])
    if len(args) == 1:
        return Fraction(_half_away_from_zero(value))
    digits = to_fraction(args[1])
    if digits.denominator != 1 or abs(digits) > MAX_ROUND_DIGITS:
        raise EvaluationError(
            f"round(x, n) needs a whole number n from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}"
        )
    scale = Fraction(10) ** int(digits)
    return Fraction(_half_away_from_zero(value * scale)) / scale


def _mod(args: list[Number]) -> Number:
    # Python's % is a - b*floor(a/b) for Fractions and floats alike; b = 0 raises
    # ZeroDivisionError, which _Call reports as "not defined here (division by zero)".
    return args[0] % args[1]


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int
    impl: Callable[[list[Number]], Number]


FUNCTIONS: dict[str, _Function] = {
    "sqrt": _Function(1, 1, _unary_float(math.sqrt)),
    "exp": _Function(1, 1, _unary_float(math.exp)),
    "log": _Function(1, 2, _log_call),  # natural log; log(x, base) also allowed
    "ln": _Function(1, 1, _unary_float(math.log)),
    "sin": _Function(1, 1, _unary_float(math.sin)),
    "cos": _Function(1, 1, _unary_float(math.cos)),
    "tan": _Function(1, 1, _unary_float(math.tan)),
    "tanh": _Function(1, 1, _unary_float(math.tanh)),
    "sigma": _Function(1, 1, _unary_float(_sigmoid)),
    "sigmoid": _Function(1, 1, _unary_float(_sigmoid)),
    "abs": _Function(1, 1, _abs),
    "min": _Function(1, MAX_ARGS, _min),
    "max": _Function(1, MAX_ARGS, _max),
    "relu": _Function(1, 1, _relu),
    "floor": _Function(1, 1, _floor),
    "ceil": _Function(1, 1, _ceil),
    "round": _Function(1, 2, _round),
    "mod": _Function(2, 2, _mod),
}


# ---------------------------------------------------------------- nodes we evaluate


class _Node(ABC):
    @abstractmethod
    def evaluate(self, env: Mapping[str, Number]) -> Number:
        """The node's value with the variables bound in `env`."""


@dataclass(frozen=True)
class _Const(_Node):
    value: Number

    def evaluate(self, env: Mapping[str, Number]) -> Number:
        return self.value


@dataclass(frozen=True)
class _Var(_Node):
    name: str

    def evaluate(self, env: Mapping[str, Number]) -> Number:
        if self.name in env:
            return env[self.name]
        if self.name in CONSTANTS:
            return CONSTANTS[self.name]
        raise EvaluationError(f"no value for {self.name}")


@dataclass(frozen=True)
class _Neg(_Node):
    operand: _Node

    def evaluate(self, env: Mapping[str, Number]) -> Number:
        return -self.operand.evaluate(env)


@dataclass(frozen=True)
class _BinOp(_Node):
    op: str  # one of + - * / **
    left: _Node
    right: _Node

    def evaluate(self, env: Mapping[str, Number]) -> Number:
        a = self.left.evaluate(env)
        b = self.right.evaluate(env)
        return _checked(_apply(self.op, a, b))


@dataclass(frozen=True)
class _Call(_Node):
    name: str
    args: tuple[_Node, ...]

    def evaluate(self, env: Mapping[str, Number]) -> Number:
        values = [a.evaluate(env) for a in self.args]
        try:
            result = FUNCTIONS[self.name].impl(values)
        except ValueError as exc:
            if isinstance(exc, ExpressionError):
                raise
            raise EvaluationError(
                f"{self.name}() is not defined here (math domain error)"
            ) from None
        except ZeroDivisionError:
            raise EvaluationError(f"{self.name}() is not defined here (division by zero)") from None
        except OverflowError:
            raise EvaluationError("number too large") from None
        return _checked(result)


def _bits(value: Fraction) -> int:
    return value.numerator.bit_length() + value.denominator.bit_length()


def _checked(value: Number) -> Number:
    if isinstance(value, Fraction):
        if _bits(value) > MAX_EXACT_BITS:
            return _float(value)
        return value
    if isinstance(value, complex):  # pragma: no cover - math.pow never returns complex
        raise EvaluationError("the result is not a real number")
    return _finite(float(value))


def _apply(op: str, a: Number, b: Number) -> Number:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise EvaluationError("division by zero")
            return a / b
        return _power(a, b)
    except ZeroDivisionError:
        raise EvaluationError("division by zero") from None
    except OverflowError:
        raise EvaluationError("number too large") from None


def _power(base: Number, exponent: Number) -> Number:
    if (
        isinstance(base, Fraction)
        and isinstance(exponent, Fraction)
        and exponent.denominator == 1
        and abs(exponent) <= MAX_EXACT_EXPONENT
        and _bits(base) * abs(exponent) <= MAX_EXACT_BITS
    ):
        if base == 0 and exponent < 0:
            raise EvaluationError("division by zero")
        result: Number = base ** int(exponent)
        return result
    b = _float(base)
    e = _float(exponent)
    if b == 0 and e < 0:
        raise EvaluationError("division by zero")
    try:
        return math.pow(b, e)
    except ValueError:
        raise EvaluationError(
            "a negative number to a fractional power is not a real number"
        ) from None
    except OverflowError:
        raise EvaluationError("number too large") from None


# ---------------------------------------------------------------- parsing

_NODE_NAMES: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access (.)",
    ast.Subscript: "indexing ([ ])",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "and/or",
    ast.IfExp: "if/else",
    ast.Tuple: "several values separated by commas",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dictionaries",
    ast.Starred: "*",
    ast.NamedExpr: ":=",
    ast.JoinedStr: "text",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices",
}
_BIN_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}
_ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + " \t\r\n+-*/().,_")
_WORD = re.compile(r"[A-Za-z_]+")
_IMPLICIT_PRODUCT = re.compile(r"(\d|\))\s*[A-Za-z_(]")
_REPLACEMENTS = {
    "^": "**",
    "\u2212": "-",  # minus sign
    "\u00d7": "*",  # multiplication sign
    "\u00b7": "*",  # middle dot
    "\u22c5": "*",  # dot operator
    "\u00f7": "/",  # division sign
}


def normalise_source(text: str) -> str:
    for old, new in _REPLACEMENTS.items():
        text = text.replace(old, new)
    return text.strip()


@dataclass(frozen=True)
class Expression:
    """A checked expression: evaluate it with values for its variables."""

    source: str
    root: _Node
    variables: frozenset[str]  # the variable names it uses
    functions: frozenset[str]  # the function names it calls

    def evaluate(self, env: Mapping[str, Number] | None = None) -> Number:
        """The value, exact where possible; raise EvaluationError when it has none."""
        try:
            return self.root.evaluate(env or {})
        except RecursionError:  # pragma: no cover - depth is capped at parse time
            raise EvaluationError("expression too deeply nested") from None

    def evaluate_exact(self, env: Mapping[str, Number] | None = None) -> Fraction:
        """The value as a Fraction (a float result via its shortest decimal repr)."""
        return to_fraction(self.evaluate(env))

    def __str__(self) -> str:
        return self.source


def to_fraction(value: Number) -> Fraction:
    if isinstance(value, Fraction):
        return value
    return Fraction(Decimal(repr(_finite(float(value)))))


def parse_expression(
    text: str,
    *,
    variables: Iterable[str] = (),
    forbid: Iterable[str] = (),
    constants: bool = True,
) -> Expression:
    """Parse and check `text`; raise ExpressionSyntaxError with a reason for the writer.

    `variables` are the only names allowed besides functions (and `pi`, `e` if
    `constants`); `forbid` lists function names this expression may not call.
    """
    if not isinstance(text, str):
        raise ExpressionSyntaxError("expected an expression as text")
    if len(text) > MAX_LENGTH:
        raise ExpressionTooLarge(f"it is longer than {MAX_LENGTH} characters")
    source = normalise_source(text)
    if not source:
        raise ExpressionSyntaxError("it is empty")
    _check_characters(source)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):  # Python's own limit of 200 brackets
            raise ExpressionTooLarge(_TOO_DEEP) from None
        raise ExpressionSyntaxError(_syntax_message(source, exc)) from None
    except (RecursionError, MemoryError):
        raise ExpressionTooLarge(_TOO_DEEP) from None
    except ValueError:
        raise ExpressionSyntaxError("it is not a valid expression") from None
    builder = _Builder(frozenset(variables), frozenset(forbid), constants)
    root = builder.build(tree.body, 1)
    return Expression(
        source, root, frozenset(builder.used_variables), frozenset(builder.used_functions)
    )


_TOO_DEEP = f"it is nested too deeply: at most {MAX_DEPTH} levels of operations and brackets"


def _check_characters(source: str) -> None:
    """Refuse, before parsing, everything this language never needs.

    Besides giving clearer messages, this keeps the parser away from quotes, brackets,
    keywords and non-ASCII text (whose warnings and corners we then never meet).
    """
    for char in source:
        if char in _ALLOWED_CHARACTERS:
            continue
        if char in "'\"":
            raise ExpressionSyntaxError("text in quotes is not allowed in an expression")
        if char == "=":
            raise ExpressionSyntaxError("write only the expression, without '='")
        if char in "[]{}":
            raise ExpressionSyntaxError("use round brackets ( ) only")
        shown = char if char.isprintable() else f"U+{ord(char):04X}"
        raise ExpressionSyntaxError(f"the character {shown!r} is not allowed in an expression")
    for word in _WORD.findall(source):
        if keyword.iskeyword(word):
            raise ExpressionSyntaxError(f"{word!r} is not allowed in an expression")


def _syntax_message(source: str, exc: SyntaxError) -> str:
    if _IMPLICIT_PRODUCT.search(source) and "invalid" in str(exc.msg):
        return "write * for multiplication (for example 2*x, not 2x)"
    if source.count("(") != source.count(")"):
        return "the brackets do not match"
    where = f" at character {exc.offset}" if exc.offset else ""
    return f"it is not a valid expression{where}"


class _Builder:
    def __init__(self, variables: frozenset[str], forbid: frozenset[str], constants: bool):
        self.variables = variables
        self.forbid = forbid
        self.constants = constants
        self.nodes = 0
        self.used_variables: set[str] = set()
        self.used_functions: set[str] = set()

    def build(self, node: ast.AST, depth: int) -> _Node:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise ExpressionTooLarge(_TOO_DEEP)
        if self.nodes > MAX_NODES:
            raise ExpressionTooLarge(
                f"it is too long: at most {MAX_NODES} numbers, names and operations"
            )
        if isinstance(node, ast.Constant):
            return _Const(self._constant(node.value))
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand, depth + 1)
            if isinstance(node.op, ast.USub):
                return _Neg(operand)
            if isinstance(node.op, ast.UAdd):
                return operand
            raise ExpressionSyntaxError("only + and - may stand before a value")
        if isinstance(node, ast.BinOp):
            op = _BIN_OPS.get(type(node.op))
            if op is None:
                raise ExpressionSyntaxError("only + - * / and ^ (or **) are allowed between values")
            return _BinOp(op, self.build(node.left, depth + 1), self.build(node.right, depth + 1))
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        what = _NODE_NAMES.get(type(node), type(node).__name__)
        raise ExpressionSyntaxError(f"{what} is not allowed in an expression")

    def _constant(self, value: object) -> Number:
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise ExpressionSyntaxError(f"{value!r} is not a number")
        if isinstance(value, int):
            return _checked(Fraction(value))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ExpressionSyntaxError("a number in it is too large")
            return to_fraction(value)
        if isinstance(value, complex):
            raise ExpressionSyntaxError("complex numbers (j) are not allowed")
        raise ExpressionSyntaxError("text is not allowed in an expression")

    def _name(self, name: str) -> _Node:
        if name in self.variables:
            self.used_variables.add(name)
            return _Var(name)
        if self.constants and name in CONSTANTS:
            return _Var(name)
        if name in FUNCTIONS:
            raise ExpressionSyntaxError(f"{name} is a function: write {name}(...)")
        raise ExpressionSyntaxError(f"unknown variable {name[:30]!r}{self._known_variables()}")

    def _known_variables(self) -> str:
        if not self.variables:
            return " (this expression has no variables)"
        return f" (use {', '.join(sorted(self.variables))})"

    def _call(self, node: ast.Call, depth: int) -> _Node:
        if isinstance(node.func, ast.Attribute):
            self.build(node.func, depth + 1)  # raises: attribute access is not allowed
        if not isinstance(node.func, ast.Name):
            raise ExpressionSyntaxError("write * for multiplication, for example (x+1)*(x-1)")
        name = node.func.id
        if name not in FUNCTIONS:
            if name in self.variables:
                raise ExpressionSyntaxError(
                    f"{name} is not a function: write {name}*(...) to multiply"
                )
            raise ExpressionSyntaxError(
                f"unknown function {name[:30]!r} (available: {', '.join(sorted(FUNCTIONS))})"
            )
        if name in self.forbid:
            raise ExpressionSyntaxError(f"{name}() may not be used in this answer")
        if node.keywords:
            raise ExpressionSyntaxError("name=value arguments are not allowed")
        spec = FUNCTIONS[name]
        count = len(node.args)
        if not spec.min_args <= count <= spec.max_args:
            wanted = (
                str(spec.min_args)
                if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}"
            )
            raise ExpressionSyntaxError(f"{name}() takes {wanted} argument(s), got {count}")
        self.used_functions.add(name)
        return _Call(name, tuple(self.build(a, depth + 1) for a in node.args))
