"""Automatic label words: planted keywords are recovered, bare label ids work, the CLI writes an editable file."""

import numpy as np
import pytest

from fewshot.classifier import PromptClassifier
from fewshot.cli.labelwords import main as labelwords_main
from fewshot.data import read_label_words
from fewshot.errors import FewshotError
from fewshot.prompt.label_search import (
    LabelWordSearch, assign_words, best_combinations, join_tokens, select_label_words, text_ngrams,
)

ONE_MASK = "{'text': 'text_a'}这句话的类别是{'mask'}"
TWO_MASKS = "{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}"
FAST = dict(max_steps=100, learning_rate=5e-3, per_device_train_batch_size=8, seed=0, disable_tqdm=True,
            logging_steps=1000, report_to=[])


def _planted(model_dir, train, template, words, tmp_path):
    """A PLM whose masked LM was taught ``words`` (label → word) at the template's masks by prompt tuning."""
    clf = PromptClassifier(model_dir, labels=words, template=template, max_seq_length=32, seed=0)
    clf.fit(train, **FAST)
    clf.save(tmp_path / "planted")
    return str(tmp_path / "planted" / "plm")


def test_planted_single_character_keywords_are_recovered(tiny_model_dir, separable_task, tmp_path):
    train, _, _ = separable_task
    planted = {"sports": "天", "finance": "体", "weather": "财"}  # not what the cues mean: learned, not read
    plm = _planted(tiny_model_dir, train, ONE_MASK, planted, tmp_path)
    clf = PromptClassifier(plm, labels=list(planted), template=ONE_MASK, max_seq_length=32, label_words="auto")
    words = clf.choose_label_words(train, LabelWordSearch(top=1))
    assert words == {label: [word] for label, word in planted.items()}
    assert clf.label_word_choice["scores"]["sports"][0] > 0


def test_two_mask_words_are_built_from_the_planted_characters(tiny_model_dir, separable_task, tmp_path):
    train, test, _ = separable_task
    planted = {"sports": "天气", "finance": "体育", "weather": "财经"}
    plm = _planted(tiny_model_dir, train, TWO_MASKS, planted, tmp_path)
    clf = PromptClassifier(plm, labels=list(planted), template=TWO_MASKS, max_seq_length=32, seed=0,
                           label_words="auto")
    with pytest.raises(FewshotError, match="call fit"):
        clf.predict("球赛")
    clf.fit(train, **FAST)  # chooses the words first, then trains on them
    for label, word in planted.items():
        (chosen,) = clf.label_words[label]
        assert len(chosen) == 2 and set(chosen) <= set(word), (label, chosen)
    assert clf.evaluate(test)["accuracy"] >= 0.9
    clf.save(tmp_path / "auto")
    again = PromptClassifier.load(tmp_path / "auto")
    assert again.label_words == clf.label_words and again.label_word_choice == clf.label_word_choice


def test_bare_english_ids_and_long_phrases_work_as_label_names(tiny_model_dir, separable_task):
    train, _, _ = separable_task
    names = {"sports": "news_sports", "finance": "a very long label name about money", "weather": "天气预报与气候变化"}
    rows = [(e.text_a, names[e.label]) for e in train]
    clf = PromptClassifier(tiny_model_dir, labels=list(names.values()), template=TWO_MASKS, max_seq_length=32,
                           label_words="auto")
    words = clf.choose_label_words(rows, LabelWordSearch(top=2))
    assert list(words) == list(names.values())
    chosen = [w for ws in words.values() for w in ws]
    assert len(set(chosen)) == 6 and all(len(w) == 2 for w in chosen)


def test_ngrams_of_a_labels_texts_go_before_combinations_and_keep_their_scores():
    ids, strings = np.array([10, 11, 12, 13]), ["甲", "乙", "丙", "丁"]
    texts = [[10, 11, 5], [10, 11], [12, 13], [13, 12, 13, 12]]
    membership = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    runs = text_ngrams(texts, membership, 2, ids)
    assert runs == [{(0, 1): 2}, {(2, 3): 2, (3, 2): 1}]  # 丁丙 stands in one text of y only
    mean_logp = {  # label: [slot 0, slot 1] mean log-probabilities of 甲 乙 丙 丁 over its texts
        0: [[-5, -10, -0.5, -10], [-10, -5, -10, -0.5]],
        1: [[-10, -10, -6, -2], [-10, -10, -2, -6]],
    }
    per_label = np.full((2, 2, 14), -20.0)
    for y, slots in mean_logp.items():
        per_label[y][:, ids] = 2 * np.array(slots)  # sums over the label's two texts
    total = per_label.sum(axis=0)
    args = (per_label, total, np.array([2, 2]), 4, ["x", "y"], ids, strings)
    plain = select_label_words(*args, LabelWordSearch(top=1))
    assert plain == ({"x": ["丙丁"], "y": ["丁丙"]}, {"x": [5.5], "y": [8.0]})
    words, scores = select_label_words(*args, LabelWordSearch(top=1, ngrams=True), ngrams=runs)
    assert words == {"x": ["甲乙"], "y": ["丙丁"]} and scores == {"x": [5.0], "y": [-5.5]}


def test_beam_and_assignment_give_distinct_words_best_claims_first():
    options = [[(2.0, 0), (1.0, 1)], [(0.5, 2), (0.4, 0)]]
    assert best_combinations(options, width=2) == [(1.25, (0, 2)), (0.75, (1, 2))]  # no character twice
    beams = {"a": [(3.0, (0,)), (1.0, (1,))], "b": [(2.0, (0,)), (1.5, (2,))]}
    words, scores = assign_words(beams, ["a", "b"], np.array([10, 11, 12]), ["甲", "乙", "丙"], top=1)
    assert words == {"a": ["甲"], "b": ["丙"]} and scores == {"a": [3.0], "b": [1.5]}
    assert join_tokens(["汽", "车"]) == "汽车" and join_tokens(["car", "race"]) == "car race"
    with pytest.raises(FewshotError, match="fewer than 3 distinct words"):
        assign_words(beams, ["a", "b"], np.array([10, 11, 12]), ["甲", "乙", "丙"], top=3)


def test_search_settings_are_checked(tiny_model_dir):
    with pytest.raises(FewshotError, match="top must be a positive integer"):
        LabelWordSearch(top=0)
    with pytest.raises(FewshotError, match="label_words must be 'auto'"):
        PromptClassifier(tiny_model_dir, labels=["a", "b"], template=TWO_MASKS, label_words="automatic")
    clf = PromptClassifier(tiny_model_dir, labels=["a", "b"], template=TWO_MASKS, label_words=LabelWordSearch(length=3))
    with pytest.raises(FewshotError, match="need 3 \\[MASK\\] slots, the template has 2"):
        clf.choose_label_words([("球赛", "a"), ("股价", "b")])


def test_fewshot_labelwords_writes_an_editable_label_file(tiny_model_dir, separable_task, tmp_path, capsys):
    train, _, _ = separable_task
    data = tmp_path / "train.txt"
    data.write_text("".join(f"{e.text_a}\tnews_{e.label}\n" for e in train), encoding="utf-8")
    out = tmp_path / "label.txt"
    code = labelwords_main(["--train", str(data), "--model", tiny_model_dir, "--template", TWO_MASKS,
                            "--max-seq-length", "32", "--top", "2", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    words = read_label_words(out)
    assert list(words) == list(dict.fromkeys(f"news_{e.label}" for e in train))
    assert all(len(ws) == 2 for ws in words.values())
    printed = capsys.readouterr().out
    assert all(label in printed for label in words)
    labels = tmp_path / "names.txt"
    labels.write_text("news_weather\nnews_sports\nnews_finance\n", encoding="utf-8")
    assert labelwords_main(["--train", str(data), "--model", tiny_model_dir, "--template", TWO_MASKS, "--labels",
                            str(labels), "--max-seq-length", "32", "--output", str(out)]) == 0
    assert list(read_label_words(out)) == ["news_weather", "news_sports", "news_finance"]
    assert labelwords_main(["--train", str(data), "--model", tiny_model_dir, "--template", TWO_MASKS, "--length", "3",
                            "--output", str(tmp_path / "x.txt")]) == 2
    assert not (tmp_path / "x.txt").exists()


def test_fewshot_train_auto_label_words_saves_the_chosen_words(tiny_model_dir, separable_task, tmp_path):
    from fewshot.cli.train import main as train_main

    train, _, _ = separable_task
    (tmp_path / "names.txt").write_text("sports\nfinance\nweather\n", encoding="utf-8")
    (tmp_path / "train.txt").write_text("".join(f"{e.text_a}\t{e.label}\n" for e in train), encoding="utf-8")
    assert train_main(["--train", str(tmp_path / "train.txt"), "--labels", str(tmp_path / "names.txt"), "--model",
                       tiny_model_dir, "--template", TWO_MASKS, "--max-steps", "2", "--max-seq-length", "32",
                       "--output", str(tmp_path / "out"), "--auto-label-words"]) == 0
    clf = PromptClassifier.load(tmp_path / "out")
    assert all(len(words) == 1 and len(words[0]) == 2 for words in clf.label_words.values())
    assert clf.label_word_choice["settings"] == LabelWordSearch().config()
