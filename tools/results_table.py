"""Build the README's results table from the measured files in results/, never by hand.

    python tools/results_table.py            # print the table
    python tools/results_table.py --write    # replace the table between the markers in README.md
    python tools/results_table.py --check    # change nothing; exit 1 if README.md's table is out of date

Course runs are folders of the JSON files that notebooks 04-06 save (helpers.save_run); an experiments
run (bash kit.sh experiments) holds notebook 07b's grid and tools/levers.py's levers.json; the GPU recipe
sweep is results/gpu-h200-recipe-sweep/sweep.log.
"""
import argparse
import json
import statistics
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from derived import ROOT, report, settle  # noqa: E402

RESULTS = ROOT / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
STAGES = {"04_pretrain_ag_news": "AG News pretraining", "05_full_finetune_imdb": "IMDB full fine-tuning",
          "06_head_only_finetune": "IMDB head-only fine-tuning"}


def machine(run: Path, record: dict) -> str:
    """The CPU (and GPU) a run was measured on: from its record (helpers.machine_facts), else its timings.json."""
    facts = record.get("machine")
    if isinstance(facts, dict):
        gpu = f"{facts['gpu']}, " if facts.get("gpu") else ""
        return f"{gpu}{facts['cpu']}, {facts['threads']} threads"
    timings = run / "timings.json"
    return json.loads(timings.read_text())["machine"] if timings.exists() else "not recorded"


def course_rows() -> list:
    """One row per notebook JSON in each results/<run>/ folder."""
    rows = []
    for run in sorted(p for p in RESULTS.iterdir() if p.is_dir()):
        for stem, stage in STAGES.items():
            f = run / f"{stem}.json"
            if not f.exists():
                continue
            r = json.loads(f.read_text())
            test = "AG News held-out" if stem.startswith("04") else "IMDB test"
            rows.append([run.name, stage, r["device"], machine(run, r), r["size"], r["data"], r["glove"],
                         str(r["seed"]),
                         f"{r['n_train']:,}", str(len(r["history"]["epoch"])), f"{r['seconds_per_epoch']:.1f}",
                         f"{r['valid_acc']:.4f}", f"{r['test_acc']:.4f} ({test}, {r['n_test']:,})",
                         f"{r['trainable_params']:,}"])
    return rows


def grid_sections() -> list:
    """Notebook 07b's grid of each experiments run, and its levers, as (title, markdown table) pairs."""
    out = []
    for run in sorted(RESULTS.glob("*-experiments")):
        f = run / "07b_experiments.json"
        if f.exists():
            r = json.loads(f.read_text())
            seeds = sorted({g.get("seed", r["seed"]) for g in r["grid"]})
            rows = [[g["start"], g["regime"], f"{g['trainable']:,}", f"{g['seconds']:.0f}", f"{g['valid_acc']:.4f}",
                     f"{g['test_acc']:.4f} ± {g.get('test_sd', 0.0):.4f}"] for g in r.get("cells", r["grid"])]
            title = (f"Notebook 07b's grid, {run.name} ({r['device']}, {machine(run, r)}, {r['size']} size, "
                     f"{r['n_train']:,} labelled reviews a seed, {r['n_test']:,} seeded test reviews, GloVe "
                     f"{r['glove']}; mean ± standard deviation over seeds {', '.join(map(str, seeds))}):")
            out.append((title, markdown(["start", "fine-tuned", "trainable", "train s", "valid acc", "test acc"],
                                        rows)))
        f = run / "masked_words.json"
        if f.exists():
            m = json.loads(f.read_text())
            loss = m["loss_per_epoch"][-1]
            out.append((f"Masked-word pretraining in that run (`masked_words.json`): held-out loss "
                        f"{', '.join(f'{x:.3f}' for x in m['loss_per_epoch'])} after each of {m['epochs']} epochs "
                        f"in {m['seconds']:.0f} s, on {m['text']}; the frequency-only guess scores "
                        f"{m['frequency_loss']:.3f} ({m['frequency_loss'] - loss:.3f} nats above the last), chance "
                        f"{m['chance_loss']:.3f}, over {m['targets']:,} target words.", ""))
        f = run / "masked_words_seeds.json"
        if f.exists():
            runs = sorted(json.loads(f.read_text())["runs"], key=lambda x: x["seed"])
            seeds = "; ".join(f"seed {x['seed']} {x['loss_per_epoch'][-1]:.3f}, {x['margin']:.3f} nats under the "
                              f"frequency-only guess" for x in runs)
            out.append((f"The same pretraining with other seeds (`python tools/masked_words_seeds.py`, "
                        f"`masked_words_seeds.json`): {seeds}; the notebook asserts "
                        f"{runs[0]['asserted_margin']} nats.", ""))
        f, rows_file = run / "08_learning_curve.json", run / "learning_curve.json"
        if f.exists() and rows_file.exists():
            out.append(curve_section(run, json.loads(f.read_text()), json.loads(rows_file.read_text())))
        f = run / "levers.json"
        if f.exists():
            r = json.loads(f.read_text())
            base = r["base_test_acc"]
            rows = [[g["lever"], g["what"], f"{g['test_acc']:.4f}",
                     f"{100 * (g['test_acc'] - base):+.2f}" if base is not None else "", str(g["seconds_per_epoch"])]
                    for g in r["runs"]]
            title = (f"Accuracy levers, {run.name} (`python tools/levers.py`: {r['device']}, {machine(run, r)}, "
                     f"{r['size']} size, "
                     f"{r['data']}, GloVe {r['glove']}, seed {r['seed']}; each changes one thing in the base run):")
            out.append((title, markdown(["lever", "what it changes", "IMDB test", "vs base (points)", "s/epoch"],
                                        rows)))
    return out


def curve_section(run: Path, r: dict, curve: list) -> tuple:
    """Notebook 08's learning curve (learning_curve.json's rows, 08's record for the facts): mean test accuracy ±
    the spread between seeds, per start and label count."""
    points = {}
    own = {}
    for row in curve:
        if row.get("recipe", "one recipe") != "one recipe":
            own.setdefault((row["start"], row["labels"]), []).append(100 * row["test_acc"])
    own = {k: statistics.mean(v) for k, v in own.items()}
    curve = [row for row in curve if row.get("recipe", "one recipe") == "one recipe"]
    for row in curve:
        points.setdefault((row["start"], row["labels"]), []).append(100 * row["test_acc"])
    starts = list(dict.fromkeys(row["start"] for row in curve))
    counts = sorted({row["labels"] for row in curve})
    seeds = len({row["seed"] for row in curve})

    def cell(values):
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.1f} ± {spread:.1f}"

    rows = [[f"{n:,}"] + [cell(points[s, n]) for s in starts] for n in counts]
    title = (f"Notebook 08's learning curve, {run.name} ({r['device']}, {machine(run, r)}, {r['size']} size, IMDB test "
             f"accuracy in %, mean ± standard deviation over {seeds} seeds, {r['n_test']:,} seeded test reviews, "
             f"reviews cut to {r['max_len']} tokens, GloVe {r['glove']}):")
    return title, markdown(["labelled reviews"] + starts, rows) + "\n\n" + curve_claims(points, own, counts)


def curve_claims(points: dict, own: dict, counts: list) -> str:
    """What the curve says, each figure computed from the rows: the README quotes no number by hand."""
    mean = {k: statistics.mean(v) for k, v in points.items()}
    sd = {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in points.items()}
    bodies = [s for s in ("AG News", "IMDB masked words") if (s, counts[0]) in mean]

    def diff(a, b, n, left=mean, right=mean):
        return f"{left[a, n] - right[b, n]:+.1f}"

    glove = ", ".join(f"{diff('GloVe', 'random vectors', n)} at {n:,}" for n in counts)
    lines = [f"- GloVe's vectors against random ones (both with a random encoder), in points: {glove}."]
    def paired(a, b, n):
        """Mean and standard error of a minus b, seed by seed (both trained on the same labelled reviews)."""
        d = [x - y for x, y in zip(points[a, n], points[b, n])]
        return statistics.mean(d), (statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan"))

    for n in [n for n in counts if n <= 1_000]:
        best = max(bodies, key=lambda s: mean[s, n])
        m, e = paired(best, "GloVe", n)
        lines.append(f"- At {n:,} labels the best pretrained body, {best}, against GloVe and a random encoder: "
                     f"{m:+.1f} ± {e:.1f} points (paired by seed; {'past' if abs(m) > 2 * e else 'within'} two "
                     f"standard errors); the target was +5 on the mean.")
        if own:
            gains = "; ".join(f"{s} {own[s, n] - mean['GloVe', n]:+.1f} against GloVe's one recipe, "
                              f"{own[s, n] - own['GloVe', n]:+.1f} against GloVe with head first"
                              for s in bodies if (s, n) in own)
            lines.append(f"  With the bodies' own recipe (head first, then a quarter of the rate): {gains}.")
    if 1_000 in counts and 10_000 in counts:
        best = max(bodies, key=lambda s: mean[s, 1_000])
        lines.append(f"- The moonshot, 1,000 labels plus pretraining against random vectors with 10,000: {best} "
                     f"{mean[best, 1_000]:.1f} against {mean['random vectors', 10_000]:.1f} (and GloVe with a random "
                     f"encoder at 10,000: {mean['GloVe', 10_000]:.1f}).")
    if all(("bag of n-grams", n) in mean for n in counts):
        vs = ", ".join(f"{mean['bag of n-grams', n] - max(mean[s, n] for s in starts_of(points) if s != 'bag of n-grams'):+.1f}"
                       f" at {n:,}" for n in counts)
        lines.append(f"- The bag of n-grams against the best Transformer start at each count: {vs}.")
    return "\n".join(lines)


def starts_of(points: dict) -> list:
    return list(dict.fromkeys(s for s, _ in points))


def sweep_rows() -> list:
    """The RESULT lines of the GPU recipe sweep, one row each."""
    log = RESULTS / "gpu-h200-recipe-sweep" / "sweep.log"
    if not log.exists():
        return []
    rows, text = [], log.read_text()
    head_epochs = max(map(int, re.findall(r"^head epoch \d+/(\d+):", text, flags=re.M)), default=0)
    for line in text.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[len("RESULT "):])
            sec = r["sec"]
            rows.append([r["name"], str(r.get("max_len", "")), str(r.get("epochs", head_epochs)),
                         str(r.get("lr", "")), {True: "trained", False: "frozen"}.get(r.get("unfreeze"), "n/a (head only)"),
                         f"{sum(sec) / len(sec):.2f}", f"{r['test_acc']:.4f}"])
    return rows


def markdown(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def table() -> str:
    course = markdown(["run", "stage", "device", "machine", "size", "data", "GloVe", "seed", "train texts", "epochs",
                       "s/epoch", "valid acc", "test acc", "trainable params"], course_rows())
    sweep = markdown(["config", "max_len", "epochs", "peak lr", "embedding", "s/epoch", "IMDB test acc"],
                     sweep_rows())
    grids = "".join(f"{title}\n\n{md}\n\n" if md else f"{title}\n\n" for title, md in grid_sections())
    return (f"{START}\n{course}\n\n{grids}"
            f"GPU recipe sweep (NVIDIA H200, full IMDB: 23,750 train / 1,250 valid / 25,000 "
            f"test, GloVe 6B.50d, seed 42; `pre_*` and `head_*` start from AG News pretraining on 80% of its "
            f"test.csv; see results/gpu-h200-recipe-sweep/):\n\n{sweep}\n{END}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update README.md in place")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if README.md is out of date")
    args = ap.parse_args(argv)
    text = table()
    if not (args.write or args.check):
        print(text)
        return 0
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    if START not in old or END not in old:
        print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
        return 1
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: text, old, flags=re.S)
    stale = [readme] if settle(readme, new, args.check) else []
    return report(stale, args.check, "the results table", "tools/results_table.py --write")

if __name__ == "__main__":
    sys.exit(main())
