"""Plausible wrong answers to notebook 07's exercises; its check cells must reject each (helpers.check_exercise)."""
import helpers as H


def mask_rate_loss__ignores_p(p, texts, valid, targets, log_freq, seed):
    """the notebook's own rate, CFG["mlm_p"], instead of p"""
    cfg = H.run_size()[1]
    return _pretrain(cfg["mlm_p"], texts, valid, targets, log_freq, seed)


def mask_rate_loss__unseeded_body(p, texts, valid, targets, log_freq, seed):
    """the body made before the seed is set"""
    cfg, glove = H.run_size()[1], H.load_glove()
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    H.set_seed(seed)
    return _fit(body, p, texts, valid, targets, log_freq, seed)


def _pretrain(p, texts, valid, targets, log_freq, seed):
    cfg, glove = H.run_size()[1], H.load_glove()
    H.set_seed(seed)
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    return _fit(body, p, texts, valid, targets, log_freq, seed)


def _fit(body, p, texts, valid, targets, log_freq, seed):
    cfg, device = H.run_size()[1], H.get_device()
    history = H.pretrain_masked_words(H.MaskedWords(body, targets, log_freq, p),
                                      H.make_loader(texts, cfg["batch_size"], train=True, seed=seed),
                                      H.make_loader(valid, cfg["batch_size"], train=False), 1, cfg["mlm_lr"], device)
    return history["valid_loss"][-1]
