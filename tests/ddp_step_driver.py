"""A child process for tests/test_ddp.py, started by torchrun: one optimizer step of train.py's DDP model.

    python -m torch.distributed.run --nproc_per_node=2 ... tests/ddp_step_driver.py OUT

Every rank builds the same small model and takes its slice (items rank, rank + world_size, ...) of one
fixed global batch, as train.py's ShardedBatchSampler deals them; helpers.train_step then makes one plain
SGD step through train.wrap's DistributedDataParallel. Rank 0 writes the weights to OUT. The test computes
the same step by hand, in one process, from the gradient of the whole batch.
"""
import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import helpers  # noqa: E402
from kit_support import make_glove, make_model  # noqa: E402

LR = 0.5  # plain SGD: the step is -LR times the gradient, easy to compute by hand


def task():
    """The model (dropout off) and a global batch of 8 texts of varied length."""
    model = make_model(make_glove(), seed=0, dropout=0.0)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (8,), generator=g)
    texts = [torch.randint(2, 14, (int(n),), generator=g) for n in torch.randint(2, 9, (8,), generator=g)]
    return model, labels, texts


def sgd_step(model, labels, texts, step):
    """One train_step with SGD and a constant rate, on `step(model)` (the model itself, or its DDP wrapper)."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=LR)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    _, tokens = helpers.collate_batch([(0, t) for t in texts])
    helpers.train_step(step(model), labels, tokens, opt, sched, clip=1e9)  # no clipping
    return model


if __name__ == "__main__":
    import gc

    import torch.distributed as dist

    import train

    torch.set_num_threads(1)
    procs = train.start_processes()
    model, labels, texts = task()
    mine, wrapped = list(range(procs.rank, len(texts), procs.world_size)), []
    sgd_step(model, labels[mine], [texts[i] for i in mine],
             lambda m: wrapped.append(train.wrap(m, procs)) or wrapped[0])
    if procs.main:
        torch.save(model.state_dict(), sys.argv[1])
    procs.barrier()
    # Freed after destroy_process_group, a DDP wrapper could abort a rank at exit ("terminate called without an
    # active exception", about 1 run in 7 here): free it while the group still exists.
    wrapped.clear()
    gc.collect()
    dist.destroy_process_group()
