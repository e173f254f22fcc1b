"""The Dockerfile as `invoke verify` reads it: stages, instructions, and their words.

A parser of our own rather than a maintained one (dockerfile-parse on PyPI):
that one would be a new dependency of every generated project's dev lock, and
it stops at instructions, while verify needs the words of ENV, LABEL, ARG and
the like as the engines read them (quotes, escapes, ${VAR} expansion) and the
engines' config rules on top (tooling/shipping/image_config.py), which no parser
applies. This one reads comments, line continuations, the escape directive
(the default backslash only), stages and words; a heredoc is refused in one
line rather than misread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tooling import ToolingError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What separates the key from the value of the old `ENV KEY VALUE` form (buildkit's reWhitespace).
LEGACY_SPLIT = re.compile(r"[\t\v\f\r ]+")
HEREDOC = re.compile(r"<<-?\s*[\"']?[A-Za-z_]\w*")


class DockerfileError(ToolingError):
    pass


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case
    arguments: str  # continuation lines joined


@dataclass
class Stage:
    image: str  # what FROM names, as written
    name: str
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: list[Instruction]
    stages: list[Stage]


# --- reading the Dockerfile ---------------------------------------------------------------


def logical_lines(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and re.fullmatch(r"#\s*escape\s*=.*", stripped, re.IGNORECASE):
            if stripped.split("=", 1)[1].strip() != "\\":
                raise DockerfileError(f"Dockerfile:{number}: verify reads only the \\ escape")
            continue
        if stripped.startswith("#") or (not stripped and not pending):
            continue  # inside an instruction too, as the engines do
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        instructions.append(instruction(start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        instructions.append(instruction(start, " ".join(part.strip() for part in pending)))
    return instructions


def instruction(line: int, text: str) -> Instruction:
    keyword, *arguments = text.split(maxsplit=1) or [""]  # any whitespace, as the engines
    return Instruction(line, keyword.upper(), arguments[0].strip() if arguments else "")


def parse(text: str) -> Dockerfile:
    """The Dockerfile's global ARGs and its stages, in order."""
    parsed = Dockerfile([], [])
    for each in logical_lines(text):
        if each.keyword in {"RUN", "COPY", "ADD"} and HEREDOC.search(each.arguments):
            raise DockerfileError(
                f"Dockerfile:{each.line}: verify does not read heredocs: write the step without <<"
            )
        if each.keyword == "FROM":
            words = [word for word in each.arguments.split() if not word.startswith("--")]
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                raise DockerfileError(
                    f"Dockerfile:{each.line}: FROM {each.arguments} is unreadable"
                )
            parsed.stages.append(Stage(words[0], words[2] if len(words) == 3 else ""))
        elif parsed.stages:
            parsed.stages[-1].instructions.append(each)
        elif each.keyword == "ARG":
            parsed.global_args.append(each)
        else:
            raise DockerfileError(f"Dockerfile:{each.line}: {each.keyword} before the first FROM")
    if not parsed.stages:
        raise DockerfileError("the Dockerfile has no FROM")
    return parsed


# --- words: quotes, escapes and ${VAR} ----------------------------------------------------

Lookup = Callable[[str], str | None]  # a variable's value, None when unset


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, quotes and escapes kept (processed by `expand`)."""
    words, current, quote, index = [], "", "", 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "'" and index + 1 < len(text):
            current += text[index : index + 2]
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            if current:
                words.append(current)
            current = ""
            index += 1
            continue
        current += char
        index += 1
    if quote:
        raise DockerfileError(f"unterminated quote in {text!r}")
    if current:
        words.append(current)
    return words


def expand(word: str, lookup: Lookup) -> str:
    """A word as the engines read it: quotes removed, escapes applied, $VAR expanded."""
    out, quote, index = [], "", 0
    while index < len(word):
        char = word[index]
        if char == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif quote == "'":
            out.append(char)
        elif char == '"':
            quote = "" if quote == '"' else '"'
        elif char == "\\" and index + 1 < len(word):
            following = word[index + 1]
            if quote == '"' and following not in '"$\\`':
                out.append(char)
            else:
                out.append(following)
                index += 1
        elif char == "$":
            value, index = variable(word, index, lookup)
            out.append(value)
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def variable(word: str, index: int, lookup: Lookup) -> tuple[str, int]:
    """($NAME or ${NAME...} at `index`, expanded; the index after it)."""
    bare = NAME.match(word, index + 1)
    if bare:
        return lookup(bare.group()) or "", bare.end()
    if not word.startswith("${", index):
        return "$", index + 1
    end = word.find("}", index)
    if end < 0:
        raise DockerfileError(f"missing }} in {word!r}")
    found = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?", word[index + 2 : end])
    if found is None:
        raise DockerfileError(f"verify cannot expand {word[index : end + 1]!r}")
    name, operator, alternative = found.groups()
    value = lookup(name)
    if operator is None:
        return value or "", end + 1
    is_set = value is not None and (value != "" or not operator.startswith(":"))
    if operator.endswith("-"):
        chosen = value if is_set else expand(alternative, lookup)
    else:
        chosen = expand(alternative, lookup) if is_set else ""
    return chosen or "", end + 1


def pairs(arguments: str, lookup: Lookup, keyword: str) -> list[tuple[str, str]]:
    """KEY=VALUE pairs of ENV, LABEL or ARG, expanded; also the old `ENV KEY VALUE` form."""
    return [
        (expand(key, lookup), expand(value, lookup) if value is not None else "")
        for key, value in raw_pairs(arguments, keyword)
    ]


def raw_pairs(arguments: str, keyword: str) -> list[tuple[str, str | None]]:
    """The (key, value) words of ENV, LABEL or ARG, not yet expanded (None: an ARG without =).

    As the engines' parser reads them (buildkit's parseNameVal): when the first word has
    no `=`, the instruction is the old `KEY VALUE` form, one pair whose value is the rest
    of the line after the whitespace that follows the key, spaces and all.
    """
    words = split_words(arguments)
    if words and "=" not in words[0] and keyword != "ARG":
        parts = LEGACY_SPLIT.split(arguments.strip(), maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{keyword} {arguments}: write {keyword} KEY=VALUE")
        return [(parts[0], parts[1])]
    found: list[tuple[str, str | None]] = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals and keyword != "ARG":
            raise DockerfileError(f"{keyword} {arguments}: {word} is not KEY=VALUE")
        found.append((key, value if equals else None))
    return found


def json_form(arguments: str) -> list[str] | None:
    """The list of a JSON-form CMD, ENTRYPOINT, SHELL or VOLUME; None for the shell form."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return value
    return None
