"""A tiny test runner.

Tests are plain functions registered with @test, run in registration order.
Each prints `PASS name` or `FAIL name: reason`; the run ends with the exact
line `N passed, N failed` and exit status 1 on any failure.

There is no skip: a missing prerequisite (binary, nginx, php module...) is a
FAIL, so nothing silently passes in CI.
"""
import os
import sys
import time
import traceback

from .util import SessionDirsSnapshot

_TESTS = []


class TestFailure(AssertionError):
    pass


def test(fn=None, *, timeout=None):
    """Register a test function. Usable as @test or @test(timeout=...)."""
    def register(f):
        _TESTS.append((f.__name__, f, timeout))
        return f
    if fn is not None:
        return register(fn)
    return register


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def check_eq(actual, expected, what="value"):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


def check_in(needle, haystack, what="text"):
    if needle not in haystack:
        shown = haystack if len(haystack) < 3000 else haystack[:1500] + "\n...\n" + haystack[-1500:]
        raise TestFailure(f"{what}: {needle!r} not found in:\n{shown}")


def _one_line(s):
    return " | ".join(line for line in str(s).splitlines() if line.strip())


def run(setup=None, teardown=None):
    """Run every registered test; `setup`/`teardown` wrap the whole run
    (a setup failure fails every test). Exits the process."""
    passed = failed = 0
    names = [n for n, _, _ in _TESTS]
    only = os.environ.get("LOWPHP_TEST_ONLY")  # comma separated test names, for debugging
    if only:
        wanted = set(only.split(","))
        selected = [t for t in _TESTS if t[0] in wanted]
    else:
        selected = list(_TESTS)
    ctx = None
    session_dirs = SessionDirsSnapshot()
    try:
        if setup is not None:
            ctx = setup()
    except BaseException as e:  # noqa: BLE001 - everything is a failure
        detail = traceback.format_exc()
        sys.stderr.write(detail)
        if teardown is not None:  # release whatever setup got to start
            try:
                teardown(None)
            except BaseException:  # noqa: BLE001
                sys.stderr.write(traceback.format_exc())
        for name, _, _ in selected:
            print(f"FAIL {name}: setup failed: {_one_line(e)}", flush=True)
        print(f"0 passed, {len(selected)} failed", flush=True)
        session_dirs.cleanup()
        sys.exit(1)
    try:
        for name, fn, _timeout in selected:
            t0 = time.monotonic()
            try:
                if ctx is not None:
                    fn(ctx)
                else:
                    fn()
            except BaseException as e:  # noqa: BLE001
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                sys.stderr.write(f"--- {name} ---\n{traceback.format_exc()}\n")
                msg = str(e) if isinstance(e, AssertionError) and str(e) else f"{type(e).__name__}: {e}"
                print(f"FAIL {name}: {msg}", flush=True)
            else:
                passed += 1
                print(f"PASS {name} ({time.monotonic() - t0:.2f}s)", flush=True)
    finally:
        if teardown is not None:
            try:
                teardown(ctx)
            except BaseException as e:  # noqa: BLE001
                failed += 1
                sys.stderr.write(traceback.format_exc())
                print(f"FAIL teardown: {_one_line(e)}", flush=True)
        session_dirs.cleanup()
    if not selected:
        failed += 1
        print(f"FAIL no tests selected (registered: {', '.join(names)})", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
