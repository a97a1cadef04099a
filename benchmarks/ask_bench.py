"""`eventpulse ask` benchmark: cold start, the relevance threshold, ONNX against torch.

    .venv/bin/python -m benchmarks.ask_bench [HOME]   # also part of `make bench`

HOME is a demo home (warehouse and corpus; default $EVENTPULSE_HOME, else ./data); when it has
none, `eventpulse demo` makes one in benchmarks/.scratch/ask first. Writes
benchmarks/results/ask_bench.md and .json.

- Cold start: the median wall time of fresh `eventpulse ask` processes (7 of each), for a
  question answered from the marts and one answered from the corpus, beside the baseline of the
  same run: a fresh process that only imports torch and loads the model to embed one question,
  which every `ask` paid before.
- Relevance threshold: the best sentence's cosine similarity to the question (what the
  extractive answer ranks by) for questions the demo corpus answers and for questions it does
  not; the threshold in `answer.py` must sit between the two.
- ONNX against torch: the cosine of the two vectors of every question (and of SciFact's 300 test
  queries when shared/benchmarks/scifact is present).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "benchmarks" / ".scratch" / "ask"
SCIFACT_QUERIES = ROOT.parent / "shared" / "benchmarks" / "scifact" / "queries.jsonl"
RUNS = 7

STRUCTURED_QUESTION = "What was the conversion rate on iOS yesterday?"
CORPUS_QUESTION = "What changed in the iOS app release with Apple Pay?"
# The demo corpus (changelog, glossary, reports) answers these ...
ANSWERED = [
    "What changed in the iOS app release with Apple Pay?",
    "What broke in the Android checkout crash?",
    "Why was there a traffic burst from a tech news site?",
    "Who placed the bulk orders from corporate customers?",
    "What did the web shop release with faster search suggestions change?",
    "How is the conversion rate defined?",
    "What is a session?",
    "What does churn rate mean?",
    "How is lifetime value computed?",
    "What is an anomaly score?",
    "What is the checkout funnel?",
    "How is retention measured?",
]
# ... and says nothing on these.
UNANSWERED = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who won the football world cup in 1998?",
    "What will the weather be in Paris tomorrow?",
    "How tall is Mount Everest?",
    "Recommend a good science fiction novel.",
    "How do I reset my wifi router password?",
    "What is the boiling point of water at sea level?",
    "Translate good morning into Japanese.",
    "Which programming language should I learn first?",
    "What is the speed of light?",
    "How many moons does Jupiter have?",
]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    home = demo_home(Path(args[0]) if args else None)
    load = os.getloadavg()[0]
    results: dict[str, Any] = {
        "run": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_at_start": round(load, 2),
        "home": str(home),
    }
    results["relevance"] = relevance(home)
    results["onnx_vs_torch"] = onnx_vs_torch()
    results["cold_start"] = cold_start(home)
    results["load_at_end"] = round(os.getloadavg()[0], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ask_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "ask_bench.md").write_text(markdown(results))
    print(markdown(results))


def demo_home(home: Path | None) -> Path:
    home = home or Path(os.environ.get("EVENTPULSE_HOME") or ROOT / "data")
    if (home / "warehouse.duckdb").exists() and (home / "lancedb").is_dir():
        return home.resolve()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    print(f"[ask] no demo at {home}; running `eventpulse demo` into {SCRATCH}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo"], env=_env(SCRATCH), check=True, cwd=ROOT
    )
    return SCRATCH


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EVENTPULSE_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }


def best_sentence_similarity(home: Path, question: str) -> float:
    """What the extractive answer compares with RELEVANCE_THRESHOLD."""
    from assets.corpus.answer import SENTENCES_PER_SOURCE, answer_sentences
    from assets.corpus.retrieval import search
    from pipelines import onnx_embedding

    results = search(home, question, 5)
    sentences = [s for r in results for s in answer_sentences(r.text)[:SENTENCES_PER_SOURCE]]
    vectors = onnx_embedding.embed([question, *sentences])
    return float((vectors[1:] @ vectors[0]).max()) if sentences else 0.0


def relevance(home: Path) -> dict[str, Any]:
    from assets.corpus.answer import RELEVANCE_THRESHOLD

    answered = {q: round(best_sentence_similarity(home, q), 4) for q in ANSWERED}
    unanswered = {q: round(best_sentence_similarity(home, q), 4) for q in UNANSWERED}
    return {
        "threshold": RELEVANCE_THRESHOLD,
        "answered": answered,
        "unanswered": unanswered,
        "answered_min": min(answered.values()),
        "unanswered_max": max(unanswered.values()),
        "answered_kept": sum(v >= RELEVANCE_THRESHOLD for v in answered.values()),
        "unanswered_refused": sum(v < RELEVANCE_THRESHOLD for v in unanswered.values()),
    }


def onnx_vs_torch() -> dict[str, Any]:
    from pipelines import embedding, onnx_embedding

    texts = ANSWERED + UNANSWERED + [STRUCTURED_QUESTION]
    if SCIFACT_QUERIES.is_file():
        texts += [json.loads(line)["text"] for line in SCIFACT_QUERIES.open()][:300]
    cosine = (onnx_embedding.embed(texts) * embedding.embed(texts)).sum(axis=1)
    return {"texts": len(texts), "min_cosine": float(cosine.min()), "mean": float(cosine.mean())}


def cold_start(home: Path) -> dict[str, Any]:
    from pipelines import onnx_embedding

    onnx_embedding.ensure_export()  # made once; every later process only reads it
    script = Path(sys.executable).with_name("eventpulse")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "pipelines.cli"]
    baseline = [
        sys.executable,
        "-c",
        "from pipelines import embedding; embedding.embed(['What changed in the iOS app?'])",
    ]
    return {
        "structured": timed_runs([*command, "ask", STRUCTURED_QUESTION], home),
        "corpus": timed_runs([*command, "ask", CORPUS_QUESTION], home),
        "baseline_torch_model_load": timed_runs(baseline, home),
    }


def timed_runs(command: list[str], home: Path) -> dict[str, Any]:
    """Median wall and CPU seconds of RUNS fresh processes (one untimed run first, so the
    files are in the page cache as they are for a user asking twice)."""
    subprocess.run(command, env=_env(home), capture_output=True, check=True, cwd=ROOT)
    walls, cpus = [], []
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, env=_env(home), capture_output=True, check=True, cwd=ROOT)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        "median_wall": round(statistics.median(walls), 2),
        "min_wall": round(min(walls), 2),
        "max_wall": round(max(walls), 2),
        "median_cpu": round(statistics.median(cpus), 2),
        "load": round(os.getloadavg()[0], 2),
    }


def markdown(r: dict[str, Any]) -> str:
    c, rel, ox = r["cold_start"], r["relevance"], r["onnx_vs_torch"]
    lines = [
        "# `eventpulse ask` benchmark",
        "",
        f"Run {r['run']} on {r['machine']}, load {r['load_at_start']} at start, "
        f"{r['load_at_end']} at end (the machine is shared: wall times swing with the load; "
        "CPU seconds less so). Command: `.venv/bin/python -m benchmarks.ask_bench` (also part "
        "of `make bench`), on the demo home.",
        "",
        f"## Cold start ({RUNS} fresh processes each, after one untimed run)",
        "",
        "| | median wall (s) | min-max wall (s) | median CPU (s) | load during |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, label in (
        ("structured", f'`eventpulse ask "{STRUCTURED_QUESTION}"` (from the marts)'),
        ("corpus", f'`eventpulse ask "{CORPUS_QUESTION}"` (from the corpus)'),
        ("baseline_torch_model_load", "baseline: import torch, load the model, embed 1 query"),
    ):
        t = c[name]
        lines.append(
            f"| {label} | {t['median_wall']} | {t['min_wall']}-{t['max_wall']} | "
            f"{t['median_cpu']} | {t['load']} |"
        )
    lines += [
        "",
        "Target: median cold `ask` <= 3 s. The structured path imports DuckDB only; the corpus "
        "path imports LanceDB (most of its time) and embeds with ONNX Runtime, never torch.",
        "",
        "## Relevance threshold",
        "",
        f"Best sentence cosine for {len(rel['answered'])} questions the demo corpus answers: "
        f"min {rel['answered_min']}; for {len(rel['unanswered'])} it does not: max "
        f"{rel['unanswered_max']}. Threshold {rel['threshold']}: {rel['answered_kept']}/"
        f"{len(rel['answered'])} answered kept, {rel['unanswered_refused']}/"
        f"{len(rel['unanswered'])} unanswered refused.",
        "",
        "| question | best sentence cosine | corpus answers it |",
        "| --- | --- | --- |",
    ]
    for question, value in rel["answered"].items():
        lines.append(f"| {question} | {value} | yes |")
    for question, value in rel["unanswered"].items():
        lines.append(f"| {question} | {value} | no |")
    lines += [
        "",
        "## ONNX Runtime against torch",
        "",
        f"{ox['texts']} texts: min cosine {ox['min_cosine']:.6f}, mean {ox['mean']:.6f} "
        "(target >= 0.999).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
