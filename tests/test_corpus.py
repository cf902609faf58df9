"""Corpus reading, sentence splitting, exact statistics, packing and masking (fewshot.pretraining.corpus)."""

import json
import re

import numpy as np
import pytest

from fewshot.cli.corpus_stats import main
from fewshot.pretraining.corpus import (
    CONTINUATION,
    SPECIAL,
    START,
    CorpusError,
    TokenizedSentence,
    corpus_statistics,
    read_corpus,
    read_word_list,
    split_sentences,
    tokenize_corpus,
    tokenize_sentence,
)
from fewshot.pretraining.packing import mask_sequence, pack_sequences
from fewshot.pretraining.vocabulary import build_vocab
from fewshot.testing import build_tiny_model

VOCAB_TEXT = "今天气很好我们去跑步球赛开始了吗股价上北京大学生的。！？"
"""Characters of the hand-checked tokenizer; 涨 and 龙 are left out so they become [UNK]."""


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    from paddlenlp.transformers import AutoTokenizer

    directory = build_tiny_model(tmp_path_factory.mktemp("corpus-vocab"), [VOCAB_TEXT], hidden_size=8, num_layers=1)
    return AutoTokenizer.from_pretrained(directory)


@pytest.fixture
def messy_corpus(tmp_path):
    """Two good files (5 sentences, 26 tokens, 2 [UNK]; one bad JSON line) and three that must be skipped."""
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("今天天气很好。我们去跑步！\n\n球赛开始了吗？\n", encoding="utf-8")
    (root / "b.jsonl").write_text(
        json.dumps({"sentence": "股价上涨。龙", "id": 1}, ensure_ascii=False) + "\n\n{broken\n", encoding="utf-8"
    )
    (root / "c.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (root / "d.txt").write_bytes(b"")
    (root / "e.txt").write_bytes("第一行\n".encode("utf-8") + "第二行".encode("gbk"))
    (root / ".hidden.txt").write_text("不该读到", encoding="utf-8")
    return root


def test_split_sentences_at_newlines_and_chinese_and_ascii_sentence_ends():
    text = "今天下雨了。你去吗？！\n好的!! 价格3.5元。\r\n他说：“走吧。”然后走了 ok.Next www.a.cn\n\n"
    assert split_sentences(text) == [
        "今天下雨了。", "你去吗？！", "好的!!", "价格3.5元。", "他说：“走吧。”", "然后走了 ok.Next www.a.cn",
    ]
    assert split_sentences("end. Start") == ["end.", "Start"]
    assert split_sentences("  \n \n") == []


def test_statistics_are_exact_on_a_hand_checked_corpus(messy_corpus, char_tokenizer):
    corpus = read_corpus([messy_corpus], doc_per="line", text_field="sentence")
    assert corpus.documents == [["今天天气很好。", "我们去跑步！"], ["球赛开始了吗？"], ["股价上涨。", "龙"]]
    stats = corpus_statistics(tokenize_corpus(corpus, char_tokenizer))
    assert (stats.files, stats.skipped_files) == (2, 3)
    assert (stats.documents, stats.sentences, stats.tokens, stats.characters) == (3, 5, 26, 26)
    assert stats.unk_tokens == 2
    assert stats.unk_share == pytest.approx(2 / 26)
    assert stats.avg_tokens_per_sentence == pytest.approx(26 / 5)
    assert stats.avg_tokens_per_document == pytest.approx(26 / 3)
    assert stats.max_tokens_per_sentence == 7
    assert stats.distinct_tokens == 23

    per_file = corpus_statistics(tokenize_corpus(read_corpus([messy_corpus], "file", "sentence"), char_tokenizer))
    assert (per_file.documents, per_file.sentences, per_file.tokens) == (2, 5, 26)


def test_bad_files_are_reported_by_name_and_skipped(messy_corpus):
    corpus = read_corpus([messy_corpus], text_field="sentence")
    assert corpus.skipped == [
        f"{messy_corpus / 'c.bin'}: binary file (NUL bytes), skipped",
        f"{messy_corpus / 'd.txt'}: empty file, skipped",
        f"{messy_corpus / 'e.txt'}: not valid UTF-8 (byte 0xb5 on line 2), skipped",
    ]
    assert corpus.files == [str(messy_corpus / "a.txt"), str(messy_corpus / "b.jsonl")]
    assert corpus.notes == [f"{messy_corpus / 'b.jsonl'}: 1 JSON line(s) skipped (first: line 3: invalid JSON "
                            "(Expecting property name enclosed in double quotes))"]


def test_unusable_corpora_raise_errors_that_name_the_path(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"no text in the corpus .*empty.txt: empty file, skipped"):
        read_corpus([tmp_path / "empty.txt"])
    with pytest.raises(CorpusError, match=r"missing.txt: no such file or directory"):
        read_corpus([tmp_path / "missing.txt"])
    (tmp_path / "rows.json").write_text('{"sentence": "你好", "id": 3}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"rows.json: JSON lines need a text field .*keys id, sentence"):
        read_corpus([tmp_path / "rows.json"])
    with pytest.raises(CorpusError, match=r"rows.json: no object has a text in 'text'"):
        read_corpus([tmp_path / "rows.json"], text_field="text")
    (tmp_path / "sub").mkdir()
    with pytest.raises(CorpusError, match=r"sub: directory has no files"):
        read_corpus([tmp_path / "sub"])


def test_very_long_line_is_cut_into_full_sequences(tmp_path, char_tokenizer):
    (tmp_path / "long.txt").write_text("今天天气很好" * 500 + "\n球赛开始了吗\n", encoding="utf-8")
    tokenized = tokenize_corpus(read_corpus([tmp_path / "long.txt"]), char_tokenizer)
    sequences = pack_sequences(tokenized.documents, 64, char_tokenizer.cls_token_id, char_tokenizer.sep_token_id)
    lengths = [len(s) for s in sequences]
    assert max(lengths) == 64 and lengths[:-1] == [64] * (len(lengths) - 1)
    inner = [i for s in sequences for i, k in zip(s.ids, s.kinds) if k != SPECIAL]
    assert len(inner) == 3000 + 6
    assert all(s.kinds[0] == SPECIAL and s.kinds[-1] == SPECIAL for s in sequences)


def _sentence(length: int, first_id: int) -> TokenizedSentence:
    return TokenizedSentence(ids=np.arange(first_id, first_id + length), kinds=np.full(length, START, dtype="int8"))


def test_pack_sequences_separates_documents_and_starts_a_new_sequence_when_full():
    a, b, c = _sentence(2, 10), _sentence(1, 20), _sentence(2, 30)
    d = _sentence(5, 40)
    sequences = pack_sequences([[a, b], [c], [d]], max_seq_len=8, cls_id=1, sep_id=2)
    assert [s.ids.tolist() for s in sequences] == [[1, 10, 11, 20, 2, 30, 31, 2], [1, 40, 41, 42, 43, 44, 2]]
    assert sequences[0].kinds.tolist() == [SPECIAL, START, START, START, SPECIAL, START, START, SPECIAL]


def test_masking_picks_fifteen_percent_of_units_split_80_10_10():
    ids = np.concatenate([[1], np.arange(100, 200), [2]])
    kinds = np.concatenate([[SPECIAL], np.full(100, START), [SPECIAL]]).astype("int8")
    random_ids = np.arange(500, 600)
    rng = np.random.default_rng(0)
    outcome = {"mask": 0, "random": 0, "kept": 0}
    for _ in range(400):
        masked, positions, labels = mask_sequence(ids, kinds, rng, mask_id=3, random_ids=random_ids)
        assert len(positions) == 15
        assert np.array_equal(labels, ids[positions])
        assert 0 not in positions and 101 not in positions
        unchanged = np.setdiff1d(np.arange(len(ids)), positions)
        assert np.array_equal(masked[unchanged], ids[unchanged])
        chosen = masked[positions]
        outcome["mask"] += int((chosen == 3).sum())
        outcome["random"] += int(np.isin(chosen, random_ids).sum())
        outcome["kept"] += int((chosen == labels).sum())
    total = sum(outcome.values())
    assert total == 400 * 15
    assert outcome["mask"] / total == pytest.approx(0.8, abs=0.03)
    assert outcome["random"] / total == pytest.approx(0.1, abs=0.02)
    assert outcome["kept"] / total == pytest.approx(0.1, abs=0.02)


def test_whole_word_masking_masks_listed_words_as_one_unit(tmp_path, char_tokenizer):
    (tmp_path / "words.txt").write_text("北京大学 300 nt\n北京\n学生\n好\n", encoding="utf-8")
    words = read_word_list(tmp_path / "words.txt")
    assert words == {"北京大学", "北京", "学生"}
    sentence = tokenize_sentence("北京大学的学生很好", char_tokenizer, words)
    assert sentence.kinds.tolist() == [START, CONTINUATION, CONTINUATION, CONTINUATION, START, START, CONTINUATION, START, START]
    sequence = pack_sequences([[sentence]], 16, char_tokenizer.cls_token_id, char_tokenizer.sep_token_id)[0]
    rng = np.random.default_rng(1)
    spans = {(1, 5), (5, 6), (6, 8), (8, 9), (9, 10)}
    for _ in range(50):
        _, positions, _ = mask_sequence(sequence.ids, sequence.kinds, rng, 3, np.arange(5, 20), ratio=0.3)
        covered = [span for span in spans if set(range(*span)) & set(positions.tolist())]
        assert sorted(p for span in covered for p in range(*span)) == positions.tolist()


def test_build_vocab_keeps_frequent_characters_most_frequent_first():
    vocab = build_vocab([["好好好天", "天下"], ["ab ab"]], min_freq=2, special_tokens=("[PAD]", "[UNK]"))
    assert vocab == ["[PAD]", "[UNK]", "好", "##b", "a", "天"]


def test_corpus_stats_cli_prints_and_writes_json(messy_corpus, char_tokenizer, tmp_path, capsys):
    model_dir = tmp_path / "tok"
    char_tokenizer.save_pretrained(str(model_dir))
    out = tmp_path / "stats.json"
    assert main([str(messy_corpus), "--text-field", "sentence", "--model", str(model_dir), "--output", str(out)]) == 0
    printed = capsys.readouterr()
    assert re.search(r"\[UNK\] tokens +2 \(7\.692%\)", printed.out)
    assert "e.txt: not valid UTF-8" in printed.err
    written = json.loads(out.read_text(encoding="utf-8"))
    assert (written["documents"], written["sentences"], written["tokens"], written["unk_tokens"]) == (3, 5, 26, 2)
    assert main([str(tmp_path / "nowhere"), "--model", str(model_dir)]) == 2
    assert "nowhere: no such file or directory" in capsys.readouterr().err
