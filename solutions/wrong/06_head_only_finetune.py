"""Plausible wrong answers to notebook 06's exercises; its check cells must reject each (helpers.check_exercise)."""
import torch

import helpers as H


def unfreeze_last_layer__only_unfreezes(model):
    """the head and the last layer made trainable, but nothing frozen: what trained before still trains"""
    last = f"encoder.layers.{len(model.encoder.layers) - 1}."
    for name, p in model.named_parameters():
        if name.startswith(("head.", last)):
            p.requires_grad = True
    return model


def unfreeze_last_layer__first_layer(model):
    """encoder.layers.0, the layer nearest the input, not the one nearest the head"""
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(("head.", "encoder.layers.0."))
    return model


def time_to_reach__strictly_above(seconds, accs, target, start=0.0):
    """> where the exercise asks for "at least": an epoch exactly at the target is passed over"""
    total = start
    for s, acc in zip(seconds, accs):
        total += s
        if acc > target:
            return total
    return None


def time_to_reach__forgets_start(seconds, accs, target, start=0.0):
    """the feature pass (start) left out of the time"""
    total = 0.0
    for s, acc in zip(seconds, accs):
        total += s
        if acc >= target:
            return total
    return None


def head_test_accuracy__unseeded_order(features, lr, epochs, seed):
    """the seed set for the head, but the loaders shuffled with the default seed"""
    H.set_seed(seed)
    head = torch.nn.Linear(features["train"][0].shape[1], len(H.IMDB_CLASSES))
    batch_size, device = H.run_size()[1]["batch_size"], H.get_device()
    loaders = {name: H.feature_loader(x, y, batch_size, train=(name == "train"))
               for name, (x, y) in features.items()}
    H.train_model(head, loaders["train"], loaders["valid"], epochs, lr, device)
    return H.evaluate(head, loaders["test"], device)[1]


def head_test_accuracy__valid_accuracy(features, lr, epochs, seed):
    """the best validation accuracy returned, not the test accuracy"""
    H.set_seed(seed)
    head = torch.nn.Linear(features["train"][0].shape[1], len(H.IMDB_CLASSES))
    batch_size, device = H.run_size()[1]["batch_size"], H.get_device()
    loaders = {name: H.feature_loader(x, y, batch_size, train=(name == "train"), seed=seed)
               for name, (x, y) in features.items()}
    return max(H.train_model(head, loaders["train"], loaders["valid"], epochs, lr, device)["valid_acc"])
