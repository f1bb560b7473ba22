"""Evaluates the subset of AWS IoT rules SQL (2016-03-23) that the template's topic rules use."""

from __future__ import annotations

import base64
import enum
import json
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple


class IotSqlError(ValueError):
    """The statement uses syntax or functions this evaluator does not know (message says what)."""


class _Undefined(enum.Enum):
    """IoT SQL's Undefined: a missing field, or an operation on values it has no meaning for."""

    UNDEFINED = "Undefined"


_UNDEFINED = _Undefined.UNDEFINED
_CONSTANTS = {"TRUE": True, "FALSE": False, "NULL": None}
_KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", *_CONSTANTS})
# One token at a time; the parser, not this pattern, decides what a statement is. Character
# classes are spelled out because \d and \w would also accept non-ASCII digits and letters.
_TOKEN = re.compile(
    r"(?P<string>'(?:[^']|'')*')|(?P<number>[0-9]+(?:\.[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<symbol><>|!=|<=|>=|[=<>+\-*/(),.])"
)


class _Token(NamedTuple):
    kind: str  # "string", "number", "name", "symbol" or "end"
    text: str  # a string literal's value, quotes removed
    column: int  # 1-based, for error messages

    @property
    def word(self) -> str:
        """What the parser matches against: a symbol, or a keyword in upper case."""
        if self.kind == "name" and self.text.upper() in _KEYWORDS:
            return self.text.upper()
        return self.text if self.kind == "symbol" else ""


def _tokenize(sql: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(sql):
        if sql[position].isspace():
            position += 1
            continue
        match = _TOKEN.match(sql, position)
        if match is None:
            what = "unterminated string" if sql[position] == "'" else f"character {sql[position]!r}"
            raise IotSqlError(f"{what} at column {position + 1}")
        kind, text = match.lastgroup or "", match.group()
        if kind == "string":
            text = text[1:-1].replace("''", "'")  # a doubled quote stands for one quote
        tokens.append(_Token(kind, text, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(sql) + 1))
    return tokens


class RuleInput:
    """One MQTT message as expressions see it; the payload is parsed only if a field is read
    (and once, however many rules read it)."""

    def __init__(self, topic: str, payload: bytes, now_ms: int | None = None) -> None:
        self.topic, self.payload = topic, payload
        self.now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms

    @cached_property
    def fields(self) -> dict[str, Any]:
        try:
            document = json.loads(self.payload)
        except (ValueError, RecursionError):  # not JSON; UnicodeDecodeError is a ValueError too
            return {}
        # JSON that is not an object has no fields either, so every reference is Undefined.
        return document if isinstance(document, dict) else {}


class _Expr:
    def value(self, message: RuleInput) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Literal(_Expr):
    constant: Any

    def value(self, message: RuleInput) -> Any:
        return self.constant


@dataclass(frozen=True)
class _Field(_Expr):
    path: tuple[str, ...]  # `a.b` steps into nested objects

    def value(self, message: RuleInput) -> Any:
        current: Any = message.fields
        for step in self.path:
            if not isinstance(current, dict) or step not in current:
                return _UNDEFINED
            current = current[step]
        return current


_Function = Callable[[RuleInput, list[Any]], Any]


@dataclass(frozen=True)
class _Apply(_Expr):
    """An operator or function call: `function` gets the message and the argument values."""

    function: _Function
    args: tuple[_Expr, ...] = ()

    def value(self, message: RuleInput) -> Any:
        return self.function(message, [arg.value(message) for arg in self.args])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    """The IoT SQL type of a value: operands of a comparison must share it."""
    return "number" if _is_number(value) else type(value).__name__


def _comparison(compare: Callable[[Any, Any], Any], ordered: bool) -> _Function:
    def apply(message: RuleInput, args: list[Any]) -> Any:
        left, right = args
        kind = _kind(left)
        # Strings and numbers never compare equal or unequal: the answer is Undefined.
        if kind != _kind(right) or left is _UNDEFINED:
            return _UNDEFINED
        if ordered and kind not in ("number", "str"):  # only numbers and strings are ordered
            return _UNDEFINED
        return bool(compare(left, right))

    return apply


def _arithmetic(calculate: Callable[[Any, Any], Any]) -> _Function:
    def apply(message: RuleInput, args: list[Any]) -> Any:
        left, right = args
        return calculate(left, right) if _is_number(left) and _is_number(right) else _UNDEFINED

    return apply


def _divide(left: Any, right: Any) -> Any:
    # AWS divides into a Decimal even for two Ints; a float is the nearest JSON-able stand-in.
    return left / right if right != 0 else _UNDEFINED


def _and(message: RuleInput, args: list[Any]) -> Any:
    if any(arg is False for arg in args):
        return False
    return True if all(arg is True for arg in args) else _UNDEFINED


def _or(message: RuleInput, args: list[Any]) -> Any:
    if any(arg is True for arg in args):
        return True
    return False if all(arg is False for arg in args) else _UNDEFINED


def _not(message: RuleInput, args: list[Any]) -> Any:
    return not args[0] if isinstance(args[0], bool) else _UNDEFINED


_OPERATORS: dict[str, _Function] = {
    "OR": _or,
    "AND": _and,
    "=": _comparison(operator.eq, ordered=False),
    "<>": _comparison(operator.ne, ordered=False),
    "!=": _comparison(operator.ne, ordered=False),
    "<": _comparison(operator.lt, ordered=True),
    "<=": _comparison(operator.le, ordered=True),
    ">": _comparison(operator.gt, ordered=True),
    ">=": _comparison(operator.ge, ordered=True),
    "+": _arithmetic(operator.add),
    "-": _arithmetic(operator.sub),
    "*": _arithmetic(operator.mul),
    "/": _arithmetic(_divide),
}
# Loosest first; NOT sits between AND and the comparisons and is parsed on its own.
_PRECEDENCE = (("OR",), ("AND",), ("=", "<>", "!=", "<", "<=", ">", ">="), ("+", "-"), ("*", "/"))


def _concat(message: RuleInput, args: list[Any]) -> Any:
    # Simpler than AWS: arrays are not concatenated, so an array argument (like an Undefined
    # one, or having no string argument at all) makes the result Undefined.
    if any(arg is _UNDEFINED or isinstance(arg, list) for arg in args):
        return _UNDEFINED
    if not any(isinstance(arg, str) for arg in args):
        return _UNDEFINED
    # Strings as they are, anything else as JSON: 2 -> "2", true -> "true".
    return "".join(arg if isinstance(arg, str) else json.dumps(arg) for arg in args)


def _floor(message: RuleInput, args: list[Any]) -> Any:
    number = args[0]
    return math.floor(number) if _is_number(number) and math.isfinite(number) else _UNDEFINED


def _topic_level(level: int) -> _Function:
    def apply(message: RuleInput, args: list[Any]) -> Any:
        levels = message.topic.split("/")
        return levels[level - 1] if level <= len(levels) else _UNDEFINED

    return apply


# name -> (argument count, None for "2 or more"; what it computes). topic() and encode() take
# arguments that are not expressions, so the parser handles them itself.
_FUNCTIONS: dict[str, tuple[int | None, _Function]] = {
    "concat": (None, _concat),
    "floor": (1, _floor),
    "isUndefined": (1, lambda message, args: args[0] is _UNDEFINED),
    "timestamp": (0, lambda message, args: message.now_ms),
}


class _Parser:
    """Recursive descent over the tokens, one precedence level per call, loosest first."""

    def __init__(self, sql: str) -> None:
        self.tokens = _tokenize(sql)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        self.index += 1
        return self.tokens[self.index - 1]

    def error(self, expected: str) -> IotSqlError:
        token = self.current
        found = "end of statement" if token.kind == "end" else repr(token.text)
        return IotSqlError(f"expected {expected} at column {token.column}, found {found}")

    def accept(self, word: str) -> bool:
        if self.current.word != word:
            return False
        self.index += 1
        return True

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise self.error(repr(word) if not word.isalpha() else word)

    def name(self, expected: str) -> str:
        if self.current.kind != "name" or self.current.word:  # keywords are not names
            raise self.error(expected)
        return self.advance().text

    def statement(self) -> RuleQuery:
        self.expect("SELECT")
        items = [self.select_item()]
        while self.accept(","):
            items.append(self.select_item())
        self.expect("FROM")
        if self.current.kind != "string":
            raise self.error("a quoted topic filter after FROM")
        topic_filter = self.advance().text
        _check_topic_filter(topic_filter)
        where = self.expression() if self.accept("WHERE") else None
        if self.current.kind != "end":
            raise self.error("end of statement")
        return RuleQuery(topic_filter, tuple(items), where)

    def select_item(self) -> tuple[str, _Expr | None]:
        """(output name, expression); `*` has no expression: it is every top-level field."""
        if self.accept("*"):
            return "*", None
        expr = self.expression()
        if self.accept("AS"):
            return self.name("an output name after AS"), expr
        if isinstance(expr, _Field):  # `SELECT a.b` names its output `b`, as AWS does
            return expr.path[-1], expr
        raise self.error("AS and an output name for a computed select item")

    def expression(self, level: int = 0) -> _Expr:
        expr = self.operand(level)
        while self.current.word in _PRECEDENCE[level]:
            function = _OPERATORS[self.advance().word]
            expr = _Apply(function, (expr, self.operand(level)))
        return expr

    def operand(self, level: int) -> _Expr:
        """What the operators of `level` apply to: the next tighter level, or NOT around it."""
        if _PRECEDENCE[level] == ("AND",) and self.accept("NOT"):
            return _Apply(_not, (self.operand(level),))
        return self.unary() if level + 1 == len(_PRECEDENCE) else self.expression(level + 1)

    def unary(self) -> _Expr:
        if self.accept("-"):
            return _Apply(_OPERATORS["-"], (_Literal(0), self.unary()))
        return self.primary()

    def primary(self) -> _Expr:
        token = self.current
        if token.kind == "string":
            return _Literal(self.advance().text)
        if token.kind == "number":
            text = self.advance().text
            return _Literal(float(text) if "." in text else int(text))
        if token.word in _CONSTANTS:
            return _Literal(_CONSTANTS[self.advance().word])
        if self.accept("("):
            expr = self.expression()
            self.expect(")")
            return expr
        name = self.name("a value, field or function")
        if self.accept("("):
            return self.call(name, token.column)
        path = [name]
        while self.accept("."):
            path.append(self.name("a field name after '.'"))
        return _Field(tuple(path))

    def call(self, name: str, column: int) -> _Expr:
        if name == "encode":
            # Only the whole raw payload as base64; other forms would need the rest of encode().
            star = self.accept("*") and self.accept(",")
            if not (star and self.current.kind == "string" and self.current.text == "base64"):
                raise IotSqlError(f"only encode(*, 'base64') is supported (column {column})")
            self.advance()
            self.expect(")")
            return _Apply(lambda message, args: base64.b64encode(message.payload).decode())
        if name == "topic":
            if self.accept(")"):
                return _Apply(lambda message, args: message.topic)
            level = self.current
            if level.kind != "number" or not level.text.isdigit() or int(level.text) < 1:
                raise self.error("a topic level number of 1 or more")
            self.advance()
            self.expect(")")
            return _Apply(_topic_level(int(level.text)))
        if name not in _FUNCTIONS:
            raise IotSqlError(f"unknown function {name!r} at column {column}")
        count, function = _FUNCTIONS[name]
        args: list[_Expr] = []
        if not self.accept(")"):
            args.append(self.expression())
            while self.accept(","):
                args.append(self.expression())
            self.expect(")")
        if len(args) != count and (count is not None or len(args) < 2):
            wanted = "2 or more" if count is None else str(count)
            raise IotSqlError(f"{name}() at column {column} takes {wanted} argument(s)")
        return _Apply(function, tuple(args))


def _check_topic_filter(topic_filter: str) -> None:
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        misplaced_hash = "#" in level and (level != "#" or index != len(levels) - 1)
        if not topic_filter or misplaced_hash or ("+" in level and level != "+"):
            raise IotSqlError(f"invalid topic filter {topic_filter!r} after FROM")


@dataclass(frozen=True)
class RuleQuery:
    """A parsed rule statement, ready to apply to messages on topics its filter matches."""

    topic_filter: str  # the FROM clause's topic filter
    # (output name, expression), where `*` has no expression; left out of repr as unreadable
    select: tuple[tuple[str, _Expr | None], ...] = field(default=(), repr=False)
    where: _Expr | None = field(default=None, repr=False)

    def evaluate(
        self, topic: str, payload: bytes, *, now_ms: int | None = None
    ) -> dict[str, Any] | None:
        """The rule's output object for one message, or None when the WHERE clause is not true.

        now_ms overrides timestamp() (tests). The topic is not checked against topic_filter
        here: callers route messages by it first (TopicRule.matches).
        """
        return self.apply(RuleInput(topic, payload, now_ms))

    def apply(self, message: RuleInput) -> dict[str, Any] | None:
        """`evaluate` for a message already wrapped (rules on one topic share its parse)."""
        if self.where is not None and self.where.value(message) is not True:
            return None
        output: dict[str, Any] = {}
        for name, expr in self.select:
            value = message.fields if expr is None else {name: expr.value(message)}
            # AWS leaves out what is Undefined rather than writing a null.
            output.update((key, item) for key, item in value.items() if item is not _UNDEFINED)
        return output


def parse_rule(sql: str) -> RuleQuery:
    """The statement parsed, or IotSqlError for anything outside the supported subset."""
    return _Parser(sql).statement()
