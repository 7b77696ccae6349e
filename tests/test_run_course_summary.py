"""run_course.summarize: one line per notebook record of a run folder, whatever kind of run wrote it."""
import json

import run_course


def write(folder, name, data):
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_each_kind_of_record_gets_its_own_line(tmp_path, capsys):
    write(tmp_path, "05_full_finetune_imdb", dict(test_acc=0.87376, valid_acc=0.8746, seconds_per_epoch=77.3,
                                                  trainable_params=3076358))
    write(tmp_path, "07_masked_words", dict(mlm_history=dict(valid_loss=[5.84, 5.146]), mlm_frequency_loss=6.243,
                                            mlm_chance_loss=9.21))
    write(tmp_path, "masked_words", dict(loss_per_epoch=[5.84, 5.146]))  # 07's second record: no line of its own
    cells = [dict(start="AG News", regime="everything", test_acc=0.8423, runs=3),
             dict(start="scratch", regime="everything", test_acc=0.8401, runs=3)]
    write(tmp_path, "07b_experiments", dict(grid=[{}] * 18, cells=cells))
    write(tmp_path, "08_learning_curve", dict(bag_all=dict(test_acc=0.8592)))
    write(tmp_path, "learning_curve", [{}] * 93)
    run_course.summarize(tmp_path)
    assert capsys.readouterr().out.splitlines() == [
        "  05_full_finetune_imdb: test accuracy 0.8738, validation 0.8746, 77.3 s per epoch, 3,076,358 trainable "
        "parameters",
        "  07_masked_words: masked-word held-out loss 5.146 after 2 epochs; the frequency-only guess 6.243, "
        "chance 9.210",
        "  07b_experiments: 18 runs; best mean test accuracy 0.8423 (AG News, everything, 3 seed(s))",
        "  08_learning_curve: 93 fine-tunings of the learning curve; bag of n-grams on all labels 0.8592",
    ]
