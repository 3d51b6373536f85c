"""A batch from start to end: check, plan, resume, run an engine, journal, report, summarise."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bridge
from bridge.batch.journal import Journal, disk_full_stop, remove_stale_temporaries
from bridge.batch.plan import Task, check_folders, find_inputs, plan
from bridge.batch.progress import Progress
from bridge.config import Settings, load_settings
from bridge.errors import InvalidParams
from bridge.ops.registry import get_operation
from bridge.recipes.recipe import Recipe, check_recipe

CPU_MODELS = {"yunet"}  # small ONNX models that run on the CPU through OpenCV


@dataclass
class Summary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    out_dir: str = ""
    journal: str = ""
    report: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    engine: str = "local"

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def lines(self) -> list[str]:
        rate = self.done / self.seconds if self.seconds > 0 else 0.0
        out = [f"{'interrupted' if self.interrupted else 'finished'} in {self.seconds:.1f}s "
               f"({self.engine} engine): {self.done} done, {self.skipped} skipped "
               f"(already done), {len(self.failed)} failed, of {self.total} files"
               + (f"; {rate:.1f} img/s" if self.done else "")]
        for name, reason in self.failed:
            out.append(f"  failed: {name}: {reason}")
        out.append(f"output: {self.out_dir}")
        if self.report.get("html"):
            out.append(f"QA report: {self.report['html']}")
        if self.interrupted:
            out.append("run the same command again to resume")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "skipped": self.skipped,
                "failed": [{"input": n, "error": r} for n, r in self.failed],
                "seconds": round(self.seconds, 3), "out_dir": self.out_dir,
                "journal": self.journal, "report": self.report,
                "interrupted": self.interrupted, "engine": self.engine}


def recipe_wants_gpu(recipe: Recipe) -> bool:
    """Whether a step declares a model that would run on a GPU (not the CPU-only ones)."""
    return any(set(get_operation(s.op).models) - CPU_MODELS for s in recipe.steps)


def is_finished(record: dict[str, Any] | None, task: Task, digest: str) -> bool:
    """Done before with this recipe, the input unchanged (size and mtime), the output there."""
    if not record or record.get("status") != "done" or record.get("recipe") != digest:
        return False
    if record.get("output") != task.out_rel or not Path(task.dst).is_file():
        return False
    try:
        st = os.stat(task.src)
    except OSError:
        return False
    return record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns


def make_engine(name: str, workers: int | None, ray_address: str | None = None) -> Any:
    if name == "local":
        from bridge.batch.local import LocalEngine

        return LocalEngine(workers)
    if name == "ray":
        from bridge.batch.ray_engine import RayEngine

        return RayEngine(workers, ray_address)
    raise InvalidParams(f"unknown engine '{name}'; use local or ray")


def run_batch(in_dir: str | Path, recipe: Recipe, out_dir: str | Path, *,
              engine: str | Any = "local", workers: int | None = None, force: bool = False,
              report: bool = True, progress: Progress | None = None,
              settings: Settings | None = None, ray_address: str | None = None) -> Summary:
    t0 = time.monotonic()
    settings = settings or load_settings()
    in_path, out_path = Path(in_dir), Path(out_dir)
    if not in_path.is_dir():
        raise InvalidParams(f"the input folder '{in_dir}' does not exist")
    # Everything that can be known before work fails here, before a single file.
    check_recipe(recipe)
    check_folders(in_path, out_path)
    runner = make_engine(engine, workers, ray_address) if isinstance(engine, str) else engine
    progress = progress or Progress(enabled=False)
    out_path.mkdir(parents=True, exist_ok=True)
    journal = Journal(out_path)
    journal.lock()
    digest = recipe.digest()
    header = {"recipe": digest, "recipe_name": recipe.name, "in_dir": str(in_path.resolve()),
              "engine": runner.name, "version": bridge.__version__}
    summary = Summary(out_dir=str(out_path), journal=str(journal.path), engine=runner.name)
    tasks: list[Task] = []
    try:
        remove_stale_temporaries(out_path)
        latest = journal.latest()
        inputs = find_inputs(in_path, out_path)
        recorded = {rel: rec["output"] for rel, rec in latest.items()
                    if rec.get("status") == "done" and isinstance(rec.get("output"), str)}
        tasks = plan(in_path, out_path, recipe, inputs, recorded)
        todo = [t for t in tasks if force or not is_finished(latest.get(t.rel), t, digest)]
        summary.total, summary.skipped = len(tasks), len(tasks) - len(todo)
        journal.open(header)
        progress.start(len(tasks), summary.skipped)

        def on_record(record: dict[str, Any]) -> None:
            journal.append(record)
            progress.update(record)
            if record.get("status") == "done":
                summary.done += 1
            else:
                summary.failed.append((record["input"],
                                       (record.get("error") or {}).get("message", "failed")))
                if (record.get("error") or {}).get("code") == "disk_full":
                    # Every file after this one would fail the same way: stop, to resume later.
                    raise disk_full_stop(out_path)

        args = {"recipe": recipe.to_json(), "out_dir": str(out_path),
                "max_pixels": settings.max_pixels, "qa": report}
        if runner.name == "ray":
            runner.run(args, todo, on_record, wants_gpu=recipe_wants_gpu(recipe))
        else:
            runner.run(args, todo, on_record)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        progress.close()
        journal.close()
        if journal.path.exists():
            journal.compact(header)
        # Every worker is gone: a temporary left now is from one that crashed mid-write.
        remove_stale_temporaries(out_path)
        journal.unlock()
    summary.seconds = time.monotonic() - t0
    if report and tasks:
        from bridge.qa.report import build, write_report

        latest = journal.latest()
        records = [latest[t.rel] for t in tasks if t.rel in latest]
        info = {**header, "out_dir": str(out_path.resolve()), "skipped": summary.skipped,
                "seconds": round(summary.seconds, 3)}
        data = build(records, info, recipe.reference_path())
        summary.report = write_report(data, out_path, journal.thumbs, settings.cache_dir)
    return summary
