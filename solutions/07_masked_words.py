"""Reference solutions to the exercises at the end of notebooks/07_masked_words.ipynb."""
import helpers as H


def mask_rate_loss(p, texts, valid, targets, log_freq, seed):
    """Held-out masked-word loss after one epoch of pretraining a fresh body, hiding a share p of the targets."""
    cfg, device = H.run_size()[1], H.get_device()
    glove = H.load_glove()
    H.set_seed(seed)
    body = H.TextClassifier(H.embedding_matrix(glove), len(H.IMDB_CLASSES), max_len=cfg["max_len"])
    mlm = H.MaskedWords(body, targets, log_freq, p)
    history = H.pretrain_masked_words(mlm, H.make_loader(texts, cfg["batch_size"], train=True, seed=seed),
                                      H.make_loader(valid, cfg["batch_size"], train=False), 1, cfg["mlm_lr"], device)
    return history["valid_loss"][-1]
