"""``qtasks migrate apply``: rewrite ``celery`` imports to ``qtasks_compat`` and ``celery ...`` command lines to
``qtasks-celery ...``. libcst keeps formatting and comments; files that do not parse are left alone; a second
run changes nothing (nothing it writes matches again).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from qtasks_compat.migrate import cmdline, support
from qtasks_compat.migrate.scan import FileError, dotted, iter_files

NATIVE_NOT_IMPLEMENTED = (
    "--native is not implemented yet: no Celery API maps onto a native qtasks API exactly enough to rewrite "
    "it without review (names, retries, results and routing all differ). Run without --native: the code keeps "
    "Celery's API on qtasks_compat; see migration_guide/assess.md.")


@dataclass(frozen=True)
class Change:
    file: str
    before: str
    after: str

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                            f"a/{self.file}", f"b/{self.file}"))


@dataclass(frozen=True)
class Skipped:
    file: str
    line: int
    construct: str
    reason: str


@dataclass
class ApplyResult:
    root: str
    files_scanned: int = 0
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)


class _Imports(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, rel: str) -> None:
        super().__init__()
        self.rel = rel
        self.skipped: list[Skipped] = []

    def _skip(self, node: cst.CSTNode, construct: str, reason: str) -> None:
        line = self.get_metadata(PositionProvider, node).start.line
        self.skipped.append(Skipped(self.rel, line, construct, reason))

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        names: list[cst.ImportAlias] = []
        for orig, alias in zip(original_node.names, updated_node.names, strict=True):
            name = dotted(alias.name) or ""
            if name != "celery" and not name.startswith("celery."):
                names.append(alias)
                continue
            target = support.import_target(name)
            if target is None:
                self._skip(orig, f"import {name}", f"{name} has no counterpart in qtasks_compat")
                names.append(alias)
            elif alias.asname is not None:
                names.append(alias.with_changes(name=_expr(target)))
            elif name == "celery":
                names.append(cst.ImportAlias(_expr("qtasks_compat"), cst.AsName(cst.Name("celery")), alias.comma))
            elif target == "qtasks_compat" + name[len("celery"):]:
                # ``import celery.schedules`` binds ``celery``; keep that name working.
                names.append(cst.ImportAlias(_expr(target), comma=_COMMA))
                names.append(cst.ImportAlias(_expr("qtasks_compat"), cst.AsName(cst.Name("celery")), alias.comma))
            else:
                self._skip(orig, f"import {name}", f"{name} is {target} here: `celery.` attribute paths in this "
                                                   f"file need a manual change")
                names.append(alias)
        if names:
            names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=names)

    def leave_ImportFrom(self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom) -> cst.ImportFrom:
        if updated_node.relative or updated_node.module is None:
            return updated_node
        mod = dotted(updated_node.module) or ""
        if mod != "celery" and not mod.startswith("celery."):
            return updated_node
        target = support.import_target(mod)
        if target is None:
            self._skip(original_node, f"from {mod} import ...", f"{mod} has no counterpart in qtasks_compat")
            return updated_node
        return updated_node.with_changes(module=_expr(target))


_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _expr(dotted_name: str) -> cst.Attribute | cst.Name:
    node = cst.parse_expression(dotted_name)
    if not isinstance(node, (cst.Attribute, cst.Name)):
        raise ValueError(f"not a dotted module name: {dotted_name!r}")
    return node


def rewrite_python(source: bytes, rel: str = "<source>") -> tuple[bytes, list[Skipped]]:
    """``source`` with its Celery imports rewritten (raises libcst's ParserSyntaxError if it does not parse)."""
    module = cst.parse_module(source)
    transformer = _Imports(rel)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(transformer)
    return new.bytes, transformer.skipped


def apply(root: Path, write: bool = True) -> ApplyResult:
    """Rewrite every file under ``root``; with ``write=False`` only compute the changes."""
    root = root.resolve()
    base = root if root.is_dir() else root.parent
    result = ApplyResult(str(root))
    for path in iter_files(root):
        rel = path.relative_to(base).as_posix()
        result.files_scanned += 1
        try:
            raw = path.read_bytes()
            if path.suffix == ".py":
                new, skipped = rewrite_python(raw, rel)
                result.skipped += skipped
                encoding = cst.parse_module(raw).encoding if new != raw else "utf-8"
            else:
                text, _ = cmdline.rewrite(raw.decode("utf-8"))
                new, encoding = text.encode("utf-8"), "utf-8"
        except cst.ParserSyntaxError as e:
            result.errors.append(FileError(rel, e.raw_line, f"syntax error: {e.message} (left unchanged)"))
            continue
        except (OSError, SyntaxError, UnicodeDecodeError, LookupError, ValueError) as e:
            result.errors.append(FileError(rel, None, f"cannot parse: {type(e).__name__}: {e} (left unchanged)"))
            continue
        if new == raw:
            continue
        result.changes.append(Change(rel, raw.decode(encoding), new.decode(encoding)))
        if write:
            path.write_bytes(new)
    return result
