"""Restricted Python for gateway conditions, script tasks, pre/post scripts and timers.

Process models are authored by users, so their Python must not reach the host.
RestrictedPython rewrites the AST so attribute/item/iteration access goes through
guard functions and refuses ``_`` names; builtins are a small explicit allowlist.
This module adds what RestrictedPython lacks: compile-time refusal of imports and of
calls like ``open``/``getattr`` (RestrictedPython only fails those at run time), a
per-call time limit (``_tick_()`` compiled into loops/functions plus an iteration
guard), size guards for ``** * << +`` so a one-liner cannot eat memory, and the
SpiffWorkflow glue.  No signals, threads or sys.settrace: code runs in worker threads
and tracing is far too slow.
"""
import ast
import builtins
import functools
import operator
import re
import threading
import time
import types
from collections.abc import Iterator

from RestrictedPython import (RestrictingNodeTransformer, compile_restricted_eval,
                              compile_restricted_exec, safe_builtins)
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (full_write_guard, guarded_iter_unpack_sequence,
                                     guarded_unpack_sequence, safer_getattr_raise)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import copy_locations
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

MAX_ITEMS = 1_000_000    # longest str/bytes/list/tuple/range one operation may build
MAX_INT_BITS = 100_000   # largest int one ** * << may build
ITER_CHECK_EVERY = 256   # items between deadline checks in guarded iterators
FILENAME = "<script>"    # not '<string>': Spiff would index our source with foreign frames' lines


class ScriptError(Exception):
    """A script was refused or failed; ``line`` is the script line when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message, self.line = message, line

    def __str__(self):
        return self.message if self.line is None else f"{self.message} (line {self.line})"


class ScriptRefused(ScriptError):
    """Refused at compile time (imports, ``_`` names, forbidden calls, syntax)."""


class ScriptTimeout(ScriptError):
    """The script ran longer than the environment's time limit."""


class _State(threading.local):
    """Deadline per thread, so one environment can serve many worker threads."""
    deadline = float("inf")


_state = _State()
_now = time.monotonic


def _tick_():
    """Compiled into every loop/function body; raises once the deadline passed."""
    if _now() > _state.deadline:
        raise ScriptTimeout("script exceeded its time limit")


def _guarded(iterator):
    """Checks the deadline every ITER_CHECK_EVERY items, also when C code drains it."""
    for n, item in enumerate(iterator, 1):
        if not n % ITER_CHECK_EVERY:
            _tick_()
        yield item


_SIZED = frozenset({list, tuple, str, bytes, dict, set, frozenset, range})
_SEQS = frozenset({str, bytes, list, tuple})


def _getiter_(ob):
    """Small builtin containers iterate raw (fast); everything else is guarded.
    Checking on entry covers nested comprehensions whose inner loops are short."""
    _tick_()
    if type(ob) in _SIZED and len(ob) <= ITER_CHECK_EVERY:
        return ob
    return _guarded(iter(ob))


def _refuse(what):
    raise ScriptError(f"refused: {what} would be too large")


# Size guards: they run before the operation allocates anything.
def _add_(a, b):
    if type(a) in _SEQS and type(b) in _SEQS and len(a) + len(b) > MAX_ITEMS:
        _refuse("concatenation")
    return a + b


def _mul_(a, b):
    if type(b) in _SEQS:
        a, b = b, a  # repetition is commutative; a is now the sequence, if any
    if type(a) in _SEQS and isinstance(b, int) and len(a) * b > MAX_ITEMS:
        _refuse("sequence repetition")
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        _refuse("integer product")
    return a * b


def _pow_(a, b):
    if isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and a.bit_length() * b > MAX_INT_BITS:
        _refuse("power")
    return a ** b


def _lshift_(a, b):
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        _refuse("left shift")
    return a << b


_BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_"}
_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
            "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
            "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
            "|=": operator.ior, "^=": operator.ixor}
_CHECKED = {"+=": _add_, "*=": _mul_, "**=": _pow_, "<<=": _lshift_}
_INPLACE_TYPES = (int, float, str, list, tuple, set, frozenset, dict)  # bool is an int


def _inplacevar_(op, x, y):
    """``x op= y`` on plain data only; lists keep in-place semantics (aliases see it)."""
    if not isinstance(x, _INPLACE_TYPES) or op not in _INPLACE:
        raise ScriptError(f"'{op}' is not allowed on {type(x).__name__}")
    if type(x) is list and op in ("+=", "*="):
        n = len(x) * y if op == "*=" else len(x) + (len(y) if hasattr(y, "__len__") else 0)
        if n > MAX_ITEMS:
            _refuse("list")
    elif op in _CHECKED:
        return _CHECKED[op](x, y)
    return _INPLACE[op](x, y)


def _range(*args):
    r = range(*args)
    if -((r.start - r.stop) // r.step) > MAX_ITEMS:  # ceil((stop-start)/step); len() may overflow
        _refuse("range")
    return r


def _iter(ob, *sentinel):
    """iter(callable, sentinel) may be endless and drained by C code (list, join)."""
    return _guarded(iter(ob, *sentinel))


BUILTINS = {n: getattr(builtins, n) for n in (
    "len min max sum abs round sorted reversed any all str int float bool list dict tuple set "
    "frozenset enumerate zip isinstance next").split()}
BUILTINS.update({n: safe_builtins[n] for n in (
    "None True False ArithmeticError AssertionError AttributeError Exception IndexError KeyError "
    "LookupError NameError NotImplementedError OverflowError RuntimeError StopIteration "
    "TypeError ValueError ZeroDivisionError").split()})
BUILTINS.update(range=_range, iter=_iter)

_GUARDS = {
    "__builtins__": BUILTINS,
    "_getattr_": safer_getattr_raise,  # plain safer_getattr returns None for missing attributes
    "_getitem_": default_guarded_getitem,
    "_write_": full_write_guard,       # item writes on dict/list pass, everything else refused
    "_getiter_": _getiter_,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar_,
    "_apply_": lambda f, /, *a, **kw: f(*a, **kw),
    "_print_": PrintCollector,         # print() works; its output is discarded
    "_tick_": _tick_, "_add_": _add_, "_mul_": _mul_, "_pow_": _pow_, "_lshift_": _lshift_,
}
# Code that uses none of these names cannot loop, so it runs without touching the clock.
_CLOCKED = frozenset({"_tick_", "_getiter_", "iter"})
# Refused at compile time for a clear message; none of them is a builtin here anyway.
_FORBIDDEN_CALLS = frozenset("open getattr setattr delattr hasattr vars globals locals compile "
                             "type dir input breakpoint exit quit help memoryview super".split())


class _Transformer(RestrictingNodeTransformer):
    """RestrictedPython's rewriting plus deadline checks, size guards, and refusals."""

    @staticmethod
    def _ticked(node, visit):
        node = visit(node)
        tick = ast.Expr(ast.Call(ast.Name("_tick_", ast.Load()), [], []))
        copy_locations(tick, node.body[0])
        node.body.insert(0, tick)
        return node

    def visit_While(self, node):
        return self._ticked(node, super().visit_While)

    def visit_For(self, node):
        return self._ticked(node, super().visit_For)

    def visit_FunctionDef(self, node):  # recursion is a loop too
        return self._ticked(node, super().visit_FunctionDef)

    def visit_Lambda(self, node):  # lambda: body  ->  lambda: _tick_() or body
        node = super().visit_Lambda(node)
        node.body = ast.BoolOp(ast.Or(), [ast.Call(ast.Name("_tick_", ast.Load()), [], []), node.body])
        copy_locations(node.body, node)
        return node

    def visit_BinOp(self, node):
        node = super().visit_BinOp(node)
        name = _BINOPS.get(type(node.op))
        if name is None:
            return node
        call = ast.Call(ast.Name(name, ast.Load()), [node.left, node.right], [])
        copy_locations(call, node)
        return call

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id in _FORBIDDEN_CALLS:
            self.error(node, f"calling '{node.func.id}' is not allowed in scripts")
        return super().visit_Call(node)

    def visit_Import(self, node):
        self.error(node, "imports are not allowed in scripts")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        self.error(node, "class definitions are not allowed in scripts")
        return node


_LINE_RE = re.compile(r"^Line (\d+): (.*)$", re.S)


def _names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


@functools.lru_cache(maxsize=2048)
def _compile(mode: str, source: str):
    """(code, clocked, ((line, message), ...)), cached so each source compiles once."""
    try:
        if not isinstance(source, str):
            raise TypeError(f"script must be a string, not {type(source).__name__}")
        compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
        # eval() strips leading whitespace of expressions (BPMN XML has plenty); mimic it
        result = compiler(source.strip() if mode == "eval" else source,
                          filename=FILENAME, policy=_Transformer)
    except Exception as exc:  # e.g. NUL bytes, RecursionError on absurd nesting
        return None, False, ((None, f"{type(exc).__name__}: {exc}"),)
    problems = tuple((int(m[1]), m[2]) if (m := _LINE_RE.match(e)) else (None, e)
                     for e in result.errors)
    return result.code, bool(result.code and _CLOCKED & _names(result.code)), problems


def check_script(source: str, mode: str = "exec") -> list[tuple[int | None, str]]:
    """Compile restricted ('eval' for expressions, 'exec' for scripts); [] when fine."""
    try:
        return list(_compile(mode, source)[2])
    except Exception as exc:  # unhashable source etc.: never raise
        return [(None, f"{type(exc).__name__}: {exc}")]


def _script_line(tb):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _freeze(name, value):
    """Globals are shared by every call: make containers read-only, refuse modules."""
    if isinstance(value, types.ModuleType):
        raise ScriptError(f"global '{name}' is a module; modules are never exposed to scripts")
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(name, v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(name, v) for v in value)
    return frozenset(value) if isinstance(value, set) else value


def _thaw(value):
    if isinstance(value, types.MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    return value


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment that runs everything through RestrictedPython."""

    def __init__(self, globals: dict | None = None, time_limit: float = 1.0):
        frozen = {}
        for name, value in (globals or {}).items():
            if not isinstance(name, str) or name.startswith("_"):
                raise ScriptError(f"global name {name!r} is not allowed (must not start with '_')")
            frozen[name] = _freeze(name, value)
        super().__init__(frozen)
        self.time_limit = float(time_limit)
        self._base = {**frozen, **_GUARDS}

    def _namespace(self, context, external_context):
        """Shallow and cheap: copy the prebuilt base, then add ext context and task data."""
        g = self._base.copy()
        if external_context:
            for name, value in external_context.items():
                if isinstance(value, types.ModuleType) or str(name).startswith("_"):
                    raise ScriptError(f"external context entry {name!r} is not allowed")
            g.update(external_context)
        g.update(context)
        if external_context or len(g) != len(self._base) + len(context):
            g.update(_GUARDS)  # a key collided: task data must never replace a guard
        return g

    def _run(self, mode, source, g):
        """Run cached code; the clock is only armed for code that can loop at all."""
        code, clocked, problems = _compile(mode, source)
        if problems:
            raise ScriptRefused(f"script refused: {problems[0][1]}", problems[0][0])
        if clocked:
            prev = _state.deadline
            deadline = _now() + self.time_limit
            _state.deadline = deadline if deadline < prev else prev  # nested calls keep the outer one
        try:
            return eval(code, g)  # eval() also runs exec-mode code objects
        except ScriptError as exc:
            if isinstance(exc, ScriptTimeout):
                exc.message = f"script exceeded its time limit of {self.time_limit:g}s"
            if exc.line is None:
                exc.line = _script_line(exc.__traceback__)
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # scripts can reach BaseException via .mro()
            raise ScriptError(f"{type(exc).__name__}: {exc}", _script_line(exc.__traceback__)) from exc
        finally:
            if clocked:
                _state.deadline = prev

    def evaluate(self, expression, context, external_context=None):
        return self._run("eval", expression, self._namespace(context, external_context))

    def execute(self, script, context, external_context=None):
        """Like Spiff's TaskDataEnvironment: copy back plain data, drop deleted names."""
        g = self._namespace(context, external_context)
        self._run("exec", script, g)
        injected = {**self.globals, **(external_context or {})}
        for name in [n for n in context if n not in g]:  # `del x` in the script
            del context[name]
        for name, value in g.items():
            if name.startswith("_") or (name in injected and value is injected[name]):
                continue
            if callable(value) or isinstance(value, (types.ModuleType, Iterator)):
                context.pop(name, None)
            else:
                context[name] = _thaw(value)
        return True

    def call_service(self, context, **kwargs):
        raise ScriptError("service tasks are not run by the script environment")


def make_script_engine(globals: dict | None = None, time_limit: float = 1.0) -> PythonScriptEngine:
    """A SpiffWorkflow PythonScriptEngine whose environment is RestrictedEnvironment."""
    return PythonScriptEngine(environment=RestrictedEnvironment(globals, time_limit))
