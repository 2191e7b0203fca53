"""The UI in a real browser: headless Chromium loads the page, runs its script, and shows the job.

Chromium is driven by its own command line (``--dump-dom``, ``--screenshot``):
no WebDriver, no Playwright browser download, nothing that can drift out
of step with the browser's version. ``--dump-dom`` prints the DOM after
the page's scripts ran for ``--virtual-time-budget`` ms of page time, so
what is read back is what a user sees, live updates included.

Chromium comes from Debian's package. Where it is missing the ``chromium``
fixture installs it when it may (root, under CI: ``apt-get install
chromium``, once per machine) and otherwise skips, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from ui_html import expected_row, read_page

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,1800"]
TIMEOUT = 120


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium; installed on demand under CI as root, else the tests skip."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.environ.get("CI") and hasattr(os, "geteuid") and os.geteuid() == 0 \
            and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("no Chromium on this machine (install Debian's 'chromium'; under CI as root this test "
                    "installs it itself)")
    return path


def run_chromium(chromium: str, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="runnel-chromium-") as profile:
        done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_browser_shows_the_running_job(chromium, ui_ssc, recorder, api, tmp_path):
    ui_ssc.checkpoint(str(tmp_path / "ckpt"))
    pairs = ui_ssc.rate_stream("pairs", records_per_batch=400, keys=30).named("pairs")
    pairs.update_state_by_key(lambda new, old: (old or 0) + len(new)).named("counts").foreach_rdd(lambda ds: None)
    ui_ssc.rate_stream("words", records_per_batch=150).named("words").count().foreach_rdd(lambda ds: None)
    ui_ssc.start()
    ui_ssc.run_batches(6)
    infos = [recorder.completed[t] for t in sorted(recorder.completed)]
    assert len(infos) == 6

    # the DOM after the page's script ran for 5.5 s of page time: a live update swapped in (every 5 s)
    dom = run_chromium(chromium, "--virtual-time-budget=5500", "--dump-dom", ui_ssc.ui_url + "/")
    assert 'id="live" data-updates="' in dom, dom[:2000]
    page = read_page(dom)
    rows = page.rows["completed-batches"]
    assert sorted(rows) == [i.batch_time for i in infos]
    for info in infos:
        assert rows[info.batch_time] == expected_row(info)
    for label in ("Input Rate", "Scheduling Delay", "Processing Time", "Total Delay"):
        assert len(page.points[label]) == 6, label
    assert page.points["Input Rate"] == [(i.batch_time, float(i.num_records)) for i in infos]
    assert page.points["Input Rate pairs"] == [(i.batch_time, 400.0) for i in infos]
    assert page.points["Executor Busy"] == [(b["batchId"], round(100 * b["busyRatio"], 2))
                                            for b in api("executor")["batches"]]
    assert 'data-field="numTotalCompletedBatches" data-value="6"' in dom
    assert f'data-field="rows" data-value="{infos[-1].state_tables["counts"]["keys"]}"' in dom

    # one batch's page
    t = infos[-1].batch_time
    dom = run_chromium(chromium, "--virtual-time-budget=500", "--dump-dom", f"{ui_ssc.ui_url}/batch?id={t}")
    assert read_page(dom).rows["batch"][t] == expected_row(infos[-1])
    assert dom.count('class="op"') == len(infos[-1].output_operation_infos)
    stages = api(f"batches/{t}/stages")
    assert len(stages) == dom.count('class="stage"') > 0
    for s in stages:
        assert f'data-field="numTasks" data-value="{s["numTasks"]}"' in dom

    # the DStream graph: every stream a box, every parent an arrow
    dom = run_chromium(chromium, "--virtual-time-budget=500", "--dump-dom", ui_ssc.ui_url + "/graph")
    nodes = ui_ssc.graph.nodes()
    assert all(f'data-name="{n.name}"' in dom for n in nodes)
    assert dom.count('class="edge"') == sum(len(n.parents) for n in nodes) == 4

    shot = tmp_path / "streaming-ui.png"
    run_chromium(chromium, "--virtual-time-budget=500", f"--screenshot={shot}", ui_ssc.ui_url + "/")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
