"""Root options anywhere: ``wanvid status --base-url URL ID`` means
``wanvid --base-url URL status ID``.

Click accepts a group's options only before the subcommand's name. ``normalize`` moves the
root options (``--debug``, ``--region``, ``--base-url``, ...) found after the command name to
the front, and a command's own flags found before its name (``wanvid -q generate ...``,
``wanvid --json status ID``) to just after it. It reads the arguments the way click will:
an option's value is never taken for an option (``-p --debug`` is a prompt), and nothing
after ``--`` moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spec:
    """What ``normalize`` needs to know of a command: which of its options take a value,
    which are flags, and (for a group) its subcommands."""

    valued: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    subcommands: dict[str, Spec] = field(default_factory=dict)

    @property
    def options(self) -> frozenset[str]:
        return self.valued | self.flags


def spec_of(cmd: Any) -> Spec:
    """The ``Spec`` of a click command (typer's vendored click, read by duck typing; a
    group: with its subcommands, recursively)."""
    valued: set[str] = set()
    flags: set[str] = set()
    for p in cmd.params:
        if getattr(p, "param_type_name", "") != "option":
            continue
        names = [*p.opts, *p.secondary_opts]
        is_flag = getattr(p, "is_flag", False) or getattr(p, "count", False)
        (flags if is_flag else valued).update(names)
    subs: dict[str, Spec] = {}
    if hasattr(cmd, "commands"):
        subs = {name: spec_of(sub) for name, sub in cmd.commands.items()}
    flags.update({"-h", "--help"})
    return Spec(frozenset(valued), frozenset(flags), subs)


def _takes(token: str, valued: frozenset[str]) -> tuple[bool, bool]:
    """(is one of ``valued``, its value is the next argument) for one token."""
    if token.startswith("--"):
        name, eq, _ = token.partition("=")
        return (name in valued, name in valued and not eq)
    if token.startswith("-") and len(token) > 1:
        if token in valued:
            return True, True
        # A cluster of short options, -qp PROMPT or -pPROMPT: a valued one takes the rest,
        # or the next argument if it is last.
        for k, ch in enumerate(token[1:], start=1):
            if f"-{ch}" in valued:
                return False, k == len(token) - 1
    return False, False


def normalize(args: list[str], root: Spec) -> list[str]:
    """``args`` with root options moved before the command name and the command's own
    flags given before its name moved after it. Anything it does not understand stays
    where it is, for click to report."""
    head: list[str] = []       # root options, in their order
    early: list[str] = []      # the command's flags given before its name
    path: list[str] = []       # command (and subcommand) names
    node = root
    i, n = 0, len(args)
    at_root = True
    while i < n:
        a = args[i]
        if a == "--":
            return [*head, *args[i:]] if not path else [*head, *path, *early, *args[i:]]
        is_root_valued, next_is_value = _takes(a, root.valued)
        if is_root_valued:
            head += args[i:i + 2] if next_is_value else [a]
            i += 2 if next_is_value else 1
            continue
        if a in root.flags and a not in ("-h", "--help"):
            head.append(a)
            i += 1
            continue
        if a.startswith("-") and a != "-":
            # an option of the group we are in (or unknown): leave it for click
            (head if at_root else path).append(a)
            own_valued, next_is_value = _takes(a, node.valued)
            if own_valued and next_is_value and i + 1 < n:
                (head if at_root else path).append(args[i + 1])
                i += 1
            i += 1
            continue
        if a in node.subcommands:
            path.append(a)
            node = node.subcommands[a]
            at_root = False
            i += 1
            if not node.subcommands:
                break
            continue
        break
    if not path:
        return args
    # Flags given before the command's name that are the command's own, not the root's.
    kept_head: list[str] = []
    for a in head:
        if a in node.flags and a not in root.options:
            early.append(a)
        else:
            kept_head.append(a)
    head = kept_head
    rest: list[str] = []
    while i < n:
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a in node.options or a.partition("=")[0] in node.options:
            rest.append(a)
            own_valued, next_is_value = _takes(a, node.valued)
            if own_valued and next_is_value and i + 1 < n:
                rest.append(args[i + 1])
                i += 1
            i += 1
            continue
        is_root_valued, next_is_value = _takes(a, root.valued)
        if is_root_valued:
            head += args[i:i + 2] if next_is_value else [a]
            i += 2 if next_is_value else 1
            continue
        if a in root.flags and a not in ("-h", "--help", "--version"):
            head.append(a)
            i += 1
            continue
        rest.append(a)
        _, next_is_value = _takes(a, node.valued)
        if next_is_value and i + 1 < n:
            rest.append(args[i + 1])
            i += 1
        i += 1
    return [*head, *path, *early, *rest]


def command_of(args: list[str], root: Spec) -> tuple[tuple[str, ...], Spec]:
    """The command path ``args`` names (``("config", "list")``) and its ``Spec``, reading
    past the root options (and their values) as ``normalize`` does; ``()`` and ``root``
    when no command is named."""
    path: list[str] = []
    node = root
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if path == [] or node.subcommands:
            is_valued, next_is_value = _takes(a, (root if not path else node).valued)
            if is_valued:
                i += 2 if next_is_value else 1
                continue
        if a.startswith("-") and a != "-":
            i += 1
            continue
        if a not in node.subcommands:
            break
        path.append(a)
        node = node.subcommands[a]
        if not node.subcommands:
            break
        i += 1
    return tuple(path), node


def json_command(args: list[str], root: Spec) -> str | None:
    """The command a ``--json`` run is for (``"config list"``) when that command has
    ``--json`` and it is given (before any ``--``, and not with ``--help``), else None."""
    given = args[:args.index("--")] if "--" in args else args
    if "--json" not in given or {"-h", "--help"} & set(given):
        return None
    path, node = command_of(args, root)
    return " ".join(path) if path and "--json" in node.options else None


def json_commands(root: Spec) -> set[str]:
    """Every command path that has ``--json`` (what the envelope's ``command`` can be)."""
    found: set[str] = set()

    def walk(prefix: tuple[str, ...], node: Spec) -> None:
        if prefix and "--json" in node.options:
            found.add(" ".join(prefix))
        for name, sub in node.subcommands.items():
            walk((*prefix, name), sub)

    walk((), root)
    return found
