"""Restricted Python for gateway conditions, script tasks, pre/post scripts and timers.

Process models are authored by users, so their Python must not reach the host.
RestrictedPython rewrites the AST so attribute/item/iteration access goes through
guard functions and refuses ``_`` names; builtins are a small explicit allowlist.
This module adds what RestrictedPython lacks: compile-time refusal of imports and of
calls like ``open``/``getattr`` (RestrictedPython only fails those at run time), a
per-call time limit (``_tick_()`` compiled into loops/functions plus an iteration
guard), and size guards so that no single operation, which runs in C without any
deadline check, can build something huge or run for long:

* ``** * << + % //`` (also as ``x op= y``) and ``round()`` check the size of their result
  (or the cost of a big-integer division) before computing it;
* methods that grow their result (``ljust rjust center zfill expandtabs replace join
  translate`` on str/bytes/bytearray, ``int.to_bytes``, ``list.extend``) are handed out
  by ``_getattr_`` wrapped in a check; slice assignment to lists is checked too;
* f-strings and ``%`` formatting are routed through guards that refuse widths and
  precisions above MAX_ITEMS and results longer than MAX_ITEMS;
* turning a value into text (``str()``, f-strings, ``%s``, ``print``, error messages)
  first estimates the length of that text, because a list holding the same big object
  10**6 times is small in memory but not as text; ``execute`` applies the same estimate
  to the task data it writes back, since task data is stored as JSON;
* ``sorted min max sum zip`` and ``list.sort`` check the deadline while C code calls back
  into key functions or adds up items, and sort keys that are copies of big things are capped.

Not bounded by these guards: memory allocated step by step within the time limit (a
comprehension building many fresh megabyte strings), and C code walking deeply shared
structures (``{t}``, ``t == u`` or ``isinstance(x, t)`` where t = ((((0,)*1000,)*1000,)*1000)).
No signals, threads or sys.settrace: code runs in worker threads and tracing is far too slow.
"""
import ast
import builtins
import collections
import functools
import itertools
import operator
import re
import threading
import time
import types
from collections.abc import Iterator

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import copy_locations
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

MAX_ITEMS = 1_000_000    # longest str/bytes/list/tuple/range one operation may build
MAX_INT_BITS = 100_000   # largest int one ** * << may build
MAX_TASK_DATA = 50 * MAX_ITEMS  # characters the task data left by a script may take as text (JSON)
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
# Iterated raw when small. Not list: a comprehension may append to the list it walks, and
# comprehensions have no _tick_() of their own.  dict/set raise when they change size.
_RAW_ITER = _SIZED - {list}
_SEQS = frozenset({str, bytes, bytearray, list, tuple})


def _getiter_(ob):
    """Small immutable builtin containers iterate raw (fast); everything else is guarded.
    Checking on entry covers nested comprehensions whose inner loops are short."""
    _tick_()
    if type(ob) in _RAW_ITER and len(ob) <= ITER_CHECK_EVERY:
        return ob
    return _guarded(iter(ob))


def _refuse(what):
    raise ScriptError(f"refused: {what} would be too large")


def _grow_check(new_len, old_len, what):
    """Refuse a result over MAX_ITEMS, unless it is no longer than the input it came from."""
    if new_len > MAX_ITEMS and new_len > old_len:
        _refuse(what)


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


def _check_division(a, b):
    """CPython divides big ints in quadratic time; ints over MAX_INT_BITS can come from
    int(text, 16) or task data, and 4M-bit % 2M-bit takes seconds."""
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() * b.bit_length() > MAX_INT_BITS ** 2:
        raise ScriptError("refused: dividing integers this large would be too slow")


def _floordiv_(a, b):
    _check_division(a, b)
    return a // b


def _mod_(a, b):
    """``%``: printf-style formatting is checked like f-strings, int modulo like ``//``."""
    if isinstance(a, (str, bytes, bytearray)):
        _check_printf(a, b)
    else:
        _check_division(a, b)
    return a % b


_ARITH = {"**": _pow_, "<<": _lshift_, "%": _mod_, "//": _floordiv_}


def _arith_(op, a, b):
    """The rarer guarded operators share one global name: every guard name is copied into
    each call's namespace, and a bigger dict makes the cached conditions slower."""
    return _ARITH[op](a, b)


_BINOPS = {ast.Add: "_add_", ast.Mult: "_mul_"}
_ARITH_OPS = {ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%", ast.FloorDiv: "//"}
_INPLACE = {"+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
            "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
            "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
            "|=": operator.ior, "^=": operator.ixor}
_CHECKED = {"+=": _add_, "*=": _mul_, "**=": _pow_, "<<=": _lshift_, "%=": _mod_, "//=": _floordiv_}
_INPLACE_TYPES = (int, float, str, list, tuple, set, frozenset, dict)  # bool is an int


def _sized(items, room, what):
    """items, refused if longer than room; other iterables are drained into a list first
    (with the same cap), so an iterator over the very list being extended cannot run forever."""
    room = max(room, 0)
    if hasattr(type(items), "__len__"):
        if len(items) > room:
            _refuse(what)
        return items
    try:
        iterator = iter(items)
    except TypeError:
        return items  # the operation raises its own error
    out = []
    for item in iterator:
        out.append(item)
        if len(out) > room:
            _refuse(what)
    return out


def _inplacevar_(op, x, y):
    """``x op= y`` on plain data only; lists keep in-place semantics (aliases see it)."""
    if not isinstance(x, _INPLACE_TYPES) or op not in _INPLACE:
        raise ScriptError(f"'{op}' is not allowed on {type(x).__name__}")
    if type(x) is list and op == "+=":
        y = _sized(y, MAX_ITEMS - len(x), "list")
    elif type(x) is list and op == "*=":
        if isinstance(y, int) and len(x) * y > MAX_ITEMS:  # y may be a list: then imul raises
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


# --- length of values as text ------------------------------------------------------------
# str() of a list holding one big object 10**6 times is a terabyte; so is the JSON of such
# task data.  _text_len() adds up the text of every reference, as repr() and JSON would, but
# measures each distinct container once (so a deeply shared structure costs nothing to
# measure) and stops as soon as the total passes its limit.

_PLAIN_TEXT = frozenset({str, int, float, bool, type(None)})  # str() bounded by the value itself
_SHORT_TEXT = {bool: 5, type(None): 4, float: 24, complex: 50}
_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))  # repr shows the contents
_CONTAINERS = (list, tuple, dict, set, frozenset, types.MappingProxyType, *_DICT_VIEWS)
_MAPPINGS = (dict, types.MappingProxyType)


def _leaf_len(ob, kind):
    """Text length of a value that is not walked, or None for a container to walk."""
    if kind is str:
        return len(ob) + 2
    if kind is int:
        return ob.bit_length() // 3 + 2
    if kind in _SHORT_TEXT:
        return _SHORT_TEXT[kind]
    if isinstance(ob, (_CONTAINERS, BaseException)):
        return None
    if isinstance(ob, (str, bytes, bytearray)):
        return len(ob) + 14
    if isinstance(ob, int):
        return ob.bit_length() // 3 + 2
    return 80  # functions, ranges, iterators, dates...: short reprs


def _open(ob):
    """(children iterator, text around them) of a container or exception."""
    if isinstance(ob, BaseException):
        return iter((ob.args,)), 16
    if isinstance(ob, _MAPPINGS):
        return itertools.chain(ob.keys(), ob.values()), 16 + 4 * len(ob)
    return iter(ob), (2 if type(ob) in (list, tuple) else 16) + 2 * len(ob)


def _text_len(ob, limit):
    """Upper estimate of len(repr(ob)) for plain data; returns early once over limit."""
    size = _leaf_len(ob, type(ob))
    if size is not None:
        return size
    done = {}            # id -> (length, container): measured once; holding it keeps the id unique
    path = {id(ob)}      # containers being walked: a reference back to one prints as [...]
    children, size = _open(ob)
    stack, sizes = [(id(ob), children)], [size]
    while stack:
        ident, children = stack[-1]
        for child in children:
            kind = type(child)
            if kind is str:
                sizes[-1] += len(child) + 2
            elif kind is int:
                sizes[-1] += child.bit_length() // 3 + 2
            elif kind in _SHORT_TEXT:
                sizes[-1] += _SHORT_TEXT[kind]
            else:
                size = _leaf_len(child, kind)
                if size is None:
                    cid = id(child)
                    if cid in path:
                        size = 5
                    elif cid in done:
                        size = done[cid][0]
                    else:
                        path.add(cid)
                        grandchildren, size = _open(child)
                        stack.append((cid, grandchildren))
                        sizes.append(size)
                        done[cid] = (None, child)  # keep alive until measured
                        break
                sizes[-1] += size
            if sizes[-1] > limit:
                return sizes[-1]
        else:  # all children measured
            stack.pop()
            path.discard(ident)
            size = sizes.pop()
            if not sizes:
                return size
            done[ident] = (size, done[ident][1])
            sizes[-1] += size
            if sizes[-1] > limit:
                return sizes[-1]
        if sizes[-1] > limit:
            return sizes[-1]
    return sizes[-1]  # pragma: no cover - the loop returns


def _check_text(ob, what, limit=MAX_ITEMS):
    if type(ob) not in _PLAIN_TEXT and _text_len(ob, limit) > limit:
        _refuse(what)


class _ProxyType(type):
    """Metaclass of stand-ins for builtin types: isinstance() and repr() see the real type."""

    def __instancecheck__(cls, ob):
        return isinstance(ob, cls.__mro__[1])

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls.__mro__[1])

    def __repr__(cls):
        return repr(cls.__mro__[1])


class _str(str, metaclass=_ProxyType):
    """``str`` for scripts: ``str(x)`` first checks that the text of x is not huge.
    A subclass, so ``str.upper``, ``isinstance(x, str)`` and key=str keep working."""
    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs:
            if type(args[0]) in _PLAIN_TEXT:
                return str(args[0])
            _check_text(args[0], "text")
        elif "object" in kwargs:
            _check_text(kwargs["object"], "text")
        return str(*args, **kwargs)


_str.__name__ = _str.__qualname__ = "str"


def _describe(exc):
    """'Type: message' for an error, without building a huge message."""
    name = type(exc).__name__
    if _text_len(exc, 10_000) > 10_000:
        return f"{name} (message too large to show)", False
    text = str(exc)
    return f"{name}: {text[:2000]}{'...' if len(text) > 2000 else ''}", True


class _PrintCollector(PrintCollector):
    """print() works; its output is discarded.  Output past MAX_ITEMS characters is dropped
    without being built; reading ``printed`` after that is refused."""

    def __init__(self, _getattr_=None):
        super().__init__(_getattr_)
        self.size, self.dropped = 0, False

    def write(self, text):
        if not self.dropped:
            self.size += len(text)
            if self.size > MAX_ITEMS:
                self.dropped = True
                self.txt.clear()
            else:
                self.txt.append(text)

    def __call__(self):
        if self.dropped:
            _refuse("printed output")
        return "".join(self.txt)

    def _call_print(self, *objects, **kwargs):
        file = kwargs.get("file")
        mine = file is None or file is self
        room = MAX_ITEMS - self.size if mine else MAX_ITEMS
        total = 0
        for ob in objects:
            total += len(ob) if type(ob) is str else _text_len(ob, room - total)
            if total > room:
                if not mine:
                    _refuse("printed text")
                self.dropped = True
                self.txt.clear()
                return
        return super()._call_print(*objects, **kwargs)


# --- formatting: f-strings and % -----------------------------------------------------------------

_DIGITS = re.compile(r"\d+")  # format specs take any Unicode decimal digit: f'{1:>\u0669\u0669}' is 99 wide
_MAX_DIGITS = len(str(MAX_ITEMS))


def _number(digits):
    digits = digits.lstrip("0")
    return MAX_ITEMS + 1 if len(digits) > _MAX_DIGITS else int(digits or 0)


def _fmt_value(value, conversion, spec, room):
    """One {value!conversion:spec} of an f-string, in at most room characters."""
    if conversion != -1 or (not spec and type(value) is not str):  # str()/repr()/ascii()
        _check_text(value, "formatted value", room)
        if conversion == 114:
            value = repr(value)
        elif conversion == 97:
            value = ascii(value)
        elif conversion == 115:
            value = str(value)
    if spec:  # digits in a spec are widths, precisions or fill characters: refuse big ones
        for digits in _DIGITS.findall(spec):
            if _number(digits) > room:
                _refuse("format width or precision")
    return format(value, spec)


def _fstr_(*parts):
    """f-string: parts are literal str or (value, conversion, spec) tuples."""
    out, total = [], 0
    for part in parts:
        if type(part) is not str:
            part = _fmt_value(*part, MAX_ITEMS - total)
        total += len(part)
        if total > MAX_ITEMS:
            _refuse("formatted string")
        out.append(part)
    return "".join(out)


def _check_printf(fmt, args):
    """Estimate len(fmt % args) before CPython builds it: widths and precisions (also ``*``
    ones) must stay within MAX_ITEMS, and so must the whole result.  Parses the way
    CPython's PyUnicode_Format does; where it would raise, returns and lets it raise."""
    if not isinstance(fmt, str):
        fmt = bytes(fmt).decode("latin-1")  # bytes formatting has the same grammar
    values = args if isinstance(args, tuple) else (args,)
    mapping = args if (hasattr(type(args), "__getitem__")
                       and not isinstance(args, (tuple, str, bytes, bytearray))) else None
    limit, n = max(MAX_ITEMS, len(fmt)), len(fmt)
    total = pos = argi = 0
    while True:
        i = fmt.find("%", pos)
        if i < 0:
            total += n - pos
            break
        total += i - pos
        j = i + 1
        if j < n and fmt[j] == "%":
            total, pos = total + 1, j + 1
            continue
        key = None
        if j < n and fmt[j] == "(":
            depth, j = 1, j + 1
            while j < n and depth:
                depth += (fmt[j] == "(") - (fmt[j] == ")")
                j += 1
            if depth:
                return
            key = fmt[i + 2:j - 1]
        while j < n and fmt[j] in "-+ #0":
            j += 1
        width = prec = 0
        if j < n and fmt[j] == "*":
            if argi >= len(values) or not isinstance(values[argi], int):
                return
            width, argi, j = abs(values[argi]), argi + 1, j + 1
        else:
            k = j
            while j < n and "0" <= fmt[j] <= "9":
                j += 1
            width = _number(fmt[k:j])
        if j < n and fmt[j] == ".":
            j += 1
            if j < n and fmt[j] == "*":
                if argi >= len(values) or not isinstance(values[argi], int):
                    return
                prec, argi, j = max(values[argi], 0), argi + 1, j + 1
            else:
                k = j
                while j < n and "0" <= fmt[j] <= "9":
                    j += 1
                prec = _number(fmt[k:j])
        if width > MAX_ITEMS or prec > MAX_ITEMS:
            _refuse("format width or precision")
        if j < n and fmt[j] in "hlL":
            j += 1
        if j >= n:
            return
        pos = j + 1
        if key is not None:
            if mapping is None:
                return
            try:
                value = mapping[key]
            except Exception:  # noqa: BLE001 - CPython raises the same when formatting
                return
        elif argi < len(values):
            value, argi = values[argi], argi + 1
        else:
            return
        if isinstance(value, float):
            size = 320 + prec  # '%f' % 1e308 has 309 digits
        else:
            size = prec + _text_len(value, limit - total)
        total += max(width, size)
        if total > limit:
            _refuse("formatted string")


# --- methods whose result can outgrow their input -------------------------------------------------

_NO = object()


def _arg(args, kwargs, i, name, default=_NO):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _int_arg(value):
    """operator.index(value), or None when the method itself will reject value."""
    try:
        return operator.index(value)
    except TypeError:
        return None


def _pad_check(self, args, kwargs):  # ljust rjust center zfill
    width = _int_arg(_arg(args, kwargs, 0, "width"))
    if width is not None:
        _grow_check(width, len(self), "padded string")
    return args


def _tabs_check(self, args, kwargs):
    size = _int_arg(_arg(args, kwargs, 0, "tabsize", 8))
    if size is not None and size > 1:
        tabs = self.count("\t" if isinstance(self, str) else b"\t")
        _grow_check(len(self) + tabs * (size - 1), len(self), "tab expansion")
    return args


def _replace_check(self, args, kwargs):
    old, new = _arg(args, kwargs, 0, "old"), _arg(args, kwargs, 1, "new")
    count = _int_arg(_arg(args, kwargs, 2, "count", -1))
    try:
        grow = len(new) - len(old)
    except TypeError:
        return args
    n = len(self)
    if grow > 0 and count and n + (n + 1) * grow > MAX_ITEMS:  # '' matches n + 1 times
        try:
            found = self.count(old)
        except TypeError:
            return args
        if count > 0:
            found = min(found, count)
        _grow_check(n + found * grow, n, "replacement")
    return args


def _join_check(self, args, kwargs):
    if len(args) != 1 or kwargs:
        return args
    items, sep = args[0], len(self)
    if isinstance(items, (str, bytes, bytearray)):
        if len(items) + sep * max(len(items) - 1, 0) > MAX_ITEMS:
            _refuse("joined string")
        return args
    if type(items) not in (list, tuple):  # drain with a running total: items may be made on the fly
        try:
            iterator = iter(items)
        except TypeError:
            return args
        out, total = [], -sep
        for item in iterator:
            out.append(item)
            try:
                total += sep + len(item)
            except TypeError:
                return (out,)  # join raises its own error for this item
            if total > MAX_ITEMS:
                _refuse("joined string")
        return (out,)
    try:
        total = sum(map(len, items)) + sep * max(len(items) - 1, 0)
    except TypeError:
        return args
    if total > MAX_ITEMS:
        _refuse("joined string")
    return args


def _translate_check(self, args, kwargs):
    if len(args) != 1 or kwargs:
        return args
    table, n = args[0], len(self)
    values = (table.values() if isinstance(table, _MAPPINGS) else table if isinstance(table, (list, tuple))
              else () if isinstance(table, str) else None)
    if values is not None:
        longest = max((len(v) for v in values if isinstance(v, str)), default=1)
        if longest <= 1 or n * longest <= MAX_ITEMS:
            return args
    total = 0
    for char, count in collections.Counter(self).items():  # each distinct character once
        try:
            value = table[ord(char)]
        except LookupError:
            value = char
        except Exception:  # noqa: BLE001 - translate raises its own error
            return args
        total += count * (len(value) if isinstance(value, str) else value is not None)
    _grow_check(total, n, "translated string")
    return args


def _to_bytes_check(self, args, kwargs):
    length = _int_arg(_arg(args, kwargs, 0, "length", 1))
    if length is not None and length > MAX_ITEMS:
        _refuse("int.to_bytes() result")
    return args


def _extend_check(self, args, kwargs):
    if len(args) != 1 or kwargs:
        return args
    return (_sized(args[0], MAX_ITEMS - len(self), "list"),)


def _retained_key(key):
    """sorted() and list.sort() call key from C for every item and keep every key until done:
    check the deadline every ITER_CHECK_EVERY keys and cap the total size of big keys
    (key=list on 10**6 rows of 10**4 items would copy every row; key=abs on 10**6 references
    to one negative 100k-bit int would make 10**6 new ones).  Small keys are not counted."""
    if key is len:
        return key
    size = calls = 0
    plain_str = key is _str

    def retained_key(item):
        nonlocal size, calls
        calls += 1
        if not calls % ITER_CHECK_EVERY:
            _tick_()
        result = str(item) if plain_str and type(item) in _PLAIN_TEXT else key(item)
        kind = type(result)
        n = len(result) if kind in _SEQS else result.bit_length() >> 6 if kind is int else 0
        if n > 64:
            size += n
            if size > MAX_ITEMS:
                _refuse("sort keys")
        return result
    return retained_key


def _sort_check(self, args, kwargs):
    if kwargs.get("key") is not None:
        kwargs["key"] = _retained_key(kwargs["key"])
    return args


_TEXT_TYPES = (str, bytes, bytearray)
_METHOD_CHECKS = {name: dict.fromkeys(_TEXT_TYPES, check) for name, check in (
    ("ljust", _pad_check), ("rjust", _pad_check), ("center", _pad_check), ("zfill", _pad_check),
    ("expandtabs", _tabs_check), ("replace", _replace_check), ("join", _join_check))}
_METHOD_CHECKS.update(translate={str: _translate_check}, to_bytes={int: _to_bytes_check},
                      extend={list: _extend_check, bytearray: _extend_check}, sort={list: _sort_check})
_CHECK_BASES = (str, bytes, bytearray, list, int)


def _bound_guard(method, check, ob):
    def guarded(*args, **kwargs):
        return method(*check(ob, args, kwargs), **kwargs)
    return guarded


def _unbound_guard(function, check, base):  # str.join(sep, items) and the like
    def guarded(*args, **kwargs):
        if args and isinstance(args[0], base):
            args = (args[0], *check(args[0], args[1:], kwargs))
        return function(*args, **kwargs)
    return guarded


def _getattr_(ob, name, *default):
    """safer_getattr_raise, handing out growing methods wrapped in a size check."""
    value = safer_getattr_raise(ob, name, *default)
    checks = _METHOD_CHECKS.get(name)
    if checks is None:
        return value
    if isinstance(ob, type):
        base = next((b for b in _CHECK_BASES if issubclass(ob, b)), None)
        check = checks.get(base)
        return value if check is None else _unbound_guard(value, check, base)
    check = checks.get(type(ob)) or checks.get(next((b for b in _CHECK_BASES if isinstance(ob, b)), None))
    return value if check is None else _bound_guard(value, check, ob)


class _SliceWriter:
    """Target of ``lst[a:b] = value``: the list may not grow past MAX_ITEMS."""
    __slots__ = ("ob",)

    def __init__(self, ob):
        self.ob = ob

    def __setitem__(self, key, value):
        ob = self.ob
        if isinstance(key, slice):
            start, stop, step = key.indices(len(ob))
            kept = len(ob) - len(range(start, stop, step))
            value = _sized(value, max(MAX_ITEMS, len(ob)) - kept, "list")
        ob[key] = value


def _write_(ob, slice_store=False):
    """full_write_guard; ``lst[a:b] = value`` is compiled to ``_write_(lst, True)[a:b] = value``."""
    if slice_store and isinstance(ob, list):
        return _SliceWriter(ob)
    return ob if type(ob) is dict or type(ob) is list else full_write_guard(ob)


# --- builtins that let C code call back or add up for long --------------------------------------

def _ticking(key):
    """min()/max() keep only the best key, but call key from C for every item."""
    calls = 0

    def ticking_key(item):
        nonlocal calls
        calls += 1
        if not calls % ITER_CHECK_EVERY:
            _tick_()
        return key(item)
    return ticking_key


def _sorted(iterable, /, *, key=None, reverse=False):
    return sorted(iterable, key=None if key is None else _retained_key(key), reverse=reverse)


def _min(*args, **kwargs):
    if kwargs.get("key") is not None:
        kwargs["key"] = _ticking(kwargs["key"])
    return min(*args, **kwargs)


def _max(*args, **kwargs):
    if kwargs.get("key") is not None:
        kwargs["key"] = _ticking(kwargs["key"])
    return max(*args, **kwargs)


def _sum(iterable, /, start=0):
    """sum() in chunks with deadline checks between them (10**6 additions of 100k-bit ints
    take seconds); list/tuple sums go through the concatenation guard."""
    if isinstance(start, (list, tuple)):
        for item in iterable:
            _tick_()
            start = _add_(start, item)
        return start
    if type(iterable) in _SIZED and len(iterable) <= ITER_CHECK_EVERY:
        return sum(iterable, start)
    iterator = iter(iterable)
    while True:  # same additions in the same order as one sum() (Python 3.11 sums floats naively)
        chunk = list(itertools.islice(iterator, ITER_CHECK_EVERY))
        start = sum(chunk, start)
        if len(chunk) < ITER_CHECK_EVERY:
            return start
        _tick_()


def _zip(*iterables, strict=False):
    """zip(*rows) transposes: 10**6 rows of 10**6 items each would become 10**12 items."""
    width = len(iterables)
    if width <= 16:
        return zip(*iterables, strict=strict)
    try:
        rows = min(map(len, iterables))
    except TypeError:  # some have no len(): count rows as they come
        return _capped_rows(zip(*iterables, strict=strict), MAX_ITEMS // width)
    if rows * width > MAX_ITEMS:
        _refuse("zip() result")
    return zip(*iterables, strict=strict)


def _capped_rows(zipped, most):
    for n, row in enumerate(zipped, 1):
        if n > most:
            _refuse("zip() result")
        if not n % ITER_CHECK_EVERY:
            _tick_()
        yield row


def _round(number, ndigits=_NO):
    """round(int, -n) computes 10**n: round(7, -10**10) would never finish."""
    if ndigits is _NO:
        return round(number)
    if isinstance(number, int) and ndigits is not None:
        digits = _int_arg(ndigits)
        if digits is not None and digits < 0:
            if -digits * 332 > (number.bit_length() + 1) * 100:  # 10**-digits > 2*|number|
                return 0
            if -digits * 10 > MAX_INT_BITS * 3:
                _refuse("rounding")
    return round(number, ndigits)


BUILTINS = {n: getattr(builtins, n) for n in (
    "len abs any all int float bool list dict tuple set frozenset enumerate isinstance "
    "reversed next").split()}
BUILTINS.update({n: safe_builtins[n] for n in (
    "None True False ArithmeticError AssertionError AttributeError Exception IndexError KeyError "
    "LookupError NameError NotImplementedError OverflowError RuntimeError StopIteration "
    "TypeError ValueError ZeroDivisionError").split()})
BUILTINS.update(range=_range, iter=_iter, str=_str, sorted=_sorted, min=_min, max=_max, sum=_sum,
                zip=_zip, round=_round)

_GUARDS = {
    "__builtins__": BUILTINS,
    "_getattr_": _getattr_,            # safer_getattr_raise: missing attributes raise, not None
    "_getitem_": default_guarded_getitem,
    "_write_": _write_,                # item writes on dict/list pass, everything else refused
    "_getiter_": _getiter_,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_inplacevar_": _inplacevar_,
    "_apply_": lambda f, /, *a, **kw: f(*a, **kw),
    "_print_": _PrintCollector,
    "_tick_": _tick_, "_add_": _add_, "_mul_": _mul_, "_arith_": _arith_, "_fstr_": _fstr_,
}
# Code that uses none of these names cannot loop or have C code call back into it or add up
# for long (_getattr_: list.sort(key=...)), so it runs without touching the clock.
_CLOCKED = frozenset({"_tick_", "_getiter_", "iter", "sorted", "min", "max", "sum", "zip", "_getattr_"})
# Refused at compile time for a clear message; none of them is a builtin here anyway.
_FORBIDDEN_CALLS = frozenset("open getattr setattr delattr hasattr vars globals locals compile "
                             "type dir input breakpoint exit quit help memoryview super".split())
# mro() would hand out the real classes behind the guarded builtins (str) and BaseException.
_FORBIDDEN_ATTRIBUTES = frozenset({"mro"})


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
        name, op = _BINOPS.get(type(node.op)), _ARITH_OPS.get(type(node.op))
        if name is not None:
            call = ast.Call(ast.Name(name, ast.Load()), [node.left, node.right], [])
        elif op is not None:
            call = ast.Call(ast.Name("_arith_", ast.Load()), [ast.Constant(op), node.left, node.right], [])
        else:
            return node
        copy_locations(call, node)
        return ast.fix_missing_locations(call)

    def visit_JoinedStr(self, node):
        """f'a{x!r:>{w}}'  ->  _fstr_('a', (x, 114, _fstr_((w, -1, ''))))"""
        node = super().visit_JoinedStr(node)
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec if value.format_spec is not None else ast.Constant("")
                value = ast.Tuple([value.value, ast.Constant(value.conversion), spec], ast.Load())
            parts.append(value)
        call = ast.Call(ast.Name("_fstr_", ast.Load()), parts, [])
        copy_locations(call, node)
        return ast.fix_missing_locations(call)

    def visit_Subscript(self, node):  # lst[a:b] = value  ->  _write_(lst, True)[a:b] = value
        node = super().visit_Subscript(node)
        if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store)
                and isinstance(node.slice, ast.Slice)):
            node.value.args.append(ast.Constant(True))
            ast.fix_missing_locations(node.value)
        return node

    def visit_Attribute(self, node):
        if node.attr in _FORBIDDEN_ATTRIBUTES:
            self.error(node, f"'{node.attr}' is not allowed in scripts")
        return super().visit_Attribute(node)

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
        except BaseException as exc:  # whatever trusted globals may raise
            message, chain = _describe(exc)
            # a cause whose message is huge would blow up whoever logs the traceback
            raise ScriptError(message, _script_line(exc.__traceback__)) from (exc if chain else None)
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
        kept, dropped = {}, []
        for name, value in g.items():
            if name.startswith("_") or (name in injected and value is injected[name]):
                continue
            if callable(value) or isinstance(value, (types.ModuleType, Iterator)):
                dropped.append(name)
            else:
                kept[name] = value
        # Task data is stored as JSON: shared references that cost nothing here would not.
        if _text_len(kept, MAX_TASK_DATA) > MAX_TASK_DATA:
            raise ScriptError(f"refused: task data would be too large to store "
                              f"(over {MAX_TASK_DATA} characters as text)")
        for name in [n for n in context if n not in g]:  # `del x` in the script
            del context[name]
        for name in dropped:
            context.pop(name, None)
        for name, value in kept.items():
            context[name] = _thaw(value)
        return True

    def call_service(self, context, **kwargs):
        raise ScriptError("service tasks are not run by the script environment")


def make_script_engine(globals: dict | None = None, time_limit: float = 1.0) -> PythonScriptEngine:
    """A SpiffWorkflow PythonScriptEngine whose environment is RestrictedEnvironment."""
    return PythonScriptEngine(environment=RestrictedEnvironment(globals, time_limit))
