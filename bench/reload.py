"""Reload under load, side by side with php-fpm 8.2: wrk through nginx on a
script that runs 200 ms (a busy loop: a sleep would be cut short by the
SIGQUIT each reload sends, flattering both), 4 workers, 16 connections; each
backend once without reloads and once with a SIGUSR2 every second (the next
one once the previous reload is ready). Prints, and writes to
bench/results/reload.md, how many requests each run answered, the errors,
and the ratio of the reload run to the quiet one.

    python3 bench/reload.py          # DUR=22 seconds per run, RUNS=2
Env: LOWPHP_BIN (default build/lowphp-fpm), DUR, RUNS, RELOAD_OUT (report path).
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from lowphp_test import PHP_FPM_BIN, Stack, util  # noqa: E402  (the tests' nginx + backend stack)

SCRIPT = "<?php $t = hrtime(true); while (hrtime(true) - $t < 200000000) {} echo 'ok';"
DUR = int(os.environ.get("DUR", "22"))
RUNS = int(os.environ.get("RUNS", "2"))


def one_run(binary, reloads):
    st = Stack(binary, pool={"pm.max_children": "4"}, keepalive=False)
    try:
        util.write_file(os.path.join(st.root, "busy.php"), SCRIPT)
        wrk = subprocess.Popen(["wrk", "-t2", "-c16", f"-d{DUR}s", "--timeout", "10s",
                                f"http://127.0.0.1:{st.port}/busy.php"], stdout=subprocess.PIPE, text=True)
        done = 0
        if reloads:
            time.sleep(1)
            end = time.monotonic() + DUR - 2
            while time.monotonic() < end:
                mark = st.backend.log_mark()
                t0 = time.monotonic()
                st.backend.send_signal(signal.SIGUSR2)
                try:
                    st.backend.wait_log(r"ready to handle connections", mark, timeout=10)
                except AssertionError:
                    break  # php-fpm may not come back: its errors show in wrk's counts
                done += 1
                time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        out = wrk.communicate(timeout=DUR + 60)[0]
        total = int(re.search(r"(\d+) requests in", out).group(1))
        non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = non2xx + (sum(int(x) for x in sock.groups()) if sock else 0)
        return {"requests": total, "errors": errors, "reloads": done}
    finally:
        st.close(check=False)


def main():
    low = os.environ.get("LOWPHP_BIN") or os.path.join(REPO, "build", "lowphp-fpm")
    os.environ["LOWPHP_BIN"] = low
    rows = []
    for name, binary in (("php-fpm 8.2", PHP_FPM_BIN), ("lowphp-fpm", low)):
        quiet, busy = [], []
        for _ in range(RUNS):
            quiet.append(one_run(binary, False))
            busy.append(one_run(binary, True))
        q = statistics.median(r["requests"] for r in quiet)
        b = statistics.median(r["requests"] for r in busy)
        rows.append(f"| {name} | {q:.0f} | {b:.0f} | {sum(r['reloads'] for r in busy) / RUNS:.0f} | "
                    f"**{b / q:.2f}** | {sum(r['errors'] for r in quiet)} / {sum(r['errors'] for r in busy)} |")
        print(rows[-1], flush=True)
    report = "\n".join([
        "# Reload under load (bench/reload.py)", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; lowphp-fpm: `{low}`",
        f"- wrk -t2 -c16 -d{DUR}s through nginx (no keep-alive) on a 200 ms busy-loop script, pm = static, "
        f"4 workers; {RUNS} run(s) each, medians; reloads: SIGUSR2 every second, each once the previous is ready",
        "", "| backend | requests, no reload | requests, reload every second | reloads per run | ratio | errors (quiet / reloading) |",
        "|---|---:|---:|---:|---:|---:|", *rows, ""])
    out = os.environ.get("RELOAD_OUT") or os.path.join(REPO, "bench", "results", "reload.md")
    with open(out, "w") as f:
        f.write(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
