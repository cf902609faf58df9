"""Template parsing (every part kind and its errors) and encoding (truncation, masks, soft ids)."""

import pytest

from fewshot.errors import TemplateError
from fewshot.template import Part, Template, field_slots, format_part, named_fields, pad_batch, parse_template, set_soft_encoder


def test_parses_every_part_kind():
    parts = parse_template(
        "{'text': 'text_a'}{'sep'}{'text': 'text_b', 'truncate': False}{'hard': '主题'}是"
        "{'soft'}{'soft': '初始'}{'soft': None, 'length': 3, 'encoder': 'lstm', 'hidden_size': 16}"
        "{'mask'}{'mask': None, 'length': 2}"
    )
    assert parts == [
        Part("text", "text_a"),
        Part("sep"),
        Part("text", "text_b", truncate=False),
        Part("hard", "主题"),
        Part("hard", "是"),
        Part("soft"),
        Part("soft", "初始"),
        Part("soft", None, length=3, encoder="lstm", hidden_size=16),
        Part("mask"),
        Part("mask", length=2),
    ]


def test_plain_text_outside_braces_is_hard_text():
    assert parse_template("{'text':'text_a'}这条新闻的主题是{'mask'}")[1] == Part("hard", "这条新闻的主题是")


def test_braces_inside_quoted_strings_are_text():
    assert parse_template("{'text':'text_a'}{'hard': '{x}'}")[1] == Part("hard", "{x}")


@pytest.mark.parametrize(
    "template, message",
    [
        ("{'text': 'text_a'}{'mask'", r"part starting at character 18 is never closed: \"\{'mask'\"|never closed"),
        ("{'text': 'text_a'}}", r"unmatched '\}' at character 18"),
        ("{'text': 'text_a'}{'mask': __import__('os')}", r"cannot parse part \"\{'mask': __import__\('os'\)\}\""),
        ("{'text': 'a'}{'text': 'b'}{'text': 'c'}", r"text fields a, b, c: an example holds at most two texts"),
        ("{'text': 'text_a'}{'text': ''}", r"text slot must name an example field such as 'text_a', got ''"),
        ("{'text': 'text_a'}{'soft': None, 'lenght': 2}", r"unknown option\(s\) lenght for 'soft'"),
        ("{'text': 'text_a'}{'mask', 'soft'}", r"exactly one of text, hard, soft, mask, sep"),
        ("{'text': 'text_a'}{'soft': None, 'encoder': 'gru'}", r"encoder must be one of none, lstm, mlp, got 'gru'"),
        ("{'text': 'text_a'}{'mask': None, 'length': 0}", r"'length' must be ≥ 1, got 0"),
        ("{'text': 'text_a'}{'mask': None, 'token_type': 2}", r"'token_type' must be 0 or 1, got 2"),
        ("{'text': 'text_a'}{'mask': None, 'position': -1}", r"'position' must be ≥ 0, got -1"),
        ("{'text': 'text_a'}{'mask': None, 'truncate': True}", r"only text and hard parts can be truncated, not 'mask'"),
        ("{'text': 'text_a'}{'soft': None, 'soft_id': 'a'}", r"'soft_id' must be an integer, got 'a'"),
        ("{'text': 'text_a'}{'mask': None, 'prefix_len': 2}", r"unknown option\(s\) prefix_len for 'mask'"),
        ("{'text': 'text_a'}{[1, 2]}", r"cannot parse part|is not a \{key: value\} part"),
        ("", r"empty template"),
        ("{'text': 'text_a'}{'soft': None, 'length': 100000}", r"'length' must be ≤ 8192, got 100000"),
        ("{'text': 'text_a'}{'soft': None, 'hidden_size': 1.5}", r"'hidden_size' must be an integer, got 1.5"),
        ("{'text': 'text_a'}{'prefix': None, 'length': 4}{'mask'}", r"a \{'prefix'\} part must be the template's first part"),
        ("{'prefix': None, 'length': 4}这条新闻的主题是", r"a \{'prefix'\} part must be the template's first part"),
        ("{'prefix': None}{'text': 'text_a'}{'soft'}{'mask'}", r"\{'prefix'\} and \{'soft'\} parts cannot be combined"),
        ("{'prefix': None, 'encoder': 'lstm'}{'text': 'text_a'}{'mask'}", r"a prefix is encoded by 'mlp'"),
        ("{'text': 'text_a'}{'mask': None, 'pos': 1}", r"unknown option\(s\) pos for 'mask'"),
        ("{'text': 'text_a'}{'options': 'choices'}", r"options from an example field \('choices'\) are not supported"),
        ("{'text': 'text_a'}{'options': ['a'], 'add_prompt': '是吗'}", r"'add_prompt' must be text containing \[OPT\]"),
    ],
)
def test_malformed_template_error_quotes_the_part(template, message):
    with pytest.raises(TemplateError, match=message):
        parse_template(template)


@pytest.mark.parametrize(
    "short, full",
    [
        ("这条新闻标题的主题是", "{'text': 'text_a'}这条新闻标题的主题是{'mask'}"),
        ("这条新闻的主题是{'mask'}{'mask'}", "{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}"),
        ("{'soft'}主题是", "{'text': 'text_a'}{'soft'}主题是{'mask'}"),
    ],
)
def test_short_form_implies_text_a_first_and_a_final_mask(short, full):
    assert parse_template(short) == parse_template(full)


def test_short_form_encodes_like_the_full_template(tiny_tokenizer):
    short = Template("这条新闻的主题是", tiny_tokenizer, 32).encode("球赛")
    assert short == Template("{'text': 'text_a'}这条新闻的主题是{'mask'}", tiny_tokenizer, 32).encode("球赛")
    assert tiny_tokenizer.convert_ids_to_tokens(short["input_ids"])[:4] == ["[CLS]", "球", "赛", "这"]
    assert short["masked_positions"] == [11]


def test_template_string_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(TemplateError):
        parse_template("{'text': 'text_a'}{'hard': open(%r, 'w').write('x')}" % str(marker))
    assert not marker.exists()


def test_encode_layout(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}主题{'soft'}{'mask'}{'mask'}", tiny_tokenizer, 32)
    enc = tpl.encode("球赛")
    tokens = tiny_tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["[CLS]", "球", "赛", "主", "题", "[UNK]", "[MASK]", "[MASK]", "[SEP]"]
    assert enc["masked_positions"] == [6, 7]
    assert enc["soft_token_ids"] == [0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert enc["position_ids"] == list(range(9))
    assert enc["attention_mask"] == [1] * 9
    assert enc["token_type_ids"] == [0] * 9


def test_sep_switches_token_type(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 32)
    enc = tpl.encode("球", "雨")
    assert enc["token_type_ids"] == [0, 0, 0, 1, 1, 1]


def test_soft_tokens_numbered_in_order_with_init_ids(tiny_tokenizer):
    tpl = Template("{'soft': '主题'}{'text': 'text_a'}{'soft': None, 'length': 2}{'mask'}", tiny_tokenizer, 32)
    enc = tpl.encode("球")
    assert enc["soft_token_ids"] == [0, 1, 2, 0, 3, 4, 0, 0]
    ids = tiny_tokenizer.convert_tokens_to_ids(["主", "题"])
    assert [t.init_token_id for t in tpl.soft_tokens] == ids + [None, None]
    assert enc["input_ids"][1:3] == ids


def test_truncation_cuts_only_text_never_prompt_or_masks(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}这条新闻的主题是{'soft'}{'mask'}{'mask'}", tiny_tokenizer, 16)
    enc = tpl.encode("球赛" * 20)
    tokens = tiny_tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert len(tokens) == 16
    assert tokens[-12:] == ["这", "条", "新", "闻", "的", "主", "题", "是", "[UNK]", "[MASK]", "[MASK]", "[SEP]"]
    assert tokens[1:4] == ["球", "赛", "球"]
    assert enc["masked_positions"] == [13, 14]


def test_truncation_shortens_the_longest_text_slot_first(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 12)
    enc = tpl.encode("球" * 20, "雨雨雨")
    tokens = tiny_tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens.count("雨") == 3 and tokens.count("球") == 12 - 4 - 3  # [CLS] [SEP] [MASK] [SEP]


def test_untruncatable_slot_is_kept_whole(tiny_tokenizer):
    tpl = Template("{'text': 'text_a', 'truncate': False}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 12)
    enc = tpl.encode("雨雨雨", "球" * 20)
    assert tiny_tokenizer.convert_ids_to_tokens(enc["input_ids"]).count("雨") == 3


def test_prompt_longer_than_max_seq_length_is_an_error(tiny_tokenizer):
    with pytest.raises(TemplateError, match="needs 12 tokens for prompt, masks and special tokens .* max_seq_length is 10"):
        Template("{'text': 'text_a'}这条新闻的主题是{'mask'}{'mask'}", tiny_tokenizer, 10)


def test_missing_text_b_is_an_error(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 16)
    with pytest.raises(TemplateError, match="slot 'text_b' is used but the example has no text_b"):
        tpl.encode("球")


def test_pad_batch_pads_to_longest_row_only(tiny_tokenizer):
    tpl = Template("{'text': 'text_a'}{'mask'}", tiny_tokenizer, 64)
    batch = pad_batch([tpl.encode("球"), tpl.encode("球赛跑")], pad_token_id=0)
    assert batch["input_ids"].shape == (2, 6)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    assert batch["masked_positions"].tolist() == [[2], [4]]


def test_set_soft_encoder_rewrites_only_soft_parts_without_encoder():
    text = set_soft_encoder("{'text': 'text_a'}{'soft': None, 'length': 2}{'soft': '主', 'encoder': 'mlp'}{'mask'}", "lstm")
    parts = parse_template(text)
    assert parts[1] == Part("soft", None, length=2, encoder="lstm")
    assert parts[2] == Part("soft", "主", encoder="mlp")
    with pytest.raises(TemplateError, match="has no \\{'soft'\\} part"):
        set_soft_encoder("{'text': 'text_a'}{'mask'}", "lstm")


def _truncate_one_token_at_a_time(lengths, truncatable, budget):
    """The rule as users read it: drop the last token of the longest truncatable slot (earliest on ties)."""
    lengths = list(lengths)
    while sum(lengths) > budget:
        candidates = [i for i, n in enumerate(lengths) if truncatable[i] and n > 1]
        if not candidates:
            return None
        longest = max(candidates, key=lambda i: lengths[i])
        lengths[longest] -= 1
    return lengths


def test_encoder_truncation_in_runs_equals_removing_one_token_at_a_time():
    import random

    from fewshot.errors import DataError
    from fewshot.template import TemplateEncoder

    rng = random.Random(0)
    for _ in range(500):
        slots = rng.randint(1, 2)
        truncatable = [rng.random() < 0.8 for _ in range(slots)]
        parts = []
        for i, name in enumerate(["text_a", "text_b"][:slots]):
            parts.append({"kind": "text", "slot": name, "truncate": truncatable[i]})
            parts.append({"kind": "hard", "ids": [5] * rng.randint(1, 3)})
        parts.append({"kind": "mask", "ids": [3]})
        fixed = 2 + sum(len(p.get("ids", [])) for p in parts)
        encoder = TemplateEncoder(parts, 1, 2, 0, fixed + rng.randint(slots, 30), lambda texts: [])
        lengths = [rng.randint(1, 40) for _ in range(slots)]
        slot_ids = {name: list(range(10, 10 + n)) for name, n in zip(["text_a", "text_b"], lengths)}
        expected = _truncate_one_token_at_a_time(lengths, truncatable, encoder.text_budget)
        if expected is None:
            with pytest.raises(DataError, match="does not fit max_seq_length"):
                encoder.assemble(slot_ids)
            continue
        row = encoder.assemble(slot_ids)
        assert len(row["input_ids"]) == fixed + sum(expected)
        position = 1
        for i in range(slots):
            # each slot keeps its first tokens, as many as the one-at-a-time rule leaves
            assert row["input_ids"][position:position + expected[i]] == list(range(10, 10 + expected[i]))
            position += expected[i] + len(parts[2 * i + 1]["ids"])


@pytest.mark.parametrize(
    "template, slots",
    [
        ("{'text': 'sentence'}主题是{'mask'}", {"sentence": "text_a"}),
        ("{'text': 'premise'}{'sep'}{'text': 'hypothesis'}{'mask'}", {"premise": "text_a", "hypothesis": "text_b"}),
        ("{'text': 'text_b'}{'text': 'query'}{'mask'}", {"text_b": "text_b", "query": "text_a"}),
    ],
)
def test_text_slots_name_any_field_read_by_position(template, slots):
    assert field_slots(parse_template(template)) == slots
    assert named_fields(template) == {slot: name for name, slot in slots.items() if name != slot}


def test_named_field_encodes_as_its_slot(tiny_tokenizer):
    named = Template("{'text': 'premise'}{'sep'}{'text': 'hypothesis'}{'mask'}", tiny_tokenizer, 32)
    plain = Template("{'text': 'text_a'}{'sep'}{'text': 'text_b'}{'mask'}", tiny_tokenizer, 32)
    assert named.needs_text_b and named.encode("球", "雨") == plain.encode("球", "雨")


@pytest.mark.parametrize(
    "template",
    [
        "{'soft': '主题', 'length': 3, 'soft_id': 1, 'encoder': 'mlp'}{'text': 'text_a', 'position': 0}{'soft_id': 1}{'mask'}",
        "{'text': 'premise', 'truncate': False}{'sep': None, 'token_type': 1}{'hard': '主题', 'truncate': True, 'add_space': True}"
        "{'mask': None, 'length': 2}",
        "{'text': 'text_a'}{'options': ['体育', '财经'], 'add_omask': True, 'add_prompt': '是[OPT]吗', 'token_type': 1}{'mask'}",
    ],
)
def test_format_part_round_trips_every_keyword(template):
    parts = parse_template(template)
    assert parse_template("".join(format_part(p) for p in parts)) == parts
