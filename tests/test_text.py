"""ptcourse.text: corpus (online structure and offline fallback), sentences, WordPiece, masking, NSP pairs."""

from __future__ import annotations

import inspect
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

import ptcourse.text as text
from ptcourse.text import (
    IS_NEXT,
    NOT_NEXT,
    SPECIAL_TOKENS,
    PretrainingCollator,
    PretrainingDataset,
    build_corpus,
    count_words,
    learn_wordpiece_vocab,
    load_corpus,
    make_nsp_pairs,
    mask_tokens,
    split_sentences,
    train_wordpiece,
    wikitext_documents,
    wordpiece_tokenizer,
)

TOPICS = {
    "cats": "The cat sat on the mat. It purred all evening long. Then the cat slept near the warm fire.",
    "rain": "Rain fell over the quiet town. The river rose above its banks. People carried umbrellas to work.",
    "code": "A function returns a value. The caller receives the value and uses it. Errors raise an exception.",
    "ship": "The ship left the harbour at dawn. Its crew raised the sails. The wind carried them far away.",
}
DOCS = [" ".join([TOPICS[k]] * 3) for k in TOPICS]


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(DOCS * 20, vocab_size=120, min_frequency=1, model_max_length=64)


# ---------------------------------------------------------------- sentences and corpus
def test_split_sentences_keeps_prose_and_undoes_abbreviation_splits():
    got = split_sentences("First it rains.  Then, e.g. Tuesday, it snows!   Does it stop? 42 is the answer here.",
                          min_words=2)
    assert got == ["First it rains.", "Then, e.g. Tuesday, it snows!", "Does it stop?", "42 is the answer here."]
    assert split_sentences("Too short. This one is long enough.", min_words=4) == ["This one is long enough."]
    assert split_sentences("x = f(a, b) + g[0] * 3 ** 2 // 7;") == []  # code is not prose


def test_build_corpus_counts_documents_sentences_words():
    corpus = build_corpus(DOCS + ["x = f(1) + 2 * y."], "toy", min_words=3)
    assert len(corpus.documents) == 4 and corpus.dropped == 1
    assert corpus.documents[0][:2] == ["The cat sat on the mat.", "It purred all evening long."]
    assert corpus.n_sentences == 36 and corpus.summary()["documents"] == 4
    assert corpus.n_words == sum(len(d.split()) for d in DOCS)
    assert "4 documents" in repr(corpus)


@pytest.mark.parametrize(
    "texts, error, message",
    [
        ("one long string", TypeError, "list of strings"),
        ([], ValueError, "texts is empty"),
        (["Fine text here, a sentence.", b"bytes are not text"], TypeError, "document 1 is a bytes"),
        (["Fine text here, a sentence.", None], TypeError, "document 1 is a NoneType"),
        ([np.int64(3)], TypeError, "document 0 is a int64"),
        (["Fine text here, a sentence.", ""], ValueError, "document 1 is empty"),
        (["   \n\t "], ValueError, "document 0 is empty"),
        (["x = 1", "y = 2"], ValueError, "no document has a sentence"),
    ],
)
def test_build_corpus_rejects_bad_documents(texts, error, message):
    with pytest.raises(error, match=message):
        build_corpus(texts, "bad")


def test_build_corpus_needs_a_name():
    with pytest.raises(ValueError, match="name"):
        build_corpus(DOCS, " ")


# ---------------------------------------------------------------- WikiText (online structure, faked)
WIKI_LINES = [
    "",
    " = Valkyria Chronicles III = \n",
    "",
    " Senjō no Valkyria 3 is a tactical role @-@ playing game . It was released in 2011 in Japan . \n",
    " = = Gameplay = = \n",
    " The game has 1 @,@ 500 maps and a score of 8 @.@ 5 out of ten . Players like the maps . \n",
    " = Tower Building of the Little Rock Arsenal = \n",
    " The Tower Building is a historic building in Little Rock . It was built in 1840 by the army . \n",
]


def _fake_wikitext():
    import datasets

    return datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": WIKI_LINES}),
        "validation": datasets.Dataset.from_dict({"text": WIKI_LINES[5:]}),
        "test": datasets.Dataset.from_dict({"text": WIKI_LINES[:3]}),
    })


def test_wikitext_documents_keeps_articles_whole_and_drops_headings():
    docs = wikitext_documents(WIKI_LINES)
    assert len(docs) == 2
    assert docs[0].startswith("Senjō no Valkyria 3 is a tactical role-playing game .")
    assert "1,500 maps" in docs[0] and "8.5 out of ten" in docs[0] and "Gameplay" not in docs[0]
    assert docs[1].startswith("The Tower Building is a historic building")


def test_load_corpus_uses_wikitext_splits_when_the_hub_answers(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("ptcourse.hub.load_hf_dataset", lambda *a: calls.append(a) or _fake_wikitext())
    train, held_out = load_corpus()
    assert calls == [("Salesforce/wikitext", "wikitext-103-raw-v1")]
    assert train.name == "WikiText-103 (train)" and held_out.name == "WikiText-103 (validation)"
    assert len(train.documents) == 2 and len(held_out.documents) == 1
    assert train.documents[1] == ["The Tower Building is a historic building in Little Rock .",
                                  "It was built in 1840 by the army ."]
    assert "[ptcourse]" not in capsys.readouterr().out
    assert len(load_corpus(max_documents=1)[0].documents) == 1


def test_load_corpus_falls_back_to_python_docs_with_one_notice(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path))
    monkeypatch.setattr("ptcourse.hub.load_hf_dataset", lambda *a: None)
    monkeypatch.setattr(text, "python_docs_texts", lambda: DOCS * 5)
    train, held_out = load_corpus(held_out_fraction=0.2, seed=3)
    out = capsys.readouterr().out
    assert out.count("[ptcourse]") == 1 and "Python's own documentation" in out
    assert (len(train.documents), len(held_out.documents)) == (16, 4)
    assert train.name == "Python documentation (train)"
    with pytest.raises(RuntimeError, match="neither cached nor downloadable"):
        load_corpus(source="wikitext")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_documents": 0}, "max_documents"),
        ({"max_documents": 2.5}, "max_documents"),
        ({"held_out_fraction": 0.9}, "held_out_fraction"),
        ({"held_out_fraction": float("nan")}, "held_out_fraction"),
        ({"seed": -1}, "seed"),
        ({"source": "wiki"}, "source"),
    ],
)
def test_load_corpus_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_corpus(**kwargs)


def test_python_docs_are_real_english():
    corpus = build_corpus(text.python_docs_texts(), "Python documentation")  # the course's data cache
    assert len(corpus.documents) > 200 and corpus.n_words > 100_000
    sentences = [s for d in corpus.documents for s in d]
    assert sum("exception" in s for s in sentences) > 100
    assert not any(s.lstrip().startswith(">>>") for s in sentences)


def test_python_docs_are_cached_and_a_broken_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("PTCOURSE_DATA", str(tmp_path))
    monkeypatch.setattr(text, "_python_docs_from_source", lambda: ["Built from the sources once."])
    texts = text.python_docs_texts()
    monkeypatch.setattr(text, "_python_docs_from_source", lambda: pytest.fail("the cache was not used"))
    assert text.python_docs_texts() == texts
    cache = next((tmp_path / "text").glob("python-docs-*.json"))
    cache.write_text("{broken")
    monkeypatch.setattr(text, "_python_docs_from_source", lambda: ["Rebuilt after a broken cache file."])
    assert text.python_docs_texts() == ["Rebuilt after a broken cache file."]
    assert json.loads(cache.read_text()) == ["Rebuilt after a broken cache file."]


# ---------------------------------------------------------------- WordPiece
def test_wordpiece_special_tokens_pairs_and_word_pieces(tokenizer):
    assert len(tokenizer) == 120
    assert [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
            tokenizer.mask_token_id] == [0, 1, 2, 3, 4]
    enc = tokenizer("The cat sat.", "It purred.")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["[CLS]", "the", "cat", "s", "##at", ".", "[SEP]", "it", "p", "##ur", "##re", "##d", ".", "[SEP]"]
    assert enc["token_type_ids"] == [0] * 7 + [1] * 7
    assert tokenizer.decode(enc["input_ids"], skip_special_tokens=True) == "the cat sat. it purred."
    assert tokenizer.tokenize("CATS") == ["cat", "##s"]  # lower-cased, unseen word split into pieces
    assert tokenizer.tokenize("Café") == tokenizer.tokenize("cafe")  # accents stripped


def test_wordpiece_round_trips_through_autotokenizer(tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    sample = ("Rain fell on the Ship, naïvely!", "The crew raised the sails.")
    assert again(*sample) == tokenizer(*sample)
    assert again.mask_token == "[MASK]" and again.model_max_length == 64 and len(again) == len(tokenizer)


@pytest.mark.parametrize(
    "args, error, message",
    [
        (("one string", 100), TypeError, "iterable of strings"),
        ((DOCS, 5), ValueError, "vocab_size"),
        ((DOCS, 100.0), ValueError, "vocab_size"),
        ((DOCS, True), ValueError, "vocab_size"),
        (([], 100), ValueError, "learned no word piece"),
        (([" ", "\n"], 100), ValueError, "learned no word piece"),
        ((["fine text", b"bytes"], 100), TypeError, "text 1 is a bytes"),
    ],
)
def test_wordpiece_rejects_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        train_wordpiece(*args)


def test_wordpiece_accepts_numpy_integers():
    assert len(train_wordpiece(DOCS, np.int64(60), min_frequency=1)) == 60


def test_learned_vocabulary_merges_the_most_frequent_pair_first_and_is_deterministic():
    counts = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    vocab = learn_wordpiece_vocab(counts, vocab_size=100, min_frequency=2)
    alphabet = {"l", "n", "w", "##o", "##w", "##e", "##r", "##s", "##t", "##i", "##d"}
    assert vocab[:5] == list(SPECIAL_TOKENS) and set(vocab[5:5 + len(alphabet)]) == alphabet
    merges = vocab[5 + len(alphabet):]
    # ##e ##s: 6 + 3 = 9 times; ##es ##t: 9; l ##o and ##o ##w tie at 5 + 2 = 7 (alphabetical: ##o ##w); l ##ow: 7
    assert merges[:4] == ["##es", "##est", "##ow", "low"]
    assert "newest" in merges and "widest" in merges and "low" in merges
    assert learn_wordpiece_vocab(Counter(dict(reversed(list(counts.items())))), 100, 2) == vocab
    assert learn_wordpiece_vocab(counts, 17, 2) == vocab[:17]
    rare = learn_wordpiece_vocab(counts, 100, min_frequency=8)  # only ##e ##s and ##es ##t occur 8+ times
    assert rare[-2:] == ["##es", "##est"] and len(rare) == 5 + len(alphabet) + 2
    assert "##é" not in learn_wordpiece_vocab(counts + Counter({"café": 1}), 100, max_alphabet=len(alphabet) - 1)


def test_learned_vocabulary_agrees_with_the_tokenizers_trainer():
    """Same algorithm as tokenizers' WordPieceTrainer (merge the most frequent pair); only ties may differ."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    texts = [s for d in build_corpus(text.python_docs_texts(), "docs").documents[:60] for s in d]
    ours = learn_wordpiece_vocab(count_words(texts), vocab_size=1000)
    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer, core.pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    core.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1000, min_frequency=2,
                                                              special_tokens=list(SPECIAL_TOKENS)))
    theirs = set(core.get_vocab())
    assert len(ours) == 1000 and len(set(ours) & theirs) > 0.93 * len(theirs)


def test_wordpiece_tokenizer_checks_its_vocabulary():
    with pytest.raises(ValueError, match="must start with"):
        wordpiece_tokenizer(["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(ValueError, match="duplicates"):
        wordpiece_tokenizer(list(SPECIAL_TOKENS) + ["a", "a"])


# ---------------------------------------------------------------- masking
def _batch(tokenizer, n=240):
    pairs = make_nsp_pairs(build_corpus(DOCS, "toy").documents, n_pairs=8, seed=0) * (n // 8)
    dataset = PretrainingDataset(pairs, tokenizer, 64)
    return PretrainingCollator(tokenizer, mlm_probability=0.0)([dataset[i] for i in range(n)])


def _masking_stats(ids, masked, labels, tokenizer):
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    chosen = labels != -100
    n_chosen = int(chosen.sum())
    became_mask = masked[chosen] == tokenizer.mask_token_id
    kept = masked[chosen] == ids[chosen]
    return {
        "n_candidates": int((~special).sum()), "n_chosen": n_chosen,
        "mask": int(became_mask.sum()), "kept": int(kept.sum()), "random": int((~became_mask & ~kept).sum()),
        "special_chosen": int((chosen & special).sum()),
        "labels_ok": bool(torch.equal(labels[chosen], ids[chosen])),
        "untouched_ok": bool(torch.equal(masked[~chosen], ids[~chosen])),
    }


def test_mask_tokens_matches_the_transformers_collator_statistics(tokenizer):
    """Same batch, many draws: ours and DataCollatorForLanguageModeling agree within binomial bounds."""
    from transformers import DataCollatorForLanguageModeling

    batch = _batch(tokenizer)
    ids, special = batch["input_ids"], torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=1)
    g = torch.Generator().manual_seed(1)
    ours, theirs = [], []
    for _ in range(4):
        ours.append(_masking_stats(ids, *mask_tokens(ids, tokenizer, 0.15, generator=g), tokenizer))
        out = collator.torch_call([{"input_ids": row, "special_tokens_mask": s.long()} for row, s in zip(ids, special)])
        theirs.append(_masking_stats(ids, out["input_ids"], out["labels"], tokenizer))
    vocab = len(tokenizer)
    # P(chosen position shows [MASK]) = 0.8 + 0.1/V (a random token can be [MASK]), kept = 0.1 + 0.1/V
    expected = {"mask": 0.8 + 0.1 / vocab, "kept": 0.1 + 0.1 / vocab, "random": 0.1 * (1 - 2 / vocab)}
    for name, stats in (("ours", ours), ("collator", theirs)):
        total = {k: sum(s[k] for s in stats) for k in stats[0] if k not in ("labels_ok", "untouched_ok")}
        assert total["special_chosen"] == 0, f"{name}: special tokens must never be chosen"
        assert all(s["labels_ok"] and s["untouched_ok"] for s in stats), f"{name}: labels / untouched positions"
        n, k = total["n_candidates"], total["n_chosen"]
        assert abs(k - 0.15 * n) < 4.5 * math.sqrt(n * 0.15 * 0.85), f"{name}: masking rate {k / n:.4f}"
        for part, p in expected.items():
            assert abs(total[part] - p * k) < 4.5 * math.sqrt(k * p * (1 - p)), f"{name}: {part} share"
    ours_rate = sum(s["n_chosen"] for s in ours) / sum(s["n_candidates"] for s in ours)
    theirs_rate = sum(s["n_chosen"] for s in theirs) / sum(s["n_candidates"] for s in theirs)
    n = sum(s["n_candidates"] for s in ours)
    assert abs(ours_rate - theirs_rate) < 4.5 * math.sqrt(2 * 0.15 * 0.85 / n)


def test_mask_tokens_is_seeded_pure_and_extreme_rates(tokenizer):
    ids = _batch(tokenizer, 16)["input_ids"]
    before = ids.clone()
    a = mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(ids, before)
    masked, labels = mask_tokens(ids, tokenizer, 0.0)
    assert torch.equal(masked, ids) and (labels == -100).all()
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    _, labels = mask_tokens(ids, tokenizer, 1.0)
    assert torch.equal(labels != -100, ~special)
    assert mask_tokens(ids.int(), tokenizer)[0].dtype == torch.int32


@pytest.mark.parametrize(
    "ids, p, error, message",
    [
        ([[2, 10, 3]], 0.15, TypeError, "int64 tensor"),
        (torch.tensor([[2.0, 10.0, 3.0]]), 0.15, TypeError, "int64 tensor"),
        (torch.tensor([[2, 10, 3]]), float("nan"), ValueError, "mlm_probability"),
        (torch.tensor([[2, 10, 3]]), 1.5, ValueError, "mlm_probability"),
        (torch.tensor([[2, 10, 3]]), "0.15", ValueError, "mlm_probability"),
        (torch.tensor([[2, 999, 3]]), 0.15, ValueError, "another tokenizer"),
        (torch.tensor([[2, -5, 3]]), 0.15, ValueError, "another tokenizer"),
    ],
)
def test_mask_tokens_rejects_bad_input(tokenizer, ids, p, error, message):
    with pytest.raises(error, match=message):
        mask_tokens(ids, tokenizer, p)


def test_mask_tokens_needs_a_mask_token(tokenizer):
    class NoMask:
        mask_token_id = None

    with pytest.raises(ValueError, match=r"no \[MASK\] token"):
        mask_tokens(torch.tensor([[2, 3]]), NoMask())


# ---------------------------------------------------------------- next-sentence prediction pairs
def test_nsp_label_convention_is_the_library_one():
    from transformers import BertForPreTraining

    doc = inspect.getdoc(BertForPreTraining.forward)
    assert "0 indicates sequence B is a continuation of sequence A" in doc and IS_NEXT == 0
    assert "1 indicates sequence B is a random sequence" in doc and NOT_NEXT == 1


def test_nsp_pairs_are_true_successors_or_from_another_document():
    documents = [[f"Document {d} says sentence {i}." for i in range(n)] for d, n in enumerate([12, 3, 1, 20])]
    where = {s: (d, i) for d, doc in enumerate(documents) for i, s in enumerate(doc)}
    pairs = make_nsp_pairs(documents, n_pairs=30, seed=4)
    assert len(pairs) == 30 and [p[2] for p in pairs].count(IS_NEXT) == 15
    for a, b, label in pairs:
        (da, ia) = where[a]
        if label == IS_NEXT:
            assert where[b] == (da, ia + 1)
        else:
            assert where[b][0] != da
    assert len({a for a, _, _ in pairs}) == 30  # each first sentence used once
    assert make_nsp_pairs(documents, 30, seed=4) == pairs != make_nsp_pairs(documents, 30, seed=5)
    with pytest.raises(ValueError, match="only 32 pairs"):
        make_nsp_pairs(documents, 33)


@pytest.mark.parametrize(
    "documents, n, error, message",
    [
        ([["A b c d.", "E f g h."], ["I j k l."]], 2, ValueError, "only 1 pairs of consecutive sentences"),
        ([["A b c d.", "E f g h.", "I j k l."]], 1, ValueError, "at least two documents"),
        ([["A b c d.", "E f g h."], []], 1, ValueError, "at least two documents"),
        ("not a list", 1, TypeError, "list of documents"),
        ([["A b c d.", "E f g h."], "a string"], 1, TypeError, "document 1"),
        ([["A b c d.", 7], ["x"]], 1, TypeError, "document 0"),
        ([["A b c d.", "E f g h."], ["I j k l."]], 0, ValueError, "n_pairs"),
        ([["A b c d.", "E f g h."], ["I j k l."]], 1.0, ValueError, "n_pairs"),
    ],
)
def test_nsp_pairs_reject_bad_input(documents, n, error, message):
    with pytest.raises(error, match=message):
        make_nsp_pairs(documents, n)


# ---------------------------------------------------------------- dataset and collator
def test_dataset_truncates_and_collator_pads_and_masks(tokenizer):
    from transformers import BertForPreTraining

    long_a = "the cat sat on the mat " * 20
    pairs = [(long_a, "It purred.", IS_NEXT), ("Rain fell.", "The ship left.", NOT_NEXT)]
    data = PretrainingDataset(pairs, tokenizer, max_len=24)
    first = data[0]
    assert len(first["input_ids"]) == 24 and first["input_ids"][0] == tokenizer.cls_token_id
    assert list(first["input_ids"]).count(tokenizer.sep_token_id) == 2 and first["token_type_ids"][-1] == 1
    batch = PretrainingCollator(tokenizer, seed=0)([data[0], data[1]])
    assert set(batch) <= set(inspect.signature(BertForPreTraining.forward).parameters)
    n_second = len(data[1]["input_ids"])
    assert batch["input_ids"].shape == (2, 24) and batch["attention_mask"][1].sum() == n_second
    assert (batch["input_ids"][1, n_second:] == tokenizer.pad_token_id).all()
    assert (batch["labels"][1, n_second:] == -100).all() and batch["next_sentence_label"].tolist() == [0, 1]
    again = PretrainingCollator(tokenizer, seed=0)([data[0], data[1]])
    assert torch.equal(batch["labels"], again["labels"])


@pytest.mark.parametrize(
    "pairs, max_len, message",
    [
        ([], 32, "pairs is empty"),
        ([("a", "b", 2)], 32, "label 0 or 1"),
        ([("a", "b")], 32, "sentence A, sentence B"),
        ([("a", None, 0)], 32, "sentence A, sentence B"),
        ([("a", "b", 0)], 4, "max_len"),
        ([("a", "b", 0)], 65, "model_max_length=64"),
    ],
)
def test_dataset_rejects_bad_pairs_and_lengths(tokenizer, pairs, max_len, message):
    with pytest.raises(ValueError, match=message):
        PretrainingDataset(pairs, tokenizer, max_len)


def test_collator_rejects_empty_batches_and_tokenizers_without_mask(tokenizer):
    with pytest.raises(ValueError, match="empty"):
        PretrainingCollator(tokenizer)([])

    class NoMask:
        pad_token_id, mask_token_id = 0, None

    with pytest.raises(ValueError, match=r"\[PAD\] and a \[MASK\]"):
        PretrainingCollator(NoMask())
