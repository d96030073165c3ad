"""Draws a simulation run: queue depth against desired and ready workers (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, none opened

import matplotlib.pyplot as plt

from scaler.simulate import Run


def draw(run: Run, out: Path, title: str) -> None:
    minutes = [t / 60 for t in run.times]
    figure, depth_axis = plt.subplots(figsize=(10, 4.5))
    try:
        depth_axis.fill_between(minutes, run.depth, color="#9ecae1", label="depth (jobs)")
        depth_axis.set_xlabel("minutes")
        depth_axis.set_ylabel("jobs waiting + running")
        workers_axis = depth_axis.twinx()
        workers_axis.step(minutes, run.desired, where="post", color="#e6550d", label="desired")
        workers_axis.step(minutes, run.ready, where="post", color="#31a354", label="ready workers")
        workers_axis.set_ylabel("workers")
        workers_axis.set_ylim(bottom=0, top=max([*run.desired, 1]) + 1)
        handles = depth_axis.get_legend_handles_labels()
        more = workers_axis.get_legend_handles_labels()
        depth_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right")
        report = run.report()
        depth_axis.set_title(
            f"{title}: {report['worker_minutes']} worker-minutes, "
            f"{report['scale_events']} scale events, wait p95 {report['wait_p95_s']:g} s"
        )
        figure.tight_layout()
        figure.savefig(out, dpi=100)
    finally:
        plt.close(figure)
