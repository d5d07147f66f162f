"""Raw FastCGI checks against php-fpm8.2 and $LOWPHP_BIN side by side.

Every check's invariants must hold for both, and every observation must be
equal: lowphp-fpm's FastCGI reader and writer follow php-fpm's main/fastcgi.c,
including where the protocol leaves a choice (no empty stream terminator
record, closing instead of FCGI_CANT_MPX_CONN, the GET_VALUES answer, what
happens after an ABORT_REQUEST). MAY_DIFFER lists a check's observation keys
that may differ (none today)."""
import json

from lowphp_test import check, compat, fcgi_checks, run, test

P = None

# observation keys that may legitimately differ (see module docstring)
MAY_DIFFER = {}


def make(fn):
    def t():
        obs = {}
        errors = []
        for name, backend, _port in P.backends:
            try:
                obs[name] = fn(backend, P.root)
            except AssertionError as e:
                errors.append(f"{name}: {e}")
                obs[name] = f"FAILED: {e}"
        for name in obs:
            print(f"  {fn.__name__} [{name}]: {json.dumps(obs[name], default=str)[:600]}")
        check(not errors, "; ".join(errors))
        ref, sub = obs["php-fpm8.2"], obs["lowphp-fpm"]
        skip = MAY_DIFFER.get(fn.__name__, set())
        if skip != "all":
            r = {k: v for k, v in ref.items() if k not in skip}
            s = {k: v for k, v in sub.items() if k not in skip}
            d = compat.diff(r, s)
            check(not d, f"{fn.__name__}: observations differ\n{d}")
        if fn.__name__ == "get_values":
            # every key php-fpm answers must be answered with the same value
            for k, v in ref["values"].items():
                check(sub["values"].get(k) == v,
                      f"GET_VALUES {k}: php-fpm8.2 {v!r}, lowphp-fpm {sub['values'].get(k)!r}")
    t.__name__ = "compat fastcgi " + fn.__name__
    return t


for fn in fcgi_checks.ALL:
    test(make(fn))


def setup():
    global P
    P = compat.Pair(pool=dict(compat.COMPAT_POOL, **{"pm.max_children": "3"}))
    return None


def teardown(_):
    if P is not None:
        P.close(check=True)


if __name__ == "__main__":
    run(setup, teardown)
