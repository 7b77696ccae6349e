#!/usr/bin/env python
"""Speed benchmark for issue 11: full fine-tuning with TrainedRows, evaluation, head-only, and a profile.

    python benchmarks/bench_speed.py --samples     # the shipped samples: a self-check of this script (~1 min)
    python benchmarks/bench_speed.py               # real IMDB in data/aclImdb (helpers.imdb_root), a few minutes
    python benchmarks/bench_speed.py --threads 1 --json out.json

Every ratio is measured side by side in one run (batches or passes interleaved A-B-B-A, medians over passes)
and drives the course's own code (helpers). benchmarks/README.md explains each section and the targets.
"""
import argparse, contextlib, copy, json, os, platform, shutil, statistics, subprocess, sys, time  # noqa: E401
from pathlib import Path
from unittest import mock

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers as H  # noqa: E402

_tqdm = H.tqdm
H.tqdm = lambda *a, **k: _tqdm(*a, **{**k, "disable": True})  # helpers' progress bars would garble the report
# The quick size's settings (batch 64, its learning rates), at max_len 256 by default: the setting issue 11
# measured in, and notebook 07b's grid's; --max-len 512 measures at what notebooks 05 and 06 now read.
CPU, KIT = torch.device("cpu"), dict(H.run_size("quick")[1], max_len=256, tail=192)
TARGETS = {"full FT: now / before": 1.7, "full FT: now / original": 9.0, "epoch: full / head-only": 100.0}
PLAN = {"real": dict(batches=20, passes=3, eval_n=1000, eval_passes=3, head_epochs=5, warmup=2, profiled=3),
        "samples": dict(batches=4, passes=3, eval_n=128, eval_passes=2, head_epochs=5, warmup=1, profiled=2)}
EMB, ATT, SDPA, FF = "embedding", "attention: projections", "attention: scores (SDPA)", "feed-forward"
ELT, LOSS, OPT, DATA, REST = ("norm, dropout, other elementwise", "loss + clip", "optimizer (AdamW)",
                              "data (collate)", "autograd bookkeeping")
# profiler range (the benchmark's own labels, see labels()) or operator -> category
CAT_OF = {**{c: c for c in (EMB, ATT, SDPA, FF, ELT, LOSS, OPT, DATA, REST)},
          "aten::relu": FF, "aten::scaled_dot_product_attention": SDPA,
          # the ranges torch.optim opens itself around AdamW's step and zero_grad
          "Optimizer.step#AdamW.step": OPT, "Optimizer.zero_grad#AdamW.zero_grad": OPT}


class CourseTrainer:
    """The original course: CourseNet (batch_first=False), a collate that tokenizes every batch of every epoch
    and pads with 0 to the longest review, SGD lr 1, clip 0.1, CrossEntropyLoss (its StepLR was never stepped)."""

    def __init__(self, glove, vocab):
        H.set_seed(H.SEED)
        self.vocab, self.model = vocab, H.CourseNet(glove.vectors, len(H.IMDB_CLASSES), vocab_size=len(vocab))
        self.opt, self.loss = torch.optim.SGD(self.model.parameters(), lr=1.0), nn.CrossEntropyLoss()

    def collate(self, batch):
        texts = [torch.tensor(self.vocab(H.tokenize(text)), dtype=torch.long) for _, text in batch]
        return torch.tensor([label for label, _ in batch]), pad_sequence(texts, batch_first=True)

    def loader(self, texts, shuffle):
        return DataLoader(texts, 64, shuffle, collate_fn=self.collate, generator=torch.Generator().manual_seed(H.SEED))

    def step(self, labels, text):
        self.opt.zero_grad()
        self.loss(self.model(text), labels).backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 0.1)
        self.opt.step()

    @torch.no_grad()
    def evaluate(self, loader):
        self.model.eval()
        return sum((self.model(x).argmax(1) == y).sum().item() for y, x in loader)


class KitTrainer:
    """A TextClassifier fine-tuned with helpers.make_optimizer and helpers.train_step, its embedding one of:
    now (helpers.unfreeze(model, word_ids): TrainedRows), before (every parameter trainable, dense AdamW over
    all 400,002 rows: the kit before issue 11), frozen (helpers.unfreeze(model, None), a reference)."""

    def __init__(self, glove, embedding, word_ids, steps):
        H.set_seed(H.SEED)
        self.model = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=KIT["max_len"])
        if embedding == "before":
            self.model.requires_grad_(True)  # every parameter, the embedding's weight too
        else:
            H.unfreeze(self.model, word_ids if embedding == "now" else None)
        self.opt, self.sched = H.make_optimizer(self.model, KIT["finetune_lr"], steps)

    def step(self, labels, tokens):
        H.train_step(self.model, labels, tokens, self.opt, self.sched)


def abba(fns, reps):
    """Call each fn reps times, in the order A B C, C B A, A B C, ...; return {name: [seconds of each call]}."""
    times = {k: [] for k in fns}
    for r in range(reps):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            start = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - start)
    return times


def mha_fastpath(enabled):
    """A context with PyTorch's fused Transformer inference path on or off (helpers turns it off on a CPU)."""
    restore = contextlib.ExitStack()
    restore.callback(torch.backends.mha.set_fastpath_enabled, torch.backends.mha.get_fastpath_enabled())
    torch.backends.mha.set_fastpath_enabled(enabled)
    return restore


def bench_train(trainers, course, data, p):
    """1. Full fine-tuning samples/s on the same reviews: the first batches of a real training epoch."""
    runs = {"original": (lambda: course.loader(data.texts, True), course.step),
            **{k: (data.loader, t.step) for k, t in trainers.items()}}
    rates = {k: [] for k in runs}
    for make, step in runs.values():
        step(*next(iter(make())))  # a warm-up batch: first-call costs (optimizer state) stay out of the timing
    for _ in range(p["passes"]):  # batch by batch, A B C D, D C B A, ...: a busy machine slows each alike
        its = {k: iter(make()) for k, (make, _) in runs.items()}
        fns = {k: lambda k=k: runs[k][1](*next(its[k])) for k in runs}  # a batch: loading (collate) and step
        for k, secs in abba(fns, len(data.batches)).items():
            rates[k].append(len(data.texts) / sum(secs))
    r = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\n== 1. Full fine-tuning throughput: the same {len(data.texts)} reviews ({len(data.batches)} batches "
          f"of a training epoch), {p['passes']} passes, median ==")
    for k, label in (("original", "original course (CourseNet, tokenizing collate, SGD)"),
                     ("before", "kit before (all trainable: dense AdamW over 400,002 rows)"),
                     ("now", f"kit now (TrainedRows: {len(data.word_ids):,} trained rows)"),
                     ("frozen", "kit, embedding frozen (reference)")):
        print(f"  {label:<58} {r[k]:7.1f} samples/s  (passes: {', '.join(f'{x:.1f}' for x in rates[k])})")
    out = dict(rates=rates, median=r, now_vs_before=r["now"] / r["before"], now_vs_original=r["now"] / r["original"])
    print(f"  now / before: {out['now_vs_before']:.2f}x   now / original: {out['now_vs_original']:.2f}x   "
          f"frozen / now: {r['frozen'] / r['now']:.2f}x")
    return out


def bench_eval(model, course, data, p):
    """2. Evaluation samples/s: the original, and helpers.evaluate with the MHA fast path on and off."""
    idx = torch.randperm(len(data.test), generator=torch.Generator().manual_seed(H.SEED))[: p["eval_n"]].tolist()
    texts, loader = [data.test[i] for i in idx], H.make_loader(data.datasets["test"].select(idx), 64, train=False)

    def kit(fast):
        with mha_fastpath(fast):
            H.evaluate(model, loader, CPU)

    times = abba({"original course (CourseNet, no_grad; batch_first=False: never the fast path)":
                  lambda: course.evaluate(course.loader(texts, False)),
                  "kit, helpers.evaluate, fast path on": lambda: kit(True),
                  "kit, helpers.evaluate, fast path off (as shipped on a CPU)": lambda: kit(False)}, p["eval_passes"])
    r = {k: len(idx) / statistics.median(v) for k, v in times.items()}
    with torch.inference_mode(), mha_fastpath(True):
        fast = [model(x) for _, x in loader]
    with torch.inference_mode(), mha_fastpath(False):
        diff = max((f - model(x)).abs().max().item() for f, (_, x) in zip(fast, loader))
    print(f"\n== 2. Evaluation throughput: {len(idx)} test reviews, {p['eval_passes']} passes each, median ==")
    for k, v in r.items():
        print(f"  {k:<78} {v:7.1f} samples/s")
    original, on, off = r.values()
    print(f"  fast path off / on: {off / on:.2f}x; kit as shipped / original: {off / original:.2f}x; "
          f"largest logit difference, on vs off: {diff:.1e}")
    return dict(rates=r, off_vs_on=off / on, off_vs_original=off / original, max_logit_diff=diff)


def bench_head(model, data, train, p):
    """3. One full fine-tuning epoch (extrapolated from section 1) against one head-only epoch (measured)."""
    body, n, start = H.freeze_body(copy.deepcopy(model)), len(data.train), time.perf_counter()
    x, y = H.pooled_features(body, H.make_loader(data.train, 64, train=False), CPU)
    feature_s = time.perf_counter() - start
    head, feats = copy.deepcopy(body.head).train(), H.feature_loader(x, y, 64, train=True)
    opt, sched = H.make_optimizer(head, KIT["head_lr"], p["head_epochs"] * len(feats))
    epoch = lambda: [H.train_step(head, labels, f, opt, sched) for labels, f in feats]  # noqa: E731
    head_s = statistics.median(abba({"head": epoch}, p["head_epochs"])["head"])
    full_s, before_s = n / train["median"]["now"], n / train["median"]["before"]
    print(f"\n== 3. Head-only vs full fine-tuning: one epoch over {n:,} training reviews ==\n"
          f"  full fine-tuning epoch, kit now: {full_s:.1f} s (before: {before_s:.1f} s): {n:,} reviews at section 1's "
          f"samples/s, not measured\n  head-only epoch on cached pooled features ({H.count_trainable(head)} "
          f"parameters, make_optimizer + train_step): {head_s:.3f} s (median of {p['head_epochs']})\n"
          f"  one-time feature pass (helpers.pooled_features): {feature_s:.1f} s; full epoch / head epoch: "
          f"{full_s / head_s:,.0f}x")
    return dict(n=n, full_epoch_s=full_s, before_epoch_s=before_s, head_epoch_s=head_s, feature_pass_s=feature_s,
                ratio=full_s / head_s)


def labels(stack, model):
    """Profiler ranges named after categories: each labelled module's forward, the loss and the clip."""
    ranges, pairs = [], [(model.emb, EMB), (model.pos, ELT), (model.head, ELT)]
    for lay in model.encoder.layers:  # the layer's own range holds its residual adds, norms and dropouts
        pairs += [(lay, ELT), (lay.self_attn, ATT), (lay.linear1, FF), (lay.linear2, FF)]
    for module, label in pairs:
        stack.callback(module.register_forward_pre_hook(
            lambda mod, a, label=label: ranges.append(record_function(label).__enter__())).remove)
        stack.callback(module.register_forward_hook(lambda mod, a, o: ranges.pop().__exit__(None, None, None)).remove)
    for owner, name in ((torch.nn.functional, "cross_entropy"), (torch.nn.utils, "clip_grad_norm_")):
        def call(*args, _fn=getattr(owner, name), **kwargs):
            with record_function(LOSS):
                return _fn(*args, **kwargs)
        stack.enter_context(mock.patch.object(owner, name, call))


def ancestors(e):
    while e is not None:
        yield e
        e = e.cpu_parent


def category(e, fwd):
    """The innermost labelled range or named operator; a backward operator takes its forward operator's."""
    for a in ancestors(e):
        if a.name.startswith("autograd::engine::evaluate_function"):
            return fwd.get(a.sequence_nr, REST)  # AccumulateGrad has no forward: bookkeeping
        if a.name in CAT_OF:
            return CAT_OF[a.name]
    return REST if e.name == "aten::ones_like" else ELT  # ones_like: the gradient backward() starts from


def profile_steps(trainer, data, p):
    """Profile p['profiled'] helpers.train_step calls after p['warmup']: (ms per step by category, wall ms)."""
    it = iter(data.loader())
    with contextlib.ExitStack() as stack:
        labels(stack, trainer.model)
        for _ in range(p["warmup"]):
            trainer.step(*next(it))
        saved = os.dup(2)  # the profiler's C++ side prints start and stop lines on stderr: hide them
        stack.callback(os.close, saved), stack.callback(os.dup2, saved, 2)
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(p["profiled"]):
                with record_function(DATA):
                    batch = next(it)
                trainer.step(*batch)
            wall = (time.perf_counter() - start) * 1000 / p["profiled"]
    events, fwd = sorted(prof.events(), key=lambda e: e.time_range.start), {}
    for e in events:  # a forward operator's category, by sequence number, for its backward. Operators that make no
        # autograd node carry the number of the next one, so the last to carry a number is the one that made it
        if e.sequence_nr >= 0 and not any(a.name.startswith("autograd::engine") for a in ancestors(e)):
            fwd[e.sequence_nr] = next((CAT_OF[a.name] for a in ancestors(e) if a.name in CAT_OF), ELT)
    ms = dict.fromkeys(CAT_OF.values(), 0.0)
    for e in events:
        ms[category(e, fwd)] += e.self_cpu_time_total / 1000 / p["profiled"]
    ms["Python outside operators"] = wall - sum(ms.values())
    return ms, wall


def cpu_peak():
    """Peak FP32 GFLOP/s of the cores torch uses: cores x GHz x 64 FLOPs/cycle (AVX-512, 2 FMA units)."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if shutil.which("lscpu") else ""
    info = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)}
    cores = int(info.get("Core(s) per socket", 0)) * int(info.get("Socket(s)", 1)) or os.cpu_count()
    mhz, source = info.get("CPU max MHz"), "lscpu 'CPU max MHz'"
    if not mhz:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        mhz = next((ln.split(":")[1] for ln in cpuinfo.splitlines() if ln.startswith("cpu MHz")), "0")
        source = "/proc/cpuinfo 'cpu MHz': the clock a VM reports, turbo may be higher"
    used, ghz = min(cores, torch.get_num_threads()), float(mhz) / 1000
    return dict(model=info.get("Model name", platform.processor()), cores=cores, used=used, ghz=ghz, source=source,
                avx512="avx512f" in info.get("Flags", ""), gflops=used * ghz * 64)


def step_flops(tokens, d, ff, layers, classes=2):
    """Matmul FLOPs of one training step (forward + backward = 3x forward) on a padded (batch, L) batch."""
    b, length = tokens.shape
    per_token = layers * (2 * (4 * d * d + 2 * d * ff) + 2 * 2 * length * d)  # projections + feed-forward; QK^T + AV
    return 3 * (b * length * per_token + b * 2 * d * classes)


def bench_profile(trainers, data, train, p):
    """4. Where a full fine-tuning step's time goes (kit now and before), and the GFLOP/s it achieves."""
    print(f"\n== 4. Profile of one full fine-tuning step (torch.profiler, CPU, {p['profiled']} steps after "
          f"{p['warmup']} warm-up) ==")
    prof = {k: profile_steps(trainers[k], data, p) for k in ("now", "before")}
    print(f"  {'category':<34} {'now ms/step':>12} {'%':>5} {'before ms/step':>15} {'%':>5}")
    for c in prof["now"][0]:
        print(f"  {c:<34} " + "  ".join(f"{prof[k][0][c]:{w}.1f} {100 * prof[k][0][c] / prof[k][1]:5.1f}"
                                         for k, w in (("now", 12), ("before", 15))))
    print(f"  {'step (wall, under the profiler)':<34} {prof['now'][1]:12.1f} {'':>5} {prof['before'][1]:16.1f}")
    cfg, peak = trainers["now"].model.config, cpu_peak()
    flops = sum(step_flops(x, cfg["d_model"], cfg["dim_feedforward"], cfg["num_layers"]) for _, x in data.tensors)
    per_review = flops / len(data.texts)
    gf = {k: train["median"][k] * per_review / 1e9 for k in ("now", "before")}
    print(f"  matmul work: {per_review / 1e6:.1f} MFLOP per review (from the model's shape and section 1's padded "
          f"batches)\n  achieved at section 1's samples/s: now {gf['now']:.1f} GFLOP/s, before {gf['before']:.1f}\n"
          f"  peak FP32: {peak['used']} of {peak['cores']} cores x {peak['ghz']:.2f} GHz x 64 FLOPs/cycle = "
          f"{peak['gflops']:.0f} GFLOP/s; now reaches {100 * gf['now'] / peak['gflops']:.1f}% of it\n"
          f"    (clock: {peak['source']};\n     64 FLOPs/cycle assumes AVX-512 with 2 FMA units: avx512f "
          f"{'present' if peak['avx512'] else 'ABSENT'})")
    return dict(ms_per_step={k: v[0] for k, v in prof.items()}, wall_ms={k: v[1] for k, v in prof.items()},
                flops_per_review=per_review, gflops=gf, peak=peak)


def summary(res):
    """Each target with its measured value and PASS/MISS; the GFLOP/s line has no target."""
    t, e, diff, gf = res["train"], res["eval"]["off_vs_on"], res["eval"]["max_logit_diff"], res["profile"]["gflops"]
    rows = [(k, f"{v:.2f}x", f">= {TARGETS[k]:g}x", v >= TARGETS[k]) for k, v in (
        ("full FT: now / before", t["now_vs_before"]), ("full FT: now / original", t["now_vs_original"]),
        ("epoch: full / head-only", res["head"]["ratio"]))]
    rows += [("evaluation: fast path off (shipped) / on", f"{e:.2f}x", "> 1x", e > 1),
             ("evaluation: logits, fast path on vs off", f"{diff:.1e}", "<= 1e-5", diff <= 1e-5),
             ("full FT step, kit now: GFLOP/s", f"{gf['now']:.1f}",
              f"{100 * gf['now'] / res['profile']['peak']['gflops']:.1f}% of peak", None)]
    print("\n== Summary ==")
    for name, value, target, ok in rows:
        print(f"  {name:<42} {value:>9}  {target:<12} {'' if ok is None else 'PASS' if ok else 'MISS'}")
    return rows


def load_data(samples, vocab, p):
    """make_splits over IMDB; the first p['batches'] batches of a training epoch, their raw texts and a loader."""
    root = H.SAMPLES_DIR / "aclImdb" if samples else H.imdb_root("quick")
    train, test = H.IMDBDataset(root, train=True), H.IMDBDataset(root, train=False)
    datasets, _ = H.make_splits(train, test, vocab, KIT["max_len"], KIT["batch_size"], tail=KIT["tail"])
    train_idx, _ = H.split_indices(len(train))  # make_splits' own split: datasets["train"][i] is train[train_idx[i]]
    sampler = iter(H.make_loader(datasets["train"], KIT["batch_size"], train=True).batch_sampler)
    batches, enc = [next(sampler) for _ in range(p["batches"])], datasets["train"]
    return argparse.Namespace(root=root, test=test, datasets=datasets, train=enc, batches=batches,
                              loader=lambda: DataLoader(enc, batch_sampler=batches, collate_fn=H.collate_batch),
                              texts=[train[train_idx[i]] for b in batches for i in b], word_ids=H.training_words(enc),
                              tensors=[H.collate_batch([enc[i] for i in b]) for b in batches])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", action="store_true", help="the reviews shipped in data/samples: a self-check")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's own)")
    ap.add_argument("--json", metavar="OUT", help="also write every number measured to OUT")
    ap.add_argument("--max-len", type=int, default=256, help="tokens a review (default 256; 3/4 from its end)")
    args, started = ap.parse_args(argv), time.perf_counter()
    KIT.update(max_len=args.max_len, tail=args.max_len * 3 // 4)
    sys.stdout.reconfigure(line_buffering=True)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    p, glove = PLAN["samples" if args.samples else "real"], H.load_glove()
    vocab, peak = H.build_vocab(glove), cpu_peak()
    data = load_data(args.samples, vocab, p)
    facts = dict(date=time.strftime("%Y-%m-%d %H:%M %Z"), machine=f"{peak['model']}, {peak['cores']} cores, torch uses "
                 f"{torch.get_num_threads()} threads", load_average=" ".join(f"{x:.2f}" for x in os.getloadavg()),
                 torch=torch.__version__, data=f"{H.shown_path(data.root)} ({len(data.train):,} training / "
                 f"{len(data.datasets['test']):,} test reviews){'; SAMPLES: a self-check only' * args.samples}",
                 glove=f"{glove.name} ({glove.source})", settings=f"quick size: max_len {KIT['max_len']} (last {KIT['tail']} from the end), "
                 f"batch "
                 f"{KIT['batch_size']}, fine-tuning lr {KIT['finetune_lr']}, head lr {KIT['head_lr']}")
    H.banner(**facts)
    if torch.get_num_threads() > 1 and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print("NOTE: this machine is busy and torch uses more than one thread: parallel operators then wait for "
              "descheduled threads, which can slow small steps tenfold. --threads 1 gives steadier numbers here.")
    steps = (p["passes"] + 1) * p["batches"] + p["warmup"] + p["profiled"]  # every step a trainer takes here
    course, trainers = CourseTrainer(glove, vocab), {k: KitTrainer(glove, k, data.word_ids, steps)
                                                     for k in ("before", "now", "frozen")}
    res = dict(facts=facts, train=bench_train(trainers, course, data, p))
    model = copy.deepcopy(trainers["now"].model)
    model.emb = model.emb.merged()  # one plain embedding again, as notebook 05 evaluates it
    res["eval"] = bench_eval(model, course, data, p)
    res["head"] = bench_head(model, data, res["train"], p)
    res["profile"] = bench_profile(trainers, data, res["train"], p)
    res["summary"] = summary(res)
    print(f"\ntotal time: {(time.perf_counter() - started) / 60:.1f} min; load average at the end: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")
        print(f"numbers written to {args.json}")


if __name__ == "__main__":
    main()
