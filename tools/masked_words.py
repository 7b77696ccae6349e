"""Measure what each choice of notebook 07's masked-word pretraining is worth, one change at a time.

    python tools/masked_words.py --change "the recipe"                       # the defaults below
    python tools/masked_words.py --change "hide 30% of the words" --p 0.3    # one change from them
    python tools/masked_words.py ... --record results/cpu-quick-experiments/masked_words_choices.json

The model is notebook 07's MaskedWords from helpers.py, and so are the frequency-only baseline (frequency_loss) and
the held-out loss (masked_words_loss); the target words are chosen by helpers.target_words' rule (see target_words
below for how ties are broken). The defaults
are that model at the quick size's grid cut (256 tokens, the last 192 from the end): a learned output layer whose
bias starts at the log frequencies, a learned mask vector, 10,000 target words, peak lr 5e-3 (one-cycle), no dropout,
600 steps of batch 64. Training text: the training reviews less the validation films (notebook 02b's split); the
held-out loss is on the validation reviews, with a seeded draw of hidden words. Each run appends a row to --record
(the notebook prints that table).
Variants, as overrides in Variant, a subclass of helpers.MaskedWords: --out glovebias (score against GloVe's vectors
through a projection, plus a learned bias; --out glove without the bias), --mask unk (hide with <unk>'s row, which
real unknown words share), --bert (BERT's 80/10/10 rule). And --p, --dropout (kept on while pretraining), --lr,
--steps, --bs, --len (cut the reviews into chunks of that many tokens), --targets, --seed, --wd.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import helpers as H  # noqa: E402

CPU = torch.device("cpu")
EVAL_SEED = 123  # the held-out draw of hidden words, the same for every run of the table


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="learned", choices=["learned", "glovebias", "glove"],
                    help="the output layer: learned vectors and biases (notebook 07's), or GloVe's vectors through a "
                         "learned projection, with (glovebias) or without (glove) a learned bias")
    ap.add_argument("--mask", default="learned", choices=["learned", "unk"],
                    help="a hidden word's input: a learned vector (notebook 07's) or <unk>'s row")
    ap.add_argument("--p", type=float, default=0.15, help="the share of target words hidden")
    ap.add_argument("--lr", type=float, default=5e-3, help="the one-cycle schedule's peak learning rate")
    ap.add_argument("--steps", type=int, default=600, help="training steps (batches)")
    ap.add_argument("--bs", type=int, default=64, help="batch size")
    ap.add_argument("--len", type=int, default=256, help="under 256: cut each review into chunks this long")
    ap.add_argument("--dropout", type=float, default=0.0, help="the body's dropout, kept on while pretraining")
    ap.add_argument("--bert", action="store_true", help="BERT's rule: of the hidden words 80%% get the mask, "
                                                        "10%% a random target word, 10%% stay as they are")
    ap.add_argument("--targets", type=int, default=10000, help="how many of the most frequent words are targets")
    ap.add_argument("--seed", type=int, default=0, help="initial weights, hidden words and batch order")
    ap.add_argument("--wd", type=float, default=0.01, help="weight decay")
    ap.add_argument("--change", default="the recipe", help="the row's name in the record: what this run changes")
    ap.add_argument("--record", default="", help="a JSON table to add this run's row to (relative to the kit)")
    return ap.parse_args(argv)


class GloveScores(nn.Module):
    """--out glove / glovebias: a hidden word's score for each target is the dot product of a learned projection of
    its hidden state with the target's (fixed) GloVe vector, plus a learned bias that starts at the log frequency."""

    def __init__(self, d, vectors, log_freq, bias=True):
        super().__init__()
        self.proj = nn.Linear(d, d)
        self.register_buffer("vec", vectors.detach().clone())
        self.bias = nn.Parameter(log_freq.float().clone()) if bias else None

    def forward(self, h):
        scores = self.proj(h) @ self.vec.T
        return scores if self.bias is None else scores + self.bias


class Variant(H.MaskedWords):
    """Notebook 07's MaskedWords with this tool's variants as overrides; the defaults are MaskedWords itself."""

    def __init__(self, body, targets, log_freq, p, out="learned", mask="learned", bert=False):
        # Another output layer replaces MaskedWords' below: its random draws must not shift the ones that follow.
        with torch.random.fork_rng(devices=[], enabled=out != "learned"):
            super().__init__(body, targets, log_freq, p)
        if out != "learned":
            self.out = GloveScores(body.config["d_model"], body.emb.weight[targets], log_freq, bias=out == "glovebias")
        if mask == "unk":  # <unk>'s row of the (frozen) embedding, not a vector of its own
            del self.mask
            self.register_buffer("mask", body.emb.weight[H.UNK_IDX].detach().clone())
        self.bert = bert
        self.register_buffer("targets", targets.clone())

    def forward(self, tokens, generator=None):
        if not self.bert:
            return super().forward(tokens, generator)
        # BERT's rule: of the hidden words, 80% get the mask, 10% a random target word, 10% stay as they are
        target = self.target_of[tokens]
        hide = (torch.rand(tokens.shape, generator=generator) < self.p) & (target >= 0)
        rule = torch.rand(tokens.shape, generator=generator)
        swap, masked = hide & (rule >= 0.8) & (rule < 0.9), hide & (rule < 0.8)
        words = self.targets[torch.randint(len(self.targets), tokens.shape, generator=generator)]
        x = torch.where(swap.unsqueeze(-1), self.body.emb(words), self.body.emb(tokens))
        x = torch.where(masked.unsqueeze(-1), self.mask, x)
        h = self.body.encoder(self.body.pos(x), src_key_padding_mask=tokens == H.PAD_IDX)
        return self.out(h[hide]), target[hide]


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    return os.uname().machine


def prepare():
    """The quick size's training reviews cut as notebooks 07 and 07b cut them, split by film as notebook 02b does."""
    glove = H.load_glove()
    vocab = H.build_vocab(glove)
    reviews = H.IMDBDataset(H.imdb_root("quick"), train=True)
    encoded = H.EncodedDataset.from_dataset(reviews, vocab, 256, 192)
    train_idx, valid_idx = H.split_by_group(reviews.movies, 0.95, H.SEED)
    return dict(tokens=encoded.tokens, train_idx=train_idx, valid_idx=valid_idx, emb=H.embedding_matrix(glove),
                glove=glove.name)


def target_words(train, n, rows):
    """helpers.target_words' n most frequent words of the training text (not <unk>, <pad>) and log frequencies, as
    the recorded table counted them: over all `rows` of the vocabulary, in double precision. topk breaks ties at the
    n-th word's count by position, and the counts' length moves that: on the quick text 349 words tie at the
    10,000th word's 19 occurrences, and helpers.target_words would take 45 others of them (frequency-only loss
    6.2434, not the table's 6.2438). Kept so that a rerun row matches the rows recorded before it."""
    counts = torch.bincount(torch.cat(train), minlength=rows)
    counts[[H.UNK_IDX, H.PAD_IDX]] = 0
    targets = counts.topk(n).indices
    freq = counts[targets].double()
    return targets, (freq / freq.sum()).log().float()


def texts(token_lists):
    return H.EncodedDataset([0] * len(token_lists), token_lists)


def batches(seqs, bs, g):
    """One epoch of whole batches of bs texts in a random order (a short last batch is left out)."""
    perm = torch.randperm(len(seqs), generator=g).tolist()
    for i in range(0, len(perm) - bs + 1, bs):
        yield H.collate_batch([(0, seqs[j]) for j in perm[i:i + bs]])[1]


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("NT", "2")))
    d = prepare()
    train = [d["tokens"][i] for i in d["train_idx"]]
    valid = [d["tokens"][i] for i in d["valid_idx"]]
    if a.len < 256:  # cut each review into chunks
        def chunks(ts):
            return [c for t in ts for c in t.split(a.len) if len(c) >= 8]
        train, valid = chunks(train), chunks(valid)
    targets, log_freq = target_words(train, a.targets, len(d["emb"]))
    freq_loss = H.frequency_loss(texts(valid), targets, log_freq)
    valid_loader = [(None, H.collate_batch([(0, t) for t in valid[i:i + 128]])[1]) for i in range(0, len(valid), 128)]

    H.set_seed(a.seed)
    body = H.TextClassifier(d["emb"], 2, max_len=512, dropout=a.dropout)
    m = Variant(body, targets, log_freq, a.p, out=a.out, mask=a.mask, bert=a.bert)
    body.emb.weight.requires_grad = False  # GloVe stays as it is
    opt, sched = H.make_optimizer(m, a.lr, a.steps, a.wd)

    def held_out_loss():
        loss = H.masked_words_loss(m, valid_loader, CPU, seed=EVAL_SEED)  # leaves m in eval mode
        m.train()
        return loss

    g, step, began, losses = torch.Generator().manual_seed(a.seed), 0, time.time(), []
    every = max(1, a.steps // 4)
    m.train()
    while step < a.steps:
        for b in batches(train, a.bs, g):
            scores, answers = m(b)
            loss = F.cross_entropy(scores, answers)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step % every == 0:
                print(f"step {step} train {sum(losses[-every:]) / len(losses[-every:]):.3f} valid "
                      f"{held_out_loss():.3f} t {time.time() - began:.0f}s", flush=True)
            if step >= a.steps:
                break
    v = held_out_loss()
    row = dict(change=a.change, valid_loss=round(v, 4), frequency_loss=round(freq_loss, 4),
               gain=round(freq_loss - v, 4), seconds=round(time.time() - began),
               args={k: w for k, w in vars(a).items() if k not in ("change", "record")})
    print("RESULT", json.dumps(row), flush=True)
    if a.record:
        path = H.ROOT / a.record
        table = json.loads(path.read_text()) if path.exists() else dict(
            steps=a.steps, batch_size=a.bs, max_len=256, glove=d["glove"], machine=cpu_model(),
            note="one change at a time from the defaults of tools/masked_words.py; seconds on a shared, loaded machine",
            runs=[])
        table["runs"] = [r for r in table["runs"] if r["change"] != a.change] + [row]
        path.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()
