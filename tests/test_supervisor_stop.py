"""A stop always stops: SIGTERM, sent as a terminal's Ctrl-C, `kill -TERM -<pgid>` or a container
runtime sends it (often twice: make forwards the signal to the supervisor it runs, which got it
already), ends `run` and every process it started, whenever the signals land.

The supervisor's handler once set a threading.Event; a signal landing while the main thread held
that Event's lock (inside `wait`, or inside the first handler's `set`) blocked the handler on a
lock its own thread held, for ever. A storm of SIGTERMs from another process finds such a moment
within tens of tries.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.workers import ROOT, child_env

pytestmark = pytest.mark.worker  # runs the supervisor (with two `sleep` children)

TRIES = 100

# On each "go" line of its input: two SIGTERMs to a process, the second a random few microseconds
# after the first (as make forwards the signal its child got already), at a random moment.
STORM = """
import os, random, signal, sys, time
pid = int(sys.argv[1])
for line in sys.stdin:
    time.sleep(random.uniform(0, 0.03))
    os.kill(pid, signal.SIGTERM)
    spin = time.perf_counter() + random.uniform(0, 0.0003)
    while time.perf_counter() < spin:
        pass
    os.kill(pid, signal.SIGTERM)
"""

# In one process, so that a try costs a supervisor run (two `sleep` children) rather than an
# interpreter start; a watchdog ends it if a run has not returned 10 s after the signals.
DRIVER = f"""
import os, subprocess, sys, threading, time
from console.supervisor import Proc, run

storm = subprocess.Popen(
    [sys.executable, "-c", {STORM!r}, str(os.getpid())], stdin=subprocess.PIPE, text=True
)

def begin(started, n):
    time.sleep(0.05)  # the children are up
    storm.stdin.write("go\\n"); storm.stdin.flush()
    if not started.wait(10):
        print(f"hung at try {{n + 1}}", flush=True)
        os._exit(3)

for n in range({TRIES}):
    procs = [Proc("a", ["sleep", "300"]), Proc("b", ["sleep", "300"])]
    returned = threading.Event()
    threading.Thread(target=begin, args=(returned, n), daemon=True).start()
    code = run(procs, out=open(os.devnull, "w"), grace=2.0)
    returned.set()
    time.sleep(0.04)  # the second signal too has landed
    assert code == 0, code
    for proc in procs:  # (a stop asked for before a process started leaves it unstarted)
        assert proc.popen is None or proc.popen.poll() is not None, f"{{proc.name}} still runs"
    print(n + 1, flush=True)
storm.kill()
"""


def test_a_storm_of_sigterms_stops_the_supervisor_and_its_children_every_time():
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=30 + TRIES * 2)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert "hung" not in out, out.strip().splitlines()[-1]
    assert proc.returncode == 0, out[-2000:]
    assert out.split()[-1] == str(TRIES)
