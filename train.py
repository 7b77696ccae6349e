"""train.py: the course's three trainings from the command line, in one process or many.

    python train.py pretrain            notebook 04: AG News, 4 classes     -> checkpoint ag_news
    python train.py full                notebook 05: all of it on IMDB      -> checkpoint imdb_full
    python train.py head                notebook 06: only a new head, IMDB  -> checkpoint imdb_head
    python train.py all                 the three in order

Same settings as the notebooks (helpers.SIZES, chosen by --size or KIT_SIZE), same checkpoints
(helpers.checkpoint_path) and metrics files (helpers.save_run). Started by torchrun, the same
command trains with DistributedDataParallel, one process per GPU (or per CPU slot):

    torchrun --nnodes=1 --node_rank=0 --nproc_per_node=8 --master_addr=127.0.0.1 --master_port=29500 train.py full

docs/scaling.md says when to use it, gives the commands for 1 GPU, 8 GPUs and 2 nodes, and
walks through the lines below that make the difference.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import itertools
import os
import sys
import time
from dataclasses import dataclass

# torchrun gives every process its RANK; only rank 0 shows progress bars.
if int(os.environ.get("RANK", "0")) != 0:
    os.environ["TQDM_DISABLE"] = "1"  # read by tqdm when it is imported, so before helpers

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler, Sampler  # noqa: E402

import helpers  # noqa: E402
from helpers import KitError  # noqa: E402

STAGES = {  # command -> (checkpoint, metrics file as the notebook names it, what it trains)
    "pretrain": ("ag_news", "04_pretrain_ag_news", "AG News pretraining, 4 classes (notebook 04)"),
    "full": ("imdb_full", "05_full_finetune_imdb", "IMDB fine-tuning of the whole model (notebook 05)"),
    "head": ("imdb_head", "06_head_only_finetune",
             "IMDB fine-tuning of a new head only, on pooled features (notebook 06)"),
}


# ---------------------------------------------------------------------------
# Processes: one, or one per GPU under torchrun
# ---------------------------------------------------------------------------
@dataclass
class Procs:
    """Who this process is in the job. Without torchrun: rank 0 of 1, not distributed."""
    device: torch.device
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = "none"
    distributed: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start_processes() -> Procs:
    """Join the torchrun job if there is one: nccl with a GPU each, gloo on CPUs; else one process."""
    if "LOCAL_RANK" not in os.environ:  # plain `python train.py ...`
        return Procs(device=helpers.get_device())
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise KitError(f"Process {local_rank} on this node has no GPU of its own ({torch.cuda.device_count()} "
                           "visible): make --nproc_per_node at most the number of GPUs.")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    # MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE come from torchrun
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return Procs(device, rank, local_rank, world, backend, distributed=True)


def in_turn(procs: Procs, fn):
    """fn() on rank 0 first, then on the first process of each node, then on the rest.

    Downloads, extraction and the GloVe cache are written by the first caller; the others find them.
    """
    result, done = None, False
    for mine in (procs.rank == 0, procs.local_rank == 0, True):
        if mine and not done:
            with contextlib.nullcontext() if procs.main else contextlib.redirect_stderr(io.StringIO()):
                result, done = fn(), True  # other ranks: the same notes rank 0 printed, kept quiet
        procs.barrier()
    return result


def wrap(model: nn.Module, procs: Procs) -> nn.Module:
    """The model on this process's device; under torchrun, wrapped so backward() averages gradients.

    Buffers are not re-sent at every forward(): the only one is the fixed positional table, and in
    evaluation, where ranks run different numbers of batches, forward() must start no collective.
    """
    model.to(procs.device)
    if not procs.distributed:
        return model
    no_buffer_sync = ({"forward_sync_buffers": False}  # its name from torch 2.13 on
                      if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                      else {"broadcast_buffers": False})
    return DistributedDataParallel(model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
                                   **no_buffer_sync)


# ---------------------------------------------------------------------------
# Batches: the same global batches on every rank, each rank a slice of them
# ---------------------------------------------------------------------------
class ShardedBatchSampler(Sampler):
    """This process's share of the batches of `batches` (a batch sampler), identical on every rank.

    Training (train=True): every global batch is cut into world_size equal slices and rank r takes
    items r, r + world_size, ...; the per-process batch is batch_size / world_size, and the gradient
    DDP averages is that of the whole global batch. A short last batch loses its remainder (at most
    world_size - 1 texts an epoch) so the slices stay equal. Evaluation (train=False): whole batches
    are dealt out in turn and nothing is dropped. `max_steps` stops each training epoch early.

    set_epoch(e) puts the shuffle where a single process's loader is at epoch e: every rank draws the
    same order, and one process (world_size 1) sees exactly the batches of the notebooks' loader.
    """

    def __init__(self, batches, rank: int = 0, world_size: int = 1, train: bool = True,
                 max_steps: int | None = None):
        self.batches, self.rank, self.world_size, self.train, self.max_steps = \
            batches, rank, world_size, train, max_steps
        self.generator = getattr(batches, "generator", None) or getattr(getattr(batches, "sampler", None),
                                                                        "generator", None)
        if train and self.generator is None and isinstance(getattr(batches, "sampler", None), RandomSampler):
            raise ValueError("A shuffling sampler needs a seeded generator, or every rank would draw other batches.")
        self._start = (0, self.generator.get_state()) if self.generator is not None else None
        self._known = self._start
        self._sizes = None

    def set_epoch(self, epoch: int) -> None:
        if self.generator is None:
            return
        start, state = self._known if epoch >= self._known[0] else self._start
        self.generator.set_state(state)
        for _ in range(epoch - start):  # replay the draws of the epochs in between
            for _ in self.batches:
                pass
        self._known = (epoch, self.generator.get_state())

    def __iter__(self):
        w, r = self.world_size, self.rank
        if not self.train:
            yield from itertools.islice(self.batches, r, None, w)
            return
        steps = 0
        for batch in self.batches:
            if steps == self.max_steps:
                break
            keep = len(batch) // w * w
            if keep:
                yield batch[r:keep:w]
                steps += 1

    def __len__(self):
        if not self.train:
            return len(range(self.rank, len(self.batches), self.world_size))
        if self._sizes is None:  # batch sizes are the same every epoch; count them once, then rewind
            state = self.generator.get_state() if self.generator is not None else None
            self._sizes = [len(b) for b in self.batches]
            if state is not None:
                self.generator.set_state(state)
        steps = sum(size >= self.world_size for size in self._sizes)
        return min(steps, self.max_steps) if self.max_steps else steps


def shard_loader(loader: DataLoader, procs: Procs, train: bool, max_steps: int | None = None) -> DataLoader:
    """The same DataLoader, drawing this process's share of its batches (see ShardedBatchSampler)."""
    sampler = ShardedBatchSampler(loader.batch_sampler, procs.rank, procs.world_size, train, max_steps)
    return DataLoader(loader.dataset, batch_sampler=sampler, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                      persistent_workers=loader.persistent_workers, worker_init_fn=loader.worker_init_fn)


def shard_loaders(loaders: dict, procs: Procs, max_steps: int | None) -> dict:
    return {k: shard_loader(v, procs, train=(k == "train"), max_steps=max_steps) for k, v in loaders.items()}


def pooled_features_everywhere(model, loader: DataLoader, procs: Procs):
    """helpers.pooled_features over a sharded evaluation loader, gathered back into the one-process order."""
    mine = [helpers.pooled_features(model, [batch], procs.device) for batch in loader]
    if procs.distributed:
        everyone = [None] * procs.world_size
        dist.all_gather_object(everyone, mine)
        total = sum(map(len, everyone))
        mine = [everyone[k % procs.world_size][k // procs.world_size] for k in range(total)]
    return torch.cat([f for f, _ in mine]), torch.cat([y for _, y in mine])


# ---------------------------------------------------------------------------
# The three trainings
# ---------------------------------------------------------------------------
class Course:
    """What the stages share: arguments, size settings, processes, GloVe and the vocabulary."""

    def __init__(self, args, procs: Procs):
        self.args, self.procs = args, procs
        self.size, self.cfg = helpers.get_size(args.size)
        self.batch_size = args.batch_size or self.cfg["batch_size"]
        if self.batch_size % procs.world_size:
            raise KitError(f"The global batch size {self.batch_size} does not split evenly over "
                           f"{procs.world_size} processes: pass --batch-size a multiple of {procs.world_size}.")
        dim = in_turn(procs, helpers.choose_glove_dim)
        self.glove = in_turn(procs, lambda: helpers.load_glove(dim))
        self.vocab = helpers.build_vocab(self.glove)

    def log(self, *args) -> None:
        if self.procs.main:
            print(*args, flush=True)

    def settings(self, stage: str) -> tuple[int, float]:
        key = {"pretrain": "pretrain", "full": "finetune", "head": "head"}[stage]
        return self.args.epochs or self.cfg[f"{key}_epochs"], self.args.lr or self.cfg[f"{key}_lr"]

    def data(self, stage: str):
        """Encoded train/valid/test sets and their one-process loaders (helpers.encode_splits, as the notebooks)."""
        if stage == "pretrain":
            root = in_turn(self.procs, lambda: helpers.ag_news_root(self.size))
            train, test, desc = helpers.ag_news_splits(root)
            desc, limit = f"{desc}, train split 95/5 into train/valid", self.cfg["limit_ag"]
        else:
            root = in_turn(self.procs, lambda: helpers.imdb_root(self.size))
            train, test = helpers.IMDBDataset(root, train=True), helpers.IMDBDataset(root, train=False)
            desc, limit = f"IMDB {root}, train split 95/5 into train/valid, test held out", self.cfg["limit_imdb"]
        datasets, loaders = helpers.encode_splits(train, test, self.vocab, self.cfg["max_len"], self.batch_size, limit)
        return datasets, loaders, desc, root

    def pretrained(self) -> helpers.TextClassifier:
        """The AG News model with a fresh 2-class head, as notebooks 05 and 06 start."""
        model, _ = helpers.load_checkpoint(helpers.checkpoint_path("ag_news", self.size), self.glove, self.vocab,
                                           num_classes=len(helpers.AG_NEWS_CLASSES),
                                           hint="Run `python train.py pretrain` (or notebook 04) first.")
        helpers.set_seed()
        return helpers.replace_head(model, len(helpers.IMDB_CLASSES))

    def run(self, stage: str) -> dict:
        ckpt_name, run_name, what = STAGES[stage]
        procs, (epochs, lr) = self.procs, self.settings(stage)
        self.log(f"\n== {stage}: {what}")
        datasets, loaders, desc, root = self.data(stage)
        ag_news = helpers.checkpoint_path("ag_news", self.size)
        if stage == "pretrain":
            helpers.set_seed()
            model = helpers.TextClassifier(helpers.embedding_matrix(self.glove), len(helpers.AG_NEWS_CLASSES),
                                           max_len=self.cfg["max_len"])
        else:
            model = self.pretrained()
        if stage == "full":  # everything trains, the word vectors too where the size says so (notebook 05)
            helpers.unfreeze(model, embedding=self.cfg["finetune_embedding"])
        if self.args.dropout is not None:
            set_dropout(model, self.args.dropout)
        trainable = helpers.count_trainable(model) if stage != "head" else None
        texts = shard_loaders(loaders, procs, self.args.max_steps)
        extra = {} if stage == "pretrain" else dict(pretrained_from=str(ag_news))
        if stage == "head":  # the frozen body runs once over every text, in length order; then only the head trains
            trainable = helpers.count_trainable(helpers.freeze_body(model).to(procs.device))
            started = time.perf_counter()
            feats = {k: pooled_features_everywhere(model, shard_loader(
                helpers.make_loader(ds, self.batch_size, train=False), procs, train=False), procs)
                for k, ds in datasets.items()}
            extra["feature_seconds"] = time.perf_counter() - started
            features = {k: helpers.feature_loader(*feats[k], self.batch_size, train=(k == "train")) for k in feats}
            ddp, loaders = wrap(model.head, procs), shard_loaders(features, procs, self.args.max_steps)
        else:
            ddp, loaders = wrap(model, procs), texts
        history = helpers.train_model(ddp, loaders["train"], loaders["valid"], epochs, lr, procs.device, desc=stage)
        # the best epoch's weights are back in place; for `head`, the whole model now holds the trained head
        test_loss, test_acc = helpers.evaluate(model if stage == "head" else ddp, texts["test"], procs.device)
        seconds_per_epoch = sum(history["seconds"]) / len(history["seconds"])
        facts = dict(  # the keys the notebooks write, so either can read what the other saved
            size=self.size, seed=helpers.SEED, history=history, valid_acc=max(history["valid_acc"]),
            test_acc=test_acc, trainable_params=trainable, seconds_per_epoch=seconds_per_epoch,
            train_seconds=sum(history["seconds"]) + extra.get("feature_seconds", 0.0), epochs=len(history["epoch"]),
            n_train=len(datasets["train"]), n_valid=len(datasets["valid"]), n_test=len(datasets["test"]), **extra)
        facts |= dict(script="train.py", processes=procs.world_size, backend=procs.backend,
                      global_batch_size=self.batch_size, batch_size_per_process=self.batch_size // procs.world_size,
                      lr=lr, max_steps_per_epoch=self.args.max_steps, dropout=model.config["dropout"])
        if procs.main:  # one process writes; the others wait at the barrier below
            path = helpers.checkpoint_path(ckpt_name, self.size)
            if stage != "pretrain":
                facts["pretrained_sha256"] = helpers.file_digest(ag_news)
            classes = helpers.AG_NEWS_CLASSES if stage == "pretrain" else helpers.IMDB_CLASSES
            helpers.save_checkpoint(path, model, self.vocab, self.glove.name, classes, saved_by_rank=procs.rank,
                                    **facts)
            info = dict(device=str(procs.device), device_name=device_name(procs.device), config=self.cfg, data=desc,
                        data_root=str(root), glove=self.glove.name, glove_source=self.glove.source,
                        test_loss=test_loss, checkpoint=str(path), **facts)
            fig = helpers.plot_history(history, f"{what} ({self.size}, {procs.world_size} process(es))")
            metrics = helpers.save_run(run_name, self.size, info, fig)
            self.log(f"{stage}: test accuracy {test_acc:.4f} (loss {test_loss:.4f}) on {len(datasets['test']):,} "
                     f"texts, {seconds_per_epoch:.1f} s per epoch\n  checkpoint {path}\n  metrics    {metrics}")
        procs.barrier()  # the next stage loads this checkpoint on every rank
        return facts


def set_dropout(model: nn.Module, p: float) -> None:
    """Every nn.Dropout in the model set to p (0 turns it off, for runs that must repeat exactly).

    Attention-weight dropout is the model's own setting (attention_dropout, 0 by default) and stays.
    """
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
    model.config["dropout"] = p


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Run the course's trainings (pretrain: notebook 04, full: 05, head: 06) from the command "
                    "line; under torchrun, on several processes with DistributedDataParallel.",
        epilog="See docs/scaling.md for the torchrun commands (1 GPU, 8 GPUs, 2 nodes).")
    ap.add_argument("stages", nargs="+", choices=[*STAGES, "all"], help="what to train, in this order")
    ap.add_argument("--size", choices=list(helpers.SIZES), default=None,
                    help="run size (default: $KIT_SIZE, else full on a GPU and quick on a CPU)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs for every stage (default: the size's)")
    ap.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the size's)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="GLOBAL batch size, split evenly over the processes (default: the size's)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop each epoch after this many optimizer steps (quick checks)")
    ap.add_argument("--dropout", type=float, default=None,
                    help="set every dropout to this (0 makes runs repeat exactly; default: the model's)")
    args = ap.parse_args(argv)
    for flag in ("epochs", "batch_size", "max_steps"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1")
    args.stages = list(STAGES) if "all" in args.stages else args.stages
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files, no window
    procs = None
    try:
        procs = start_processes()
        if not procs.main:
            sys.stdout = open(os.devnull, "w")  # rank 0 speaks for the job; errors still reach stderr
        course = Course(args, procs)
        helpers.banner(device=f"{procs.device} ({device_name(procs.device)})",
                       processes=f"{procs.world_size} ({procs.backend})" if procs.distributed else "1",
                       size=course.size, glove=f"{course.glove.name} from {course.glove.source}",
                       batch_size=f"{course.batch_size} global, {course.batch_size // procs.world_size} per process")
        for stage in args.stages:
            course.run(stage)
    except KitError as e:
        print(f"train.py: {e}", file=sys.stderr)
        return 1
    finally:
        if procs is not None and procs.distributed:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
