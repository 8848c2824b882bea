"""Static shell completion scripts for bash, zsh and fish, generated from the CLI itself.

``generate(shell)`` walks the Typer app's command tree (commands, nested groups, options with
their long, short and ``--no-`` names, arguments) and writes a script that completes it with
no Python at all: pressing TAB must be instant, so every value list is baked in when the
script is generated. The lists come from the modules that own them (the model catalogue,
the config keys, the task states), never from copies kept here.

The scripts are committed in ``completions/``; a test checks that they still match the CLI.
After changing a command or an option, regenerate them:

    wanvid completions bash > completions/wanvid.bash
    wanvid completions zsh > completions/_wanvid
    wanvid completions fish > completions/wanvid.fish

(or ``python -m wanvid.cli.completion completions``, which writes all three).
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHELLS = ("bash", "zsh", "fish")
# Where each script is committed (relative to the repository root) and installed.
FILENAMES = {"bash": "wanvid.bash", "zsh": "_wanvid", "fish": "wanvid.fish"}
PROG = "wanvid"

INSTALL = {
    "bash": [
        "Install: wanvid completions bash > ~/.local/share/bash-completion/completions/wanvid",
        "(loaded on demand by bash-completion), or add to ~/.bashrc:",
        "  source /path/to/wanvid.bash",
    ],
    "zsh": [
        "Install: put it as _wanvid in a directory of $fpath, before compinit runs, e.g.",
        "  mkdir -p ~/.zfunc && wanvid completions zsh > ~/.zfunc/_wanvid",
        "and in ~/.zshrc, above `autoload -Uz compinit && compinit`:",
        "  fpath=(~/.zfunc $fpath)",
        "(or source it after compinit).",
    ],
    "fish": [
        "Install: wanvid completions fish > ~/.config/fish/completions/wanvid.fish",
    ],
}

# Words baked into the scripts must need no quoting in any of the three shells.
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_.+@%/,-]+$")


# --- the command tree ----------------------------------------------------------------------


@dataclass(frozen=True)
class Values:
    """What a value (of an option or an argument) completes to."""

    kind: str = "none"  # "none", "words", "files", "images" (words: the extensions) or "tasks"
    words: tuple[str, ...] = ()


NONE = Values()
FILES = Values("files")
TASKS = Values("tasks")  # the journal's task ids, newest first (`wanvid tasks`, at TAB time)


def image_extensions() -> tuple[str, ...]:
    """File extensions of the formats the service takes, both cases (``png``, ``PNG``)."""
    from wanvid.models import IMAGE_FORMATS

    exts = [e for f in IMAGE_FORMATS for e in ((f.lower(), "jpg") if f == "JPEG" else (f.lower(),))]
    return tuple(dict.fromkeys([*exts, *(e.upper() for e in exts)]))


def images() -> Values:
    return Values("images", image_extensions())


@dataclass(frozen=True)
class OptionSpec:
    names: tuple[str, ...]  # long names first, then short ones: ("--model", "-m")
    secondary: tuple[str, ...]  # the off switch of an on/off flag: ("--no-fit",)
    takes_value: bool
    help: str
    values: Values = NONE
    eager: bool = False  # --help, --version: nothing else matters after them

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.names + self.secondary


@dataclass(frozen=True)
class ArgumentSpec:
    name: str
    label: str  # what the argument is, for humans: "image", "task id"
    variadic: bool
    help: str
    values: Values = NONE


@dataclass(frozen=True)
class CommandSpec:
    path: tuple[str, ...]  # () for wanvid itself, ("config", "set") for a nested command
    help: str
    options: tuple[OptionSpec, ...]
    arguments: tuple[ArgumentSpec, ...]
    subcommands: tuple[CommandSpec, ...] = field(default=())

    @property
    def is_group(self) -> bool:
        return bool(self.subcommands)

    def walk(self) -> Iterable[CommandSpec]:
        yield self
        for sub in self.subcommands:
            yield from sub.walk()


# --- the value lists (taken from the modules that own them) --------------------------------


def model_words() -> tuple[str, ...]:
    from wanvid.models import MODELS, model_names

    words = list(model_names())
    for m in MODELS:
        words += [a for a in m.aliases if a not in words]
    return tuple(words)


def resolution_words() -> tuple[str, ...]:
    from wanvid.models import RESOLUTIONS

    return tuple(RESOLUTIONS)


def region_words() -> tuple[str, ...]:
    from wanvid.models import REGION_IDS

    return REGION_IDS


def status_words() -> tuple[str, ...]:
    from wanvid.statuses import ALL

    return ALL


def config_key_words() -> tuple[str, ...]:
    from wanvid.config import CONFIG_KEYS

    return tuple(CONFIG_KEYS)


# Options (by long name, in any command) whose values have a fixed list or are files.
OPTION_VALUES: dict[str, Callable[[], tuple[str, ...]] | None] = {
    "--model": model_words,
    "--resolution": resolution_words,
    "--region": region_words,
    "--status": status_words,
    "--last-frame": None,  # None: a file name
    "--audio": None,
    "--output": None,
}


def _words(words: Iterable[str]) -> Values:
    ws = tuple(dict.fromkeys(str(w) for w in words))
    for w in ws:
        if not _SAFE_WORD.match(w):
            raise ValueError(f"completion value {w!r} would need quoting in a shell script")
    return Values("words", ws)


def _annotation_values(param: Any) -> Values | None:
    """Values implied by the parameter's type: an Enum's values, or a Path."""
    choices = getattr(getattr(param, "type", None), "choices", None)  # a click Choice
    if choices:
        return _words(c.value if isinstance(c, enum.Enum) else c for c in choices)
    ann = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        return _words(m.value for m in ann)
    if isinstance(ann, type) and issubclass(ann, Path):
        return FILES
    return None


def _option_values(param: Any, names: tuple[str, ...]) -> Values:
    if "--last-frame" in names:
        return images()
    if "--forget" in names:
        return TASKS
    for name in names:
        if name in OPTION_VALUES:
            source = OPTION_VALUES[name]
            return FILES if source is None else _words(source())
    if getattr(param, "name", None) == "shell":
        return _words(SHELLS)
    return _annotation_values(param) or NONE


def _argument_values(path: tuple[str, ...], param: Any) -> Values:
    name = str(getattr(param, "name", "") or "")
    metavar = str(getattr(param, "metavar", "") or "").strip("[]").upper()
    if path[:1] == ("config",) and name == "key":  # config get|set|unset KEY
        return _words(config_key_words())
    if name == "shell":  # completions SHELL
        return _words(SHELLS)
    if name == "image":  # submit/generate IMAGE: directories and images the service takes
        return images()
    if name in ("task_ids", "target"):  # status/wait/cancel ID..., download TASK_ID|URL
        return TASKS
    if metavar.startswith("FILE"):  # batch FILE|-
        return FILES
    return _annotation_values(param) or NONE


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _label(param: Any) -> str:
    raw = str(getattr(param, "metavar", None) or getattr(param, "name", "") or "value")
    raw = raw.strip("[].").split("|")[0].rstrip(".")
    return raw.replace("_", " ").lower() or "value"


def _spec(cmd: Any, ctx: Any, path: tuple[str, ...]) -> CommandSpec:
    options: list[OptionSpec] = []
    arguments: list[ArgumentSpec] = []
    for p in cmd.get_params(ctx):
        if getattr(p, "hidden", False):
            continue
        if getattr(p, "param_type_name", "") == "argument":
            arguments.append(ArgumentSpec(
                name=p.name, label=_label(p), variadic=p.nargs < 0 or bool(getattr(p, "multiple", False)),
                help=_clean(getattr(p, "help", None)), values=_argument_values(path, p)))
            continue
        longs = tuple(o for o in p.opts if o.startswith("--"))
        names = longs + tuple(o for o in p.opts if not o.startswith("--"))
        takes_value = not getattr(p, "is_flag", False) and not getattr(p, "count", False)
        options.append(OptionSpec(
            names=names, secondary=tuple(p.secondary_opts), takes_value=takes_value,
            help=_clean(getattr(p, "help", None)),
            values=_option_values(p, names) if takes_value else NONE,
            eager=bool(getattr(p, "is_eager", False))))
    subs: list[CommandSpec] = []
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.list_commands(ctx)):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            sub_ctx = sub.context_class(sub, info_name=name, parent=ctx, **(sub.context_settings or {}))
            subs.append(_spec(sub, sub_ctx, (*path, name)))
    help_text = cmd.get_short_help_str(limit=100) if path else ""
    return CommandSpec(path=path, help=_clean(help_text), options=tuple(options),
                       arguments=tuple(arguments), subcommands=tuple(subs))


def command_tree(app: Any = None) -> CommandSpec:
    """The CLI's commands, options and arguments, as plain data (``wanvid.cli.app`` by default)."""
    import typer.main

    if app is None:
        from wanvid.cli import app
    root = typer.main.get_command(app)
    ctx = root.context_class(root, info_name=PROG, **(root.context_settings or {}))
    return _spec(root, ctx, ())


def generate(shell: str, *, app: Any = None) -> str:
    """The completion script for ``shell`` ("bash", "zsh" or "fish"); deterministic."""
    writers = {"bash": _bash, "zsh": _zsh, "fish": _fish}
    if shell not in writers:
        raise ValueError(f"no completion for shell {shell!r}; choose one of: {', '.join(SHELLS)}")
    return writers[shell](command_tree(app))


def _header(shell: str, comment: str = "#") -> list[str]:
    lines = [f"wanvid completion for {shell}. Generated by `wanvid completions {shell}`: do not edit.",
             "Values (models, resolutions, config keys...) are baked in: no Python runs on TAB.",
             *INSTALL[shell]]
    return [f"{comment} {line}".rstrip() for line in lines]


def _sq(text: str) -> str:
    """Single-quote for bash and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


# --- bash ----------------------------------------------------------------------------------


_BASH_DRIVER = r"""
_wanvid_files() {
    local IFS=$'\n'
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$1"))
}

_wanvid_images() {
    # $1: the word; the rest: extensions. Directories, and files with one of them.
    local IFS=$'\n' f ext word=$1
    shift
    compopt -o filenames 2>/dev/null
    COMPREPLY=()
    for f in $(compgen -f -- "$word"); do
        if [[ -d $f ]]; then
            COMPREPLY+=("$f")
            continue
        fi
        for ext in "$@"; do
            if [[ $f == *."$ext" ]]; then
                COMPREPLY+=("$f")
                break
            fi
        done
    done
}

_wanvid_task_ids() {
    # The journal's task ids, newest first: the first word of each `wanvid tasks` line.
    COMPREPLY=($(compgen -W "$(command wanvid tasks -n 200 2>/dev/null | cut -d' ' -f1)" -- "$1"))
}

_wanvid() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmdpath=wanvid word value_for='' prefix=''
    local subs opts vopts nargs varargs npos=0 dashdash=0 i=1
    COMPREPLY=()
    _wanvid_spec "$cmdpath"
    # Find the (sub)command among the words before the cursor, skipping option values.
    while (( i < COMP_CWORD )); do
        word=${COMP_WORDS[i]}
        if (( !dashdash )) && [[ $word == -- ]]; then
            dashdash=1
        elif (( !dashdash )) && [[ $word == -?* ]]; then
            if [[ " $vopts " == *" $word "* ]]; then
                i=$(( i + 1 ))
                # bash splits "--model=x" into "--model" "=" "x"
                [[ ${COMP_WORDS[i]} == = ]] && i=$(( i + 1 ))
                (( i >= COMP_CWORD )) && value_for=$word
            fi
        elif [[ -n $subs ]] && (( npos == 0 )) && [[ " $subs " == *" $word "* ]]; then
            cmdpath="$cmdpath $word"
            _wanvid_spec "$cmdpath"
        else
            npos=$(( npos + 1 ))
        fi
        i=$(( i + 1 ))
    done
    if [[ -n $value_for ]]; then
        [[ $cur == = ]] && cur=''
        _wanvid_values "$cmdpath" "$value_for" "$cur"
    elif (( !dashdash )) && [[ $cur == --*=* && " $vopts " == *" ${cur%%=*} "* ]]; then
        # "--model=x" as one word (when COMP_WORDBREAKS has no "=")
        prefix=${cur%%=*}=
        _wanvid_values "$cmdpath" "${cur%%=*}" "${cur#*=}"
        COMPREPLY=("${COMPREPLY[@]/#/$prefix}")
    elif (( !dashdash )) && [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ -n $subs ]]; then
        (( npos == 0 )) && COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    elif (( nargs > 0 )); then
        if (( npos >= nargs )); then
            (( varargs )) || return 0
            npos=$(( nargs - 1 ))
        fi
        _wanvid_values "$cmdpath" "@$npos" "$cur"
    fi
    return 0
}

complete -F _wanvid wanvid
"""


def _bash(tree: CommandSpec) -> str:
    out = [*_header("bash"), ""]
    out += ["_wanvid_spec() {",
            "    # $1: a command path (\"wanvid\", \"wanvid config set\"). Sets subs (its subcommands),",
            "    # opts (its options), vopts (those that take a value), nargs (how many positional",
            "    # arguments it takes) and varargs (1: the last one repeats).",
            "    subs='' opts='' vopts='' nargs=0 varargs=0",
            "    case \"$1\" in"]
    values: list[tuple[list[str], Values]] = []
    for cmd in tree.walk():
        key = " ".join((PROG, *cmd.path))
        fields = []
        if cmd.subcommands:
            fields.append("subs=" + _sq(" ".join(s.path[-1] for s in cmd.subcommands)))
        opts = sorted(n for o in cmd.options for n in o.all_names)
        vopts = sorted(n for o in cmd.options if o.takes_value for n in o.names)
        if opts:
            fields.append("opts=" + _sq(" ".join(opts)))
        if vopts:
            fields.append("vopts=" + _sq(" ".join(vopts)))
        if cmd.arguments:
            fields.append(f"nargs={len(cmd.arguments)}")
            if cmd.arguments[-1].variadic:
                fields.append("varargs=1")
        out.append(f"        {_sq(key)}) {' '.join(fields)} ;;")
        for o in cmd.options:
            if o.takes_value and o.values.kind != "none":
                values.append(([f"{key} {n}" for n in o.names], o.values))
        for i, a in enumerate(cmd.arguments):
            if a.values.kind != "none":
                values.append(([f"{key} @{i}"], a.values))
    out += ["    esac", "}", "",
            "_wanvid_values() {",
            "    # $1: a command path, $2: an option or @N (its Nth positional argument, from 0),",
            "    # $3: the word to complete. Sets COMPREPLY.",
            "    case \"$1 $2\" in"]
    for keys, v in values:
        pattern = "|".join(_sq(k) for k in keys)
        if v.kind == "files":
            action = "_wanvid_files \"$3\""
        elif v.kind == "images":
            action = "_wanvid_images \"$3\" " + " ".join(v.words)
        elif v.kind == "tasks":
            action = "_wanvid_task_ids \"$3\""
        else:
            action = f"COMPREPLY=($(compgen -W {_sq(' '.join(v.words))} -- \"$3\"))"
        out.append(f"        {pattern}) {action} ;;")
    out += ["    esac", "}"]
    return "\n".join(out) + "\n" + _BASH_DRIVER


# --- zsh -----------------------------------------------------------------------------------


def _zsh_desc(text: str) -> str:
    """Text for an _arguments ``[explanation]`` (the caller single-quotes the whole spec)."""
    return re.sub(r"([\\\[\]:])", r"\\\1", text)


def _zsh_message(text: str) -> str:
    return re.sub(r"([\\:])", r"\\\1", text) or "value"


def _zsh_action(v: Values) -> str:
    if v.kind == "files":
        return "_files"
    if v.kind == "images":
        return '_files -g "*.(' + "|".join(v.words) + ')"'
    if v.kind == "tasks":
        return "_wanvid_task_ids"
    if v.kind == "words":
        return "(" + " ".join(v.words) + ")"
    return " "  # an argument is required, but nothing to offer


def _zsh_fn(path: tuple[str, ...]) -> str:
    return "_" + "_".join(re.sub(r"\W", "_", p) for p in (PROG, *path))


def _zsh_option_specs(o: OptionSpec) -> list[str]:
    specs = []
    if o.eager:
        exclude = "(- *)"
    elif len(o.all_names) > 1:
        exclude = "(" + " ".join(o.all_names) + ")"
    else:
        exclude = ""
    desc = "[" + _zsh_desc(o.help) + "]" if o.help else ""
    for n in o.all_names:
        if o.takes_value and n in o.names:
            suffix = "=" if n.startswith("--") else "+"
            label = _zsh_message(o.names[0].lstrip("-").replace("-", " "))
            specs.append(f"{exclude}{n}{suffix}{desc}:{label}:{_zsh_action(o.values)}")
        else:
            specs.append(f"{exclude}{n}{desc}")
    return specs


def _zsh_function(cmd: CommandSpec) -> list[str]:
    fn = _zsh_fn(cmd.path)
    specs = [s for o in cmd.options for s in _zsh_option_specs(o)]
    if cmd.is_group:
        specs += ["1: :->command", "*:: :->args"]
    else:
        for i, a in enumerate(cmd.arguments):
            pos = "*" if a.variadic and i == len(cmd.arguments) - 1 else str(i + 1)
            specs.append(f"{pos}:{_zsh_message(a.label)}:{_zsh_action(a.values)}")
    out = [f"{fn}() {{"]
    if cmd.is_group:
        out += ['    local curcontext="$curcontext" state state_descr line ret=1',
                "    typeset -A opt_args"]
        head = "    _arguments -C -s -S"
    else:
        head = "    _arguments -s -S"
    out.append(head + (" \\" if specs else ""))
    for i, s in enumerate(specs):
        out.append("        " + _sq(s) + (" \\" if i < len(specs) - 1 else ""))
    if cmd.is_group:
        out[-1] += " && ret=0"
        what = " ".join((PROG, *cmd.path)) + " command"
        out += ["    case $state in",
                "        command)",
                "            local -a commands",
                "            commands=("]
        for s in cmd.subcommands:
            out.append("                " + _sq(_zsh_message(s.path[-1]) + ":" + s.help))
        out += ["            )",
                f"            _describe -t commands {_sq(what)} commands && ret=0",
                "            ;;",
                "        args)",
                '            curcontext="${curcontext%:*:*}:' + "-".join((PROG, *cmd.path))
                + '-$words[1]:"',
                "            case $words[1] in"]
        for s in cmd.subcommands:
            out.append(f"                {_sq(s.path[-1])}) {_zsh_fn(s.path)} && ret=0 ;;")
        out += ["            esac", "            ;;", "    esac", "    return ret"]
    out.append("}")
    return out


def _zsh(tree: CommandSpec) -> str:
    out = ["#compdef wanvid", *_header("zsh"), "",
           "_wanvid_task_ids() {",
           "    # The journal's task ids, newest first: the first word of each `wanvid tasks` line.",
           "    local -a ids",
           "    ids=(${(f)\"$(command wanvid tasks -n 200 2>/dev/null | cut -d' ' -f1)\"})",
           "    compadd -a ids",
           "}", ""]
    for cmd in tree.walk():
        out += _zsh_function(cmd) + [""]
    out += ["if [[ $zsh_eval_context[-1] == loadautofunc ]]; then",
            '    _wanvid "$@"',
            "else",
            "    compdef _wanvid wanvid",
            "fi"]
    return "\n".join(out) + "\n"


# --- fish ----------------------------------------------------------------------------------


def _fq(text: str) -> str:
    """Single-quote for fish (only \\ and ' are special inside)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_condition(cmd: CommandSpec, extra: Iterable[str] = ()) -> str:
    """True while completing the words of ``cmd`` (its own options and arguments)."""
    parts = [f"__fish_seen_subcommand_from {p}" for p in cmd.path]
    if not cmd.path:
        parts = ["__fish_use_subcommand"]
    if cmd.is_group and cmd.path:
        parts.append("not __fish_seen_subcommand_from "
                     + " ".join(s.path[-1] for s in cmd.subcommands))
    parts += extra
    return "; and ".join(parts)


def _fish_names(names: Iterable[str]) -> str:
    flags = []
    for n in names:
        if n.startswith("--"):
            flags.append(f"-l {n[2:]}")
        elif len(n) == 2:
            flags.append(f"-s {n[1:]}")
        else:
            flags.append(f"-o {n[1:]}")
    return " ".join(flags)


# Directories and files with one of the extensions, and the journal's task ids.
# __fish_complete_path prints "NAME<TAB>DESCRIPTION": the match keeps NAME alone.
_FISH_IMAGES = ("(__fish_complete_path (commandline -ct) | string match -r -- "
                "'^[^\\t]*(?:/|\\.(?:{}))(?=\\t|$)')")
_FISH_TASKS = "(command wanvid tasks -n 200 2>/dev/null | cut -d' ' -f1)"

# How many positional arguments the command line has after the command's name ($argv[1]),
# the values of the options that take one ($argv[2..]) not counted: an IMAGE is offered
# for the first positional only, not again after it.
_FISH_NPOS = """\
function __wanvid_npos
    set -l name $argv[1]
    set -l vopts $argv[2..-1]
    set -l n 0
    set -l seen 0
    set -l skip 0
    set -l rest 0
    for w in (commandline -opc)[2..-1]
        if test $seen -eq 0
            test "$w" = "$name"; and set seen 1
        else if test $skip -eq 1
            set skip 0
        else if test $rest -eq 1
            set n (math $n + 1)
        else if test "$w" = --
            set rest 1
        else if string match -q -- '-*' $w
            contains -- $w $vopts; and set skip 1
        else
            set n (math $n + 1)
        end
    end
    echo $n
end"""


def _fish(tree: CommandSpec) -> str:
    out = [*_header("fish"), "", "complete -c wanvid -f  # no file names unless a value is one",
           "", _FISH_NPOS]
    for cmd in tree.walk():
        out += ["", "# " + " ".join((PROG, *cmd.path))]
        cond = _fq(_fish_condition(cmd))
        for s in cmd.subcommands:
            out.append(f"complete -c wanvid -n {cond} -a {s.path[-1]} -d {_fq(s.help)}")
        for o in cmd.options:
            line = f"complete -c wanvid -n {cond} {_fish_names(o.names)}"
            if o.takes_value:
                if o.values.kind == "files":
                    line += " -r -F"
                elif o.values.kind == "images":  # -x: these, not every file
                    line += " -x -a " + _fq(_FISH_IMAGES.format("|".join(o.values.words)))
                elif o.values.kind == "tasks":
                    line += " -x -a " + _fq(_FISH_TASKS)
                elif o.values.kind == "words":
                    line += " -x -a " + _fq(" ".join(o.values.words))
                else:
                    line += " -x"
            if o.help:
                line += " -d " + _fq(o.help)
            out.append(line)
            if o.secondary:
                line = f"complete -c wanvid -n {cond} {_fish_names(o.secondary)}"
                out.append(line + (" -d " + _fq(o.help) if o.help else ""))
        vopts = " ".join(sorted(n for o in cmd.options if o.takes_value for n in o.names))
        for i, a in enumerate(cmd.arguments):
            # the Nth positional (the last one from N on, when it repeats)
            npos = " ".join(filter(None, ("__wanvid_npos", cmd.path[-1] if cmd.path else PROG, vopts)))
            nth = [] if a.variadic and i == 0 else [f"test ({npos}) -{'ge' if a.variadic else 'eq'} {i}"]
            at = _fq(_fish_condition(cmd, nth))
            if a.values.kind == "files":
                out.append(f"complete -c wanvid -n {at} -F")
            elif a.values.kind == "images":
                out.append(f"complete -c wanvid -n {at} -a "
                           + _fq(_FISH_IMAGES.format("|".join(a.values.words))))
            elif a.values.kind == "tasks":
                out.append(f"complete -c wanvid -n {at} -a " + _fq(_FISH_TASKS))
            elif a.values.kind == "words":
                extra = [] if a.variadic else ["not __fish_seen_subcommand_from " + " ".join(a.values.words)]
                acond = _fq(_fish_condition(cmd, extra))
                line = f"complete -c wanvid -n {acond} -a {_fq(' '.join(a.values.words))}"
                out.append(line + (" -d " + _fq(a.help) if a.help else ""))
    return "\n".join(out) + "\n"


def write_all(directory: str | Path) -> list[Path]:
    """Write the three scripts into ``directory`` (the repository's ``completions/``)."""
    written = []
    for shell in SHELLS:
        path = Path(directory) / FILENAMES[shell]
        path.write_text(generate(shell), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m wanvid.cli.completion completions/
    for p in write_all(sys.argv[1] if len(sys.argv) > 1 else "completions"):
        print(p)
