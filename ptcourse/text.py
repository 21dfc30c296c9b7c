"""Text for BERT pretraining: a corpus, sentences, a WordPiece tokenizer, masking, sentence pairs.

Usage::

    from ptcourse.text import load_corpus, train_wordpiece, make_nsp_pairs, PretrainingDataset, PretrainingCollator
    train_corpus, held_out = load_corpus()                 # WikiText-103, or Python's own docs offline
    tokenizer = train_wordpiece(train_corpus.texts(), vocab_size=4000)
    pairs = make_nsp_pairs(train_corpus.documents, n_pairs=5000, seed=0)   # (A, B, 0 = IsNext / 1 = random)
    dataset = PretrainingDataset(pairs, tokenizer, max_len=64)
    loader = DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=PretrainingCollator(tokenizer))

A corpus is a list of documents, each a list of sentences; documents stay whole, so the
sentence after a sentence is its true successor. Online (or cached) the corpus is
WikiText-103 (raw); offline it is English that ships with every Python: the ``pydoc_data``
topics (the language reference) and the standard library's docstrings.

Introduced in chapter 06; chapter 07 reuses :func:`mask_tokens`.
"""

from __future__ import annotations

import ast
import heapq
import json
import numbers
import random
import re
import sys
import sysconfig
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ptcourse.paths import data_dir

__all__ = [
    "IS_NEXT", "NOT_NEXT", "SPECIAL_TOKENS", "Corpus", "build_corpus", "split_sentences", "load_corpus",
    "wikitext_documents", "python_docs_texts", "count_words", "learn_wordpiece_vocab", "wordpiece_tokenizer",
    "train_wordpiece", "mask_tokens", "make_nsp_pairs",
    "PretrainingDataset", "PretrainingCollator",
]

IS_NEXT, NOT_NEXT = 0, 1  # the label convention of BertForPreTraining's next_sentence_label
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WIKITEXT = ("Salesforce/wikitext", "wikitext-103-raw-v1")


# ---------------------------------------------------------------- sentences and documents
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "Mr.", "Mrs.", "Dr.", "St.", "No.", "Jr.", "Inc.", "Co.")


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """Split ``text`` into sentences (after ., ! or ? followed by a capital or a digit) (chapter 06).

    Whitespace is collapsed; a split after a common abbreviation ("e.g.", "Mr.") is undone;
    sentences with fewer than ``min_words`` words, or mostly non-words (code, tables), are dropped.

    Usage: ``split_sentences("It works. Does it? Yes, it does.", min_words=2)``
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    pieces = _SENTENCE_END.split(" ".join(text.split()))
    sentences: list[str] = []
    for piece in pieces:
        if sentences and sentences[-1].endswith(_ABBREVIATIONS):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    return [s for s in sentences if _is_prose(s, min_words)]


def _is_prose(sentence: str, min_words: int) -> bool:
    words = sentence.split()
    if len(words) < min_words:
        return False
    wordlike = sum(w.strip(".,;:!?()\"'").isalpha() for w in words)
    return wordlike >= 0.6 * len(words)


@dataclass
class Corpus:
    """Documents, each a list of sentences in their original order, and a name (chapter 06).

    Usage: ``print(corpus.summary()); corpus.documents[0][:3]``
    """

    name: str
    documents: list[list[str]]
    dropped: int = 0  # documents that held no sentence (e.g. only code)

    @property
    def n_sentences(self) -> int:
        return sum(len(d) for d in self.documents)

    @property
    def n_words(self) -> int:
        return sum(len(s.split()) for d in self.documents for s in d)

    def texts(self) -> list[str]:
        """One string per document (its sentences joined), e.g. to train a tokenizer."""
        return [" ".join(d) for d in self.documents]

    def summary(self) -> dict[str, Any]:
        """Name, number of documents, sentences and words."""
        return {"corpus": self.name, "documents": len(self.documents), "sentences": self.n_sentences,
                "words": self.n_words}

    def __repr__(self) -> str:
        s = self.summary()
        return f"Corpus({self.name!r}: {s['documents']} documents, {s['sentences']} sentences, {s['words']} words)"


def build_corpus(texts: Sequence[str], name: str, min_words: int = 4) -> Corpus:
    """A :class:`Corpus` from one string per document, split into sentences (chapter 06).

    Raises ``TypeError`` for a document that is not a string and ``ValueError`` for an
    empty one; documents with text but no sentence of ``min_words`` words are dropped and
    counted in ``Corpus.dropped``.

    Usage: ``corpus = build_corpus(["First doc. Two sentences here.", "Second doc."], "toy", min_words=2)``
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of strings (one per document), got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError("texts is empty: a corpus needs at least one document")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    documents = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"document {i} is a {type(text).__name__}, not text (str); decode bytes first")
        if not text.strip():
            raise ValueError(f"document {i} is empty; remove empty documents before building the corpus")
        documents.append(split_sentences(text, min_words))
    kept = [d for d in documents if d]
    if not kept:
        raise ValueError(f"no document has a sentence of at least {min_words} words")
    return Corpus(name, kept, dropped=len(documents) - len(kept))


# ---------------------------------------------------------------- WikiText-103 (online or cached)
_TITLE = re.compile(r"^ = [^=].* = $")      # " = Valkyria Chronicles III = " starts an article
_HEADING = re.compile(r"^ (= )+.* (= )+$")   # " = = Gameplay = = " is a section heading
_WIKI_JOINS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def wikitext_documents(lines: Iterable[str]) -> list[str]:
    """Whole articles from WikiText's raw lines: one string per ``" = Title = "`` heading (chapter 06).

    Section headings and blank lines are dropped; WikiText's ``@-@``, ``@,@`` and ``@.@``
    markers become ``-``, ``,`` and ``.`` again. Lines before the first title are ignored.

    Usage: ``docs = wikitext_documents(dataset["train"]["text"])``
    """
    documents: list[list[str]] = []
    for line in lines:
        line = line.rstrip("\n")
        if _TITLE.match(line):
            documents.append([])
        elif documents and line.strip() and not _HEADING.match(line):
            for old, new in _WIKI_JOINS:
                line = line.replace(old, new)
            documents[-1].append(line.strip())
    return [" ".join(paragraphs) for paragraphs in documents if paragraphs]


# ---------------------------------------------------------------- Python's own documentation (offline)
def _prose_paragraphs(text: str) -> list[str]:
    """The plain-prose paragraphs of reST-like text: no code, tables, headings or doctests."""
    kept = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines or lines[0][:1].isspace():  # indented: code, grammar, literal blocks
            continue
        if any(re.fullmatch(r"[*=\-~^#+|]{3,}.*", ln.strip()) or ln.lstrip().startswith((">>>", "+--", "|", ":", "* ", "- "))
               or "::=" in ln for ln in lines):
            continue
        paragraph = re.sub(r"\s*\[\d+\]", "", " ".join(ln.strip() for ln in lines)).rstrip(":")
        kept.append(paragraph if paragraph.endswith((".", "!", "?")) else paragraph + ".")  # a paragraph ends a sentence
    return kept


def _module_docstrings(path: Path) -> str:
    """All docstrings of one source file (module, classes, functions), read with ``ast``: nothing is imported."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return ""
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    docs = [ast.get_docstring(n) for n in ast.walk(tree) if isinstance(n, nodes)]
    return "\n\n".join(p for d in docs if d for p in _prose_paragraphs(d))


def _python_docs_from_source() -> list[str]:
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    texts = ["\n\n".join(_prose_paragraphs(topics[k])) for k in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idlelib", "lib2to3", "pydoc_data", "encodings", "__pycache__"}
    for path in sorted(stdlib.rglob("*.py")):
        if not skip & set(path.relative_to(stdlib).parts):
            texts.append(_module_docstrings(path))
    return [t for t in texts if t.strip()]


def python_docs_texts() -> list[str]:
    """Python's own English documentation, one string per document (a reference topic or a module) (chapter 06).

    Built once from ``pydoc_data.topics`` and the standard library's docstrings (about ten
    seconds), then cached in ``data_dir()/text/`` per Python version.

    Usage: ``texts = python_docs_texts(); len(texts)``
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    cache = data_dir() / "text" / f"python-docs-{version}.json"
    if cache.exists():
        try:
            texts = json.loads(cache.read_text(encoding="utf-8"))
            if isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts):
                return texts
        except (ValueError, OSError):
            pass  # unreadable cache: rebuild it below
    texts = _python_docs_from_source()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(texts), encoding="utf-8")
    tmp.replace(cache)
    return texts


def _check_count(value: Any, what: str, minimum: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def _check_fraction(value: Any, what: str, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise ValueError(f"{what} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def load_corpus(max_documents: int | None = None, held_out_fraction: float = 0.1, seed: int = 0,
                source: str = "auto") -> tuple[Corpus, Corpus]:
    """A training corpus and a held-out corpus of *other* documents (chapter 06).

    ``source="auto"`` uses WikiText-103 (raw) when it is cached or the hub answers (its
    ``train`` and ``validation`` splits), else Python's documentation with a one-line
    notice; ``"wikitext"`` or ``"python-docs"`` force one. For Python's documentation,
    ``held_out_fraction`` of the documents (chosen with ``seed``) are held out.
    ``max_documents`` caps the training documents (the first ones, in a fixed order).

    Usage: ``train_corpus, held_out = load_corpus(max_documents=2000)``
    """
    max_documents = _check_count(max_documents, "max_documents", allow_none=True)
    held_out_fraction = _check_fraction(held_out_fraction, "held_out_fraction", 0.01, 0.5)
    _check_count(seed, "seed", minimum=0)
    if source not in ("auto", "wikitext", "python-docs"):
        raise ValueError(f"source must be 'auto', 'wikitext' or 'python-docs', got {source!r}")
    if source != "python-docs":
        from ptcourse.hub import load_hf_dataset, notice

        wiki = load_hf_dataset(*WIKITEXT)
        if wiki is not None:
            train = wikitext_documents(wiki["train"]["text"])[:max_documents]
            held_out = wikitext_documents(wiki["validation"]["text"])
            return build_corpus(train, "WikiText-103 (train)"), build_corpus(held_out, "WikiText-103 (validation)")
        if source == "wikitext":
            raise RuntimeError("WikiText-103 is neither cached nor downloadable; use source='auto' to fall back")
        notice("using Python's own documentation (pydoc topics + standard-library docstrings) as the corpus.")
    corpus = build_corpus(python_docs_texts(), "Python documentation")
    order = list(range(len(corpus.documents)))
    random.Random(seed).shuffle(order)
    n_held = max(1, round(held_out_fraction * len(order)))
    held = [corpus.documents[i] for i in sorted(order[:n_held])]
    train = [corpus.documents[i] for i in sorted(order[n_held:])][:max_documents]
    return Corpus(f"{corpus.name} (train)", train), Corpus(f"{corpus.name} (held out)", held)


# ---------------------------------------------------------------- WordPiece tokenizer
def _bert_pieces():
    from tokenizers import normalizers, pre_tokenizers

    return normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()  # lower-case, no accents


def count_words(texts: Iterable[str]) -> Counter:
    """How often each word occurs, after BERT's normalisation (lower case, no accents) and (chapter 06)
    pre-tokenisation (split on whitespace and punctuation).

    Usage: ``counts = count_words(corpus.texts()); counts.most_common(5)``
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be an iterable of strings (one per document), not a single string")
    normalizer, pre_tokenizer = _bert_pieces()
    counts: Counter = Counter()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    return counts


def _merge(symbols: list[str], pair: tuple[str, str], new: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_wordpiece_vocab(word_counts: Counter, vocab_size: int, min_frequency: int = 2,
                          max_alphabet: int = 1000) -> list[str]:
    """A WordPiece vocabulary learned by merging the most frequent pair of adjacent pieces (chapter 06).

    Words start as characters, ``"token" -> t ##o ##k ##e ##n``; each step merges the pair
    that occurs most often (ties: the alphabetically first pair), e.g. ``t ##o -> to``,
    until ``vocab_size`` entries or no pair occurs ``min_frequency`` times (the rule of
    ``tokenizers``' ``WordPieceTrainer``). Words with characters outside the ``max_alphabet``
    most frequent ones are left out. Deterministic: the same counts give the same list.

    Usage: ``vocab = learn_wordpiece_vocab(count_words(texts), vocab_size=4000)``
    """
    chars = Counter()
    for word, n in word_counts.items():
        for c in word:
            chars[c] += n
    alphabet = {c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:max_alphabet]}
    words = sorted(w for w in word_counts if set(w) <= alphabet)
    freq = [word_counts[w] for w in words]
    symbols = [[w[0]] + ["##" + c for c in w[1:]] for w in words]
    vocab = list(SPECIAL_TOKENS) + sorted({s for syms in symbols for s in syms} - set(SPECIAL_TOKENS))
    known = set(vocab)
    pair_counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> the words that contain it
    for i, syms in enumerate(symbols):
        for pair in zip(syms, syms[1:]):
            pair_counts[pair] += freq[i]
            where[pair].add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        n, pair = heapq.heappop(heap)
        if pair_counts.get(pair) != -n:
            continue  # an outdated entry: the pair's count changed since it was pushed
        if -n < min_frequency:
            break
        new = pair[0] + pair[1][2:]  # the second piece is a continuation: drop its "##"
        if new not in known:
            vocab.append(new)
            known.add(new)
        touched = set()
        for i in where.pop(pair):
            for old in zip(symbols[i], symbols[i][1:]):
                pair_counts[old] -= freq[i]
                touched.add(old)
            symbols[i] = _merge(symbols[i], pair, new)
            for fresh in zip(symbols[i], symbols[i][1:]):
                pair_counts[fresh] += freq[i]
                where[fresh].add(i)
                touched.add(fresh)
        for p in touched - {pair}:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
        pair_counts.pop(pair, None)
    return vocab


def wordpiece_tokenizer(vocab: Sequence[str], model_max_length: int = 512):
    """A ``transformers`` fast tokenizer (``BertTokenizerFast``) for a WordPiece vocabulary (chapter 06).

    Lower-cases and strips accents like ``bert-base-uncased``, encodes each word by greedy
    longest match, and writes pairs as ``[CLS] A [SEP] B [SEP]`` with token-type ids 0 / 1.

    Usage: ``tokenizer = wordpiece_tokenizer(vocab, model_max_length=128)``
    """
    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import BertTokenizerFast

    if list(vocab[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS) or len(set(vocab)) != len(vocab):
        raise ValueError(f"vocab must start with {list(SPECIAL_TOKENS)} and hold no duplicates")
    core = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    core.normalizer, core.pre_tokenizer = _bert_pieces()
    core.decoder = decoders.WordPiece(prefix="##")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",  # :0 / :1 are token-type ids
        special_tokens=[("[CLS]", vocab.index("[CLS]")), ("[SEP]", vocab.index("[SEP]"))],
    )
    return BertTokenizerFast(tokenizer_object=core, do_lower_case=True, unk_token="[UNK]", sep_token="[SEP]",
                             pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                             model_max_length=model_max_length)


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, model_max_length: int = 512):
    """A BERT-style WordPiece tokenizer trained on ``texts``: :func:`count_words`, then (chapter 06)
    :func:`learn_wordpiece_vocab`, then :func:`wordpiece_tokenizer`.

    Special tokens: ``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``.
    ``model_max_length`` is the longest input (in tokens) that ``truncation=True`` keeps: set
    it to the model's ``max_position_embeddings``. Unlike ``tokenizers``' own
    ``WordPieceTrainer`` (whose ties depend on hash-map order, huggingface/tokenizers#1794),
    the same texts always give the same vocabulary.

    Usage: ``tokenizer = train_wordpiece(corpus.texts(), vocab_size=4000); tokenizer.save_pretrained(path)``
    """
    vocab_size = _check_count(vocab_size, "vocab_size", minimum=len(SPECIAL_TOKENS) + 1)
    min_frequency = _check_count(min_frequency, "min_frequency")
    model_max_length = _check_count(model_max_length, "model_max_length", minimum=3)
    vocab = learn_wordpiece_vocab(count_words(texts), vocab_size, min_frequency)
    if len(vocab) == len(SPECIAL_TOKENS):
        raise ValueError("the texts hold no words: the tokenizer learned no word piece")
    return wordpiece_tokenizer(vocab, model_max_length)


# ---------------------------------------------------------------- masked language modelling
def _check_ids(input_ids: Any, tokenizer: Any) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"input_ids must be an int64 tensor of token ids, got "
                        f"{type(input_ids).__name__}{'' if not hasattr(input_ids, 'dtype') else ' ' + str(input_ids.dtype)}")
    if getattr(tokenizer, "mask_token_id", None) is None:
        raise ValueError("the tokenizer has no [MASK] token; masked language modelling needs one")
    if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= len(tokenizer)):
        raise ValueError(f"input_ids hold ids outside [0, {len(tokenizer)}): were they made with another tokenizer?")


def mask_tokens(input_ids: torch.Tensor, tokenizer: Any, mlm_probability: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose each non-special token with probability ``mlm_probability``; (chapter 06)
    of the chosen, 80 % become ``[MASK]``, 10 % a random token, 10 % stay as they are.

    Returns ``(masked_input_ids, labels)``: new tensors; ``labels`` holds the original id
    at the chosen positions and -100 (ignored by the loss) everywhere else. Special tokens
    (``[CLS]``, ``[SEP]``, ``[PAD]``, ...) are never chosen. Same rule and statistics as
    ``transformers.DataCollatorForLanguageModeling``.

    Usage: ``masked, labels = mask_tokens(batch["input_ids"], tokenizer, generator=torch.Generator().manual_seed(0))``
    """
    _check_ids(input_ids, tokenizer)
    mlm_probability = _check_fraction(mlm_probability, "mlm_probability")
    gen_device = generator.device if generator is not None else input_ids.device
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids, device=input_ids.device))
    draw = torch.rand(input_ids.shape, generator=generator, device=gen_device).to(input_ids.device)
    chosen = (draw < mlm_probability) & ~special
    split = torch.rand(input_ids.shape, generator=generator, device=gen_device).to(input_ids.device)
    to_mask = chosen & (split < 0.8)                      # 80 %: [MASK]
    to_random = chosen & (split >= 0.8) & (split < 0.9)   # 10 %: a random token; the last 10 % stay
    random_ids = torch.randint(len(tokenizer), input_ids.shape, generator=generator, device=gen_device)
    masked = input_ids.clone()
    masked[to_mask] = tokenizer.mask_token_id
    masked[to_random] = random_ids.to(input_ids.device, input_ids.dtype)[to_random]
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    return masked, labels


# ---------------------------------------------------------------- next-sentence prediction pairs
def make_nsp_pairs(documents: Sequence[Sequence[str]], n_pairs: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """``n_pairs`` sentence pairs ``(A, B, label)``, half IsNext and half random (chapter 06).

    A is a sentence with a successor in its document. Label ``IS_NEXT`` (0): B is that
    successor. Label ``NOT_NEXT`` (1): B is a random sentence of another document. This is
    ``BertForPreTraining``'s convention (0 = IsNext). Each A is used once.

    Raises ``ValueError`` when the documents hold fewer than ``n_pairs`` consecutive
    sentence pairs, or fewer than two documents.

    Usage: ``pairs = make_nsp_pairs(corpus.documents, n_pairs=1000, seed=0)``
    """
    n_pairs = _check_count(n_pairs, "n_pairs")
    _check_count(seed, "seed", minimum=0)
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError("documents must be a list of documents, each a list of sentences")
    for i, doc in enumerate(documents):
        if isinstance(doc, (str, bytes)) or not isinstance(doc, Sequence) or not all(isinstance(s, str) for s in doc):
            raise TypeError(f"document {i} must be a list of sentences (str), got {type(doc).__name__}")
    starts = [(d, i) for d, doc in enumerate(documents) for i in range(len(doc) - 1)]
    if sum(1 for doc in documents if doc) < 2:
        raise ValueError("random sentences come from another document: the corpus needs at least two documents")
    if n_pairs > len(starts):
        raise ValueError(f"the corpus holds only {len(starts)} pairs of consecutive sentences, fewer than "
                         f"n_pairs={n_pairs}; ask for fewer pairs or use a larger corpus")
    rng = random.Random(seed)
    labels = [IS_NEXT] * (n_pairs // 2) + [NOT_NEXT] * (n_pairs - n_pairs // 2)
    rng.shuffle(labels)
    non_empty = [d for d, doc in enumerate(documents) if doc]
    pairs = []
    for (d, i), label in zip(rng.sample(starts, n_pairs), labels):
        if label == IS_NEXT:
            b = documents[d][i + 1]
        else:
            other = rng.choice(non_empty[:-1])       # uniform over the other documents:
            other = non_empty[-1] if other == d else other
            b = rng.choice(documents[other])
        pairs.append((documents[d][i], b, label))
    return pairs


# ---------------------------------------------------------------- dataset and collator
@dataclass(eq=False)
class PretrainingDataset(Dataset):
    """Sentence pairs tokenized as ``[CLS] A [SEP] B [SEP]``, truncated to ``max_len`` tokens (chapter 06).

    Each item is a dict with ``input_ids``, ``token_type_ids`` (0 for A, 1 for B) and
    ``next_sentence_label``; :class:`PretrainingCollator` pads and masks a batch of them.

    Usage: ``dataset = PretrainingDataset(pairs, tokenizer, max_len=64)``
    """

    pairs: Sequence[tuple[str, str, int]]
    tokenizer: Any
    max_len: int = 128
    encoded: dict[str, list] = field(init=False, repr=False)  # per pair: int32 ids, int8 types, label

    def __post_init__(self) -> None:
        self.max_len = _check_count(self.max_len, "max_len", minimum=8)
        if not self.pairs:
            raise ValueError("pairs is empty: build them with make_nsp_pairs")
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and self.max_len > limit:
            raise ValueError(f"max_len={self.max_len} exceeds the tokenizer's model_max_length={limit}")
        for k, pair in enumerate(self.pairs):
            if len(pair) != 3 or not isinstance(pair[0], str) or not isinstance(pair[1], str) or pair[2] not in (0, 1):
                raise ValueError(f"pair {k} must be (sentence A, sentence B, label 0 or 1), got {pair!r:.120}")
        self.encoded = {"input_ids": [], "token_type_ids": [], "next_sentence_label": [p[2] for p in self.pairs]}
        for start in range(0, len(self.pairs), 10_000):  # in chunks: Python lists of ids are large
            a, b, _ = zip(*self.pairs[start : start + 10_000])
            enc = self.tokenizer(list(a), list(b), truncation="longest_first", max_length=self.max_len)
            self.encoded["input_ids"] += [np.asarray(ids, dtype=np.int32) for ids in enc["input_ids"]]
            self.encoded["token_type_ids"] += [np.asarray(t, dtype=np.int8) for t in enc["token_type_ids"]]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.encoded.items()}

    def lengths(self) -> list[int]:
        """The number of tokens of every pair (for batching pairs of similar length)."""
        return [len(ids) for ids in self.encoded["input_ids"]]


class PretrainingCollator:
    """Pads a list of :class:`PretrainingDataset` items into a batch and masks it with :func:`mask_tokens` (chapter 06).

    The batch has ``input_ids``, ``token_type_ids``, ``attention_mask`` (1 = real token),
    ``labels`` (-100 except at the chosen positions) and ``next_sentence_label``: exactly the
    keyword arguments of ``BertForPreTraining``. Masks are drawn afresh for every batch
    ("dynamic masking"); pass ``seed`` to draw them from a private generator instead.

    Usage: ``DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=PretrainingCollator(tokenizer))``
    """

    def __init__(self, tokenizer: Any, mlm_probability: float = 0.15, seed: int | None = None) -> None:
        if getattr(tokenizer, "pad_token_id", None) is None or getattr(tokenizer, "mask_token_id", None) is None:
            raise ValueError("the tokenizer needs a [PAD] and a [MASK] token")
        self.tokenizer = tokenizer
        self.mlm_probability = _check_fraction(mlm_probability, "mlm_probability")
        self.generator = None if seed is None else torch.Generator().manual_seed(_check_count(seed, "seed", 0))

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not items:
            raise ValueError("cannot collate an empty list of examples")
        width = max(len(item["input_ids"]) for item in items)
        ids = torch.full((len(items), width), self.tokenizer.pad_token_id, dtype=torch.long)
        types = torch.zeros((len(items), width), dtype=torch.long)
        attention = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n] = torch.as_tensor(item["input_ids"])
            types[row, :n] = torch.as_tensor(item["token_type_ids"])
            attention[row, :n] = 1
        masked, labels = mask_tokens(ids, self.tokenizer, self.mlm_probability, self.generator)
        nsp = torch.tensor([item["next_sentence_label"] for item in items], dtype=torch.long)
        return {"input_ids": masked, "token_type_ids": types, "attention_mask": attention, "labels": labels,
                "next_sentence_label": nsp}
