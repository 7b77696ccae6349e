"""Reference solutions to the exercises at the end of notebooks/06_head_only_finetune.ipynb."""


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
