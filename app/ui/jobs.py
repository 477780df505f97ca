"""Background jobs (indexing, training, backbone swap) that outlive a page reload.

Each job runs in a thread of the server process and keeps its state on disk under home()/jobs/<id>/:
`status.json` (state, progress, message, result), `log.txt` and `points.jsonl` (e.g. the loss curve).
The UI only reads those files, so a reloaded page, or a second browser, sees the same jobs. A job
whose server died is shown as interrupted when the next server starts. Cancel sets a flag that the
job checks between small units of work (a batch of chunks, a training step).
"""
from __future__ import annotations

import json
import os
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Callable

from app.services.errors import USER_ERRORS
from app.services.progress import Cancelled
from embedder.home import subdir

FINISHED = ("done", "failed", "cancelled", "interrupted")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


class JobContext:
    """What a job function receives: report progress, log, add plot points, check for cancel."""

    def __init__(self, jobs: "Jobs", job_id: str):
        self.jobs, self.id = jobs, job_id
        self.directory = jobs.directory / job_id
        self.cancel_event = threading.Event()

    def check(self) -> None:
        if self.cancel_event.is_set() or (self.directory / "cancel").exists():
            raise Cancelled("cancelled by the user")

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        fraction = done / total if total else done
        self.jobs._update(self.id, progress=max(0.0, min(1.0, fraction)), **({"message": message} if message else {}))

    def log(self, line: str) -> None:
        with open(self.directory / "log.txt", "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")

    def point(self, **values) -> None:
        with open(self.directory / "points.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(values) + "\n")

    def result(self, **values) -> None:
        """Merge values into the job's result (readable while it runs)."""
        status = self.jobs.get(self.id) or {}
        self.jobs._update(self.id, result={**(status.get("result") or {}), **values})


class Jobs:
    def __init__(self, directory: Path | None = None):
        if directory is None:
            directory = subdir("jobs")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._contexts: dict[str, JobContext] = {}
        self._lock = threading.Lock()
        self._mark_orphans()

    def _mark_orphans(self) -> None:
        """Jobs left 'running' by a server that is gone did not finish: say so."""
        for status in self.list():
            if status["state"] in ("queued", "running") and not _alive(status.get("pid")):
                self._update(status["id"], state="interrupted",
                             message="the server stopped while this job ran; start it again")

    # ----- reading ----------------------------------------------------------------------------
    def get(self, job_id: str) -> dict | None:
        try:
            return json.loads((self.directory / job_id / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def list(self, kind: str | None = None) -> list[dict]:
        found = [self.get(p.name) for p in self.directory.iterdir() if p.is_dir()]
        found = [s for s in found if s and (kind is None or s["kind"] == kind)]
        return sorted(found, key=lambda s: s["created"], reverse=True)

    def latest(self, kind: str) -> dict | None:
        jobs = self.list(kind)
        return jobs[0] if jobs else None

    def running(self, kind: str | None = None) -> list[dict]:
        return [s for s in self.list(kind) if s["state"] in ("queued", "running")]

    def log(self, job_id: str, tail: int = 60) -> str:
        try:
            lines = (self.directory / job_id / "log.txt").read_text(encoding="utf-8").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:])

    def points(self, job_id: str) -> list[dict]:
        try:
            text = (self.directory / job_id / "points.jsonl").read_text(encoding="utf-8")
        except OSError:
            return []
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    # ----- writing ----------------------------------------------------------------------------
    def _update(self, job_id: str, **values) -> dict:
        with self._lock:
            status = self.get(job_id) or {}
            status.update(values, updated=time.time())
            _write_json(self.directory / job_id / "status.json", status)
            return status

    def start(self, kind: str, title: str, work: Callable[[JobContext], dict | None], params: dict | None = None) -> str:
        """Run work(ctx) in a thread; its return value becomes part of the job's result."""
        job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        (self.directory / job_id).mkdir(parents=True)
        now = time.time()
        _write_json(self.directory / job_id / "status.json", {
            "id": job_id, "kind": kind, "title": title, "state": "running", "progress": 0.0, "message": "starting",
            "params": params or {}, "result": {}, "created": now, "updated": now, "pid": os.getpid()})
        ctx = JobContext(self, job_id)
        self._contexts[job_id] = ctx
        threading.Thread(target=self._run, args=(ctx, work), name=f"job-{kind}-{job_id}", daemon=True).start()
        return job_id

    def _run(self, ctx: JobContext, work: Callable[[JobContext], dict | None]) -> None:
        started = time.perf_counter()
        try:
            result = work(ctx) or {}
        except Cancelled as exc:  # the job may say what it kept; the default holds for indexing
            kept = str(exc) or "what was finished is kept"
            ctx.log(f"cancelled by the user; {kept}")
            self._update(ctx.id, state="cancelled", message=f"cancelled; {kept}",
                         seconds=round(time.perf_counter() - started, 1))
        except Exception as exc:  # the job's error is the user's message; the traceback goes to the log
            ctx.log(traceback.format_exc())
            self._update(ctx.id, state="failed", message=f"{type(exc).__name__}: {exc}" if not _user_error(exc)
                         else str(exc), seconds=round(time.perf_counter() - started, 1))
        else:
            status = self.get(ctx.id) or {}
            self._update(ctx.id, state="done", progress=1.0, result={**(status.get("result") or {}), **result},
                         message=result.get("summary", "done"), seconds=round(time.perf_counter() - started, 1))
        finally:
            self._contexts.pop(ctx.id, None)

    def cancel(self, job_id: str) -> bool:
        status = self.get(job_id)
        if status is None or status["state"] in FINISHED:
            return False
        (self.directory / job_id / "cancel").touch()
        if job_id in self._contexts:
            self._contexts[job_id].cancel_event.set()
        self._update(job_id, message="cancelling after the current step...")
        return True

    def wait(self, job_id: str, timeout: float = 60.0) -> dict:
        """Block until the job finishes (tests, the demo command)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.get(job_id)
            if status and status["state"] in FINISHED:
                return status
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} still running after {timeout} s")


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return True  # a job of this very server: it cannot be orphaned (restarted app object)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _user_error(exc: Exception) -> bool:
    return isinstance(exc, USER_ERRORS)
