"""Reference solutions to the exercises at the end of notebooks/08_learning_curve.ipynb."""
import copy

import helpers as H


def gain_in_spreads(summary, start, baseline, labels):
    """(mean of start - mean of baseline) / the larger of their spreads, at `labels` labelled reviews."""
    (m_start, s_start, _), (m_base, s_base, _) = summary[start, labels], summary[baseline, labels]
    difference, spread = m_start - m_base, max(s_start, s_base)
    if difference == 0:
        return 0.0
    return difference / spread if spread else float("inf") * (1 if difference > 0 else -1)


def curve_point(start, pool, movies, n, seed, test_loader, cfg, device):
    """The test accuracy of `start` fine-tuned on n labelled reviews drawn with `seed`, as the curve does it."""
    train_ds, valid_ds = H.draw_labelled(pool, movies, n, seed)
    H.set_seed(seed)
    model = H.unfreeze(H.replace_head(copy.deepcopy(start), len(H.IMDB_CLASSES)), H.training_words(train_ds))
    result = H.fine_tune_point(model, train_ds, valid_ds, test_loader, cfg["finetune_lr"], cfg["curve_min_steps"],
                               device, seed)
    return result["test_acc"]
