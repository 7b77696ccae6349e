"""Measure what each choice of notebook 07's masked-word pretraining is worth, one change at a time.

    python tools/masked_words.py --change "the recipe"                       # the defaults below
    python tools/masked_words.py --change "hide 30% of the words" --p 0.3    # one change from them
    python tools/masked_words.py ... --record results/cpu-quick-experiments/masked_words.json

The defaults are notebook 07's MaskedWords at the quick size's grid cut (256 tokens, the last 192 from the end):
a learned output layer whose bias starts at the log frequencies, a learned mask vector, 10,000 target words,
peak lr 5e-3 (one-cycle), no dropout, 600 steps of batch 64. Training text: the training reviews less the
validation films (notebook 02's split); the held-out loss is on the validation reviews, with a seeded draw of
hidden words. Each run appends a row to --record (the notebook prints that table).
Variants: --out glovebias (score against GloVe's vectors through a projection, plus a learned bias), --mask unk
(hide with <unk>'s row, which real unknown words share), --bert (BERT's 80/10/10 rule), --dropout, --lr, --steps.
"""
import argparse, os, sys, time, json
from pathlib import Path
import torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import helpers as H
ap = argparse.ArgumentParser()
ap.add_argument('--out', default='learned')  # learned | glovebias
ap.add_argument('--mask', default='learned')  # learned | unk
ap.add_argument('--p', type=float, default=0.15)
ap.add_argument('--lr', type=float, default=5e-3)
ap.add_argument('--steps', type=int, default=600)
ap.add_argument('--bs', type=int, default=64)
ap.add_argument('--len', type=int, default=256)  # chunk length
ap.add_argument('--dropout', type=float, default=0.0)
ap.add_argument('--bert', action='store_true')
ap.add_argument('--targets', type=int, default=10000)
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--wd', type=float, default=0.01)
ap.add_argument('--change', default='the recipe')
ap.add_argument('--record', default='')
a = ap.parse_args()
torch.set_num_threads(int(os.environ.get('NT', '2')))
def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    return os.uname().machine


def prepare():
    glove = H.load_glove()
    vocab = H.build_vocab(glove)
    tr = H.IMDBDataset(H.imdb_root("quick"), train=True)
    enc = H.EncodedDataset.from_dataset(tr, vocab, 256, 192)
    ti, vi = H.split_by_group(tr.movies, 0.95, H.SEED)
    return dict(tokens=enc.tokens, train_idx=ti, valid_idx=vi, emb=H.embedding_matrix(glove), glove=glove.name)
d = prepare()
toks = d['tokens']
train = [toks[i] for i in d['train_idx']]; valid = [toks[i] for i in d['valid_idx']]
if a.len < 256:  # cut each review into chunks
    def chunks(ts): return [c for t in ts for c in t.split(a.len) if len(c) >= 8]
    train, valid = chunks(train), chunks(valid)
counts = torch.bincount(torch.cat(train), minlength=d['emb'].shape[0]); counts[[0, 1]] = 0
T = counts.topk(a.targets).indices
freq = counts[T].double(); logp = (freq / freq.sum()).log()
target_of = torch.full((len(counts),), -1, dtype=torch.long); target_of[T] = torch.arange(len(T))
vt = target_of[torch.cat(valid)]; vt = vt[vt >= 0]
freq_loss = -logp[vt].mean().item()
H.set_seed(a.seed)
body = H.TextClassifier(d['emb'], 2, max_len=512, dropout=a.dropout)
dm = body.config['d_model']
class MLM(nn.Module):
    def __init__(s):
        super().__init__()
        s.body = body
        s.mask_vec = nn.Parameter(torch.zeros(dm)) if a.mask == 'learned' else None
        if a.out == 'learned':
            s.out = nn.Linear(dm, len(T)); s.out.bias.data = logp.float().clone(); nn.init.normal_(s.out.weight, std=0.02)
        else:
            s.proj = nn.Linear(dm, dm)
            s.register_buffer('vec', d['emb'][T].clone())
            s.bias = nn.Parameter(logp.float().clone()) if a.out == 'glovebias' else None
    def forward(s, tokens, gen=None):
        tgt = target_of[tokens]
        r = torch.rand(tokens.shape, generator=gen)
        hide = (r < a.p) & (tgt >= 0)
        x = s.body.emb(tokens)
        if a.bert:
            r2 = torch.rand(tokens.shape, generator=gen)
            masked = hide & (r2 < 0.8); rnd = hide & (r2 >= 0.8) & (r2 < 0.9)
            x = torch.where(rnd.unsqueeze(-1), s.body.emb(T[torch.randint(len(T), tokens.shape, generator=gen)]), x)
        else:
            masked = hide
        mv = s.mask_vec if s.mask_vec is not None else s.body.emb.weight[H.UNK_IDX]
        x = torch.where(masked.unsqueeze(-1), mv.expand_as(x), x)
        h = s.body.encoder(s.body.pos(x), src_key_padding_mask=tokens == H.PAD_IDX)[hide]
        if a.out == 'learned': sc = s.out(h)
        else:
            sc = s.proj(h) @ s.vec.T
            if s.bias is not None: sc = sc + s.bias
        return sc, tgt[hide]
m = MLM()
body.emb.weight.requires_grad = False
opt, sched = H.make_optimizer(m, a.lr, a.steps, a.wd)
def batches(seqs, bs, g):
    perm = torch.randperm(len(seqs), generator=g).tolist()
    for i in range(0, len(perm) - bs + 1, bs):
        yield H.collate_batch([(0, seqs[j]) for j in perm[i:i + bs]])[1]
def evaluate():
    m.eval(); g = torch.Generator().manual_seed(123); tot = n = 0
    with torch.no_grad():
        for i in range(0, len(valid), 128):
            b = H.collate_batch([(0, t) for t in valid[i:i + 128]])[1]
            sc, y = m(b, g); tot += F.cross_entropy(sc, y, reduction='sum').item(); n += len(y)
    m.train(); return tot / n
g = torch.Generator().manual_seed(a.seed); step = 0; t0 = time.time(); run = []
ev = max(1, a.steps // 4)
while step < a.steps:
    for b in batches(train, a.bs, g):
        sc, y = m(b)
        loss = F.cross_entropy(sc, y)
        opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); sched.step()
        run.append(loss.item()); step += 1
        if step % ev == 0:
            print(f'step {step} train {sum(run[-ev:])/len(run[-ev:]):.3f} valid {evaluate():.3f} t {time.time()-t0:.0f}s', flush=True)
        if step >= a.steps: break
v = evaluate()
row = dict(change=a.change, valid_loss=round(v, 4), frequency_loss=round(freq_loss, 4), gain=round(freq_loss - v, 4),
           seconds=round(time.time() - t0), args={k: w for k, w in vars(a).items() if k not in ("change", "record")})
print('RESULT', json.dumps(row), flush=True)
if a.record:
    path = H.ROOT / a.record
    table = json.loads(path.read_text()) if path.exists() else dict(
        steps=a.steps, batch_size=a.bs, max_len=256, glove=d["glove"], machine=cpu_model(),
        note="one change at a time from the defaults of tools/masked_words.py; seconds on a shared, loaded machine",
        runs=[])
    table["runs"] = [r for r in table["runs"] if r["change"] != a.change] + [row]
    path.write_text(json.dumps(table, indent=2) + "\n")
