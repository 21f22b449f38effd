"""Turn measurements into a table, a recommendation, JSON and a chart."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

from . import targets
from .cold import floor_of
from .runner import Measurement


def _by_workload(results: Sequence[Measurement]) -> Dict[str, List[Measurement]]:
    grouped: Dict[str, List[Measurement]] = defaultdict(list)
    for result in results:
        grouped[result.workload].append(result)
    return grouped


def recommend(results: Sequence[Measurement]) -> Optional[Measurement]:
    """The proxylib strategy with the best geometric-mean ratio to the fastest per workload."""
    best = {w: min((r.median_seconds for r in rs if r.median_seconds), default=None)
            for w, rs in _by_workload(results).items()}
    scores: Dict[str, List[float]] = defaultdict(list)
    first: Dict[str, Measurement] = {}
    for result in results:
        if result.family != "proxylib":
            continue
        first.setdefault(result.strategy, result)
        if result.median_seconds is None or not best.get(result.workload):
            scores[result.strategy].append(math.inf)
        else:
            scores[result.strategy].append(result.median_seconds / best[result.workload])
    usable = {name: values for name, values in scores.items() if math.inf not in values}
    if not usable:  # a strategy that failed a workload is never recommended
        return None

    def geometric_mean(values):
        return math.exp(sum(math.log(v) for v in values) / len(values))
    winner = min(usable, key=lambda name: geometric_mean(usable[name]))
    return first[winner]


def _in_cache(results: Sequence[Measurement], cache: str) -> List[Measurement]:
    return [r for r in results if getattr(r, "cache", "warm") == cache]


def _recommendation_line(choice: Optional[Measurement], case: str) -> str:
    if choice is None:
        return f"no recommendation ({case}): no proxylib strategy completed every workload"
    settings = ", ".join(f"{k}={v!r}" for k, v in (choice.settings or {}).items())
    return (f"recommended for this file, {case}: {settings} ({choice.strategy}; best "
            "geometric-mean ratio to the fastest strategy over all workloads)")


def render_cold_table(results: Sequence[Measurement], path: str) -> str:
    """Warm and cold side by side, with ratios to the raw floor and nibabel of the same run."""
    lines = [f"proxylib bench --cold: {path}", "",
             "cold: page cache dropped and a fresh image opened before every round (opening "
             "timed); floor: raw preads (see FLOORS in proxylib/bench/cold.py); strategies "
             "interleaved round by round, medians per strategy", ""]
    warm, cold = _by_workload(_in_cache(results, "warm")), _by_workload(_in_cache(results, "cold"))
    for workload, rows in warm.items():
        cold_rows = {r.strategy: r for r in cold.get(workload, [])}
        floors = {}
        for cache, group in (("warm", rows), ("cold", list(cold_rows.values()))):
            floors[cache] = min((r.median_seconds for r in group
                                 if r.family == "raw" and r.median_seconds), default=None)
            floors[cache + " nibabel"] = min((r.median_seconds for r in group
                                              if r.family == "nibabel" and r.median_seconds),
                                             default=None)
        lines.append(f"{workload} (floor: {floor_of(workload) or '-'})")
        lines.append(f"  {'strategy':40s} {'warm ms':>9s} {'x floor':>8s} {'x nibabel':>9s} "
                     f"{'cold ms':>9s} {'x floor':>8s} {'x nibabel':>9s}")
        for row in sorted(rows, key=lambda r: (cold_rows.get(r.strategy) or r).median_seconds
                          or math.inf):
            cells = []
            for cache, entry in (("warm", row), ("cold", cold_rows.get(row.strategy))):
                seconds = entry.median_seconds if entry is not None else None
                if seconds is None:
                    cells.append(f"{'failed' if entry is not None else '-':>9s} {'':8s} {'':9s}")
                    continue
                ratio = lambda base: f"{seconds / base:.2f}" if base else "-"  # noqa: E731
                cells.append(f"{seconds * 1e3:9.3f} {ratio(floors[cache]):>8s} "
                             f"{ratio(floors[cache + ' nibabel']):>9s}")
            lines.append(f"  {row.strategy:40s} {cells[0]} {cells[1]}")
        lines.append("")
    lines.append(_recommendation_line(recommend(_in_cache(results, "cold")),
                                      "cold page cache (the case asked with --cold)"))
    lines.append(_recommendation_line(recommend(_in_cache(results, "warm")), "warm page cache"))
    lines.extend(["", targets.render(results)])
    return "\n".join(lines)


def render_table(results: Sequence[Measurement], path: str) -> str:
    if _in_cache(results, "cold"):
        return render_cold_table(results, path)
    lines = [f"proxylib bench: {path}", ""]
    for workload, rows in _by_workload(results).items():
        timed = [r for r in rows if r.median_seconds]
        best = min((r.median_seconds for r in timed), default=None)
        nibabel = min((r.median_seconds for r in timed if r.family == "nibabel"), default=None)
        lines.append(f"{workload}")
        lines.append(f"  {'strategy':44s} {'median ms':>10s} {'x best':>8s} {'x nibabel':>10s} "
                     f"{'peak MiB':>9s}")
        for row in sorted(rows, key=lambda r: r.median_seconds or math.inf):
            if row.median_seconds is None:
                lines.append(f"  {row.strategy:44s} {'failed: ' + (row.error or '')[:60]}")
                continue
            ratio_best = row.median_seconds / best if best else math.nan
            ratio_nib = f"{row.median_seconds / nibabel:10.3f}" if nibabel else f"{'-':>10s}"
            peak = f"{row.peak_bytes / 2**20:9.1f}" if row.peak_bytes is not None else f"{'-':>9s}"
            lines.append(f"  {row.strategy:44s} {row.median_seconds * 1e3:10.3f} "
                         f"{ratio_best:8.2f} {ratio_nib} {peak}")
        lines.append("")
    choice = recommend(results)
    if choice is None:
        lines.append("no recommendation: no proxylib strategy completed every workload")
    else:
        settings = ", ".join(f"{k}={v!r}" for k, v in (choice.settings or {}).items())
        lines.append(f"recommended for this file: {settings} ({choice.strategy}; best "
                     "geometric-mean ratio to the fastest strategy over all workloads)")
    return "\n".join(lines)


def to_json(results: Sequence[Measurement], path: str) -> str:
    choice = recommend(_in_cache(results, "warm"))
    payload = {
        "file": path,
        "results": [r.to_dict() for r in results],
        "recommended": None if choice is None else choice.settings,
    }
    if _in_cache(results, "cold"):
        cold = recommend(_in_cache(results, "cold"))
        payload["recommended_cold"] = None if cold is None else cold.settings
        payload["targets"] = targets.to_dicts(results)
    return json.dumps(payload, indent=2)


#: One colour per family of strategies (matplotlib's tab10 hues).
FAMILY_COLOURS = {"proxylib": "#1f77b4", "proxylib gz no-index": "#ff7f0e",
                  "proxylib gz saved-index": "#2ca02c", "numpy.memmap": "#7f7f7f",
                  "nibabel": "#d62728", "nibabel gz": "#9467bd"}
#: Hatching per mmap setting; a handle kept open is the solid colour, one opened per
#: access (nibabel/proxylib keep=False, a fresh numpy.memmap) a light tint of it.
MMAP_HATCHES = {"c": "", "r": "//", False: ".."}


def series_style(result: Measurement) -> Dict[str, object]:
    """Bar colour and hatching: colour by family, tint by handle policy, hatch by mmap."""
    family = max((name for name in FAMILY_COLOURS if result.strategy.startswith(name)),
                 key=len, default=None)
    colour = FAMILY_COLOURS.get(family, "#bcbd22")
    settings = result.settings or {}
    kept = settings.get("keep_file_open", "fresh" not in result.strategy
                        and "keep=False" not in result.strategy)
    if not kept:
        import matplotlib.colors
        rgb = matplotlib.colors.to_rgb(colour)
        colour = tuple(1 - 0.45 * (1 - c) for c in rgb)
    return {"color": colour, "hatch": MMAP_HATCHES.get(settings.get("mmap", "c"), ""),
            "edgecolor": "black", "linewidth": 0.5}


def plot(results: Sequence[Measurement], out: str) -> None:
    """Save :func:`draw`'s chart to ``out`` (PNG, SVG, PDF: by its extension)."""
    fig = draw(results)
    import matplotlib.pyplot as plt
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)


def draw(results: Sequence[Measurement]) -> Any:
    """A grouped bar chart of medians (log scale), one group per workload.

    Every series looks different (see :func:`series_style`); the legend sits
    to the right of the axes, never over the bars.
    """
    try:
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise RuntimeError("--plot needs matplotlib: pip install 'proxylib[plot]'") from err
    grouped = _by_workload(results)
    first: Dict[str, Measurement] = {}
    for result in results:
        first.setdefault(result.strategy, result)
    names = list(first)
    fig, ax = plt.subplots(figsize=(max(8, len(grouped) * 2.5) + 4, 5.5))
    width = 0.8 / max(len(names), 1)
    matplotlib.rcParams["hatch.linewidth"] = 0.6
    for i, name in enumerate(names):
        xs, ys = [], []
        for j, (workload, rows) in enumerate(grouped.items()):
            row = next((r for r in rows if r.strategy == name and r.median_seconds), None)
            if row is not None:
                xs.append(j + i * width)
                ys.append(row.median_seconds * 1e3)
        ax.bar(xs, ys, width, label=name, **series_style(first[name]))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(grouped))], list(grouped))
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("median time (ms, log scale)")
    ax.set_title("proxylib bench: median time per workload and strategy")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0, frameon=False)
    return fig
