"""The exercises' check cells (helpers.check_exercise) as a learner meets them.

The root conftest.py sets KIT_CHECK_SOLUTIONS=1, so the notebooks' check cells test the reference solutions;
every test here but the last unsets it, so the learner's branch runs: a wrong answer must be called wrong,
and a right one right.
"""
import pytest
import torch

import helpers


@pytest.fixture
def learner(monkeypatch):
    monkeypatch.delenv("KIT_CHECK_SOLUTIONS", raising=False)


def masked_max_check(answer):
    """A check in the notebooks' style: an AssertionError whose message is the hint."""
    h = torch.tensor([[[-5.0], [-3.0], [0.0]]])  # the last position is padding and holds a 0
    pad_mask = torch.tensor([[False, False, True]])
    assert answer(h, pad_mask).tolist() == [[-3.0]], "padding won the max. Hint: fill it with -inf first."


def masked_max(h, pad_mask):  # the name check_exercise looks up in solutions/03_model.py
    return h.max(dim=1).values  # the mistake the hint is about: padding counts


def test_a_wrong_answer_is_called_wrong_with_the_hint(learner, capsys):
    helpers.check_exercise("03_model", masked_max, masked_max_check)
    out = capsys.readouterr().out  # pytest adds its own comparison after the hint
    assert out.startswith("masked_max: not yet. padding won the max. Hint: fill it with -inf first.")
    assert "right!" not in out


def test_a_right_answer_is_called_right(learner, capsys):
    right = helpers.solution("03_model", "masked_max")
    helpers.check_exercise("03_model", right, masked_max_check)
    assert capsys.readouterr().out == "masked_max: right!\n"


def test_the_learners_answer_is_checked_not_the_solution(learner, capsys):
    calls = []
    helpers.check_exercise("03_model", masked_max, lambda answer: calls.append(answer))
    assert calls == [masked_max] and capsys.readouterr().out == "masked_max: right!\n"


def test_a_stub_is_not_attempted_yet(learner, capsys):
    def masked_max(h, pad_mask):
        raise NotImplementedError  # your code here

    helpers.check_exercise("03_model", masked_max, masked_max_check)
    out = capsys.readouterr().out
    assert out.startswith("masked_max: not attempted yet.") and "solutions/03_model.py" in out
    assert "right!" not in out and "not yet." not in out


def test_an_answer_that_crashes_shows_its_error(learner):
    """Only a failed check is a hint; the learner's own bug keeps its traceback."""
    def masked_max(h, pad_mask):
        return h.max(dim=7)

    with pytest.raises(IndexError):
        helpers.check_exercise("03_model", masked_max, masked_max_check)


def test_with_check_solutions_the_reference_solution_is_checked_and_must_pass(monkeypatch, capsys):
    monkeypatch.setenv("KIT_CHECK_SOLUTIONS", "1")
    helpers.check_exercise("03_model", masked_max, masked_max_check)  # the wrong answer above is not the one run
    assert "reference solution in solutions/03_model.py passes" in capsys.readouterr().out

    def always_fails(answer):
        assert False, "a check the solution cannot pass"

    with pytest.raises(AssertionError, match="the solution cannot pass"):
        helpers.check_exercise("03_model", masked_max, always_fails)


def test_with_check_solutions_every_wrong_answer_must_be_rejected(monkeypatch, capsys):
    """The check cell under the test suite also runs the exercise's plausible wrong answers
    (solutions/wrong/<notebook>.py); a check that accepts one fails, naming it."""
    monkeypatch.setenv("KIT_CHECK_SOLUTIONS", "1")
    helpers.check_exercise("03_model", masked_max, masked_max_check)
    assert "wrong answer(s) in solutions/wrong/03_model.py do not" in capsys.readouterr().out

    def lenient(answer):  # checks only the shape, which padding that wins the max does not change
        h, pad_mask = torch.zeros(1, 3, 2), torch.tensor([[False, False, True]])
        assert tuple(answer(h, pad_mask).shape) == (1, 2), "shape (batch, dim)"

    with pytest.raises(AssertionError, match="the check accepts masked_max__padding_counts"):
        helpers.check_exercise("03_model", masked_max, lenient)


def exercises():
    """(notebook, name) of every exercise: the functions and classes its reference solutions define."""
    import ast
    found = []
    for path in sorted(helpers.SOLUTIONS_DIR.glob("0*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path.stem, node.name) for node in tree.body
                  if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]
    return found


@pytest.mark.parametrize("notebook, name", exercises())
def test_every_exercise_has_a_wrong_answer_to_reject(notebook, name):
    wrong = helpers.wrong_answers(notebook, name)
    assert wrong, f"solutions/wrong/{notebook}.py has no {name}__<mistake>: give the check a wrong answer to reject"
    assert all(w.__doc__ for w in wrong), "each wrong answer says in its docstring what is wrong with it"


@pytest.mark.parametrize("notebook", sorted(p.stem for p in helpers.SOLUTIONS_DIR.glob("0*.py")))
def test_every_exercise_is_checked_in_its_notebook(notebook):
    """An exercise with a solution but no check cell would never meet its wrong answers."""
    import nbformat
    text = "\n".join(c.source for c in nbformat.read(helpers.ROOT / "notebooks" / f"{notebook}.ipynb", 4).cells)
    for nb_name, name in exercises():
        if nb_name == notebook:
            assert f'check_exercise("{notebook}", {name}, test)' in text, name
