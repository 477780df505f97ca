"""HTML pieces the tabs show: result cards, job status, messages. Plain strings, escaped."""
from __future__ import annotations

import html
import time

from indexer.fusion import SCORE_MEANING
from indexer.snippets import highlight, matches

CSS = """
.pe-error {background:#fdecea; border:1px solid #f5c2c0; color:#8a1c14; padding:10px 12px; border-radius:6px}
.pe-note {background:#fff8e1; border:1px solid #f3d98b; color:#5c4400; padding:8px 12px; border-radius:6px}
.pe-ok {background:#e8f5e9; border:1px solid #b7dfb9; color:#1b5e20; padding:8px 12px; border-radius:6px}
.pe-hit {border:1px solid #e0e0e0; border-radius:8px; padding:10px 14px; margin:8px 0}
.pe-hit-head {display:flex; justify-content:space-between; gap:12px; align-items:baseline}
.pe-title {font-weight:600; font-size:1.05em}
.pe-score {font-family:monospace; color:#555}
.pe-snippet {white-space:pre-wrap; font-size:0.92em; margin:6px 0; color:#222; max-height:11em; overflow:hidden}
.pe-snippet mark {background:#fff1a8; padding:0 1px}
.pe-source {font-size:0.82em; color:#666; word-break:break-all}
.pe-meta {font-size:0.8em; color:#777}
.pe-job {border:1px solid #e0e0e0; border-radius:8px; padding:8px 12px}
.pe-bar {height:8px; background:#eee; border-radius:4px; overflow:hidden; margin:6px 0}
.pe-bar > div {height:100%; background:#3b82f6}
.pe-chart {border:1px solid #e0e0e0; border-radius:8px; padding:10px 14px}
.pe-chart-row {display:grid; grid-template-columns:8em 1fr 4em; gap:8px; align-items:center; margin:3px 0}
.pe-chart-label {font-size:0.85em; color:#444}
.pe-chart-track {background:#f1f1f1; border-radius:3px; height:14px}
.pe-chart-fill {height:100%; border-radius:3px}
.pe-chart-value {font-family:monospace; font-size:0.85em}
"""
CHART_COLOURS = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444")


def error(message: str) -> str:
    return f'<div class="pe-error" role="alert">{html.escape(message)}</div>'


def note(message: str) -> str:
    return f'<div class="pe-note">{html.escape(message)}</div>'


def ok(message: str) -> str:
    return f'<div class="pe-ok">{html.escape(message)}</div>'


def marked(text: str, spans: list[tuple[int, int]]) -> str:
    """Escaped text with the given character spans (the search's matched query terms) in <mark>."""
    return highlight(text, spans, "<mark>", "</mark>", html.escape)


def hits(found: list, mode: str, offset: int = 0) -> str:
    if not found:
        return note("No results" + (" on this page." if offset else ": nothing indexed matches (yet), or the filters "
                                    "exclude every document."))
    cards = [f'<div class="pe-meta">{html.escape(mode)} search; score: {html.escape(SCORE_MEANING[mode])}</div>']
    for rank, hit in enumerate(found, offset + 1):
        meta = ", ".join(f"{k}={v}" for k, v in sorted(hit.metadata.items()) if k not in ("modified", "name", "ext"))
        more = f" (+{hit.chunks_matched - 1} more passages)" if hit.chunks_matched > 1 else ""
        cards.append(
            f'<div class="pe-hit" data-rank="{rank}">'
            f'<div class="pe-hit-head"><span class="pe-title">{rank}. {html.escape(hit.title or hit.relative_path)}'
            f'</span><span class="pe-score">{hit.score:.4g}</span></div>'
            f'<div class="pe-snippet">{marked(hit.snippet, hit.highlights)}</div>'
            f'<div class="pe-source">{html.escape(hit.relative_path)}{html.escape(more)}</div>'
            + (f'<div class="pe-meta">{html.escape(meta)}</div>' if meta else "") + "</div>")
    return "\n".join(cards)


def keys(found: dict[str, list[str]]) -> str:
    """The filter keys of a collection, as a line a person can copy from."""
    if not found:
        return "Filter keys: path, title (this collection's documents carry no other metadata yet)"
    shown = [f"`{k}` ({', '.join(v[:8])}{', ...' if len(v) > 8 else ''})" if v else f"`{k}`"
             for k, v in sorted(found.items())]
    return "Filter keys: `path`, `title`, " + ", ".join(shown)


def document(text: str, query: str) -> str:
    return f'<div class="pe-hit"><div class="pe-snippet" style="max-height:40em; overflow:auto">' \
           f'{marked(text, matches(text, query))}</div></div>'


def metric_bars(rows: list[dict], metrics: list[str], label_key: str) -> str:
    """Grouped horizontal bars, one group per metric, one bar per row; values in [0, 1].

    Plain HTML: gradio 6.31's BarPlot draws no bars when its data arrives after the first render.
    """
    if not rows:
        return ""
    legend = " ".join(
        f'<span style="color:{CHART_COLOURS[i % len(CHART_COLOURS)]}">&#9632;</span> {html.escape(str(r[label_key]))}'
        for i, r in enumerate(rows))
    parts = [f'<div class="pe-chart"><div class="pe-meta">{legend}</div>']
    for metric in metrics:
        for i, row in enumerate(rows):
            value = float(row.get(metric) or 0.0)
            colour = CHART_COLOURS[i % len(CHART_COLOURS)]
            label = html.escape(metric) if i == 0 else ""
            parts.append(
                f'<div class="pe-chart-row"><span class="pe-chart-label">{label}</span>'
                f'<div class="pe-chart-track"><div class="pe-chart-fill" style="width:{100 * min(max(value, 0), 1):.1f}%;'
                f' background:{colour}"></div></div><span class="pe-chart-value">{value:.3f}</span></div>')
    return "".join(parts) + "</div>"


def job(status: dict | None, empty: str = "No job yet.") -> str:
    if not status:
        return f'<div class="pe-job">{html.escape(empty)}</div>'
    state = status["state"]
    percent = 100 * float(status.get("progress") or 0)
    age = time.time() - status.get("updated", time.time())
    colour = {"failed": "#c62828", "cancelled": "#8d6e63", "interrupted": "#8d6e63", "done": "#2e7d32"}.get(state, "#3b82f6")
    seconds = f" in {status['seconds']} s" if status.get("seconds") is not None else ""
    stale = f" (last update {age:.0f} s ago)" if state == "running" and age > 30 else ""
    left = remaining(status) if state == "running" else ""
    return (f'<div class="pe-job" data-state="{state}"><b>{html.escape(status["title"])}</b>: '
            f'<span class="pe-job-state">{state}</span>{seconds}{left}{stale}'
            f'<div class="pe-bar"><div style="width:{percent:.0f}%; background:{colour}"></div></div>'
            f'<span class="pe-job-message">{html.escape(str(status.get("message") or ""))}</span></div>')


def remaining(status: dict) -> str:
    """', about N min left' from the progress made so far (linear: the rate since the job started)."""
    done = float(status.get("progress") or 0)
    elapsed = float(status.get("updated", 0)) - float(status.get("created", 0))
    if done <= 0.02 or done >= 1 or elapsed < 5:
        return ""  # too early to tell (loading a model is not the job's pace)
    left = elapsed * (1 - done) / done
    return f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"


def problems(status: dict | None, limit: int = 20) -> str:
    """The per-file problems of an indexing job, as a short list."""
    if not status:
        return ""
    found = ((status.get("result") or {}).get("report") or {}).get("problems") or []
    if not found:
        return ""
    items = "".join(f"<li><code>{html.escape(p['path'])}</code>: {html.escape(p['message'])}</li>"
                    for p in found[:limit])
    more = f"<li>... and {len(found) - limit} more</li>" if len(found) > limit else ""
    return f'<div class="pe-note"><b>{len(found)} file(s) could not be indexed:</b><ul>{items}{more}</ul></div>'
