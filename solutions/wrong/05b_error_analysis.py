"""Plausible wrong answers to notebook 05b's exercises; its check cells must reject each (helpers.check_exercise)."""
import helpers as H


def accuracy_when_sure__strictly_above(probs, labels, threshold):
    """> where the exercise asks for >=: a review exactly at the threshold is left out"""
    confidence, preds = probs.max(1)
    sure = confidence > threshold
    return sure.float().mean().item(), (preds[sure] == labels[sure]).float().mean().item()


def accuracy_when_sure__tensors(probs, labels, threshold):
    """tensors returned where the exercise asks for Python floats"""
    confidence, preds = probs.max(1)
    sure = confidence >= threshold
    return sure.float().mean(), (preds[sure] == labels[sure]).float().mean()


def accuracy_at_length__last_tokens(model, dataset, n):
    """each review's last n tokens, not its first"""
    cut = H.EncodedDataset(dataset.labels, [t[-n:] for t in dataset.tokens])
    return H.evaluate(model, H.make_loader(cut, H.run_size()[1]["batch_size"], train=False), H.get_device())[1]


def accuracy_at_length__no_cut(model, dataset, n):
    """n ignored: the whole review, as it was encoded"""
    return H.evaluate(model, H.make_loader(dataset, H.run_size()[1]["batch_size"], train=False), H.get_device())[1]
