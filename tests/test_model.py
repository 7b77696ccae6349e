"""The model, training and prediction (helpers.py 6-7): padding, batch-mates, positions, learning, the
learning-rate schedule, keeping the best epoch, freezing, heads, prediction."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_pre_hook

import helpers
from kit_support import make_model

REPO = Path(__file__).resolve().parent.parent

PAD = helpers.PAD_IDX


def tokens(*rows, pad_to=None):
    """A (batch, seq) LongTensor of the rows, padded with <pad> to pad_to (or the longest row)."""
    width = pad_to or max(map(len, rows))
    return torch.tensor([list(r) + [PAD] * (width - len(r)) for r in rows])


@torch.no_grad()
def test_padding_does_not_change_the_kit_model_output(tiny_glove):
    model = make_model(tiny_glove).eval()
    text = [5, 6, 7, 8, 3]
    alone = model(tokens(text))
    for extra in (1, 4, 20):
        assert torch.allclose(model(tokens(text, pad_to=len(text) + extra)), alone, atol=1e-5), extra


@torch.no_grad()
def test_padding_changes_the_course_model_output(tiny_glove):
    torch.manual_seed(0)
    course = helpers.CourseNet(tiny_glove.vectors, 2, vocab_size=len(tiny_glove.words)).eval()
    text = [3, 4, 5, 6, 2]
    assert not torch.allclose(course(tokens(text, pad_to=9)), course(tokens(text)), atol=1e-3)


@torch.no_grad()
def test_batch_mates_do_not_change_a_text_output(tiny_glove):
    model = make_model(tiny_glove).eval()
    short, long_ = [4, 9, 2], [5, 6, 7, 8, 9, 10, 11, 12, 13, 2]
    alone = model(tokens(short))
    together = model(tokens(long_, short, [3] * 6))
    assert torch.allclose(together[1:2], alone, atol=1e-5)
    assert torch.allclose(together[0:1], model(tokens(long_)), atol=1e-5)


def test_masked_mean_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[False, False, True]])
    assert helpers.masked_mean(h, mask).tolist() == [[2.0, 3.0]]


def test_positional_encoding_refuses_texts_longer_than_max_len():
    pe = helpers.PositionalEncoding(8, max_len=10, dropout=0.0)
    assert pe(torch.zeros(2, 10, 8)).shape == (2, 10, 8)
    with pytest.raises(ValueError, match="11 tokens is longer than max_len=10"):
        pe(torch.zeros(1, 11, 8))


def sinusoid_table(n: int, d: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)), written out in float64."""
    table = torch.zeros(n, d, dtype=torch.float64)
    for pos in range(n):
        for j in range(d):
            angle = pos / 10000 ** (2 * (j // 2) / d)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table


@pytest.mark.parametrize("d_model", [8, 7])
@torch.no_grad()
def test_positional_encoding_adds_the_sinusoid_table(d_model):
    pe = helpers.PositionalEncoding(d_model, max_len=50, dropout=0.5).eval()  # eval: no dropout
    table = sinusoid_table(50, d_model).float()
    assert table[0, :4].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert table[1, 2].item() == pytest.approx(math.sin(0.1 if d_model == 8 else 1 / 10000 ** (2 / 7)))
    x = torch.randn(3, 50, d_model, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pe(x), x + table, rtol=0, atol=1e-5)
    torch.testing.assert_close(pe(x[:, :9]), x[:, :9] + table[:9], rtol=0, atol=1e-5)  # a shorter text


@torch.no_grad()
def test_word_order_changes_the_kit_model_output(tiny_glove):
    # Without position signals, self-attention and a mean over positions could not tell orders apart.
    model = make_model(tiny_glove).eval()
    text = [4, 5, 6, 7, 3]
    assert not torch.allclose(model(tokens(text)), model(tokens(text[::-1])), atol=1e-4)


def toy_batch():
    """Eight short texts whose label is whether word 4 ('good') or word 5 ('bad') appears."""
    good, bad = [[4, 8, 3], [9, 4], [4, 4, 11, 3], [8, 9, 4]], [[5, 8, 3], [9, 5], [5, 5, 11, 3], [8, 9, 5]]
    return torch.tensor([1, 1, 1, 1, 0, 0, 0, 0]), tokens(*good, *bad)


def test_a_few_training_steps_lower_the_loss(tiny_glove):
    model = make_model(tiny_glove, dropout=0.0)
    labels, x = toy_batch()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert torch.equal(model.emb.weight, helpers.embedding_matrix(tiny_glove))  # GloVe stays frozen


def test_freeze_body_leaves_only_the_head_trainable(tiny_glove):
    model = helpers.freeze_body(make_model(tiny_glove, num_classes=3))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    assert helpers.count_trainable(model) == model.head.weight.numel() + model.head.bias.numel() == 8 * 3 + 3
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    labels, x = toy_batch()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    F.cross_entropy(model(x), labels).backward()
    opt.step()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in body.items())


def test_replace_head_swaps_only_the_last_layer(tiny_glove):
    model = make_model(tiny_glove, num_classes=4)
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    old_head = model.head
    helpers.replace_head(model, 2)
    assert model.head is not old_head and model.head.out_features == 2 and model.head.in_features == 8
    assert model.config["num_classes"] == 2
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in body.items())
    assert model(tokens([4, 5])).shape == (1, 2)


def test_train_model_learns_and_reports_history(tiny_glove, capsys):
    torch.manual_seed(0)
    labels, x = toy_batch()
    data = helpers.EncodedDataset(labels.tolist() * 4, [row[row != PAD] for row in x] * 4)
    train = helpers.make_loader(data, 8, train=True)
    valid = helpers.make_loader(data, 16, train=False)
    model = make_model(tiny_glove)
    before, _ = helpers.evaluate(model, valid, torch.device("cpu"))
    history = helpers.train_model(model, train, valid, epochs=4, lr=1e-2, device=torch.device("cpu"))
    assert history["epoch"] == [1, 2, 3, 4]
    assert all(len(history[k]) == 4 for k in ("train_loss", "valid_loss", "valid_acc", "seconds", "lr"))
    assert history["train_loss"][-1] < 0.7 * history["train_loss"][0]
    # the model ends with the weights that scored the best epoch's numbers
    loss, acc = helpers.evaluate(model, valid, torch.device("cpu"))
    best = history["best_epoch"] - 1
    assert (loss, acc) == (pytest.approx(history["valid_loss"][best], abs=1e-6), history["valid_acc"][best])
    assert loss < before and acc == 1.0
    assert "epoch 4/4" in capsys.readouterr().out


def linear_task(n=40, batch_size=8, seed=0):
    """A linear head and plain DataLoaders of (labels, features): train_model on the cheapest model there is."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    torch.manual_seed(seed)
    data = torch.utils.data.TensorDataset(y, x)
    return (torch.nn.Linear(6, 3), torch.utils.data.DataLoader(data, batch_size=batch_size),
            torch.utils.data.DataLoader(data, batch_size=n))


@pytest.mark.parametrize("state", [False, True], ids=["plain", "with a state file"])
@pytest.mark.parametrize("accuracies,best", [([0.5, 0.9, 0.7, 0.6], 2), ([0.8, 0.3, 0.4, 0.5], 1),
                                             ([0.5, 0.9, 0.9, 0.6], 2), ([0.1, 0.2, 0.3, 0.4], 4)],
                         ids=["best 2", "best 1", "tie: the first", "best last"])
def test_train_model_ends_with_the_best_epochs_weights(monkeypatch, tmp_path, state, accuracies, best):
    """Validation scores are scripted, so the best epoch is known; the weights at each evaluation are recorded.

    With and without the lines marked `# resume`; a tie keeps the earlier epoch (a later one is no better).
    """
    snapshots = []

    def scripted_evaluate(model, loader, device):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        acc = accuracies[len(snapshots) - 1]
        return 1.0 - acc, acc

    monkeypatch.setattr(helpers, "evaluate", scripted_evaluate)
    model, train, valid = linear_task()
    history = helpers.train_model(model, train, valid, 4, 0.1, torch.device("cpu"),
                                  state_file=tmp_path / "state.pt" if state else None)
    assert len(snapshots) == 4 and history["valid_acc"] == accuracies and history["best_epoch"] == best
    for a, b in zip(snapshots, snapshots[1:]):  # every epoch moved the weights, so the comparison means something
        assert not torch.equal(a["weight"], b["weight"])
    final = model.state_dict()
    assert final.keys() == snapshots[best - 1].keys()
    for k, v in snapshots[best - 1].items():
        assert torch.equal(final[k], v), k


def test_train_model_warms_the_learning_rate_up_then_anneals_it():
    """The one-cycle schedule must really step: the optimizer's learning rate rises to lr, then falls far below."""
    used = []  # the learning rate of every optimizer step, as the optimizer saw it

    def record(optimizer, args, kwargs):
        used.append({g["lr"] for g in optimizer.param_groups})

    model, train, valid = linear_task(n=40, batch_size=4)  # 10 steps an epoch
    lr = 1e-2
    handle = register_optimizer_step_pre_hook(record)
    try:
        history = helpers.train_model(model, train, valid, epochs=3, lr=lr, device=torch.device("cpu"))
    finally:
        handle.remove()
    assert len(used) == 30 and all(len(s) == 1 for s in used)  # every parameter group at the same rate
    used = [s.pop() for s in used]
    peak = used.index(max(used))
    assert used[0] < 0.1 * lr and 0.8 * lr < used[peak] <= lr * (1 + 1e-9)  # warm-up from low to about lr, never above
    assert 0 < peak < 10
    assert all(a < b for a, b in zip(used[:peak], used[1:peak + 1]))
    assert all(a > b for a, b in zip(used[peak:], used[peak + 1:]))
    assert used[-1] < 1e-3 * lr
    assert len(history["lr"]) == 3 and history["lr"][0] > history["lr"][1] > history["lr"][2]
    assert history["lr"][-1] < 0.02 * lr


def test_evaluate_matches_a_direct_computation(tiny_glove):
    model = make_model(tiny_glove)
    labels, x = toy_batch()
    data = helpers.EncodedDataset(labels.tolist(), [row[row != PAD] for row in x])
    loss, acc = helpers.evaluate(model, helpers.make_loader(data, 3, train=False), torch.device("cpu"))
    with torch.no_grad():
        logits = model.eval()(x)
    assert loss == pytest.approx(F.cross_entropy(logits, labels).item(), abs=1e-5)
    assert acc == (logits.argmax(1) == labels).float().mean().item()


# ---------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   ", '""', ";:"])
def test_predict_refuses_text_with_nothing_to_classify(tiny_glove, text):
    model, vocab = make_model(tiny_glove), helpers.build_vocab(tiny_glove)
    with pytest.raises(ValueError, match="empty text"):
        helpers.predict(model, vocab, text, ["neg", "pos"], torch.device("cpu"))


def test_predict_on_unknown_words_only_classifies_the_unk_tokens(tiny_glove):
    model, vocab = make_model(tiny_glove), helpers.build_vocab(tiny_glove)
    [(name, prob)] = helpers.predict(model, vocab, "Zyxx qwrt plmk", ["neg", "pos"], torch.device("cpu"))
    with torch.no_grad():
        expected = F.softmax(model.eval()(torch.tensor([[helpers.UNK_IDX] * 3])), dim=1)[0]
    assert name == ["neg", "pos"][expected.argmax()] and prob == round(expected.max().item(), 4)
    # any three unknown words are the same three <unk> tokens
    assert helpers.predict(model, vocab, "Qwzz vvbn xkcdq", ["neg", "pos"], torch.device("cpu")) == [(name, prob)]


def test_predict_takes_one_text_or_many_and_matches_the_model(tiny_glove):
    model, vocab = make_model(tiny_glove), helpers.build_vocab(tiny_glove)
    texts = ["good movie!", "an awful, awful plot and a bad actor."]
    many = helpers.predict(model, vocab, texts, ["neg", "pos"], torch.device("cpu"))
    assert [helpers.predict(model, vocab, t, ["neg", "pos"], torch.device("cpu"))[0] for t in texts] == many
    with torch.no_grad():
        probs = F.softmax(model.eval()(tokens(helpers.encode(texts[0], vocab))), dim=1)[0]
    assert many[0] == (["neg", "pos"][probs.argmax()], round(probs.max().item(), 4))


def test_predict_cuts_a_long_text_to_max_len(tiny_glove):
    model, vocab = make_model(tiny_glove, max_len=6), helpers.build_vocab(tiny_glove)
    words = "good movie great plot awful film bad actor the plot awful bad good".split()

    def pred(text, **kw):
        return helpers.predict(model, vocab, text, ["neg", "pos"], torch.device("cpu"), **kw)

    first_six = pred(" ".join(words[:6]))
    assert pred(" ".join(words)) == first_six  # model.config["max_len"] is 6
    assert pred(" ".join(words[-6:])) != first_six  # the tokens kept make a difference
    assert pred(" ".join(words), max_len=3) == pred(" ".join(words[:3])) != first_six
    with torch.no_grad():
        probs = F.softmax(model.eval()(tokens(helpers.encode(" ".join(words[:6]), vocab))), dim=1)[0]
    assert first_six == [(["neg", "pos"][probs.argmax()], round(probs.max().item(), 4))]


@pytest.mark.parametrize("steps", [2, 3, 10, 11])
def test_train_model_schedules_any_small_number_of_steps(steps):
    # OneCycle with a 10% warm-up divided by zero at exactly 10 steps; the warm-up now has at least 1.5
    torch.manual_seed(0)
    x, y = torch.randn(steps, 3), torch.randint(0, 2, (steps,))
    head = torch.nn.Linear(3, 2)
    history = helpers.train_model(head, helpers.feature_loader(x, y, 1, train=True),
                                  helpers.feature_loader(x, y, 4, train=False), 1, 1e-2, torch.device("cpu"))
    assert history["epoch"] == [1] and 0 <= history["lr"][0] < 1e-2


@pytest.mark.parametrize("mps", [False, True])
def test_the_mha_fast_path_is_off_only_where_the_kit_runs_on_the_cpu(mps):
    """Measured slower on the CPU only (benchmarks/README.md): a machine with MPS (or CUDA) keeps PyTorch's default."""
    code = ("import torch\n"
            f"torch.backends.mps.is_available = lambda: {mps}\n"
            "import helpers\n"
            "print(helpers.get_device().type, torch.backends.mha.get_fastpath_enabled())\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == (["mps", "True"] if mps else ["cpu", "False"])


# ---------------------------------------------------------------------------
# One optimizer step: clipping, weight decay, and what each regime of notebook 07b trains
# ---------------------------------------------------------------------------
def test_train_step_clips_the_gradient_norm():
    """Plain SGD steps, computed by hand: each update is that batch's own gradient scaled down to norm `clip`
    (no gradient left over from the step before)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    clip = 0.1
    for step in range(2):
        x, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
        before = [p.detach().clone().requires_grad_() for p in model.parameters()]
        grads = torch.autograd.grad(F.cross_entropy(F.linear(x, *before), y), before)
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
        assert norm > 5 * clip  # so clipping changes the step a lot
        loss = helpers.train_step(model, y, x, opt, sched, clip=clip)
        assert loss == pytest.approx(F.cross_entropy(F.linear(x, *before), y).item(), rel=1e-6)
        for p, p0, g in zip(model.parameters(), before, grads):
            torch.testing.assert_close(p.detach(), p0.detach() - g * clip / norm, rtol=0, atol=1e-5)


# What a TextClassifier of make_model (d_model 8, feed-forward 16, 2 layers) holds, counted by hand:
D, FF = 8, 16
LAYER = (3 * D * D + 3 * D) + (D * D + D) + (D * FF + FF) + (FF * D + D) + 2 * (2 * D)  # attention, ffn, 2 norms
HEAD = D * 2 + 2
DECAYED = [f"encoder.layers.{i}.{name}" for i in (0, 1) for name in
           ("self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight")] + \
    ["head.weight"]


def test_make_optimizer_decays_weight_matrices_only(tiny_glove):
    """AdamW with zero gradients moves a parameter only by its weight decay: exactly the matrices shrink,
    not biases, LayerNorm weights or word vectors (the trained rows included)."""
    labels, x = toy_batch()
    model = helpers.unfreeze(make_model(tiny_glove), x[x != PAD].unique())
    opt, _ = helpers.make_optimizer(model, lr=0.1, steps=10, weight_decay=0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert "emb.rows" in before
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    lr = opt.param_groups[0]["lr"]
    opt.step()
    after = dict(model.named_parameters())
    assert [n for n in before if not torch.equal(after[n], before[n])] == DECAYED
    for n in DECAYED:
        torch.testing.assert_close(after[n].detach(), before[n] * (1 - lr * 0.5))


@pytest.mark.parametrize("regime,trainable,moved_rows", [
    ("head only", HEAD, False), ("encoder + head", 2 * LAYER + HEAD, False),
    ("everything", 2 * LAYER + HEAD + 6 * D, True)])
def test_configure_trains_what_each_regime_says(tiny_glove, regime, trainable, moved_rows):
    """The parameter count of each regime, and what one training step moves: the word vectors only in
    "everything", and then only the rows of the words given (the six the batch uses)."""
    labels, x = toy_batch()
    word_ids = x[x != PAD].unique()
    assert len(word_ids) == 6
    model = helpers.configure(make_model(tiny_glove, dropout=0.0), regime, word_ids)
    assert helpers.count_trainable(model) == trainable
    vocab_ids = torch.arange(len(tiny_glove.words) + 2)
    rows_before = model.emb(vocab_ids).detach().clone()
    body_before = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("emb.")}
    opt, sched = helpers.make_optimizer(model, 1e-2, steps=10)
    helpers.train_step(model, labels, x, opt, sched)
    rows_after = model.emb(vocab_ids).detach()
    moved = [i for i in vocab_ids.tolist() if not torch.equal(rows_after[i], rows_before[i])]
    assert moved == (word_ids.tolist() if moved_rows else [])
    body = dict(model.named_parameters())
    changed = {n for n, v in body_before.items() if not torch.equal(body[n], v)}
    assert changed == ({n for n in body_before if n.startswith("head.")} if regime == "head only" else set(body_before))


# ---------------------------------------------------------------------------
# test_predictions
# ---------------------------------------------------------------------------
def test_test_predictions_are_in_the_datasets_order(tiny_glove):
    """The evaluation loader runs texts shortest first; the probabilities must come back in dataset order."""
    model = make_model(tiny_glove).eval()
    texts = [[4, 5, 6, 7, 8, 9, 10], [4], [5, 6, 7], [11, 3, 4, 5, 6], [8, 9], [3, 3, 3, 3, 3, 3, 3, 3, 3], [10, 11]]
    data = helpers.EncodedDataset([i % 2 for i in range(len(texts))], texts)
    loader = helpers.make_loader(data, 3, train=False)
    assert [i for b in loader.batch_sampler for i in b] != list(range(len(texts)))  # the loader's order differs
    probs, labels = helpers.test_predictions(model, loader, torch.device("cpu"))
    assert labels.tolist() == data.labels
    with torch.no_grad():
        alone = torch.cat([F.softmax(model(tokens(t)), dim=1) for t in texts])
    torch.testing.assert_close(probs, alone, rtol=0, atol=1e-5)
