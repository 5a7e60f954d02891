"""Safe YAML loading that remembers the line of every value, for error messages naming lines.

:func:`load_yaml` builds plain Python values with PyYAML's safe constructors (no Python tags) and
a map from each value's path (``("groups", 0, "rules", 1, "op")``) to its 1-based line. Unlike
``yaml.safe_load`` it refuses duplicate mapping keys (a silently overridden rule field is a
classic configuration bug), explicitly tagged collections (``!!set``, ``!!python/...``),
recursive aliases, and documents with more than :data:`MAX_NODES` values (alias bombs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

MAX_NODES = 200_000
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})

Path = tuple[str | int, ...]


class YamlSourceError(ValueError):
    """The text is not acceptable YAML; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int) -> None:
        self.line = line
        super().__init__(message)


@dataclass(slots=True)
class YamlDocument:
    """Plain values of one YAML document and the line of each value by path."""

    data: object
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """The line of the deepest known value on ``path`` (0 when none is known)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 0


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: YamlDocument) -> None:
        self._loader = loader
        self._doc = doc
        self._nodes = 0
        self._stack: set[int] = set()

    def build(self, node: yaml.Node, path: Path) -> object:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YamlSourceError(f"document has more than {MAX_NODES} values", _line(node))
        self._doc.lines.setdefault(path, _line(node))
        if isinstance(node, yaml.ScalarNode):
            return self._loader.construct_object(node, deep=True)
        if node.tag not in _PLAIN_TAGS:
            raise YamlSourceError(f"unsupported tag {node.tag}", _line(node))
        if id(node) in self._stack:
            raise YamlSourceError("recursive alias", _line(node))
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._stack.discard(id(node))
        raise YamlSourceError(f"unsupported YAML node {node.tag}", _line(node))

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[object, object]:
        self._loader.flatten_mapping(node)
        out: dict[object, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError("mapping keys must be plain scalars", _line(key_node))
            key = self._loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlSourceError(f"unsupported mapping key {key!r}", _line(key_node))
            if key in out:
                raise YamlSourceError(f"duplicate key {key!r}", _line(key_node))
            child: Path = (*path, key) if isinstance(key, str | int) else (*path, str(key))
            out[key] = self.build(value_node, child)
        return out


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def load_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise :class:`YamlSourceError` with the line of the problem."""
    loader = yaml.SafeLoader(text)
    doc = YamlDocument(data=None)
    try:
        node = loader.get_single_node()
        if node is not None:
            doc.data = _Builder(loader, doc).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 0
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSourceError(reason or "invalid YAML", line) from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(f"invalid YAML: {exc}", 0) from None
    finally:
        loader.dispose()
    return doc
