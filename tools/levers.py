"""Measure the accuracy levers of issue 12, one at a time against notebook 05's recipe, then together.

    python tools/levers.py                    # quick size, real data: about 45 min on a 2-core CPU
    python tools/levers.py --only base tail   # some levers only
    python tools/levers.py --out DIR          # default results/<device>-<size>-experiments

Each lever changes one thing in notebook 05's full fine-tuning (AG News checkpoint of notebook 04, everything
trains, the course's settings) and keeps the rest: same data, split, seed and budget. The base run repeats
notebook 05 exactly, so its test accuracy is the recorded one. Writes levers.json and levers.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers as H  # noqa: E402


def max_mean_features(self, tokens):
    """Masked mean and max of the encoder's outputs, side by side (2 * d_model values)."""
    pad_mask, h = tokens == H.PAD_IDX, self.hidden(tokens)
    peak = h.masked_fill(pad_mask.unsqueeze(-1), float("-inf")).max(1).values
    return torch.cat([H.masked_mean(h, pad_mask), peak], dim=1)


def word_dropout_features(p):
    def features(self, tokens):
        if self.training:  # each real token becomes <unk> with probability p
            drop = (torch.rand(tokens.shape, device=tokens.device) < p) & (tokens != H.PAD_IDX)
            tokens = tokens.masked_fill(drop, H.UNK_IDX)
        return H.TextClassifier.features(self, tokens)
    return features


# Notebook 05's recipe at the quick size before issue 12: the first 256 tokens, 3 epochs at peak lr 2e-3.
BASE = dict(max_len=256, tail=0, epochs=3, lr=2e-3)
LEVERS = {  # name: (what it changes, settings that differ from BASE)
    "base": ("notebook 05 before issue 12: the first 256 tokens of a review, 3 epochs, peak lr 2e-3", {}),
    "tail": ("head+tail truncation: first 64 and last 192 tokens of a long review", dict(tail=192)),
    "len512": ("longer inputs: max_len 512", dict(max_len=512)),
    "word_dropout": ("word dropout: 10% of training tokens become <unk>", dict(word_dropout=0.1)),
    "maxmean": ("max+mean pooling", dict(pool="maxmean")),
    "lr4e-3": ("peak learning rate 4e-3 instead of 2e-3", dict(lr=4e-3)),
    "epochs5": ("5 epochs instead of 3", dict(epochs=5)),
    "mlm": ("in-domain pretraining: masked words on IMDB's training text (notebook 07) instead of AG News",
            dict(start="mlm")),
    # the helpful ones together: the quick size's recipe since issue 12, and with the masked-word start
    "tail512": ("longer inputs and head+tail: 512 tokens, the first 128 and the last 384",
                dict(max_len=512, tail=384)),
    "tail512_mlm": ("tail512, starting from masked-word pretraining instead of AG News",
                    dict(max_len=512, tail=384, start="mlm")),
}


def run_lever(name, settings, raw, vocab, glove, cfg, device, ag_ckpt):
    settings = {**BASE, **settings}
    max_len, tail = settings["max_len"], settings["tail"]
    train_full = H.EncodedDataset(raw["train"][0], [H.cut(t, max_len, tail) or [H.UNK_IDX] for t in raw["train"][1]])
    test = H.EncodedDataset(raw["test"][0], [H.cut(t, max_len, tail) or [H.UNK_IDX] for t in raw["test"][1]])
    train_idx, valid_idx = H.split_indices(len(train_full), 0.95, H.SEED)
    datasets = dict(train=train_full.select(train_idx), valid=train_full.select(valid_idx), test=test)
    loaders = {k: H.make_loader(ds, cfg["batch_size"], train=(k == "train")) for k, ds in datasets.items()}
    if settings.get("start") == "mlm":  # notebook 07's masked-word pretraining on the training split's text
        counts = torch.bincount(torch.cat(datasets["train"].tokens), minlength=len(vocab))
        counts[[H.UNK_IDX, H.PAD_IDX]] = 0
        H.set_seed(H.SEED)
        model = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=max_len, tail=tail)
        H.pretrain_masked_words(model, H.make_loader(datasets["train"], cfg["batch_size"], train=True),
                                counts.topk(cfg["mlm_targets"]).indices, cfg["mlm_epochs"], cfg["pretrain_lr"], device)
        H.set_seed(H.SEED)
        model = H.replace_head(model, len(H.IMDB_CLASSES))
    else:
        model = H.finetuning_start(ag_ckpt, glove, vocab)  # notebook 05's start
    if max_len > model.pos.pe.size(1):  # the sinusoid table is fixed, not learned: a longer one draws no random number
        model.pos = H.PositionalEncoding(model.config["d_model"], max_len, model.config["dropout"])
    model.config.update(max_len=max_len, tail=tail)  # the cut rule this lever trains with, carried by the model
    if settings.get("pool") == "maxmean":
        model.features = types.MethodType(max_mean_features, model)
        model.head = torch.nn.Linear(2 * model.config["d_model"], len(H.IMDB_CLASSES))
    if settings.get("word_dropout"):
        model.features = types.MethodType(word_dropout_features(settings["word_dropout"]), model)
    model = H.unfreeze(model, H.training_words(datasets["train"])).to(device)
    start = time.perf_counter()
    history = H.train_model(model, loaders["train"], loaders["valid"], settings["epochs"], settings["lr"], device,
                            desc=name)
    seconds = time.perf_counter() - start
    _, test_acc = H.evaluate(model, loaders["test"], device)
    changed = ", ".join(f"{k} {v}" for k, v in settings.items() if BASE.get(k) != v)
    what = LEVERS[name][0] if name in LEVERS else changed
    return dict(lever=name, what=what, settings=settings, test_acc=test_acc,
                valid_acc=max(history["valid_acc"]), train_seconds=round(seconds, 1),
                seconds_per_epoch=round(sum(history["seconds"]) / len(history["seconds"]), 1))


def write_table(out: Path, record: dict) -> None:
    """levers.md: the runs of levers.json as a table, each against the base run."""
    base = record["base_test_acc"]
    lines = [f"# Accuracy levers ({record['size']} size, {record['device']}, GloVe {record['glove']}, "
             f"seed {record['seed']})", "",
             "Made by `python tools/levers.py`. Each lever changes one thing in notebook 05's recipe before issue 12 "
             "(the base run); the last two combine the helpful ones. Delta is against the base run.", "",
             "| lever | what it changes | IMDB test | delta (points) | s per epoch |", "|---|---|---|---|---|"]
    for r in record["runs"]:
        delta = f"{100 * (r['test_acc'] - base):+.2f}" if base is not None else "n/a"
        lines.append(f"| {r['lever']} | {r['what']} | {r['test_acc']:.4f} | {delta} | {r['seconds_per_epoch']} |")
    (out / "levers.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="quick")
    ap.add_argument("--only", nargs="*", help="levers to run (default: all, then the helpful ones together)")
    ap.add_argument("--combine", nargs="*", help="run these levers together as one more run")
    ap.add_argument("--extra", nargs=2, action="append", default=[], metavar=("NAME", "JSON"),
                    help='one more run with these settings, e.g. --extra long_tail \'{"max_len": 512, "tail": 384}\'')
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    size, cfg = H.run_size(args.size)
    device, glove = H.get_device(), H.load_glove()
    vocab = H.build_vocab(glove)
    root = H.imdb_root(size)
    ag_ckpt = H.checkpoint_path("ag_news", size)
    if not ag_ckpt.exists():
        H.pretrain_ag_news(size, device)
    raw = {}
    for split, train in (("train", True), ("test", False)):
        ds = H.IMDBDataset(root, train=train)
        enc = H.EncodedDataset.from_dataset(ds, vocab, None, desc=f"encoding {split}")
        raw[split] = (enc.labels, [t.tolist() for t in enc.tokens])
    out = args.out or H.results_folder(size, experiments=True, device=device)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "levers.json"
    done = {r["lever"]: r for r in json.loads(path.read_text())["runs"]} if path.exists() else {}
    names = [n for n in args.only if n in LEVERS] if args.only is not None else list(LEVERS)
    todo = [(n, LEVERS[n][1]) for n in names]
    todo += [(name, json.loads(text)) for name, text in args.extra]
    if args.combine:
        merged = {k: v for n in args.combine for k, v in LEVERS[n][1].items()}
        todo.append(("+".join(args.combine), merged))
    for name, settings in todo:
        print(f"\n== {name}: {settings}", flush=True)
        done[name] = run_lever(name, settings, raw, vocab, glove, cfg, device, ag_ckpt)
        print(json.dumps(done[name]), flush=True)
        base = done.get("base", {}).get("test_acc")
        record = dict(size=size, device=H.device_name(device),
                      data=f"all IMDB ({len(raw['train'][0]):,} train / {len(raw['test'][0]):,} test reviews)",
                      glove=glove.name, seed=H.SEED, torch=torch.__version__, machine=H.machine_facts(device),
                      base_test_acc=base,
                      runs=list(done.values()))
        path.write_text(json.dumps(record, indent=1) + "\n")
        write_table(out, record)
    print((out / "levers.md").read_text())


if __name__ == "__main__":
    main()
