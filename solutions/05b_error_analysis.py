"""Reference solutions to the exercises at the end of notebooks/05b_error_analysis.ipynb."""
import helpers as H


def accuracy_when_sure(probs, labels, threshold):
    """(fraction of reviews with top probability >= threshold, accuracy on those reviews)."""
    confidence, preds = probs.max(1)
    sure = confidence >= threshold
    coverage = sure.float().mean().item()
    accuracy = (preds[sure] == labels[sure]).float().mean().item() if sure.any() else float("nan")
    return coverage, accuracy


def accuracy_at_length(model, dataset, n):
    """Accuracy of `model` on `dataset` with every review cut to its first n tokens."""
    cut = H.EncodedDataset(dataset.labels, [t[:n] for t in dataset.tokens])
    batch_size = H.run_size()[1]["batch_size"]  # the notebook's CFG["batch_size"]
    return H.evaluate(model, H.make_loader(cut, batch_size, train=False), H.get_device())[1]
