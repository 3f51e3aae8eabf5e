"""Find every Celery use in a code base, statically: Python files are parsed with libcst (never imported or
run); Procfiles, systemd units, Dockerfiles, compose files and shell scripts are read as text. Each use gets
its verdict from :mod:`qtasks_compat.migrate.support`.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from qtasks_compat.migrate import cmdline, support
from qtasks_compat.migrate.support import MISSING, Verdict

SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", ".tox", ".nox", "node_modules", "__pycache__",
                       ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages", "build", "dist"})
_CONFIG_FROM_OBJECT = re.compile(r"config_from_object\(\s*[rbu]?['\"]([\w.:]+)['\"]")
_CANVAS_METHODS = frozenset({"s", "si"})
_TASK_CLASSES = frozenset({"celery.Task", "celery.app.task.Task", "celery.task.Task"})


@dataclass(frozen=True)
class Use:
    file: str
    line: int
    column: int
    kind: str
    construct: str
    status: str
    reason: str
    change: str = ""


@dataclass(frozen=True)
class FileError:
    file: str
    line: int | None
    message: str


@dataclass
class ScanResult:
    root: str
    files_scanned: int = 0
    uses: list[Use] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ files
def iter_files(root: Path) -> Iterator[Path]:
    """Python and command-line files under ``root`` (or ``root`` itself), in a stable order."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.endswith(".py") or cmdline.cli_file_kind(path):
                yield path


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root) if root.is_dir() else Path(path.name)
    parts = list(rel.with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def config_modules(files: list[Path]) -> set[str]:
    """Modules named by ``config_from_object('...')`` anywhere (a text search: nothing is imported)."""
    names = {"celeryconfig"}
    for path in files:
        if path.suffix == ".py":
            try:
                text = path.read_text("utf-8", errors="replace")
            except OSError:
                continue
            names.update(m.group(1).split(":")[0] for m in _CONFIG_FROM_OBJECT.finditer(text))
    names.discard("django.conf")
    return names


def _is_settings_file(path: Path) -> bool:
    return path.name == "settings.py" or path.parent.name == "settings"


# ------------------------------------------------------------------------------------------------ scanning
def scan(root: Path, on_file: Callable[[Path], None] | None = None) -> ScanResult:
    root = root.resolve()
    files = list(iter_files(root))
    configs = config_modules(files)
    result = ScanResult(str(root))
    base = root if root.is_dir() else root.parent
    for path in files:
        rel = path.relative_to(base).as_posix()
        result.files_scanned += 1
        if path.suffix == ".py":
            mod = module_name(path, root)
            is_config = any(mod == c or mod.endswith("." + c) for c in configs)
            _scan_python(path, rel, result, config=is_config, settings=_is_settings_file(path))
        else:
            _scan_cli(path, rel, result)
        if on_file is not None:
            on_file(path)
    result.uses.sort(key=lambda u: (u.file, u.line, u.column, u.kind))
    return result


def _scan_cli(path: Path, rel: str, result: ScanResult) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        result.errors.append(FileError(rel, None, f"cannot read: {e}"))
        return
    for inv in cmdline.find_invocations(text):
        v = inv.verdict
        change = f"qtasks-celery {' '.join(inv.args)}" if inv.rewritable else v.change
        result.uses.append(Use(rel, inv.line, inv.column + 1, "cli", _short(inv.text), v.status, v.reason, change))
        for flag in inv.flags:
            fv = flag.verdict
            result.uses.append(Use(rel, inv.line, inv.column + 1, "cli-option", flag.flag, fv.status, fv.reason,
                                   fv.change))


def _scan_python(path: Path, rel: str, result: ScanResult, *, config: bool, settings: bool) -> None:
    try:
        module = cst.parse_module(path.read_bytes())
    except cst.ParserSyntaxError as e:
        result.errors.append(FileError(rel, e.raw_line, f"syntax error: {e.message}"))
        return
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError, ValueError) as e:
        result.errors.append(FileError(rel, None, f"cannot parse: {type(e).__name__}: {e}"))
        return
    visitor = _Visitor(rel, module, config=config, settings=settings)
    MetadataWrapper(module, unsafe_skip_copy=True).visit(visitor)
    result.uses.extend(visitor.uses)


def _short(text: str, limit: int = 100) -> str:
    first = " ".join(text.split())
    return first if len(first) <= limit else first[:limit - 3] + "..."


def _migrated(module: str) -> bool:
    return module == "qtasks_compat" or module.startswith("qtasks_compat.")


def _as_celery(module: str) -> str:
    # Code already switched to qtasks_compat is followed under Celery's names, so a second check still finds
    # what needs attention (``self.replace``, pickle, ...) without counting the migrated imports.
    return "celery" + module[len("qtasks_compat"):]


def dotted(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


class _Visitor(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, rel: str, module: cst.Module, *, config: bool, settings: bool) -> None:
        super().__init__()
        self.rel = rel
        self.module = module
        self.config = config
        self.settings = settings
        self.uses: list[Use] = []
        self.bindings: dict[str, str] = {}
        """Local name -> the Celery name it is bound to (``crontab`` -> ``celery.schedules.crontab``)."""
        self.skip_calls: set[int] = set()
        self.task_self: list[str | None] = []
        """For each enclosing function: the name of a bound task's ``self`` (None: not a bound task)."""
        self.task_classes: list[bool] = []
        self.pipe_depth = 0

    # -------------------------------------------------------------- helpers
    def add(self, node: cst.CSTNode, kind: str, construct: str, verdict: Verdict) -> None:
        pos = self.get_metadata(PositionProvider, node).start
        self.uses.append(Use(self.rel, pos.line, pos.column + 1, kind, _short(construct), verdict.status,
                             verdict.reason, verdict.change))

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def literal(self, node: cst.BaseExpression) -> Any:
        try:
            return ast.literal_eval(self.code(node).strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return MISSING

    def celery_name(self, node: cst.BaseExpression | None) -> str | None:
        """The Celery name an expression refers to through this file's imports, else None."""
        name = dotted(node)
        if name is None:
            return None
        head, _, tail = name.partition(".")
        bound = self.bindings.get(head)
        if bound is None:
            return None
        return f"{bound}.{tail}" if tail else bound

    # -------------------------------------------------------------- imports
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name) or ""
            if _migrated(name):  # already qtasks_compat: followed for the uses below, not reported
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
                self.bindings[local or name.split(".")[0]] = _as_celery(name) if local else "celery"
                continue
            if name != "celery" and not name.startswith("celery."):
                continue
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else None
            self.bindings[local or "celery"] = name if local else "celery"
            self.add(alias, "import", f"import {self.code(alias).strip()}", support.for_import(name, None))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None:
            return
        mod = dotted(node.module) or ""
        if _migrated(mod) and not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                name = dotted(alias.name) or ""
                local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
                self.bindings[local] = f"{_as_celery(mod)}.{name}"
            return
        if mod != "celery" and not mod.startswith("celery."):
            return
        if isinstance(node.names, cst.ImportStar):
            self.add(node, "import", f"from {mod} import *", support.for_import(mod, "*"))
            return
        for alias in node.names:
            name = dotted(alias.name) or ""
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self.bindings[local] = f"{mod}.{name}"
            self.add(alias, "import", f"from {mod} import {self.code(alias).strip().rstrip(',')}",
                     support.for_import(mod, name))

    # -------------------------------------------------------------- tasks, signals
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        bound_self: str | None = None
        for dec in node.decorators:
            expr = dec.decorator
            func = expr.func if isinstance(expr, cst.Call) else expr
            if self._is_task_decorator(func):
                if isinstance(expr, cst.Call):
                    self.skip_calls.add(id(expr))
                self.add(dec, "task", "@" + self.code(expr), Verdict("supported", "qtasks_compat task decorator"))
                for arg in expr.args if isinstance(expr, cst.Call) else ():
                    if arg.keyword is None:
                        continue
                    opt, value = arg.keyword.value, self.literal(arg.value)
                    self.add(arg, "task-option", self.code(arg).strip().rstrip(","),
                             support.for_task_option(opt, value))
                    if opt == "bind" and value is True and node.params.params:
                        bound_self = node.params.params[0].name.value
            elif isinstance(func, cst.Attribute) and func.attr.value == "connect" and not isinstance(expr, cst.Call):
                self._signal(dec, func, "@" + self.code(expr))
        if self.task_classes and self.task_classes[-1] and node.params.params:
            bound_self = bound_self or node.params.params[0].name.value
        self.task_self.append(bound_self)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.task_self.pop()

    def _is_task_decorator(self, func: cst.BaseExpression) -> bool:
        target = self.celery_name(func)
        if target in ("celery.shared_task", "celery.task", "celery.app.shared_task"):
            return True
        return isinstance(func, cst.Attribute) and func.attr.value == "task" and isinstance(func.value, cst.Name)

    def _signal(self, node: cst.CSTNode, func: cst.Attribute, construct: str) -> bool:
        target = self.celery_name(func.value)
        if not target or not target.startswith("celery.signals."):
            return False
        self.add(node, "signal", construct, support.for_signal(target.rsplit(".", 1)[1]))
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        is_task = any(self.celery_name(b.value) in _TASK_CLASSES for b in node.bases)
        if is_task:
            self.add(node.name, "task", f"class {node.name.value}({self.code(node.bases[0].value)})",
                     Verdict("supported", "subclass of qtasks_compat.Task"))
        self.task_classes.append(is_task)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.task_classes.pop()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        me = self.task_self[-1] if self.task_self else None
        if me is None or not isinstance(node.value, cst.Name) or node.value.value != me:
            return
        attr = node.attr.value
        verdict = support.for_task_method(attr)
        in_class = bool(self.task_classes and self.task_classes[-1])
        if in_class and verdict.status == "review":
            return  # the class's own helpers are not Celery API
        self.add(node, "task-api", f"{me}.{attr}", verdict)

    # -------------------------------------------------------------- calls
    def visit_Call(self, node: cst.Call) -> None:
        if id(node) in self.skip_calls:
            return
        func = node.func
        target = self.celery_name(func)
        keywords = {a.keyword.value: a for a in node.args if a.keyword is not None}
        if target in ("celery.Celery", "celery.app.Celery", "celery.app.base.Celery"):
            self._celery_app(node, keywords)
        elif target and (target.startswith("celery.schedules.") or target.rsplit(".", 1)[-1] in ("crontab", "solar")):
            self.add(node, "schedule", self.code(node), support.for_canvas(target.rsplit(".", 1)[1]))
        elif target and target.rsplit(".", 1)[-1] in ("chain", "group", "chord", "signature", "subtask", "chunks",
                                                       "xmap", "xstarmap", "maybe_signature"):
            self.add(node, "canvas", self.code(node), support.for_canvas(target.rsplit(".", 1)[1]))
        if not isinstance(func, cst.Attribute):
            return
        attr = func.attr.value
        if attr in _CANVAS_METHODS and self._simple(func.value):
            self.add(node, "canvas", self.code(node), Verdict("supported", f"Task.{attr}() signature"))
        elif attr in ("apply_async", "send_task"):
            self._calling(node, attr, keywords)
        elif attr == "connect" and self._signal(node, func, self.code(node)):
            for key, arg in keywords.items():
                self.add(arg, "signal", f"connect({key}=...)", support.for_signal_connect(key, self.literal(arg.value)))
        elif isinstance(func.value, cst.Attribute) and func.value.attr.value == "control":
            values = {k: self.literal(a.value) for k, a in keywords.items()}
            self.add(node, "control", self.code(node), support.for_control_call(attr, values))
        elif (isinstance(func.value, cst.Call) and isinstance(func.value.func, cst.Attribute)
              and func.value.func.attr.value == "inspect" and isinstance(func.value.func.value, cst.Attribute)
              and func.value.func.value.attr.value == "control"):
            self.add(node, "control", self.code(node), support.for_control(attr, inspect_method=True))
        elif attr == "add_periodic_task":
            self.add(node, "beat", self.code(node), Verdict("supported", "add_periodic_task runs on the qtasks Timer"))
        elif attr == "update" and dotted(func.value) and (dotted(func.value) or "").endswith(".conf"):
            for arg in node.args:
                if arg.keyword is not None:
                    self._setting(arg, arg.keyword.value, arg.value)
                elif isinstance(arg.value, cst.Dict):
                    self._settings_dict(arg.value, None)
        elif attr == "config_from_object" and node.args and isinstance(node.args[0].value, cst.Dict):
            ns = keywords.get("namespace")
            ns_value = self.literal(ns.value) if ns is not None else None
            self._settings_dict(node.args[0].value, ns_value if isinstance(ns_value, str) else None)

    @staticmethod
    def _simple(node: cst.BaseExpression) -> bool:
        # ``add.s(...)`` / ``tasks.add.s(...)``: a name, not ``"x".s(...)`` or ``obj().s``
        return dotted(node) is not None

    def _celery_app(self, node: cst.Call, keywords: dict[str, cst.Arg]) -> None:
        self.add(node, "app", self.code(node).split("(")[0] + "(...)", Verdict("supported", "qtasks_compat.Celery"))
        for key, arg in keywords.items():
            verdict = support.for_celery_arg(key)
            if verdict is not None:
                self.add(arg, "app", f"Celery({key}=...)", verdict)
            else:
                self._setting(arg, support.CELERY_KWARGS.get(key, key), arg.value)

    def _calling(self, node: cst.Call, attr: str, keywords: dict[str, cst.Arg]) -> None:
        options = {k: a for k, a in keywords.items() if k not in ("args", "kwargs")}
        self.add(node, "call", f"{self.code(node.func)}(...)", Verdict("supported", f"{attr} is supported"))
        for key, arg in options.items():
            self.add(arg, "calling-option", self.code(arg).strip().rstrip(","),
                     support.for_call_option(key, self.literal(arg.value)))

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.BitOr) and self.pipe_depth == 0 and self._canvas_operand(node):
            self.add(node, "canvas", self.code(node), Verdict("supported", "`|` chains signatures"))
        self.pipe_depth += isinstance(node.operator, cst.BitOr)

    def leave_BinaryOperation(self, original_node: cst.BinaryOperation) -> None:
        self.pipe_depth -= isinstance(original_node.operator, cst.BitOr)

    def _canvas_operand(self, node: cst.BaseExpression) -> bool:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            return self._canvas_operand(node.left) or self._canvas_operand(node.right)
        if not isinstance(node, cst.Call):
            return False
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in _CANVAS_METHODS:
            return True
        target = self.celery_name(node.func) or ""
        return target.rsplit(".", 1)[-1] in ("chain", "group", "chord", "signature")

    # -------------------------------------------------------------- settings
    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            t = target.target
            if isinstance(t, cst.Attribute) and (dotted(t.value) or "").endswith(".conf"):
                self._setting(node, t.attr.value, node.value)
            elif (isinstance(t, cst.Subscript) and (dotted(t.value) or "").endswith(".conf")
                  and len(t.slice) == 1 and isinstance(t.slice[0].slice, cst.Index)):
                key = self.literal(t.slice[0].slice.value)
                if isinstance(key, str):
                    self._setting(node, key, node.value)
            elif isinstance(t, cst.Name) and not self.task_self and not self.task_classes:  # module scope
                self._module_setting(node, t.value, node.value)

    def _module_setting(self, node: cst.CSTNode, key: str, value: cst.BaseExpression) -> None:
        if key.startswith("CELERY"):
            name = support.setting_name(key, namespace="CELERY") or support.setting_name(key)
            if name is not None or self.settings or self.config:
                self._setting(node, key, value, name=name)
        elif (self.settings and key.startswith("BROKER_")) or self.config:
            name = support.setting_name(key)
            if name is not None:
                self._setting(node, key, value, name=name)

    def _settings_dict(self, node: cst.Dict, namespace: str | None) -> None:
        for el in node.elements:
            if isinstance(el, cst.DictElement):
                key = self.literal(el.key)
                if isinstance(key, str):
                    self._setting(el, key, el.value, name=support.setting_name(key, namespace=namespace))

    def _setting(self, node: cst.CSTNode, key: str, value: cst.BaseExpression, name: str | None = None) -> None:
        name = name or support.setting_name(key) or key
        literal = self.literal(value)
        shown = f"{key} = {self.code(value)}"
        label = key if key == name else f"{key} ({name})"
        verdict = support.for_setting(name, literal)
        if verdict.status == "unsupported" and literal is not MISSING and not verdict.change:
            verdict = Verdict(verdict.status, verdict.reason, f"remove {label}")
        self.add(node, "setting", shown, verdict)
        if name == "beat_schedule" and isinstance(value, cst.Dict):
            self._beat_schedule(value)

    def _beat_schedule(self, node: cst.Dict) -> None:
        for el in node.elements:
            if not isinstance(el, cst.DictElement):
                continue
            entry = self.literal(el.key)
            self.add(el, "beat", f"beat entry {entry!r}", Verdict("supported", "runs on the qtasks Timer"))
            if isinstance(el.value, cst.Dict):
                for item in el.value.elements:
                    key = self.literal(item.key) if isinstance(item, cst.DictElement) else MISSING
                    if isinstance(key, str) and support.for_beat_entry_key(key).status != "supported":
                        self.add(item, "beat", f"beat entry {entry!r} key {key!r}", support.for_beat_entry_key(key))
