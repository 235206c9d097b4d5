"""The static half of check_rewards.py: rules over the syntax tree of each reward file.

No candidate code runs here. The rules bound what a reward function can do wherever it runs
(training included, where no probe watches): compute on its two strings with a few pure
standard-library modules and the repo's `answers` module, and nothing else. Every way found
to reach the interpreter (frames, globals, builtins, the import system, files, other
modules) passes through a name this module refuses: a banned builtin, a dunder, a private or
frame attribute, a module used as a value, an attribute assignment, a module outside the
allow-list, or code that runs at import time beyond a few constructors.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED_MODULES = _names(
    "__future__ re math fractions decimal collections collections.abc itertools functools "
    "string unicodedata typing dataclasses statistics numbers operator difflib heapq bisect "
    "enum json hashlib"
)
# Modules of the workspace a reward file may import: the grading helpers, ensemble members.
REPO_MODULE = re.compile(r"answers|reward_member_\d+")
# Builtins that run code, read files, or reach frames, globals and attributes by string.
BANNED_BUILTINS = _names(
    "eval exec compile open input breakpoint globals locals vars getattr setattr delattr "
    "memoryview exit quit help id copyright credits license"
)
# Names in allowed modules that reach attributes by string, evaluate strings as code, or
# change global type state (an ABC's register).
BANNED_NAMES = _names(
    "attrgetter methodcaller get_type_hints ForwardRef singledispatch singledispatchmethod "
    "evaluate_forward_ref get_annotations Formatter get_field update_wrapper wraps mro register"
)
# Frames, generators, coroutines, tracebacks and code objects: the way to the caller's state.
FRAME_PREFIXES = ("f_", "gi_", "cr_", "ag_", "tb_", "co_")
DUNDERS_ALLOWED = frozenset({"__name__", "__doc__", "__all__"})  # to read
DUNDERS_BOUND = frozenset({"__all__"})  # to bind, at the top level
# Dunder methods the interpreter calls at import or class-creation time, or at random times.
IMPLICIT_DUNDERS = _names(
    "__init_subclass__ __set_name__ __class_getitem__ __prepare__ __mro_entries__ __del__ "
    "__instancecheck__ __subclasscheck__"
)
# What import-time code may call, by qualified name, and the decorators it may apply.
IMPORT_TIME_CALLS = _names(
    "re.compile builtins.frozenset builtins.set builtins.tuple builtins.dict builtins.list "
    "fractions.Fraction dataclasses.dataclass dataclasses.field functools.lru_cache "
    "collections.Counter collections.defaultdict collections.OrderedDict collections.deque "
    "collections.namedtuple typing.TypeVar builtins.range builtins.str builtins.int "
    "builtins.float builtins.bool builtins.len"
)
DECORATORS = _names(
    "dataclasses.dataclass builtins.staticmethod builtins.classmethod builtins.property "
    "functools.lru_cache functools.cache functools.cached_property functools.total_ordering "
    "typing.final"
)
FORBIDDEN_TEXT = (("heldout", "held-out data"), ("executor_", "the harness"), ("/proc", "/proc"))
DUNDER_TEXT = re.compile(r"__(?!main__)\w+__")  # "__main__" only ever compares to __name__
# Where `self.x = ...` may be written: a fresh instance only (these are reached through a
# dunder attribute otherwise, which is refused).
INIT_METHODS = ("__init__", "__post_init__")


@dataclass
class Reasons:
    file: str
    items: list[str] = field(default_factory=list)

    def add(self, node: ast.AST | None, cls: str, message: str) -> None:
        line = getattr(node, "lineno", 0)
        self.items.append(f"{self.file}:{line}: {message} [{cls}]")


def repo_names(path: Path) -> set[str] | None:
    """Top-level names a repo module defines itself (not imports), None if it is missing."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


class _Checker:
    """One file's rules. `modules` maps a local name to the module it is bound to."""

    def __init__(self, tree: ast.Module, reasons: Reasons, workspace: Path) -> None:
        self.tree, self.r, self.workspace = tree, reasons, workspace
        self.modules: dict[str, str] = {}  # local name -> module name
        self.objects: dict[str, str] = {}  # local name -> "module.name" imported from it
        self.defined = {  # names the file binds itself: they shadow builtins
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
        } | {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        self.parents: dict[ast.AST, ast.AST] = {
            child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
        }

    # Imports -------------------------------------------------------------------------------
    def imports(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or "").startswith("__"):
                        self.r.add(node, "dunder", f"imports as {alias.asname}")
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if self.allowed_module(node, alias.name):
                        if alias.asname:
                            self.modules[alias.asname] = alias.name
                        else:
                            top = alias.name.split(".")[0]
                            self.modules[top] = top
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    self.r.add(node, "import", "relative imports are not allowed")
                    continue
                mod = node.module or ""
                if not self.allowed_module(node, mod):
                    continue
                for alias in node.names:
                    self.import_from(node, mod, alias)

    def allowed_module(self, node: ast.AST, name: str) -> bool:
        if name in ALLOWED_MODULES:
            return True
        if REPO_MODULE.fullmatch(name):
            if repo_names(self.workspace / f"{name}.py") is None:
                self.r.add(node, "import", f"imports {name}, which the workspace lacks")
                return False
            return True
        allowed = ", ".join(sorted(ALLOWED_MODULES - {"__future__"}))
        self.r.add(node, "import", f"imports {name}; allowed: {allowed}, answers")
        return False

    def import_from(self, node: ast.ImportFrom, mod: str, alias: ast.alias) -> None:
        name, local = alias.name, alias.asname or alias.name
        if name == "*":
            self.r.add(node, "import", f"`from {mod} import *`: import names one by one")
            return
        if mod == "__future__":
            return
        if not self.attr_ok(node, name):
            return
        if REPO_MODULE.fullmatch(mod):
            if name not in (repo_names(self.workspace / f"{mod}.py") or set()):
                self.r.add(node, "import", f"{mod} defines no {name} of its own")
            else:
                self.objects[local] = f"{mod}.{name}"
            return
        value = getattr(_module(mod), name, None)
        if isinstance(value, ModuleType):
            if value.__name__ not in ALLOWED_MODULES:
                self.r.add(node, "import", f"{mod}.{name} is the module {value.__name__}")
            else:
                self.modules[local] = value.__name__
        else:
            self.objects[local] = f"{mod}.{name}"

    # Names and attributes ------------------------------------------------------------------
    def attr_ok(self, node: ast.AST, name: str, on: str = "") -> bool:
        """The rules for one attribute name (or a name imported from a module)."""
        if name.startswith("__") and name.endswith("__"):
            if name not in DUNDERS_ALLOWED:
                self.r.add(node, "dunder", f"uses {name}: dunder names are not allowed")
                return False
        elif name.startswith("_") and on not in ("self", "cls"):
            self.r.add(node, "attribute", f"uses private {name}: allowed only on self")
            return False
        if name.startswith(FRAME_PREFIXES):
            self.r.add(node, "attribute", f"uses {name}: {'/'.join(FRAME_PREFIXES)}* names "
                       "reach frames and code objects; rename it")  # fmt: skip
            return False
        if name in BANNED_NAMES:
            self.r.add(node, "attribute", f"uses {name}, which reaches attributes or code "
                       "by string")  # fmt: skip
            return False
        return True

    def names(self) -> None:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                self.name(node)
            elif isinstance(node, ast.Attribute):
                on = node.value.id if isinstance(node.value, ast.Name) else ""
                if self.attr_ok(node, node.attr, on=on):
                    self.module_attribute(node)
                if isinstance(node.ctx, ast.Store | ast.Del):
                    self.attribute_store(node)
            elif isinstance(node, ast.MatchClass):
                for attr in node.kwd_attrs:
                    self.attr_ok(node, attr)
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                self.binding(node, node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                self.binding(node, node.rest)
            elif isinstance(node, ast.arg):
                self.binding(node, node.arg)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                self.r.add(node, "state", "global/nonlocal statements are not allowed")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if isinstance(node, ast.ClassDef) and node.keywords:
                    self.r.add(node, "top-level", "class keywords (a metaclass) are not allowed")
                if node.name in IMPLICIT_DUNDERS:
                    self.r.add(node, "dunder", f"defines {node.name}, which runs implicitly")
                elif not isinstance(self.parents.get(node), ast.ClassDef):  # methods may
                    self.binding(node, node.name)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
                if self.rooted_at_module(node.value):
                    self.r.add(node, "assign", "writes into another module's data")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
                self.text(node)

    def name(self, node: ast.Name) -> None:
        if node.id.startswith("__") and node.id.endswith("__"):
            if node.id not in DUNDERS_ALLOWED:
                self.r.add(node, "dunder", f"uses {node.id}: dunder names are not allowed")
            elif not isinstance(node.ctx, ast.Load):
                self.binding(node, node.id)
        elif node.id in BANNED_BUILTINS:
            self.r.add(node, "call", f"uses {node.id}, which is not allowed in a reward")
        elif node.id in self.modules and not isinstance(self.parents.get(node), ast.Attribute):
            # A module only ever appears as `module.attribute`: never passed, stored, returned,
            # so every attribute taken from it is checked here.
            self.r.add(node, "attribute", f"uses the module {node.id} as a value")

    def binding(self, node: ast.AST, name: str) -> None:
        """A name bound (assigned, defined, caught...): a dunder only as the top level's
        __all__; rebinding __name__ would run an `if __name__ == "__main__":` block."""
        if not (name.startswith("__") and name.endswith("__")):
            return
        top = isinstance(self.parents.get(self.parents.get(node, node), node), ast.Module)
        if name not in DUNDERS_BOUND or not top:
            self.r.add(node, "dunder", f"binds {name}: dunder names may not be assigned")

    def module_attribute(self, node: ast.Attribute) -> None:
        """`module.attr`: public, and a module only if allowed and itself followed by `.x`."""
        mod = self.module_of(node.value)
        if mod is None:
            return
        if REPO_MODULE.fullmatch(mod):
            if node.attr not in (repo_names(self.workspace / f"{mod}.py") or set()):
                self.r.add(node, "attribute", f"{mod} defines no {node.attr} of its own")
            return
        if node.attr.startswith("_"):
            self.r.add(node, "attribute", f"uses private {mod}.{node.attr}")
            return
        value = getattr(_module(mod), node.attr, None)
        if isinstance(value, ModuleType):
            if value.__name__ not in ALLOWED_MODULES:
                self.r.add(node, "attribute", f"{mod}.{node.attr} is the module {value.__name__}")
            elif not isinstance(self.parents.get(node), ast.Attribute):
                self.r.add(node, "attribute", f"uses the module {mod}.{node.attr} as a value")

    def module_of(self, node: ast.AST) -> str | None:
        """The module an expression names (`re`, `collections.abc`), None if not a module."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            mod = self.module_of(node.value)
            if mod is not None and not REPO_MODULE.fullmatch(mod):
                value = getattr(_module(mod), node.attr, None)
                if isinstance(value, ModuleType) and value.__name__ in ALLOWED_MODULES:
                    return value.__name__
        return None

    def rooted_at_module(self, node: ast.AST) -> bool:
        while isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        return isinstance(node, ast.Name) and (node.id in self.modules or node.id in self.objects)

    def attribute_store(self, node: ast.Attribute) -> None:
        """Attributes are written only as `self.x` in __init__/__post_init__ (a new object)."""
        func = self.enclosing_function(node)
        ok = (
            isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and func is not None
            and func.name in INIT_METHODS
            and not func.decorator_list  # a staticmethod __init__ gets any object as `self`
            and isinstance(self.parents.get(func), ast.ClassDef)
            and bool(func.args.args)
            and func.args.args[0].arg == "self"
            and not any(
                isinstance(n, ast.Name) and n.id == "self" and isinstance(n.ctx, ast.Store)
                for n in ast.walk(func)
            )
        )
        if not ok:
            self.r.add(node, "assign", "assigns or deletes an attribute: only `self.x = ...` in "
                       "__init__ or __post_init__ may (keep other state in a dict)")  # fmt: skip

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | None:
        parent = self.parents.get(node)
        while parent is not None:
            if isinstance(parent, ast.FunctionDef | ast.Lambda | ast.AsyncFunctionDef):
                return parent if isinstance(parent, ast.FunctionDef) else None
            parent = self.parents.get(parent)
        return None

    def text(self, node: ast.Constant) -> None:
        raw = node.value
        value = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        lower = value.lower()
        for needle, what in FORBIDDEN_TEXT:
            if needle in lower:
                self.r.add(node, "string", f"a string mentions {needle!r} ({what})")
        if DUNDER_TEXT.search(value):
            self.r.add(node, "dunder", "a string holds a dunder name")

    # What runs at import time --------------------------------------------------------------
    def top_level(self) -> None:
        self.body(self.tree.body, in_class=False)

    def body(self, stmts: list[ast.stmt], in_class: bool) -> None:
        properties = {  # the class's own properties, whose .setter may decorate
            n.name
            for n in stmts
            if isinstance(n, ast.FunctionDef)
            and any(self.qualified(d) == "builtins.property" for d in n.decorator_list)
        }
        for i, node in enumerate(stmts):
            if isinstance(node, ast.Import | ast.ImportFrom) and not in_class:
                continue
            if isinstance(node, ast.Pass) or (not in_class and _main_block(node)):
                continue  # the block never runs on import; the general rules still hold
            if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                continue  # the docstring
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.definition(node, properties if in_class else set())
                continue
            if isinstance(node, ast.ClassDef):
                for dec in node.decorator_list:
                    self.decorator(dec, set())
                for base in node.bases:
                    self.import_time(base)
                self.body(node.body, in_class=True)
                continue
            if isinstance(node, ast.Assign) and all(map(_names_only, node.targets)):
                self.import_time(node.value)
                continue
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.import_time(node.annotation)
                if node.value is not None:
                    self.import_time(node.value)
                continue
            where = "a class body" if in_class else "the top level"
            self.r.add(node, "top-level", f"{where} may hold only imports, defs, classes, a "
                       "docstring and constant assignments to names")  # fmt: skip

    def definition(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef, properties: set[str]
    ) -> None:
        """What `def` evaluates: decorators, defaults and (without postponed annotations)
        annotations."""
        for dec in node.decorator_list:
            self.decorator(dec, properties)
        a = node.args
        exprs = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
        args = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
        exprs += [x.annotation for x in args if x is not None and x.annotation is not None]
        if node.returns is not None:
            exprs.append(node.returns)
        for e in exprs:
            self.import_time(e)

    def decorator(self, node: ast.expr, properties: set[str]) -> None:
        if isinstance(node, ast.Call):
            self.import_time(node)
            return
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("setter", "getter", "deleter")
            and isinstance(node.value, ast.Name)
            and node.value.id in properties
        ):
            return  # a property of this class getting its other methods
        if self.qualified(node) not in DECORATORS:
            self.r.add(node, "top-level", f"decorator {ast.unparse(node)} is not one of: "
                       + ", ".join(sorted(d.split(".")[-1] for d in DECORATORS)))  # fmt: skip

    def import_time(self, expr: ast.AST) -> None:
        """An expression evaluated at import: calls only to a few constructors."""
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Lambda):  # its body runs later; its defaults now
                stack.extend(node.args.defaults)
                stack.extend(d for d in node.args.kw_defaults if d is not None)
                continue
            if isinstance(node, ast.Call):
                name = self.qualified(node.func)
                if name not in IMPORT_TIME_CALLS:
                    shown = name or ast.unparse(node.func)
                    self.r.add(
                        node,
                        "top-level",
                        f"calls {shown} at import time; allowed: "
                        + ", ".join(sorted(c.split(".")[-1] for c in IMPORT_TIME_CALLS)),
                    )
                stack.extend(node.args)
                stack.extend(k.value for k in node.keywords)
                continue
            stack.extend(ast.iter_child_nodes(node))

    def qualified(self, node: ast.AST) -> str | None:
        """`module.name` of a callable expression, `builtins.x` for an unshadowed builtin."""
        if isinstance(node, ast.Name):
            if node.id in self.objects:
                return self.objects[node.id]
            if node.id in self.modules or node.id in self.defined:
                return None
            return f"builtins.{node.id}"
        if isinstance(node, ast.Attribute):
            mod = self.module_of(node.value)
            return f"{mod}.{node.attr}" if mod else None
        return None


def _main_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__":` (no else)."""
    test = node.test if isinstance(node, ast.If) and not node.orelse else None
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
    )


def _names_only(target: ast.expr) -> bool:
    if isinstance(target, ast.Tuple | ast.List):
        return all(map(_names_only, target.elts))
    return isinstance(target, ast.Name)


def _module(name: str) -> ModuleType:
    """An allowed standard-library module, imported here (never candidate code)."""
    assert name in ALLOWED_MODULES, name
    return importlib.import_module(name)


def check_file(path: Path, workspace: Path) -> list[str]:
    """The static reasons to reject the reward file at `path` (empty: it passes)."""
    reasons = Reasons(path.name)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=path.name)
    except SyntaxError as e:
        reasons.add(None, "syntax", f"does not parse: {e.msg} (line {e.lineno})")
        return reasons.items
    except (OSError, ValueError) as e:
        reasons.add(None, "syntax", f"cannot be read: {e}")
        return reasons.items
    checker = _Checker(tree, reasons, workspace)
    checker.imports()
    checker.names()
    checker.top_level()
    return list(dict.fromkeys(reasons.items))  # one line per distinct reason
