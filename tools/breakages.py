"""Plant realistic breakages in a throwaway copy of the kit, one at a time, and check the fast tests catch each.

    python tools/breakages.py              every row of BREAKAGES (or: bash kit.sh breakages)
    python tools/breakages.py --list       the rows, numbered, with the tests each names
    python tools/breakages.py --only 3 --only 12 -v
    python tools/breakages.py --jobs 2     two copies, two rows at a time

A row is (what breaks, tests that must fail, changes): each change replaces text that occurs exactly once in
a file (or, with a compiled pattern, every match) in the copy. The copy holds the files git tracks plus new
ones it does not ignore, so uncommitted tests count; the real tree is never written. Before any breakage the
named tests must pass on the unbroken copy. A row is caught when its named tests fail (pytest exit code 1),
survived when they pass, and an error when pytest could not run them (or the change did not apply).

Sections 01-07 of helpers.py are written from the notebooks' #@save cells; breaking helpers.py breaks what the
tests import. tests/test_sync.py would fail on any edit of those sections, so it is never a row's test:
only behaviour counts. Slow tests (notebooks, browser, Colab, the DDP twin runs) are not named either.
Not part of CI: it takes minutes (5-10 s a row on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_A_CATCH = ("tests/test_sync.py", "tests/test_browser.py", "tests/test_colab.py", "notebooks/",
               "tests/test_ddp.py::test_two_processes_match_one")


@dataclass
class Row:
    what: str
    tests: list[str]
    changes: list[tuple] = field(default_factory=list)  # (old, new) or (compiled pattern, replacement)
    file: str = "helpers.py"


def row(what, tests, *changes, file="helpers.py"):
    return Row(what, [tests] if isinstance(tests, str) else list(tests), list(changes), file)


T, M, D, G, C = "tests/test_text.py::", "tests/test_model.py::", "tests/test_data.py::", "tests/test_glove.py::", \
    "tests/test_checkpoints.py::"
R, W, X, L, S = "tests/test_resume.py::", "tests/test_download.py::", "tests/test_exercises.py", \
    "tests/test_trained_rows.py::", "tests/test_ddp.py::"
K = "tests/test_curve.py::"

BREAKAGES = [
    # --- the tokenizer, vocabulary and embedding rows (notebook 02)
    row("the tokenizer collapses whitespace before removing <br /> (tests/README row 1)",
        T + "test_tokenize_matches_torchtext_basic_english",
        ('(r"\\:", " "), (r"\\s+", " ")]]', '(r"\\:", " ")]]'),
        ('for p, r in [\n    (r"\\\'"', 'for p, r in [(r"\\s+", " "),\n    (r"\\\'"')),
    row("the tokenizer keeps upper case", T + "test_tokenize_examples_a_reader_can_check",
        ("    line = line.lower()\n", "")),
    row("an unknown word maps to <pad>, not <unk>", T + "test_vocab_puts_specials_first_and_maps_unknown_to_unk",
        ("return self.stoi.get(token, self.default_index)", "return self.stoi.get(token, PAD_IDX)")),
    row("a repeated word keeps its last index", T + "test_duplicate_words_keep_their_first_index",
        ("self.stoi.setdefault(token, i)", "self.stoi[token] = i")),
    row("the specials go after GloVe's words", [T + "test_vocab_puts_specials_first_and_maps_unknown_to_unk",
                                                 T + "test_embedding_row_of_each_word_is_its_glove_vector"],
        ("Vocab(SPECIALS + list(glove.words)", "Vocab(list(glove.words) + SPECIALS")),
    row("the rows of <unk> and <pad> are ones, not zeros", [T + "test_embedding_row_of_each_word_is_its_glove_vector",
                                                            T + "test_model_embedding_keeps_pad_row_zero"],
        ("torch.cat([torch.zeros(len(SPECIALS), glove.dim)", "torch.cat([torch.ones(len(SPECIALS), glove.dim)")),
    row("the embedding rows are one place off the vocabulary",
        T + "test_embedding_row_of_each_word_is_its_glove_vector",
        ("torch.cat([torch.zeros(len(SPECIALS), glove.dim), glove.vectors.float()])",
         "torch.cat([torch.zeros(1, glove.dim), glove.vectors.float(), torch.zeros(1, glove.dim)])")),
    # --- the text pipeline (notebook 02), batches and splits (notebook 02b)
    row("cut ignores tail: keeps the first max_len tokens only (tests/README row 2c)",
        [T + "test_encode_keeps_the_head_and_the_tail_of_a_long_text",
         T + "test_make_splits_passes_tail_to_every_split"],
        ("return ids[:max_len - tail] + ids[len(ids) - tail:]", "return ids[:max_len]")),
    row("cut keeps one token too many of the tail", T + "test_encode_keeps_the_head_and_the_tail_of_a_long_text",
        ("ids[len(ids) - tail:]", "ids[len(ids) - tail - 1:]")),
    row("make_splits does not pass tail on", T + "test_make_splits_passes_tail_to_every_split",
        ("EncodedDataset.from_dataset(train_data, vocab, max_len, tail,",
         "EncodedDataset.from_dataset(train_data, vocab, max_len, 0,")),
    row("a text with no tokens left stays empty instead of one <unk>",
        T + "test_encoded_dataset_gives_texts_without_tokens_one_unk",
        ("tokens.append(encode(text, vocab, max_len, tail) or [UNK_IDX])",
         "tokens.append(encode(text, vocab, max_len, tail))")),
    row("collate pads with 0 (<unk>) instead of <pad>", T + "test_collate_pads_with_pad_index_not_zero",
        ("padding_value=pad_idx)", "padding_value=0)")),
    row("the bucketed sampler stops shuffling its batches (issue 20, survivor 3)",
        T + "test_bucket_sampler_shuffles_the_batches_not_only_their_contents",
        ("for k in torch.randperm(len(batches), generator=self.generator).tolist():", "for k in range(len(batches)):")),
    row("the bucketed sampler does not sort within its pools", T + "test_bucket_sampler_batches_similar_lengths",
        ("chunk = sorted(order[i:i + step], key=self.lengths.__getitem__)", "chunk = order[i:i + step]")),
    row("evaluation batches are not sorted by length", [T + "test_bucket_sampler_batches_similar_lengths",
                                                        T + "test_make_splits_shuffles_only_training"],
        ("order = sorted(range(n), key=self.lengths.__getitem__)", "order = list(range(n))")),
    row("the sampler starts every epoch from the same seed",
        [T + "test_bucket_sampler_is_seeded_and_reshuffles_each_epoch",
         T + "test_bucket_sampler_shuffles_the_batches_not_only_their_contents"],
        ("        n = len(self.lengths)\n",
         "        n = len(self.lengths)\n        self.generator.manual_seed(H.SEED)\n")),
    row("the sampler's length forgets a short last batch", T + "test_bucket_sampler_covers_every_index_exactly_once",
        ("return math.ceil(len(self.lengths) / self.batch_size)", "return len(self.lengths) // self.batch_size")),
    row("make_splits shuffles the validation and test batches too", T + "test_make_splits_shuffles_only_training",
        ("train=(k == \"train\"), seed=seed)", "train=True, seed=seed)")),
    row("split_indices ignores its seed", T + "test_split_indices_is_a_seeded_95_5_partition",
        ("perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()",
         "perm = torch.randperm(n).tolist()")),
    row("split_indices takes the first 95% unshuffled", T + "test_split_indices_is_a_seeded_95_5_partition",
        ("perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()", "perm = list(range(n))")),
    row("split_by_group splits item by item, so a film lands on both sides",
        T + "test_split_by_group_keeps_each_film_on_one_side",
        ("        valid += members[names[k]]\n", "        valid += members[names[k]][:1]\n")),
    # --- the model (notebook 03)
    row("PositionalEncoding adds nothing (tests/README row 3)",
        [M + "test_positional_encoding_adds_the_sinusoid_table", M + "test_word_order_changes_the_kit_model_output"],
        ("return self.dropout(x + self.pe[:, : x.size(1)])", "return self.dropout(x)")),
    row("the positional table's odd columns are sines too", M + "test_positional_encoding_adds_the_sinusoid_table",
        ("pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])", "pe[:, 1::2] = torch.sin(pos * div[: d_model // 2])")),
    row("a text longer than max_len is not refused clearly",
        M + "test_positional_encoding_refuses_texts_longer_than_max_len",
        ("if x.size(1) > self.pe.size(1):", "if False:")),
    row("masked_mean counts padding", [M + "test_masked_mean_ignores_padding",
                                       M + "test_padding_does_not_change_the_kit_model_output"],
        ("keep = (~pad_mask).unsqueeze(-1).to(h.dtype)", "keep = torch.ones_like(pad_mask).unsqueeze(-1).to(h.dtype)")),
    row("masked_mean divides by the padded length", M + "test_masked_mean_ignores_padding",
        ("return (h * keep).sum(1) / keep.sum(1).clamp(min=1)", "return (h * keep).sum(1) / h.size(1)")),
    row("attention sees padding (no key padding mask)", [M + "test_padding_does_not_change_the_kit_model_output",
                                                         M + "test_batch_mates_do_not_change_a_text_output"],
        ("src_key_padding_mask=tokens == H.PAD_IDX)", "src_key_padding_mask=None)")),
    row("attention dropout takes the model's dropout", C + "test_a_loaded_model_has_the_saved_models_settings",
        ("layer.self_attn.dropout = attention_dropout", "layer.self_attn.dropout = dropout")),
    row("count_trainable counts frozen parameters too", M + "test_freeze_body_leaves_only_the_head_trainable",
        ("return sum(p.numel() for p in model.parameters() if p.requires_grad)",
         "return sum(p.numel() for p in model.parameters())")),
    # --- training (notebook 04)
    row("evaluate stays in training mode (dropout on)", M + "test_evaluate_matches_a_direct_computation",
        ("    model.eval()\n    total_loss, correct, n", "    model.train()\n    total_loss, correct, n")),
    row("evaluate's loss is a sum of batch means over the texts", M + "test_evaluate_matches_a_direct_computation",
        ('total_loss += F.cross_entropy(logits, labels, reduction="sum").item()',
         "total_loss += F.cross_entropy(logits, labels).item()")),
    row("make_optimizer decays word vectors, TrainedRows' rows (tests/README row 2d)",
        [L + "test_trained_rows_give_the_dense_update_of_the_whole_table",
         M + "test_make_optimizer_decays_weight_matrices_only"],
        ('if p.ndim > 1 and not name.startswith("emb.")]', 'if p.ndim > 1 and name != "emb.weight"]'),
        ('if p.ndim <= 1 or name.startswith("emb.")]', 'if p.ndim <= 1 or name == "emb.weight"]')),
    row("make_optimizer also decays biases and LayerNorm weights (issue 20)",
        M + "test_make_optimizer_decays_weight_matrices_only",
        ('decay = [p for name, p in params if p.ndim > 1 and not name.startswith("emb.")]',
         'decay = [p for name, p in params if not name.startswith("emb.")]'),
        ('rest = [p for name, p in params if p.ndim <= 1 or name.startswith("emb.")]',
         'rest = [p for name, p in params if name.startswith("emb.")]')),
    row("the one-cycle peak is ten times lr", M + "test_train_model_warms_the_learning_rate_up_then_anneals_it",
        ("OneCycleLR(opt, max_lr=lr,", "OneCycleLR(opt, max_lr=10 * lr,")),
    row("the warm-up is 10% however few the steps", M + "test_train_model_schedules_any_small_number_of_steps",
        ("pct_start=min(0.75, max(0.1, 1.5 / steps)))", "pct_start=0.1)")),
    row("the learning-rate scheduler never steps (tests/README row 4)",
        M + "test_train_model_warms_the_learning_rate_up_then_anneals_it",
        ("    sched.step()\n    return loss.item()", "    return loss.item()")),
    row("train_step does not clip", M + "test_train_step_clips_the_gradient_norm",
        ("    nn.utils.clip_grad_norm_(model.parameters(), clip)\n", "")),
    row("train_step never zeroes the gradients, so they pile up", M + "test_train_step_clips_the_gradient_norm",
        ("    opt.zero_grad(set_to_none=True)\n    loss.backward()\n    nn.utils",
         "    loss.backward()\n    nn.utils")),
    row("train_model keeps the last epoch's weights (tests/README row 5)",
        M + "test_train_model_ends_with_the_best_epochs_weights",
        ('    model.load_state_dict(progress["best_state"])\n    history["best_epoch"]', '    history["best_epoch"]')),
    row("train_model keeps its best state without a copy (issue 20, survivor 2)",
        M + "test_train_model_ends_with_the_best_epochs_weights",
        ('progress.update(best_acc=valid_acc, best_state=copy.deepcopy(model.state_dict()))',
         'progress.update(best_acc=valid_acc, best_state=model.state_dict())')),
    row("train_model keeps the later of two equal epochs", M + "test_train_model_ends_with_the_best_epochs_weights",
        ('        if valid_acc > progress["best_acc"]:\n', '        if valid_acc >= progress["best_acc"]:\n')),
    row("train_model reports its last epoch as the best", M + "test_train_model_ends_with_the_best_epochs_weights",
        ('history["best_epoch"] = history["epoch"][history["valid_acc"].index(progress["best_acc"])]',
         'history["best_epoch"] = history["epoch"][-1]')),
    row("train_model saves no state even when given a state file", R + "test_an_interrupted_run_resumes_to_the_same_weights",
        ('        if state_file:  # resume\n            H.save_training_state(', '        if False:  # resume\n            H.save_training_state(')),
    row("a resumed run starts again from epoch 1", R + "test_an_interrupted_run_resumes_to_the_same_weights",
        ('for epoch in range(len(history["epoch"]) + 1, epochs + 1):  # resume: from',
         'for epoch in range(1, epochs + 1):  # resume: from')),
    row("a resumed run does not restore the random generator (dropout)",
        R + "test_an_interrupted_run_resumes_to_the_same_weights", ('    torch.set_rng_state(st["rng"])\n', "")),
    row("a resumed run does not restore the batch order", R + "test_an_interrupted_run_resumes_to_the_same_weights",
        ('        shuffler.set_state(st["shuffler"])\n', "        pass\n")),
    row("a training state from another run is resumed", R + "test_a_state_from_another_run_is_refused",
        ('if (st.get("start"), st.get("epochs"), st.get("steps_per_epoch")) != '
         '(progress["start"], epochs, len(loader)):',
         "if False:")),
    row("the training state saves the frozen GloVe rows too", R + "test_frozen_weights_are_not_saved_in_the_state",
        ("model={k: v for k, v in model.state_dict().items() if k not in frozen},",
         "model=model.state_dict(),")),
    # --- fine-tuning (notebooks 05-07b)
    row("replace_head leaves config's class count", M + "test_replace_head_swaps_only_the_last_layer",
        ('    model.config["num_classes"] = num_classes  # saved', '    pass  # saved')),
    row("freeze_body leaves the encoder trainable", [M + "test_freeze_body_leaves_only_the_head_trainable",
                                                     M + "test_configure_trains_what_each_regime_says"],
        ('p.requires_grad = name.startswith("head.")', 'p.requires_grad = not name.startswith("emb.")')),
    row("unfreeze makes the whole embedding trainable", [L + "test_unfreeze_without_words_keeps_the_embedding_frozen",
                                                         M + "test_configure_trains_what_each_regime_says"],
        ('p.requires_grad = not name.startswith("emb.")\n    if word_ids', "p.requires_grad = True\n    if word_ids")),
    row("configure's \"encoder + head\" also trains the word vectors (issue 20, survivor 6)",
        M + "test_configure_trains_what_each_regime_says",
        ('return H.unfreeze(model, word_ids if regime == "everything" else None)',
         "return H.unfreeze(model, word_ids)")),
    row("TrainedRows ignores its trained rows", [L + "test_trained_rows_give_the_dense_update_of_the_whole_table",
                                                 M + "test_configure_trains_what_each_regime_says"],
        ("return torch.where((slot >= 0).unsqueeze(-1), trained, self.table(tokens))", "return self.table(tokens)")),
    row("TrainedRows' rows start at zero, not at GloVe",
        L + "test_trained_rows_give_the_dense_update_of_the_whole_table",
        ("self.rows = nn.Parameter(emb.weight[word_ids].detach().clone())",
         "self.rows = nn.Parameter(torch.zeros_like(emb.weight[word_ids]))")),
    row("merged() forgets the trained rows", [L + "test_trained_rows_give_the_dense_update_of_the_whole_table",
                                              L + "test_a_checkpoint_keeps_the_trained_rows"],
        ("weight[self.word_ids] = self.rows.detach().to(weight.device)", "weight = weight")),
    row("unfreeze does not mark the embedding trained, so a checkpoint drops it",
        L + "test_a_checkpoint_keeps_the_trained_rows",
        ('model.config["trained_embedding"] = word_ids is not None', 'model.config["trained_embedding"] = False')),
    row("test_predictions files probabilities in dataset order by batch position",
        M + "test_test_predictions_are_in_the_datasets_order",
        (re.compile(r"(probs|labels)\[order\] ="), r"\1[sorted(order)] =")),
    row("predict ignores max_len (tests/README row 2)", M + "test_predict_cuts_a_long_text_to_max_len",
        ("        ids = H.encode(text, vocab, max_len, tail)\n", "        ids = H.encode(text, vocab)\n")),
    row("predict ignores a max_len passed to it (tests/README row 2b)", M + "test_predict_cuts_a_long_text_to_max_len",
        ('    max_len, tail = max_len or rule["max_len"], ', '    max_len, tail = rule["max_len"], ')),
    row("predict classifies an empty text", M + "test_predict_refuses_text_with_nothing_to_classify",
        ("        if not ids:\n            raise ValueError", "        if False:\n            raise ValueError")),
    row("predict ignores the model's tail (issue 20, survivor 8)",
        "tests/test_cut_rule.py::test_a_head_and_tail_model_classifies_a_long_text_as_training_cut_it",
        ('rule["tail"] if tail is None else tail', '0 if tail is None else tail')),
    # --- masked-word pretraining (notebook 07)
    row("pretraining_text never reads train/unsup", "tests/test_masked_words.py::test_pretraining_text_adds_train_unsup_at_the_full_size",
        ('    if size != "full" or not unsup.is_dir():', '    if True:')),
    row("pretraining_text reads train/unsup at every size", "tests/test_masked_words.py::test_pretraining_text_is_the_training_reviews_otherwise",
        ('    if size != "full" or not unsup.is_dir():', '    if not unsup.is_dir():')),
    row("MaskedWords never hides anything (issue 20, survivor 4)", "tests/test_masked_words.py::test_a_hidden_word_cannot_be_seen",
        ("x = torch.where(hide.unsqueeze(-1), self.mask, self.body.emb(tokens))", "x = self.body.emb(tokens)")),
    row("MaskedWords scores every target position, hidden or not (issue 20, survivor 7)",
        "tests/test_masked_words.py::test_exactly_the_drawn_target_positions_are_hidden_and_scored",
        ("return self.out(h[hide]), target[hide]", "return self.out(h[target >= 0]), target[target >= 0]")),
    row("MaskedWords hides padding and non-target words too",
        "tests/test_masked_words.py::test_exactly_the_drawn_target_positions_are_hidden_and_scored",
        ("hide = (draw.to(tokens.device) < self.p) & (target >= 0)", "hide = draw.to(tokens.device) < self.p")),
    row("the output bias starts at zero, not at the log frequencies", "tests/test_masked_words.py::test_the_head_starts_as_the_frequency_guess",
        ("            self.out.bias.copy_(log_freq)", "            self.out.bias.zero_()")),
    row("pretraining leaves dropout off", "tests/test_masked_words.py::test_pretraining_keeps_glove_frozen_gives_back_dropout_and_measures_the_same_draw",
        ('        m.p = mlm.body.config["dropout"]', '        m.p = 0.0')),
    row("pretraining trains GloVe's rows", "tests/test_masked_words.py::test_pretraining_keeps_glove_frozen_gives_back_dropout_and_measures_the_same_draw",
        ("    mlm.body.emb.weight.requires_grad = False", "    mlm.body.emb.weight.requires_grad = True")),
    row("the held-out loss draws other hidden words each call",
        "tests/test_masked_words.py::test_pretraining_keeps_glove_frozen_gives_back_dropout_and_measures_the_same_draw",
        ("    draw, total, n = torch.Generator().manual_seed(seed), 0.0, 0", "    draw, total, n = None, 0.0, 0")),
    row("the frequency-only loss counts non-target words", "tests/test_masked_words.py::test_target_words_and_the_frequency_only_loss_by_hand",
        ("    return -log_freq[found[found >= 0]].mean().item()", "    return -log_freq[found.clamp(min=0)].mean().item()")),
    # --- the learning curve (notebook 08)
    row("draw_labelled splits at random even when the films are given, so a film lands on both sides",
        K + "test_draw_labelled_with_films_keeps_each_film_on_one_side",
        ("    if movies is None:\n        train_idx, valid_idx = H.split_indices(n, 0.95, seed)",
         "    if True:\n        train_idx, valid_idx = H.split_indices(n, 0.95, seed)")),
    row("draw_labelled takes the pool's first n reviews",
        [K + "test_draw_labelled_draws_n_at_random_and_more_than_the_pool_is_the_pool",
         K + "test_draw_labelled_is_seeded"],
        ("    chosen = H.split_indices(len(pool), n / len(pool), seed)[0]", "    chosen = list(range(n))")),
    row("draw_labelled draws the same reviews whatever the seed", K + "test_draw_labelled_is_seeded",
        ("chosen = H.split_indices(len(pool), n / len(pool), seed)[0]",
         "chosen = H.split_indices(len(pool), n / len(pool), H.SEED)[0]")),
    row("draw_labelled takes the split's positions as pool indices",
        [K + "test_draw_labelled_with_films_keeps_each_film_on_one_side",
         K + "test_draw_labelled_without_films_splits_95_5_at_random"],
        ("return pool.select([chosen[i] for i in train_idx]), pool.select([chosen[i] for i in valid_idx])",
         "return pool.select(train_idx), pool.select(valid_idx)")),
    row("curve_recipe rounds the epochs down, short of min_steps",
        K + "test_curve_recipe_takes_the_fewest_whole_epochs_that_reach_min_steps",
        ("return batch_size, math.ceil(min_steps / math.ceil(n_train / batch_size))",
         "return batch_size, max(1, min_steps // math.ceil(n_train / batch_size))")),
    row("curve_recipe forgets the short last batch, so it trains epochs too many",
        K + "test_curve_recipe_takes_the_fewest_whole_epochs_that_reach_min_steps",
        ("return batch_size, math.ceil(min_steps / math.ceil(n_train / batch_size))",
         "return batch_size, math.ceil(min_steps / max(1, n_train // batch_size))")),
    row("curve_recipe's limits leave out the reviews at the limit",
        K + "test_curve_recipe_batch_size_grows_with_the_reviews",
        ("batch_size = next((b for limit, b in batch_sizes if n_train <= limit), 64)",
         "batch_size = next((b for limit, b in batch_sizes if n_train < limit), 64)")),
    row("fine_tune_point does not seed itself, so its dropout depends on what ran before",
        K + "test_fine_tune_point_repeats_whatever_random_draws_ran_before",
        ("    H.set_seed(seed)  # the point's dropout masks depend on its seed alone",
         "    # the point's dropout masks depend on its seed alone")),
    row("NgramBag counts padding", K + "test_ngram_bag_ignores_padding",
        ("real = tokens != H.PAD_IDX\n        # one number per pair",
         "real = torch.ones_like(tokens, dtype=torch.bool)\n        # one number per pair")),
    row("NgramBag counts the pairs that reach into padding", K + "test_ngram_bag_ignores_padding",
        ("weights = torch.cat([real, real[:, :-1] & real[:, 1:]], 1).float()",
         "weights = torch.cat([real, real[:, :-1]], 1).float()")),
    row("NgramBag divides by the padded length", K + "test_ngram_bag_ignores_padding",
        ("per_sample_weights=weights) / weights.sum(1, keepdim=True).clamp(min=1))",
         "per_sample_weights=weights) / weights.shape[1])")),
    row("NgramBag's pairs ignore word order", [K + "test_ngram_bag_word_order_counts_through_the_pairs",
                                               K + "test_ngram_bag_is_the_mean_of_its_words_and_pairs_rows"],
        ("pairs = (tokens[:, :-1] + 1) * 1_000_003 + tokens[:, 1:]", "pairs = tokens[:, :-1] + tokens[:, 1:]")),
    row("NgramBag hashes a pair (<unk>, w) onto w's own bucket", K + "test_ngram_bag_pair_starting_with_unk_is_not_its_second_word",
        ("pairs = (tokens[:, :-1] + 1) * 1_000_003 + tokens[:, 1:]", "pairs = tokens[:, :-1] * 1_000_003 + tokens[:, 1:]")),
    row("NgramBag hashes only the pairs, not the words", K + "test_ngram_bag_hashes_every_id_into_its_buckets",
        ("ids = torch.cat([tokens, pairs], 1) % self.buckets", "ids = torch.cat([tokens, pairs % self.buckets], 1)")),
    row("curve_summary's spread is the population standard deviation (pstdev)",
        K + "test_curve_summary_mean_sample_spread_and_count_in_points",
        ("statistics.stdev(v) if len(v) > 1 else 0.0", "statistics.pstdev(v) if len(v) > 1 else 0.0")),
    row("curve_summary in fractions, not points", K + "test_curve_summary_mean_sample_spread_and_count_in_points",
        ('.append(100 * r["test_acc"])', '.append(r["test_acc"])')),
    row("plot_curve draws the label counts in the summary's order, not sorted",
        K + "test_plot_curve_draws_each_start_against_its_sorted_label_counts",
        ("counts = sorted(n for start, n in summary if start == name)",
         "counts = [n for start, n in summary if start == name]")),
    # --- exercises
    row("check_exercise says right! to a wrong answer (issue 20, survivor 1)", X,
        ('    except AssertionError as e:\n        print(f"{name}: not yet. {e}")\n        return\n',
         "    except AssertionError:\n        pass\n")),
    row("check_exercise checks the reference solution for the learner", X,
        ("    try:\n        test(answer)\n", "    try:\n        test(solution(notebook, name))\n")),
    row("check_exercise ignores KIT_CHECK_SOLUTIONS", X,
        ('    if os.environ.get("KIT_CHECK_SOLUTIONS"):\n', "    if False:\n")),
    # --- checkpoints
    row("a loaded checkpoint gets the model's dropout as attention dropout (issue 20, survivor 5)",
        C + "test_a_loaded_model_has_the_saved_models_settings",
        ('cfg.get("attention_dropout", cfg["dropout"]))', 'cfg["dropout"])')),
    row("a loaded checkpoint gets the default number of layers",
        C + "test_a_loaded_model_has_the_saved_models_settings",
        ('cfg["num_classes"], cfg["nhead"], cfg["num_layers"],', 'cfg["num_classes"], cfg["nhead"], 2,')),
    row("a frozen GloVe table is saved anyway", C + "test_frozen_glove_is_left_out_and_rebuilt",
        ('frozen_emb = not (model.config.get("trained_embedding") or model.emb.weight.requires_grad)',
         "frozen_emb = False")),
    row("a checkpoint of TrainedRows saves the GloVe table, not the trained rows",
        L + "test_a_checkpoint_keeps_the_trained_rows",
        ('{"emb.weight": model.emb.merged().weight}', '{"emb.weight": model.emb.table.weight}')),
    row("a saved trained embedding is replaced by GloVe on load", [C + "test_a_trained_embedding_is_saved",
                                                                    L + "test_a_checkpoint_keeps_the_trained_rows"],
        ('    if not blob["embedding_saved"]:\n        state["emb.weight"]',
         '    if True:\n        state["emb.weight"]')),
    row("the vocabulary order is not checked", C + "test_different_vocabulary_order_is_named",
        ('("vocabulary order", blob["vocab_fingerprint"], vocab_fingerprint(vocab))', '("vocabulary order", 0, 0)')),
    row("the class count is not checked", C + "test_different_class_count_is_named",
        ('if num_classes is not None and cfg["num_classes"] != num_classes:', "if False:")),
    row("a checkpoint is written in place, not atomically", C + "test_failed_save_leaves_the_old_checkpoint_intact",
        ("    with atomic_path(path) as tmp:\n        torch.save(blob, tmp)",
         "    if True:\n        torch.save(blob, path)")),
    row("a checkpoint is loaded with full unpickling", C + "test_load_never_runs_code_from_the_file",
        ('blob = torch.load(path, map_location="cpu", weights_only=True)',
         'blob = torch.load(path, map_location="cpu", weights_only=False)')),
    # --- data, downloads, extraction, GloVe (the appendix)
    row("IMDB labels are swapped", D + "test_imdb_sample_reads_negatives_then_positives",
        ("self.labels = [0] * len(neg) + [1] * len(pos)", "self.labels = [1] * len(neg) + [0] * len(pos)")),
    row("AG News labels stay 1-4", D + "test_ag_news_sample_reads_labels_0_to_3_and_joins_title_and_text",
        ("self.labels.append(int(cls) - 1)", "self.labels.append(int(cls))")),
    row("an AG News row's class is not checked", D + "test_ag_news_row_with_wrong_columns_or_class_names_the_row",
        ('if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):', "if len(row) != 3:")),
    row("an empty review is read without complaint", D + "test_empty_review_file_is_named",
        ("    if not text.strip():\n        raise KitError(f\"{path} is empty",
         "    if False:\n        raise KitError(f\"{path} is empty")),
    row("extract_tar lets any member through (tests/README row 6)",
        D + "test_the_kits_own_check_refuses_escaping_members",
        ('if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):', "if False:")),
    row("extract_tar allows '..' (tests/README row 6a)", D + "test_the_kits_own_check_refuses_escaping_members",
        ('if p.is_absolute() or ".." in p.parts or ', "if p.is_absolute() or ")),
    row("extract_tar allows absolute paths (tests/README row 6b)",
        D + "test_the_kits_own_check_refuses_escaping_members",
        ('if p.is_absolute() or ".." in p.parts', 'if ".." in p.parts')),
    row("extract_tar allows links (tests/README row 6c)", D + "test_the_kits_own_check_refuses_escaping_members",
        ("or not (m.isfile() or m.isdir()):", "or False:")),
    row("extract_tar does not read to the end, so gzip never checks its CRC",
        D + "test_corrupt_archive_leaves_nothing_half_extracted",
        ("            while tar.fileobj.read(1 << 20):", "            while False:")),
    row("GloVe errors stop naming the bad line (tests/README row 7)",
        [G + "test_read_glove_text_names_the_bad_line",
         G + "test_glove_file_with_a_bad_line_is_a_clear_error_and_not_cached"],
        ('raise KitError(f"{name}, line {n}: expected a word and {dim} numbers, found {len(parts) - 1} values. "',
         'raise KitError(f"{name} is empty. "')),
    row("a GloVe cache that does not match its words is used",
        G + "test_cache_that_does_not_match_its_words_is_rebuilt",
        ('if blob["vectors"].shape != (len(words), dim):', "if False:")),
    row("downloads are not verified", W + "test_wrong_bytes_fail_the_checksum_and_leave_nothing",
        ("if want and file_digest(path, algo) != want:", "if False:")),
    row("a dropped download starts again instead of resuming", W + "test_dropped_connection_resumes_with_range",
        ('if have and url.startswith("http"):', "if False:")),
    row("the mirror is tried after the official URLs", W + "test_mirror_folder_is_used_before_official_urls",
        ('mirror_urls(name) + src["urls"]', 'src["urls"] + mirror_urls(name)')),
    # --- train.py (several processes)
    row("train.py does not wrap the model in DDP, so each process steps on its own half",
        S + "test_a_ddp_step_is_the_hand_computed_step_of_the_whole_batch",
        ("    if not procs.distributed:\n        return model\n", "    return model\n"), file="train.py"),
    row("each process takes the same slice of a global batch", S + "test_sharded_sampler_splits_the_global_batches",
        ("yield batch[r:keep:w]", "yield batch[0:keep:w]"), file="train.py"),
    row("fit keeps the last epoch's weights", R + "test_fit_ends_with_the_best_epochs_weights",
        ('    net.load_state_dict(progress["best_state"])\n', ""), file="train.py"),
]


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]  # deleted but not yet committed: skip


def make_copy(files: list[str], into: Path) -> Path:
    for f in files:
        (into / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, into / f)
    return into


def apply(r: Row, text: str) -> str:
    for old, new in r.changes:
        if isinstance(old, re.Pattern):
            text, n = old.subn(new, text)
            if not n:
                raise ValueError(f"pattern {old.pattern!r} matches nothing in {r.file}")
        else:
            if text.count(old) != 1:
                raise ValueError(f"{old[:60]!r} occurs {text.count(old)} times in {r.file}, not once")
            text = text.replace(old, new)
    return text


def pytest(copy: Path, tests: list[str], extra=()) -> subprocess.CompletedProcess:
    # No bytecode: a breakage and its undoing can leave the same size and mtime, and a stale .pyc would win.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    env.pop("KIT_DATA_DIR", None)  # the copy's conftest.py makes a fresh one
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *extra, *tests],
                          cwd=copy, env=env, capture_output=True, text=True)


def check_rows(rows: list[Row]) -> None:
    for r in rows:
        bad = [t for t in r.tests if t.startswith(NOT_A_CATCH)]
        if bad:
            raise SystemExit(f"row {r.what!r} names {bad}: only fast behaviour tests may catch a breakage")


def run_row(n: int, r: Row, copy: Path) -> tuple[str, str]:
    path = copy / r.file
    original = path.read_text()
    try:
        path.write_text(apply(r, original))
    except ValueError as e:
        return "error", f"the breakage did not apply: {e}"
    try:
        proc = pytest(copy, r.tests, ["-x"])
    finally:
        path.write_text(original)
    failed = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    if proc.returncode == 1:
        return "caught", "\n".join(failed)
    if proc.returncode == 0:
        return "survived", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return "error", (proc.stdout + proc.stderr)[-3000:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the rows and the tests each names, run nothing")
    ap.add_argument("--only", type=int, action="append", metavar="N", help="run row N (repeat for more)")
    ap.add_argument("--jobs", type=int, default=1, help="rows run at a time, each in its own copy (default 1)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show which tests failed, and pytest's output")
    args = ap.parse_args(argv)
    check_rows(BREAKAGES)
    chosen = [(n, BREAKAGES[n - 1]) for n in (args.only or range(1, len(BREAKAGES) + 1))
              if 1 <= n <= len(BREAKAGES)]
    if args.list:
        for n, r in chosen:
            print(f"{n:3}. {r.what}  [{r.file}]\n       " + "\n       ".join(r.tests))
        return 0
    if not chosen:
        ap.error(f"--only takes row numbers 1-{len(BREAKAGES)}")
    files, started = tracked_files(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kit-breakages-") as tmp:
        copies = [make_copy(files, Path(tmp) / f"copy{j}") for j in range(max(1, min(args.jobs, len(chosen))))]
        tests = sorted({t for _, r in chosen for t in r.tests})
        print(f"checking that the {len(tests)} named tests pass unbroken ...", flush=True)
        base = pytest(copies[0], tests)
        if base.returncode != 0:
            print(base.stdout[-5000:] + base.stderr[-2000:])
            print("the named tests fail without any breakage: fix them first", file=sys.stderr)
            return 2
        free, lock, results = list(copies), threading.Lock(), {}

        def one(item):
            n, r = item
            with lock:
                copy = free.pop()
            try:
                verdict, detail = run_row(n, r, copy)
            finally:
                with lock:
                    free.append(copy)
            with lock:
                results[n] = verdict
                print(f"[{n:3}] {verdict:8}  {r.what}", flush=True)
                if detail and (args.verbose or verdict != "caught"):
                    print("        " + detail.replace("\n", "\n        "), flush=True)

        with ThreadPoolExecutor(len(copies)) as pool:
            list(pool.map(one, chosen))
    caught = sum(v == "caught" for v in results.values())
    print(f"\n{caught} of {len(results)} breakages caught by the fast tests "
          f"({sum(v == 'survived' for v in results.values())} survived, "
          f"{sum(v == 'error' for v in results.values())} errors) in {time.perf_counter() - started:.0f} s")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
