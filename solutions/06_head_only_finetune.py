"""Reference solutions to the exercises at the end of notebooks/06_head_only_finetune.ipynb."""
import torch

import helpers as H


def unfreeze_last_layer(model):
    """Train only the last encoder layer and the head; freeze everything else. Returns the model."""
    last = f"encoder.layers.{len(model.encoder.layers) - 1}."
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(("head.", last))
    return model


def time_to_reach(seconds, accs, target, start=0.0):
    """Cumulative training seconds at the end of the first epoch whose accuracy reaches target, else None."""
    total = start
    for s, acc in zip(seconds, accs):
        total += s
        if acc >= target:
            return total
    return None


def head_test_accuracy(features, lr, epochs, seed):
    """Test accuracy of a fresh head trained on the cached features with train_model."""
    H.set_seed(seed)
    head = torch.nn.Linear(features["train"][0].shape[1], len(H.IMDB_CLASSES))
    batch_size, device = H.run_size()[1]["batch_size"], H.get_device()
    loaders = {name: H.feature_loader(x, y, batch_size, train=(name == "train"), seed=seed)
               for name, (x, y) in features.items()}
    H.train_model(head, loaders["train"], loaders["valid"], epochs, lr, device)
    return H.evaluate(head, loaders["test"], device)[1]
