"""The scripts that call apt wait, and say so, while another apt or dpkg holds
its locks (a new user often runs the README's first command while unattended
upgrades or another apt is running), instead of failing at once."""
import os
import subprocess
import sys
import time

from lowphp_test import check, check_eq, check_in, run, test

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Takes dpkg's locks as apt does (fcntl write locks), says so, holds them.
HOLDER = """
import fcntl, sys, time
held = [open(p, "a") for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock")]
for f in held:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
time.sleep(float(sys.argv[1]))
"""


@test(timeout=900)
def install_deps_waits_for_the_dpkg_lock():
    hold = 4.0
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(hold)], stdout=subprocess.PIPE, text=True)
    try:
        check_eq(holder.stdout.readline().strip(), "held", "the other package manager holds dpkg's lock")
        start = time.monotonic()
        r = subprocess.run(["bash", os.path.join(REPO, "scripts", "install-deps.sh")],
                           capture_output=True, text=True, timeout=800)
        took = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    check_eq(r.returncode, 0, f"install-deps.sh exit status; stderr:\n{r.stderr[-3000:]}")
    check_in(f"waiting for another package manager: process {holder.pid} (python3) holds /var/lib/dpkg/lock",
             r.stderr, "what it waits for")
    check(took >= hold - 1, f"it waited for the lock ({took:.1f} s, held {hold} s)")


if __name__ == "__main__":
    run()
