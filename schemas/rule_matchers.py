"""Name patterns (rule selectors) and label matchers (silences) of the rules file.

A *name pattern* selects pools or regions by name:

- ``poolA``: exactly that name;
- ``eu-*``, ``pool-?``, ``pool-[abc]``, ``pool-[!x]*``: a glob (``*`` any run, ``?`` one
  character, ``[...]`` / ``[!...]`` a character class);
- ``re:^eu-(west|north)$`` or ``re:eu-.*``: a regular expression matched against the whole name.

Every pattern also renders as an anchored regular expression in the syntax Python and RE2
(Prometheus, Alertmanager) share, so a rule exported as a Prometheus expression selects the same
names (``NamePattern.regex``).

A *label matcher* is Alertmanager's: ``name op value`` with ``=``, ``!=``, ``=~``, ``!~``; regular
expressions match the whole label value. Strings such as ``pool="poolA"`` or ``region=~"eu-.*"``
parse into :class:`LabelMatcher`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

REGEX_PREFIX = "re:"
MAX_PATTERN_CHARS = 256
LABEL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Prometheus label names (names starting with ``__`` are refused separately)."""

_GLOB_CHARS = re.compile(r"^[A-Za-z0-9_.:*?\[\]!-]+$")
_WILDCARDS = frozenset("*?[")
_MATCHER_TEXT = re.compile(
    r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$'
)

MatchOp = Literal["=", "!=", "=~", "!~"]


def _escape(char: str) -> str:
    return char if char.isalnum() or char == "_" else "\\" + char


def glob_to_regex(pattern: str) -> str:
    """Translate a glob into an unanchored regex body valid in Python ``re`` and RE2."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append("\\[")
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("!")
                if negate:
                    body = body[1:]
                escaped = "".join(c if c.isalnum() or c == "-" else "\\" + c for c in body)
                out.append("[" + ("^" if negate else "") + escaped + "]")
                i = end
        else:
            out.append(_escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class NamePattern:
    """One compiled pool or region pattern (see the module docstring for the syntax)."""

    source: str
    regex: str
    exact: str | None
    _compiled: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> NamePattern:
        """Compile ``text``; raise ValueError explaining what is wrong with it."""
        if not text:
            raise ValueError("a name pattern cannot be empty")
        if len(text) > MAX_PATTERN_CHARS:
            raise ValueError(f"a name pattern has at most {MAX_PATTERN_CHARS} characters")
        if text.startswith(REGEX_PREFIX):
            body = text[len(REGEX_PREFIX) :]
            if not body:
                raise ValueError("'re:' needs a regular expression after it")
            try:
                compiled = re.compile(body)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {body!r}: {exc}") from None
            return cls(text, f"^(?:{body})$", None, compiled)
        if not _GLOB_CHARS.match(text):
            raise ValueError(
                f"invalid pattern {text!r}: names use letters, digits and _ . : - ; globs add "
                "* ? [ ] ! ; a regular expression starts with 're:'"
            )
        body = glob_to_regex(text)
        exact = None if _WILDCARDS & set(text) else text
        return cls(text, f"^(?:{body})$", exact, re.compile(body))

    def matches(self, name: str) -> bool:
        """Whether ``name`` is selected by this pattern."""
        if self.exact is not None:
            return name == self.exact
        return self._compiled.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """An Alertmanager label matcher; a missing label matches as the empty string."""

    name: str
    op: MatchOp
    value: str
    _compiled: re.Pattern[str] | None

    @classmethod
    def build(cls, name: str, op: MatchOp, value: str) -> LabelMatcher:
        """Compile a matcher; raise ValueError for a bad name or regular expression."""
        if not re.match(LABEL_NAME_PATTERN, name):
            raise ValueError(f"invalid label name {name!r}")
        compiled = None
        if op in ("=~", "!~"):
            try:
                compiled = re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return cls(name, op, value, compiled)

    @classmethod
    def parse(cls, text: str) -> LabelMatcher:
        """Parse ``name="value"``, ``name=~"regex"``, ``name!=value``..."""
        found = _MATCHER_TEXT.match(text)
        if found is None:
            raise ValueError(
                f'invalid matcher {text!r}; expected name="value", name!="value", '
                'name=~"regex" or name!~"regex"'
            )
        name, op, quoted, bare = found.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        return cls.build(name, op, value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether the label set satisfies this matcher."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._compiled is not None
        hit = self._compiled.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'
