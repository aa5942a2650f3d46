"""Tests for the restricted script environment (engine/runtime/scripts.py).

No mocks: every test compiles and runs real code through RestrictedPython and,
at the end, through a real SpiffWorkflow BpmnWorkflow.
"""
import os
import threading
import time
import tracemalloc

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.runtime.scripts import (
    RestrictedEnvironment,
    ScriptError,
    ScriptRefused,
    ScriptTimeout,
    check_script,
    make_script_engine,
)


def _bounded(fn, seconds=5.0, max_mib: int | None = 64):
    """Run fn in a daemon thread so a broken guard fails the test instead of hanging it, and
    check that it never held more than `max_mib` of Python memory: a refusal must come before
    the allocation it refuses. (No wall-clock limits: those flake on a loaded machine.)
    Returns (exception raised or None, elapsed seconds)."""
    outcome = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["exc"] = exc

    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    if not tracing:
        tracemalloc.stop()
    assert not thread.is_alive(), "script was not stopped"
    assert max_mib is None or peak < max_mib * 2**20, f"the script held {peak / 2**20:.0f} MiB before it was stopped"
    return outcome.get("exc"), elapsed


@pytest.fixture
def env():
    return RestrictedEnvironment({"settings": {"threshold": 100}, "double": lambda v: v * 2},
                                 time_limit=0.2)


# --- conditions -------------------------------------------------------------------

@pytest.mark.parametrize("amount, expected", [(150, True), (100, True), (99, False)])
def test_condition_uses_task_data_and_globals(env, amount, expected):
    assert env.evaluate('amount >= settings["threshold"]', {"amount": amount}) is expected


def test_condition_calls_injected_function_and_builtins(env):
    ctx = {"items": [3, 1, 2]}
    assert env.evaluate("double(max(items)) + len(sorted(items))", ctx) == 9
    assert env.evaluate("[i * 2 for i in items if i > 1]", ctx) == [6, 4]


def test_condition_with_leading_whitespace_from_xml(env):
    assert env.evaluate("\n    amount > 1\n  ", {"amount": 2}) is True


def test_task_data_shadows_globals_but_not_guards(env):
    assert env.evaluate("settings", {"settings": 5}) == 5
    # a task-data key named like a guard must not replace it
    assert env.evaluate("[x for x in items]", {"items": [1], "_getiter_": "junk"}) == [1]


def test_external_context_is_visible(env):
    assert env.evaluate("a + b", {"a": 1}, external_context={"b": 2}) == 3


def test_runtime_error_is_script_error_with_line(env):
    with pytest.raises(ScriptError) as info:
        env.evaluate("missing + 1", {})
    assert "NameError" in str(info.value) and info.value.line == 1


def test_missing_attribute_raises_instead_of_returning_none(env):
    with pytest.raises(ScriptError, match="AttributeError"):
        env.evaluate("amount.nope", {"amount": 1})


# --- scripts mutate context ---------------------------------------------------------

def test_execute_sets_changes_and_deletes_variables(env):
    ctx = {"a": 1, "gone": "x", "d": {"k": 0}}
    script = (
        "a = a + 1\n"
        "b = double(a)\n"
        "del gone\n"
        "d['k'] = 5\n"
        "total = 0\n"
        "for i in range(4):\n"
        "    total += i\n"
        "fn = lambda: 1\n"
    )
    assert env.execute(script, ctx) is True
    assert ctx == {"a": 2, "b": 4, "d": {"k": 5}, "total": 6, "i": 3}


def test_execute_does_not_leak_globals_or_helpers(env):
    ctx = {}
    env.execute("def helper(v):\n    return v\nx = helper(3)\nl = [1]\nl += [2]", ctx)
    assert ctx == {"x": 3, "l": [1, 2]}
    assert "settings" not in ctx and "double" not in ctx and "__builtins__" not in ctx


def test_copying_a_global_into_task_data_gives_plain_dict(env):
    ctx = {}
    env.execute("cfg = settings", ctx)
    assert ctx == {"cfg": {"threshold": 100}} and type(ctx["cfg"]) is dict


def test_scripts_cannot_mutate_shared_globals(env):
    with pytest.raises(ScriptError):
        env.execute("settings['threshold'] = 0", {})
    assert env.evaluate('settings["threshold"]', {}) == 100


def test_runtime_error_in_script_reports_line(env):
    with pytest.raises(ScriptError) as info:
        env.execute("x = 1\ny = 2\nz = x / 0\n", {})
    assert info.value.line == 3 and "ZeroDivisionError" in str(info.value)


# --- refusals -------------------------------------------------------------------------

ESCAPES = [
    "__import__('os')",
    "import os",
    "from os import path",
    "().__class__.__base__.__subclasses__()",
    "x._secret",
    "open('/etc/passwd')",
    "getattr(x, '__class__')",
    "'{0.__class__}'.format(1)",
    "eval('1')",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_and_not_run(env, source, tmp_path):
    marker = tmp_path / "ran"
    # if the refused line were executed, the next line would create the marker
    ctx = {"x": 1, "marker": str(marker)}
    with pytest.raises(ScriptError):
        env.execute(f"{source}\nok = True\n", ctx)
    assert "ok" not in ctx and not marker.exists()


@pytest.mark.parametrize("source", ["import os", "from os import path", "__import__('os')",
                                    "open('/etc/passwd')", "eval('1')", "x._secret"])
def test_escapes_are_refused_at_compile_time(env, source):
    with pytest.raises(ScriptRefused):
        env.execute(source, {"x": 1})
    assert check_script(source) != []


def test_format_escape_does_not_return_class(env):
    with pytest.raises(ScriptError, match="format"):
        env.evaluate("'{0.__class__}'.format(1)", {})


def test_refused_escape_in_gateway_condition(env):
    with pytest.raises(ScriptRefused):
        env.evaluate("__import__('os').system('true')", {})


def test_check_script_reports_line_of_problem():
    problems = check_script("a = 1\nb = 2\nimport os\nc = 3\n")
    assert [line for line, _ in problems] == [3]
    assert "import" in problems[0][1]


def test_check_script_ok_and_syntax_error_and_eval_mode():
    assert check_script("a = 1\nfor i in range(3):\n    a += i\n") == []
    assert check_script("amount > 3", mode="eval") == []
    assert check_script("x = 1\nif x\n", mode="exec")[0][0] == 2
    assert check_script("x = 1", mode="eval") != []  # a statement is no expression
    assert check_script(None) != []  # never raises


def test_compiled_code_is_cached():
    from engine.runtime.scripts import _compile
    check_script("cache_probe = 41 + 1")
    hits = _compile.cache_info().hits
    check_script("cache_probe = 41 + 1")
    assert _compile.cache_info().hits == hits + 1


# --- time and size limits ---------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "while True: pass",
    "[1 for _ in iter(int, 1)]",
    "x = list(iter(int, 1))",
    "def f(n):\n    return n and f(n - 1) + f(n - 1)\nf(80)",
    "f = lambda n: n and f(n - 1) + f(n - 1)\nf(80)",
    "n = 0\nfor a in range(10**6):\n    for b in range(10**6):\n        n += 1",
    "[1 for a in range(200) for b in range(200) for c in range(200) for d in range(200)]",
    "while True:\n    try:\n        while True: pass\n    except Exception:\n        pass",
])
def test_runaway_code_times_out(env, source):
    # Memory grows until the deadline here, so only the time limit is checked.
    exc, elapsed = _bounded(lambda: env.execute(source, {}), max_mib=None)
    assert isinstance(exc, ScriptTimeout), repr(exc)
    assert 0.15 < elapsed  # it ran until the time limit


def test_timeout_on_expression(env):
    exc, _elapsed = _bounded(lambda: env.evaluate("[1 for _ in iter(int, 1)]", {}), max_mib=None)
    assert isinstance(exc, ScriptTimeout) and "0.2s" in str(exc)


@pytest.mark.parametrize("source", [
    "2 ** 10 ** 10", "'a' * 10**10", "10**10 * 'a'", "[0] * 10**10", "1 << 10**10",
    "range(10**10)", "x = 'ab'\nwhile True:\n    x = x + x", "x = [1]\nwhile True:\n    x += x",
])
def test_huge_results_are_refused_quickly(env, source):
    exc, _elapsed = _bounded(lambda: env.execute(source, {}))
    assert isinstance(exc, ScriptError) and "too large" in str(exc), repr(exc)


def test_reasonable_arithmetic_still_works(env):
    assert env.evaluate("2 ** 64 + len('ab' * 1000) + len(range(10**6))", {}) == 2**64 + 2000 + 10**6
    assert env.evaluate("1 ** 10**9", {}) == 1


def test_time_limit_is_per_thread(env):
    """A short deadline set in one thread must not cut off a longer script in another."""
    patient = RestrictedEnvironment({"now": time.monotonic}, time_limit=5)
    results = {}

    def long_but_legal():
        patient.execute("end = now() + 0.6\nwhile now() < end:\n    pass", {})
        results["long"] = "done"

    thread = threading.Thread(target=long_but_legal, daemon=True)
    thread.start()
    time.sleep(0.1)
    exc, _ = _bounded(lambda: env.execute("while True: pass", {}))  # 0.2 s limit
    thread.join(3)
    assert isinstance(exc, ScriptTimeout)
    assert results == {"long": "done"}


# --- amplification in C: growing methods, formatting, text conversion ----------------------
# Each of these is one line that, unguarded, makes C code allocate gigabytes or run for
# minutes before any deadline check.  They must be refused (or time out) quickly.

def _refused_quickly(env, source, ctx=None, word="too large"):
    exc, _elapsed = _bounded(lambda: env.execute(source, dict(ctx or {})))
    assert isinstance(exc, ScriptError) and word in str(exc), repr(exc)
    return exc


GROWING_METHODS = [
    "'a'.ljust(10**10)", "'a'.rjust(10**10)", "'a'.center(10**10)", "'a'.zfill(10**10)",
    "('a\\t' * 1000).expandtabs(10**7)",
    "x = 'a' * 10**6\nx.replace('a', x)",
    "('a' * 10**6).replace('', 'bb')",
    "s = 'a' * 10**6\ns.join([s] * 1000)",
    "''.join(['a' * 10**6] * 10000)",
    "'-'.join('a' * 10**6 for _ in range(10000))",
    "('x' * 10**6).translate({120: 'a' * 10**6})",
    "str.ljust('a', 10**10)",
    "str.join('a' * 10**6, ['a'] * 10**6)",
    "pad = 'a'.center\npad(10**10)",
    "b'a'.ljust(10**10)", "b'a'.rjust(10**10)", "b'a'.center(10**10)", "b'a'.zfill(10**10)",
    "(b'a\\t' * 1000).expandtabs(10**7)",
    "x = b'a' * 10**6\nx.replace(b'a', x)",
    "x = b'a' * 10**6\nx.join([x] * 1000)",
    "ba.ljust(10**10)", "ba.zfill(10**10)", "ba * 10**10",
    "for i in range(60):\n    ba.extend(ba)",
    "(1).to_bytes(10**10, 'big')", "int.to_bytes(0, 10**10, 'little')",
]


@pytest.mark.parametrize("source", GROWING_METHODS)
def test_growing_str_bytes_methods_are_refused(env, source):
    _refused_quickly(env, source, {"ba": bytearray(b"ab")})


FORMAT_WIDTHS = [
    "f'{1:>9999999999}'", "f'{1.5:.999999999f}'", "w = 10**10\nf'{1:{w}}'",
    "f'{\"a\":<{10**9}}'", "f'{1:0{10**9}d}'",
    "f'{1:>" + "\u0669" * 10 + "}'",  # ARABIC-INDIC DIGIT NINE: format specs take any decimal digit
    "f'{1.5:." + "\uff19" * 10 + "f}'",  # FULLWIDTH DIGIT NINE
    "'%9999999999d' % 1", "'%.999999999f' % 1.5", "'%*d' % (10**10, 1)", "'%.*f' % (10**9, 1.5)",
    "'%(a)9999999999s' % {'a': 1}", "'%((a))9999999999s' % {'(a)': 1}",
    "b'%9999999999d' % 1", "b'%.*f' % (10**9, 1.5)",
    "s = 'a' * 10**6\n('%s' * 1000) % ((s,) * 1000)",
    "s = 'a' * 10**6\nf'" + "{s}" * 1000 + "'",
    "t = 'ab'\nfor i in range(40):\n    u = '%s%s'\n    u %= (t, t)\n    t = u",
]


@pytest.mark.parametrize("source", FORMAT_WIDTHS)
def test_huge_format_widths_and_outputs_are_refused(env, source):
    _refused_quickly(env, source)


TEXT_OF_SHARED_STRUCTURES = [
    "str(['a' * 10**6] * 10**6)", "str([[0] * 10**6] * 10**6)",
    "f'{[[0] * 10**6] * 10**6}'", "f'{[[0] * 10**6] * 10**6!r}'",
    "'%s' % ([[0] * 10**6] * 10**6,)", "'%r' % ([[0] * 10**6] * 10**6,)",
    "b'%a' % ([[0] * 10**6] * 10**6,)",
    "d = {'k': [[0] * 10**6] * 10**6}\nstr(d.values())", "d = {'k': [[0] * 10**6] * 10**6}\nf'{d.items()}'",
    "str(ValueError([[0] * 10**6] * 10**6))",
    "try:\n    {}[('a' * 10**6,) * 10**6]\nexcept KeyError as e:\n    msg = str(e)",
    "sorted([[0] * 10**4] * 10**6, key=str)", "sorted([[0] * 10**4] * 10**6, key=list)",
    "x = [[0] * 10**4] * 10**6\nx.sort(key=list)",
    "x = -(2**50000 << 49990)\nsorted([x] * 10**6, key=abs)",  # 10**6 new 100k-bit ints
    "print(*(['a' * 10**6] * 1000))\nout = printed",
    "rows = [[0] * 10**6] * 10**6\nlist(zip(*rows))",
]


@pytest.mark.parametrize("source", TEXT_OF_SHARED_STRUCTURES)
def test_text_of_shared_structures_is_refused(env, source):
    """A list of 10**6 references to one big object is small in memory but not as text."""
    _refused_quickly(env, source)


def test_print_of_huge_object_is_dropped_not_built(env):
    ctx = {}
    exc, _elapsed = _bounded(lambda: env.execute("print([[0] * 10**6] * 10**6)\nok = True", ctx))
    assert exc is None and ctx == {"ok": True}


def test_error_message_of_huge_key_is_short(env):
    exc, _elapsed = _bounded(lambda: env.execute("{}[('a' * 10**6,) * 10**6]", {}))
    assert isinstance(exc, ScriptError) and "KeyError" in str(exc), repr(exc)
    assert len(str(exc)) < 1000


def test_task_data_that_expands_when_stored_is_refused(env):
    """Shared references cost nothing in memory, but task data is stored as JSON."""
    ctx = {"keep": 1}
    exc, _elapsed = _bounded(lambda: env.execute("x = [[['a' * 10**6] * 1000] * 1000]", ctx))
    assert isinstance(exc, ScriptError) and "too large" in str(exc), repr(exc)
    assert ctx == {"keep": 1}


def test_mro_is_refused_at_compile_time(env):
    """mro() would hand out the unguarded builtin classes behind str."""
    with pytest.raises(ScriptRefused):
        env.evaluate("str.mro()", {})


def test_round_with_huge_negative_ndigits_returns_quickly(env):
    out = {}
    exc, _elapsed = _bounded(lambda: out.update(r=env.evaluate("round(7, -10**10)", {})))
    assert exc is None and out["r"] == 0
    assert env.evaluate("[round(1234, -2), round(2**50000, -20000), round(-5, -10**20)]", {}) == \
        [1200, 0, 0]


@pytest.mark.parametrize("op", ["%", "//"])
def test_division_of_huge_ints_is_refused(env, op):
    _refused_quickly(env, f"x = int('f' * 10**6, 16)\nx {op} (x >> 2000000)", word="too slow")


def test_sum_of_huge_ints_times_out(env):
    exc, _elapsed = _bounded(lambda: env.execute(  # x has ~100k bits, as many as allowed
        "x = 2**50000 << 49990\nsum([x] * 10**6) + sum([x] * 10**6)", {}))
    assert isinstance(exc, ScriptTimeout), repr(exc)


def test_sum_of_big_lists_is_refused(env):
    _refused_quickly(env, "sum([[0] * 10**6] * 10**6, [])")


def test_list_inplace_multiply_by_list_is_type_error(env):
    exc, _elapsed = _bounded(lambda: env.execute("x = [0] * 10**6\nx *= [0] * 10**6", {}))
    assert isinstance(exc, ScriptError) and "TypeError" in str(exc), repr(exc)


@pytest.mark.parametrize("source", [
    "x = [0] * 10**6\nfor i in range(30):\n    x.extend(x)",
    "x = [0] * 10**6\nfor i in range(30):\n    x[:0] = x",
    "x = [0] * 10**6\nfor i in range(30):\n    x[len(x):] = x",
])
def test_list_doubling_is_refused(env, source):
    _refused_quickly(env, source)


def test_comprehension_over_list_it_grows_times_out(env):
    exc, _elapsed = _bounded(lambda: env.execute("x = [0]\ny = [x.append(1) for v in x]", {}), max_mib=None)
    assert isinstance(exc, ScriptTimeout), repr(exc)


@pytest.mark.parametrize("source", [
    "x = [0]\nx.extend(enumerate(x))", "x = [0]\nx += enumerate(x)", "x = [0]\nx += zip(x)",
    "x = [0]\nlist.extend(x, enumerate(x))",
])
def test_extending_a_list_with_an_iterator_over_itself_ends(env, source):
    ctx = {}
    exc, _elapsed = _bounded(lambda: env.execute(source, ctx))
    assert exc is None, repr(exc)
    assert len(ctx["x"]) == 2


ALREADY_BOUNDED = [  # holes named in the brief that the existing guards already close
    "'{:>99999999}'.format(1)", "str.format('{:>99999999}', 1)", "format(1, '>9999999999')",
    "x = [0]\nx *= 10**10", "dict.fromkeys(range(10**10))", "sorted(range(10**10))",
    "str(10**100000)", "int('9' * 10**7)", "str(2**50000 << 49990)",
]


@pytest.mark.parametrize("source", ALREADY_BOUNDED)
def test_other_named_holes_are_already_bounded(env, source):
    exc, _elapsed = _bounded(lambda: env.execute(source, {}))
    assert isinstance(exc, ScriptError), repr(exc)


LEGIT_SCRIPT = """\
w = 10
p = 1
a = f'{name:>6}|{amount:,.2f}|{items!r}|{name!s:.2}|{amount:{w}.{p}f}|{name=}|{1:09d}|{ {1: 2}}'
b = '%-5s|%5.1f|%x|%%|%c|%*d|%.*f|%r' % (name, amount, 255, 65, 4, 7, 2, 1.5, items)
c = '%(name)s has %(n)03d' % {'name': name, 'n': len(items)}
d = ', '.join(str(i) for i in items) + '|' + '-'.join(['x', 'y']) + '|' + ''.join('abc')
e = name.ljust(5, '.') + name.rjust(5) + name.center(7, '*') + '42'.zfill(5) + 'a\\tb'.expandtabs(4)
f = 'a-b-c'.replace('-', '--', 1) + name.translate({65: 'aa'}) + ('x' * 3).replace('', '.')
g = str(items) + str({'k': (1, 2)}) + str(None) + str() + str(b'ab', 'ascii') + str(3.5)
h = [isinstance(name, str), isinstance(1, (str, int)), isinstance(1, str), str.upper('x')]
i = sorted(['b', 'a'], key=str) + sorted([3, 1], key=lambda v: -v) + [min([3, 1, 2], key=abs)]
j = sum([[1], [2]], []) + list(sum([(3,), (4,)], ())) + [sum(range(1000)), sum([0.5, 0.25])]
k = [round(1234, -2), round(2.675, 2), round(7, 3), round(-5, -3), round(2.5), round(5, None)]
l = list(zip([1, 2], 'ab')) + list(zip(*[[1, 2], [3, 4]]))
m = [0]
m.extend(range(3))
m += (9,)
m[1:2] = [7, 7]
m[:0] = 'z'
del m[-1:]
n = (7).to_bytes(2, 'big') + b'ab'.ljust(3, b'.') + b'%d-%s' % (5, b'x') + b', '.join([b'a', b'b'])
o = [17 % 5, 17 // 5, 2**70 // 3 % 1000, -7 // 2, 7.5 % 2, 7.5 // 2]
q = sorted([[2], [1, 1]], key=len)
r = [x for x in items if x > 1] + [y for y in (1, 2)] + [ch for ch in 'ab']
s = str(ValueError('bad', 1)) + str(KeyError('k'))
t = [0, 1]
t.sort(key=lambda v: -v)
u = list(range(5))
u *= 2
"""


def test_ordinary_formatting_and_helpers_still_work(env):
    """Everything the new guards touch, used normally, gives what plain Python gives."""
    data = {"name": "Ann", "amount": 1234.5, "items": [1, 2, 3]}
    expected = dict(data)
    exec(LEGIT_SCRIPT, expected)  # the reference: the same script in plain Python
    del expected["__builtins__"]
    ctx = dict(data)
    env.execute(LEGIT_SCRIPT + "print('hello', items)\nz = printed\n", ctx)
    assert ctx.pop("z") == "hello [1, 2, 3]\n"
    assert ctx == expected


def test_big_but_reasonable_results_still_work(env):
    ctx = {}
    env.execute("a = 'a'.ljust(10**6)\nb = ','.join(['ab'] * 300000)\nc = str(list(range(1000)))\n"
                "d = f'{1:>999999}'\ne = '%999999d' % 1\nf = [0] * 10**5\nf.extend(f)\n"
                "g = sorted(range(10**5), key=str)[:3]", ctx)
    assert len(ctx["a"]) == 10**6 and len(ctx["b"]) == 899999 and ctx["c"].startswith("[0, 1")
    assert len(ctx["d"]) == 999999 and len(ctx["e"]) == 999999 and len(ctx["f"]) == 2 * 10**5
    assert ctx["g"] == [0, 1, 10]


# --- globals validation -------------------------------------------------------------------

def test_module_in_globals_is_refused():
    with pytest.raises(ScriptError, match="module"):
        RestrictedEnvironment({"os": os})


def test_nested_module_in_globals_is_refused():
    with pytest.raises(ScriptError, match="module"):
        RestrictedEnvironment({"helpers": {"os": os}})


def test_underscore_global_is_refused():
    with pytest.raises(ScriptError):
        RestrictedEnvironment({"_getattr_": getattr})


def test_module_in_external_context_is_refused(env):
    with pytest.raises(ScriptError):
        env.evaluate("1", {}, external_context={"os": os})


def test_call_service_is_refused(env):
    with pytest.raises(ScriptError, match="service"):
        env.call_service({}, operation_name="x")


def test_evaluate_overhead_is_small(env):
    ctx = {"amount": 150}
    env.evaluate('amount >= settings["threshold"]', ctx)
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        env.evaluate('amount >= settings["threshold"]', ctx)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 50e-6  # generous for slow CI; typically ~2 µs


# --- end to end with SpiffWorkflow ------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="defs" targetNamespace="https://djflow.test/bpmn">
  <bpmn:process id="gw" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="gateway" />
    <bpmn:exclusiveGateway id="gateway" default="f_low">
      <bpmn:incoming>f0</bpmn:incoming>
      <bpmn:outgoing>f_high</bpmn:outgoing>
      <bpmn:outgoing>f_low</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_high" sourceRef="gateway" targetRef="high">
      <bpmn:conditionExpression>CONDITION</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_low" sourceRef="gateway" targetRef="low" />
    <bpmn:scriptTask id="high"><bpmn:incoming>f_high</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:script>branch = "high"</bpmn:script></bpmn:scriptTask>
    <bpmn:scriptTask id="low"><bpmn:incoming>f_low</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>branch = "low"</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f1" sourceRef="high" targetRef="end_high" />
    <bpmn:sequenceFlow id="f2" sourceRef="low" targetRef="end_low" />
    <bpmn:endEvent id="end_high"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_low"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _run_workflow(condition, data):
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(BPMN.replace("CONDITION", condition).encode(), filename="gw.bpmn")
    workflow = BpmnWorkflow(parser.get_spec("gw"),
                            script_engine=make_script_engine({"settings": {"threshold": 100}}))
    start = workflow.get_next_task(state=TaskState.READY)
    start.data.update(data)
    workflow.do_engine_steps()
    return workflow


@pytest.mark.parametrize("amount, branch", [(150, "high"), (50, "low")])
def test_gateway_takes_the_right_branch(amount, branch):
    workflow = _run_workflow('amount &gt;= settings["threshold"]', {"amount": amount})
    assert workflow.is_completed()
    done = {t.task_spec.name for t in workflow.get_tasks(state=TaskState.COMPLETED)}
    assert branch in done and ({"high", "low"} - {branch}).isdisjoint(done)
    assert workflow.data["branch"] == branch


def test_gateway_with_escape_condition_fails_without_running(tmp_path):
    marker = tmp_path / "pwned"
    condition = f"__import__('os').system('touch {marker}')"
    with pytest.raises(Exception) as info:
        _run_workflow(condition, {"amount": 150})
    assert not marker.exists()
    # Spiff wraps our refusal in WorkflowTaskException and keeps it as context
    assert getattr(info.value, "error_type", None) == "ScriptRefused"
    assert isinstance(info.value.__context__, ScriptRefused)
