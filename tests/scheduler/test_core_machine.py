"""The scheduler core under random interleavings of what its threads report (hypothesis state machine).

The machine plays generator, runner, checkpoint writer and ``stop()`` the way
``JobScheduler`` does — each carries out only the instructions it was given —
in any order, and checks the core's invariants after every event.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from runnel.scheduler import core as c
from runnel.scheduler.core import SchedulerCore


class CoreMachine(RuleBasedStateMachine):
    @initialize(interval=st.sampled_from([1000, 500]), checkpoint=st.sampled_from([None, 1, 2, 3]),
                outputs=st.integers(0, 3), backlog=st.integers(1, 4), recovered=st.booleans())
    def setup(self, interval, checkpoint, outputs, backlog, recovered):
        self.core = SchedulerCore(interval, backlog)
        self.interval = interval
        self.outputs = tuple(range(outputs))
        self.now = 0
        self.due = None                 # WaitUntil: the generator's timer
        self.to_build = None            # Generate: the batch the generator (or a drain) builds
        self.runq: list[int] = []       # Enqueue: what the runner will take
        self.job = None                 # RunJob / FinishBatch: what the runner does next
        self.job_started = False
        self.drain_asked = False
        self.terminated = False
        self.snapshots: list[int] = []  # Snapshot times not yet written
        self.started: list[int] = []
        self.completed: list[int] = []
        if recovered:
            self.feed(c.Recovered(4 * interval, 0))
        self.feed(c.Start(self.now, None if checkpoint is None else checkpoint * interval, interval))

    # -- carrying out instructions as the threads do -------------------------------------------------------
    def feed(self, event) -> None:
        for ins in self.core.handle(event):
            assert not self.terminated, f"{ins} after Terminate"
            kind = type(ins)
            if kind is c.WaitUntil:
                self.due = ins.time
            elif kind is c.Generate:
                assert self.to_build is None
                self.to_build = ins.time
            elif kind is c.Enqueue:
                self.runq.append(ins.time)
            elif kind in (c.RunJob, c.FinishBatch):
                assert self.job is None
                self.job, self.job_started = ins, False
            elif kind is c.Snapshot:
                self.check_snapshot(ins)
            elif kind is c.Drain:
                self.drain_asked = True
            elif kind is c.Terminate:
                self.terminated = True
            elif kind is c.StopTimer:
                self.due = None
            elif kind is c.Post and ins.kind == "completed":
                assert not self.completed or ins.time > self.completed[-1], "batches complete in time order"
                self.completed.append(ins.time)
            elif kind is c.Post and ins.kind == "started":
                assert ins.time not in self.started, f"batch {ins.time} run twice"
                assert not self.started or ins.time > self.started[-1], "batches start in time order"
                self.started.append(ins.time)

    def check_snapshot(self, ins: c.Snapshot) -> None:
        core = self.core
        if ins.kind != "initial":        # a snapshot never covers an unfinished batch
            assert core.completed is not None and core.completed >= ins.time
            assert all(t > ins.time for t in core.queue)
            assert core.running is None or core.running > ins.time
            assert (ins.time - core.zero) % (core.checkpoint if ins.kind == "periodic" else core.unit) == 0
            assert set(ins.pending) == {t for t in [*core.queue, core.running, core.generating]
                                        if t is not None and t > ins.time}
        self.snapshots.append(ins.time)

    # -- the generator ----------------------------------------------------------------------------------------
    @precondition(lambda self: self.due is not None and self.to_build is None)
    @rule()
    def clock_reaches_the_next_batch(self):
        self.now = max(self.now, self.due)
        self.feed(c.BatchDue(self.due))

    @precondition(lambda self: self.to_build is not None)
    @rule(ok=st.booleans(), records=st.integers(0, 5))
    def jobs_built(self, ok, records):
        t, self.to_build = self.to_build, None
        self.feed(c.JobsBuilt(t, self.now, self.outputs, records) if ok else c.GenerateFailed(t, RuntimeError(t)))

    # -- the runner -----------------------------------------------------------------------------------------------
    @precondition(lambda self: self.runq and self.job is None)
    @rule(wait=st.integers(0, 3000))
    def runner_takes_a_batch(self, wait):
        self.now += wait
        self.feed(c.BatchStarted(self.runq.pop(0), self.now))

    @precondition(lambda self: isinstance(self.job, c.RunJob))
    @rule(fail=st.booleans(), took=st.integers(0, 2000))
    def runner_runs_a_job(self, fail, took):
        job = self.job
        if not self.job_started:
            self.job_started = True
            self.feed(c.JobStarted(job.time, job.output, self.now))
            return
        self.now += took
        self.job = None
        self.feed(c.JobDone(job.time, job.output, self.now, ValueError(job.time) if fail else None))

    @precondition(lambda self: isinstance(self.job, c.FinishBatch))
    @rule()
    def runner_finishes_a_batch(self):
        t, self.job = self.job.time, None
        self.feed(c.BatchRan(t, self.now))

    @precondition(lambda self: self.job is not None)
    @rule()
    def runner_aborts_a_batch(self):
        """Something escaped the run outside a job: the runner aborts the batch (JobScheduler._abort)."""
        t, self.job = self.job.time, None
        self.feed(c.BatchAborted(t, self.now, SystemExit(t)))

    # -- the checkpoint writer, stop() and the user -----------------------------------------------------------
    @precondition(lambda self: self.snapshots)
    @rule(ok=st.booleans())
    def writer_commits(self, ok):
        t = self.snapshots.pop(0)
        self.feed(c.SnapshotWritten(t) if ok else c.SnapshotFailed(t, OSError(t)))

    @rule(graceful=st.booleans())
    def stop(self, graceful):
        self.feed(c.StopRequested(graceful))

    @precondition(lambda self: self.drain_asked and self.to_build is None and self.core.phase == "draining")
    @rule(more=st.booleans())
    def drain(self, more):
        if more and (self.core.generated or 0) < 20 * self.interval:
            self.feed(c.DrainBatch())
        else:
            self.drain_asked = False
            self.feed(c.DrainDone())

    @rule()
    def user_sees_the_error(self):
        self.feed(c.ErrorReported())

    # -- liveness: asked to stop, it stops -----------------------------------------------------------------------
    def settle(self) -> None:
        """Let generator, runner and a graceful stop's drain finish all they were told to do."""
        for _ in range(10_000):
            if self.to_build is not None:
                self.jobs_built(True, 1)
            elif isinstance(self.job, c.RunJob):
                self.runner_runs_a_job(False, 0)
            elif isinstance(self.job, c.FinishBatch):
                self.runner_finishes_a_batch()
            elif self.runq and self.job is None:
                self.runner_takes_a_batch(0)
            elif self.drain_asked and self.core.phase == "draining":
                self.drain(False)
            else:
                return
        raise AssertionError("the threads never ran out of work")

    def teardown(self):
        if not hasattr(self, "core"):
            return
        self.settle()
        assert self.core.phase not in ("draining", "stopping"), f"a stop never finished: {self.core.phase}"
        self.feed(c.StopRequested(False))
        self.settle()
        assert self.core.phase == "stopped" and self.terminated

    # -- invariants -----------------------------------------------------------------------------------------------
    @invariant()
    def one_batch_at_a_time_in_order(self):
        core = self.core
        q = list(core.queue)
        assert q == sorted(q) and len(set(q)) == len(q)
        done = core.completed if core.completed is not None else -1
        assert all(t > done for t in q)
        if core.running is not None:
            assert core.running > done and all(t > core.running for t in q)
        if core.generating is not None:
            assert all(t < core.generating for t in q)

    @invariant()
    def stopped_means_nothing_left(self):
        core = self.core
        if core.phase == "stopped":
            assert core.running is None and not core.queue and core.generating is None and self.terminated
        assert self.terminated == (core.phase == "stopped")
        if core.phase != "active":
            assert core.next_ms is None or core.phase == "idle"

    @invariant()
    def the_first_error_is_kept(self):
        core = self.core
        failed = [r for r in sorted(core.batches.values(), key=lambda r: r.time) if r.error is not None]
        assert (core.error is None) == (not failed)
        if core.reported:
            assert core.error is not None

    @invariant()
    def completed_is_the_last_completed_post(self):
        assert self.core.completed == (self.completed[-1] if self.completed else None)


CoreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_core_machine = CoreMachine.TestCase
