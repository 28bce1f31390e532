"""Reading WML, the markup of Wesnoth's data files, as the game reads it.

`preprocess` follows `#define` (with arguments and `#arg` defaults), `#undef` and
`#ifdef`/`#ifndef`/`#else` (a symbol counts as defined when a macro of that name is), strips
comments and expands macro calls (quotes around an argument kept, parentheses removed); a call that
cannot be expanded stays, and `unexpanded_calls` names them. `parse_wml` turns the result into a
tree of `Node`s (tags with their attributes and children); `wml_value` reads one attribute's value
(its translation marker and quotes removed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MACRO_EXPANSIONS = 1000  # per statement: a macro that calls itself stops here

_DIRECTIVE = re.compile(r"#(define|enddef|undef|ifdef|ifndef|else|endif)\b(.*)")
_TAG = re.compile(r"\[(/?)\+?(\w+)\]")
_ATTRIBUTE = re.compile(r"(\w+)\s*=(.*)", re.DOTALL)
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')
_MACRO_NAME = re.compile(r"\{\s*([^\s{}]+)")


@dataclass
class Node:
    """One WML tag: its attributes (the last value of a key wins) and child tags."""

    tag: str
    attributes: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, tag: str) -> Node | None:
        """The first child tag of that name."""
        return next((child for child in self.children if child.tag == tag), None)


@dataclass(frozen=True)
class Macro:
    """A `#define`: its parameters, its optional ones (`#arg`) with their defaults, its body."""

    params: tuple[str, ...]
    body: str
    optional: tuple[tuple[str, str], ...] = ()


def preprocess(text: str, macros: dict[str, Macro] | None = None) -> str:
    """The text without comments, its macro calls expanded and its #ifdef/#ifndef branches
    chosen; `macros` holds the macros defined so far (by earlier files too) and gains this
    file's. A call spanning lines is expanded whole."""
    macros = {} if macros is None else macros
    active: list[bool] = []  # one flag per open #ifdef/#ifndef
    kept, pending, quoted, depth = [], [], False, 0
    lines = iter(text.splitlines())
    for line in lines:
        match = None if quoted or pending else _DIRECTIVE.match(line.strip())
        keyword, rest = match.groups() if match else ("", "")
        if keyword in ("ifdef", "ifndef"):
            active.append((rest.strip() in macros) == (keyword == "ifdef"))
        elif keyword == "else":
            active[-1] = not active[-1]
        elif keyword == "endif":
            active.pop()
        elif not all(active):
            continue
        elif keyword == "define":
            name, *params = rest.split()
            macros[name] = _macro(params, _define_body(lines))
        elif keyword == "undef":
            macros.pop(rest.strip(), None)
        else:
            code, quoted, depth = _code_of(line, quoted, depth)
            pending.append(code)
            if depth <= 0:
                kept.append(expand_macros("\n".join(pending), macros))
                pending, depth = [], 0
    return "\n".join(kept + pending)


def _define_body(lines) -> list[str]:
    """The lines of a #define up to its #enddef (which may end the body's last line)."""
    body = []
    for line in lines:
        head, enddef, _ = line.partition("#enddef")
        if enddef:
            return [*body, head] if head.strip() else body
        body.append(line)
    raise ValueError("#define without #enddef")


def _macro(params: list[str], body: list[str]) -> Macro:
    """A Macro from its #define line's parameters and its body lines, `#arg` blocks taken out
    and comments removed (a call in a comment must not be expanded)."""
    kept, optional, default, quoted = [], [], None, False
    for line in body:
        directive = line.strip()
        if directive.startswith("#arg "):
            name, default = directive.split()[1], []
        elif directive == "#endarg":
            optional.append((name, "\n".join(default).strip()))
            default = None
        else:
            code, quoted, _ = _code_of(line, quoted, 0)
            (kept if default is None else default).append(code)
    return Macro(tuple(params), "\n".join(kept), tuple(optional))


def expand_macros(text: str, macros: dict[str, Macro]) -> str:
    """Each `{NAME arg ...}` call of a macro in `macros`, with as many arguments as it takes,
    replaced by its body with `{PARAM}` substituted (an optional one by its default); other
    calls stay as they are."""
    start = 0
    for _ in range(MAX_MACRO_EXPANSIONS):
        open_at = text.find("{", start)
        close_at = matching_close(text, open_at, "{", "}") if open_at >= 0 else -1
        if close_at < 0:
            break
        name, *args = _macro_words(text[open_at + 1 : close_at]) or [""]
        macro = macros.get(name)
        if macro is None or len(args) != len(macro.params):
            start = open_at + 1
            continue
        values = dict(zip(macro.params, args, strict=True))
        for param, default in macro.optional:
            values[param] = _substitute(default, values)
        text = text[:open_at] + _substitute(macro.body, values) + text[close_at + 1 :]
        start = open_at  # the body may call further macros
    return text


def _substitute(body: str, values: dict[str, str]) -> str:
    """`body` with each `{PARAM}` replaced by its value."""
    for param, value in values.items():
        body = body.replace("{" + param + "}", value)
    return body


def matching_close(text: str, open_at: int, opening: str, closing: str) -> int:
    """Index of the `closing` character that closes the `opening` one at `open_at`, or -1."""
    depth = 0
    for index in range(open_at, len(text)):
        depth += 1 if text[index] == opening else -1 if text[index] == closing else 0
        if depth == 0:
            return index
    return -1


def _macro_words(inside: str) -> list[str]:
    """A macro call's name and arguments: words apart from those in quotes (which are kept),
    (parentheses, which are removed) and {nested calls}."""
    words, current, depth, quoted = [], "", 0, False
    for char in inside:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "({":
            depth += 1
        elif not quoted and char in ")}":
            depth -= 1
        if char.isspace() and not quoted and depth == 0:
            words.append(current)
            current = ""
        else:
            current += char
    words.append(current)
    return [
        word[1:-1] if word.startswith("(") and word.endswith(")") else word
        for word in words
        if word
    ]


def parse_wml(text: str) -> Node:
    """The tag tree of preprocessed WML under a "root" node."""
    stack = [Node("root")]
    for statement in _statements(text):
        tag = _TAG.fullmatch(statement)
        attribute = _ATTRIBUTE.fullmatch(statement)
        if tag and tag.group(1):
            if len(stack) > 1 and stack[-1].tag == tag.group(2):
                stack.pop()
        elif tag:
            node = Node(tag.group(2))
            stack[-1].children.append(node)
            stack.append(node)
        elif attribute:
            stack[-1].attributes[attribute.group(1)] = wml_value(attribute.group(2))
    return stack[0]


def _statements(text: str):
    """Statements without comments: lines, joined while a quote or a macro call is open."""
    buffer, quoted, depth = [], False, 0
    for line in text.splitlines():
        code, quoted, depth = _code_of(line, quoted, depth)
        buffer.append(code)
        if not quoted and depth <= 0:
            statement = "\n".join(buffer).strip()
            buffer, depth = [], 0
            if statement:
                yield statement


def _code_of(line: str, quoted: bool, depth: int) -> tuple[str, bool, int]:
    """The line up to a comment (`#` outside quotes), and the quote and brace state after it."""
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "#":
            return line[:index], quoted, depth
        elif not quoted and char in "{}":
            depth += 1 if char == "{" else -1
    return line, quoted, depth


def wml_value(raw: str) -> str:
    """An attribute's value: its quoted strings (`""` is a quote) and the bare text between them
    joined, a `+` between strings dropped; a translatable string (`_ "..."`) loses its context
    prefix ("female^")."""
    parts, position = [], 0
    for quoted in _QUOTED.finditer(raw):
        bare, text = raw[position : quoted.start()].strip(), quoted.group(1).replace('""', '"')
        if bare.endswith("_"):
            bare, text = bare[:-1].strip(), text.split("^", 1)[-1]
        parts += [bare if bare != "+" else "", text]
        position = quoted.end()
    return "".join([*parts, raw[position:].strip()])


def unexpanded_calls(text: str) -> list[str]:
    """The names of the macro calls a preprocessed text still holds."""
    return _MACRO_NAME.findall(text)
