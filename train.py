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
import copy
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

    def sum(self, values: list) -> list:
        """The numbers added up over all processes (all_reduce); as they are in one process."""
        if not self.distributed:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()


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
# The training loop, with what a long or parallel run adds
# ---------------------------------------------------------------------------
def fit(net: nn.Module, train_loader: DataLoader, valid_loader: DataLoader, epochs: int, lr: float, procs: Procs,
        desc: str, state_file=None) -> dict:
    """Notebook 04's train_model, step for step, plus two extras a script needs, each marked below.

    - Several processes: `net` is wrapped in DDP, every process draws the same global batches and trains
      on its slice, the training loss is added up over processes, and each process evaluates the whole
      validation set (so all of them pick the same best epoch).
    - Resume: with `state_file`, the training state is saved after every epoch (by rank 0), and a run that
      finds it carries on after the last finished epoch (notebook 04's train_model does the same, given a state file).
    """
    ddp = wrap(net, procs)  # DDP: backward() averages the gradients of all processes
    opt, sched = helpers.make_optimizer(net, lr, steps=epochs * len(train_loader))
    progress = helpers.new_progress(net)
    if state_file is not None and state_file.exists():  # resume
        progress = helpers.load_training_state(state_file, net, opt, sched, train_loader, epochs, progress)
    history = progress["history"]
    for epoch in range(len(history["epoch"]) + 1, epochs + 1):
        ddp.train()
        train_loader.batch_sampler.set_epoch(epoch - 1)  # DDP: this epoch's global batches, alike everywhere
        start, loss_sum, n = time.perf_counter(), 0.0, 0
        for labels, inputs in helpers.tqdm(train_loader, desc=f"{desc} {epoch}/{epochs}", leave=False, unit="batch"):
            loss = helpers.train_step(ddp, labels.to(procs.device), inputs.to(procs.device), opt, sched)
            loss_sum, n = loss_sum + loss * len(labels), n + len(labels)
        seconds = time.perf_counter() - start
        loss_sum, n = procs.sum([loss_sum, n])  # DDP: the mean over every process's texts
        valid_loss, valid_acc = helpers.evaluate(net, valid_loader, procs.device)
        for k, v in zip(history, (epoch, loss_sum / n, valid_loss, valid_acc, seconds, sched.get_last_lr()[0])):
            history[k].append(v)
        print(f"{desc} epoch {epoch}/{epochs}: train loss {loss_sum / n:.4f}, valid loss {valid_loss:.4f}, "
              f"valid acc {valid_acc:.4f}, {seconds:.1f} s", flush=True)
        if valid_acc > progress["best_acc"]:
            progress.update(best_acc=valid_acc, best_state=copy.deepcopy(net.state_dict()))
        if state_file is not None and procs.main:  # resume
            helpers.save_training_state(state_file, net, opt, sched, train_loader, epochs, progress)
    net.load_state_dict(progress["best_state"])
    history["best_epoch"] = history["epoch"][history["valid_acc"].index(progress["best_acc"])]
    return history


# ---------------------------------------------------------------------------
# The three trainings
# ---------------------------------------------------------------------------
class Course:
    """What the stages share: arguments, size settings, processes, GloVe and the vocabulary."""

    def __init__(self, args, procs: Procs):
        self.args, self.procs = args, procs
        self.size, self.cfg = helpers.run_size(args.size)
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

    def data(self, stage: str, model: helpers.TextClassifier):
        """Encoded train/valid/test sets, cut by the model's rule, and their one-process loaders (helpers.make_splits,
        as the notebooks)."""
        if stage == "pretrain":
            root = in_turn(self.procs, lambda: helpers.ag_news_root(self.size))
            train, test, desc = helpers.ag_news_splits(root)
            desc, limit = f"{desc}, train split 95/5 into train/valid", self.cfg["limit_ag"]
        else:
            root = in_turn(self.procs, lambda: helpers.imdb_root(self.size))
            train, test = helpers.IMDBDataset(root, train=True), helpers.IMDBDataset(root, train=False)
            desc, limit = f"IMDB {helpers.shown_path(root)}, train split 95/5 into train/valid, test held out", None
        datasets, loaders = helpers.make_splits(train, test, self.vocab, batch_size=self.batch_size, limit=limit,
                                                **helpers.cut_rule(model))
        return datasets, loaders, desc

    def start(self, stage: str) -> helpers.TextClassifier:
        """The model before training: notebook 04's fresh one, or its checkpoint with a new 2-class head (05, 06)."""
        if stage == "pretrain":
            return helpers.pretraining_start(self.glove, self.cfg)
        return helpers.finetuning_start(helpers.checkpoint_path("ag_news", self.size), self.glove, self.vocab,
                                        hint="Run `python train.py pretrain` (or notebook 04) first.")

    def resumable_state(self, ckpt_name: str):
        """Where a stage's training state is saved and resumed from (the notebooks use the same files)."""
        path = helpers.training_state_path(ckpt_name, self.size)
        if self.args.fresh and self.procs.main:
            path.unlink(missing_ok=True)
        self.procs.barrier()
        return path

    def run(self, stage: str) -> dict:
        ckpt_name, run_name, what = STAGES[stage]
        procs, (epochs, lr) = self.procs, self.settings(stage)
        self.log(f"\n== {stage}: {what}")
        model = self.start(stage)
        datasets, loaders, desc = self.data(stage, model)
        run = helpers.Run(run_name, self.size, self.cfg, procs.device, self.glove, data=desc)
        if stage == "full":  # everything trains, the vectors of the training texts' words too (notebook 05)
            helpers.unfreeze(model, helpers.training_words(datasets["train"]))
        if self.args.dropout is not None:
            set_dropout(model, self.args.dropout)
        model.to(procs.device)
        net, extra = model, {}
        if stage == "full":
            extra["embedding_rows_trained"] = len(model.emb.word_ids)
        train_loader, valid_loader = shard_loader(loaders["train"], procs, True, self.args.max_steps), loaders["valid"]
        if stage == "head":  # the frozen body runs once over every text, in length order; then only the head trains
            helpers.freeze_body(model)
            started = time.perf_counter()
            feats = {k: pooled_features_everywhere(model, shard_loader(
                helpers.make_loader(ds, self.batch_size, train=False), procs, train=False), procs)
                for k, ds in datasets.items()}
            extra["feature_seconds"] = time.perf_counter() - started
            features = {k: helpers.feature_loader(*feats[k], self.batch_size, train=(k == "train")) for k in feats}
            net, valid_loader = model.head, features["valid"]
            train_loader = shard_loader(features["train"], procs, True, self.args.max_steps)
        state = self.resumable_state(ckpt_name)
        history = fit(net, train_loader, valid_loader, epochs, lr, procs, stage, state)
        # the best epoch's weights are back in place; for `head`, the whole model now holds the trained head
        test_loss, test_acc = helpers.evaluate(model, loaders["test"], procs.device)
        if procs.main:  # one process writes; the others wait at the barrier below
            if stage != "pretrain":
                ag_news = helpers.checkpoint_path("ag_news", self.size)
                extra |= dict(pretrained_from=ag_news, pretrained_sha256=helpers.file_digest(ag_news))
            if stage == "head":
                extra["train_seconds"] = extra["feature_seconds"] + sum(history["seconds"])
            fig = helpers.plot_history(history, f"{what} ({self.size}, {procs.world_size} process(es))")
            record = helpers.save_run(
                run, history, datasets, model, fig, valid_acc=max(history["valid_acc"]), test_acc=test_acc,
                test_loss=test_loss, script="train.py", processes=procs.world_size, backend=procs.backend,
                global_batch_size=self.batch_size, batch_size_per_process=self.batch_size // procs.world_size, lr=lr,
                max_steps_per_epoch=self.args.max_steps, dropout=model.config["dropout"], **extra)
            path = helpers.checkpoint_path(ckpt_name, self.size)
            classes = helpers.AG_NEWS_CLASSES if stage == "pretrain" else helpers.IMDB_CLASSES
            helpers.save_checkpoint(path, model, self.vocab, self.glove.name, classes, saved_by_rank=procs.rank,
                                    **record)
            self.log(f"{stage}: test accuracy {test_acc:.4f} (loss {test_loss:.4f}) on {len(datasets['test']):,} "
                     f"texts, {record['seconds_per_epoch']:.1f} s per epoch\n  checkpoint {helpers.shown_path(path)}")
        procs.barrier()  # the next stage loads this checkpoint on every rank
        return history


def set_dropout(model: nn.Module, p: float) -> None:
    """Every nn.Dropout in the model set to p (0 turns it off, for runs that must repeat exactly).

    Attention-weight dropout is the model's own setting (attention_dropout, 0 by default) and stays.
    """
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = p
    model.config["dropout"] = p


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
    ap.add_argument("--fresh", action="store_true",
                    help="discard saved training states and train from the start (by default a run resumes, "
                         "and a finished stage is not trained again)")
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
        helpers.banner(device=f"{procs.device} ({helpers.device_name(procs.device)})",
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
