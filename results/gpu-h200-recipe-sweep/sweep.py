import sys, time, json, os, torch
sys.path.insert(0, '.')
import helpers as H
dev = H.get_device(); print('device', dev, torch.__version__, torch.cuda.get_device_name(0) if dev.type=='cuda' else '')
g = H.load_glove(50); v = H.build_vocab(g); E = H.embedding_matrix(g)
root = H.data_dir() / 'aclImdb'
tr_raw, te_raw = H.IMDBDataset(root, True), H.IMDBDataset(root, False)
out = os.environ.get('OUT', '/tmp'); results = []
enc = {}
def data(max_len, bs=64):
    if max_len not in enc:
        t=time.time(); enc[max_len] = (H.EncodedDataset.from_dataset(tr_raw, v, max_len), H.EncodedDataset.from_dataset(te_raw, v, max_len)); print('encode', max_len, time.time()-t, flush=True)
    tr, te = enc[max_len]; a, b = H.split_indices(len(tr))
    return H.make_loader(tr.select(a), bs, True), H.make_loader(tr.select(b), 256, False), H.make_loader(te, 256, False)
DRY=os.environ.get('DRY')
def run(name, max_len, epochs, lr, unfreeze, bs=64, model=None):
    epochs = 1 if DRY else epochs
    H.set_seed(42)
    trl, val, tel = data(max_len, bs)
    m = model or H.TextClassifier(E, 2, max_len=max(512, max_len))
    if unfreeze: m.emb.weight.requires_grad_(True)
    t = time.time(); h = H.train_model(m, trl, val, epochs, lr, dev, desc=name); tt = time.time() - t
    tl, ta = H.evaluate(m, tel, dev)
    r = dict(name=name, max_len=max_len, epochs=epochs, lr=lr, unfreeze=unfreeze, bs=bs, test_acc=ta, valid=h['valid_acc'], sec=h['seconds'], total=tt)
    print('RESULT', json.dumps(r), flush=True); results.append(r)
    json.dump(results, open(f'{out}/sweep.json', 'w'), indent=1)
    return m
os.environ['TQDM_DISABLE'] = '1'
run('frozen512', 512, 6, 1e-3, False)
run('frozen512_lr3e-3_10ep', 512, 10, 3e-3, False)
run('unfrozen512', 512, 6, 1e-3, True)
run('unfrozen512_lr2e-3_4ep', 512, 4, 2e-3, True)
run('unfrozen256_3ep', 256, 3, 2e-3, True)
run('frozen256_3ep', 256, 3, 2e-3, False)
# pretraining on AG News (own split of test.csv) then full fine-tuning and head-only
os.environ['KIT_AG_NEWS'] = 'test-split'
ag_tr, ag_te, desc = H.ag_news_splits(H.data_dir() / 'ag_news_csv')
ds, ld = H.encode_splits(ag_tr, ag_te, v, 512, 64)
H.set_seed(42); pm = H.TextClassifier(E, 4, max_len=512)
h = H.train_model(pm, ld['train'], ld['valid'], 1 if DRY else 5, 2e-3, dev, desc='ag')
print('AG held-out', H.evaluate(pm, ld['test'], dev), flush=True)
import copy
state = copy.deepcopy(pm.state_dict())
m = H.replace_head(pm, 2); run('pre_unfrozen512', 512, 6, 1e-3, True, model=m)
pm2 = H.TextClassifier(E, 4, max_len=512); pm2.load_state_dict(state); m2 = H.replace_head(pm2, 2); run('pre_frozen512', 512, 6, 1e-3, False, model=m2)
# head only
pm3 = H.TextClassifier(E, 4, max_len=512); pm3.load_state_dict(state); m3 = H.freeze_body(H.replace_head(pm3, 2)).to(dev)
trl, val, tel = data(512)
t=time.time(); ftr = H.pooled_features(m3, trl, dev); fva = H.pooled_features(m3, val, dev); fte = H.pooled_features(m3, tel, dev); print('features s', time.time()-t)
for lr in (1e-2, 3e-2):
    H.set_seed(42); head = torch.nn.Linear(m3.head.in_features, 2)
    hh = H.train_model(head, H.feature_loader(*ftr, 64, True), H.feature_loader(*fva, 256, False), 1 if DRY else 50, lr, dev, desc='head')
    print('RESULT', json.dumps(dict(name=f'head_lr{lr}', test_acc=H.evaluate(head, H.feature_loader(*fte, 256, False), dev)[1], sec=hh['seconds'][:3])), flush=True)
