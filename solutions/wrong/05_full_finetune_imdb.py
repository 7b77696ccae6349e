"""Plausible wrong answers to notebook 05's exercises; its check cells must reject each (helpers.check_exercise)."""


def unfreezing_plan__one_tensor_first(model):
    """stage 1 adds a single tensor of the last layer; stage 2 the rest of it and layer 0 together"""
    names = [name for name, _ in model.named_parameters()]
    head = [n for n in names if n.startswith("head.")]
    last = [n for n in names if n.startswith(f"encoder.layers.{model.config['num_layers'] - 1}.")]
    encoder = [n for n in names if n.startswith("encoder.")]
    return [head, head + last[:1], head + encoder, names]


def unfreezing_plan__first_layer_first(model):
    """the encoder layers unfrozen from the input up, layer 0 first"""
    names = [name for name, _ in model.named_parameters()]
    groups = ["head."] + [f"encoder.layers.{i}." for i in range(model.config["num_layers"])] + ["emb."]
    return [[n for n in names if n.startswith(tuple(groups[:stage + 1]))] for stage in range(len(groups))]
