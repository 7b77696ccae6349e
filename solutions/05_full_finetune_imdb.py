"""Reference solutions to the exercises at the end of notebooks/05_full_finetune_imdb.ipynb."""


def unfreezing_plan(model):
    """A list of stages, each the names of the parameters that train in it: head, last layer ... first, embedding."""
    names = [name for name, _ in model.named_parameters()]
    groups = (["head."] + [f"encoder.layers.{i}." for i in reversed(range(model.config["num_layers"]))]
              + ["emb."])
    return [[n for n in names if n.startswith(tuple(groups[:stage + 1]))] for stage in range(len(groups))]
