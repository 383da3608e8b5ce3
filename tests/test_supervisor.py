"""`make run`'s supervisor: the first-admin link comes last, after every process is ready, and
again until it is used."""

from __future__ import annotations

import io
import sys
import threading

import pytest

from console import supervisor


def fake(name: str, banner_lines: int, delay: float, ready: str) -> supervisor.Proc:
    script = (
        "import sys, time\n"
        f"for i in range({banner_lines}): print('{name} banner', i)\n"
        f"time.sleep({delay}); print('{ready}'); sys.stdout.flush(); time.sleep(30)"
    )
    return supervisor.Proc(name, [sys.executable, "-c", script], ready_when=ready)


@pytest.mark.slow
def test_the_notice_comes_after_every_process_is_ready_and_again_until_it_is_used():
    procs = [
        fake("web", 40, 0.2, "[INFO] Booting worker with pid: 1"),
        fake("warehouse", 60, 1.0, "warehouse@host ready."),
        fake("beat", 5, 0.5, "beat: Starting..."),
    ]
    out = io.StringIO()
    shown = []

    def notice():
        shown.append(1)
        return "LINK http://127.0.0.1:8000/setup/t/" if len(shown) <= 3 else None

    stop = threading.Event()

    def stop_later():
        # Stop once the notice was shown three times and then found used (as SIGTERM would: a
        # process that exits is restarted, not a reason to stop).
        import time

        deadline = time.monotonic() + 20
        while len(shown) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=stop_later, daemon=True).start()
    supervisor.run(procs, out=out, notice=notice, every=0.3, stop_event=stop, grace=2)
    lines = out.getvalue().splitlines()
    links = [i for i, line in enumerate(lines) if line.startswith("LINK")]
    assert len(links) == 3  # printed, repeated, and no more once used
    readiness = [
        i for i, line in enumerate(lines) if "ready." in line or "Starting" in line or "Booting" in line
    ]
    assert links[0] > max(readiness)
    assert links[0] > max(i for i, line in enumerate(lines) if "banner" in line)
