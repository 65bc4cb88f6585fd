"""Zero-shot multiple choice, lm-evaluation-harness's way (`mdr eval RUN --task FILE.jsonl`), and the continuation
task built from held-out documents.

A task file holds one question a line, {"context": str, "choices": [str, ...], "label": int}; other keys are ignored.
Each choice is scored as the continuation of the context: its log-likelihood is the sum of the log-probabilities of
its tokens given the context. `acc` counts the questions whose label has the highest log-likelihood, `acc_norm` those
whose label has the highest log-likelihood per UTF-8 byte of the choice (its leading delimiter space not counted),
which does not favour short choices.

The conventions are lm-evaluation-harness's (EleutherAI), so that a task scores here as it would there:
- the task file writes the word boundary: a choice meant to follow the context as a new word starts with a space
  (" Paris"), as lm-eval's choices carry their `target_delimiter` " ";
- context and choice are encoded together and split at the context's token boundary (`encode_pair`), with the
  context's trailing whitespace moved to the choice first;
- an empty context is the end-of-document token, which is how every training document is preceded;
- a window longer than the model's context loses tokens from the left, of the context only.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from mdr.errors import UsageError

MIN_CHOICES = 2  # one choice is always right: no accuracy to measure
TASK_KEYS = ("context", "choices", "label")

# The continuation task's cut: 200 characters of context and 100 of continuation are about 60 and 30 tokens of a
# 1-4k-token BPE, so context and continuation fit the tiny preset's 128-token context whole.
CONTINUATION_CONTEXT_CHARS = 200
CONTINUATION_CHARS = 100
CONTINUATION_CHOICES = 4
_WHITESPACE = re.compile(r"\s")


class TaskError(UsageError):
    """A task file or question that cannot be scored: one line naming the file and line (exit code 2)."""


@dataclass(frozen=True)
class Question:
    """One multiple-choice question; `where` names it in errors ("tasks.jsonl line 3", or "question 3")."""

    context: str
    choices: tuple[str, ...]
    label: int
    where: str = "question"

    @classmethod
    def from_row(cls, row, where: str) -> Question:
        """A question from a task file's row (a parsed JSON value), checked: TaskError naming `where` otherwise."""
        if not isinstance(row, Mapping):
            raise TaskError(f"{where}: expected a JSON object with {', '.join(map(repr, TASK_KEYS))}, "
                            f"got {type(row).__name__}")
        missing = [key for key in TASK_KEYS if key not in row]
        if missing:
            raise TaskError(f"{where}: missing {' and '.join(map(repr, missing))} "
                            f"(a question is {{\"context\", \"choices\", \"label\"}})")
        context, choices, label = (row[key] for key in TASK_KEYS)
        if not isinstance(context, str):
            raise TaskError(f"{where}: 'context' must be a string, got {type(context).__name__}")
        if not isinstance(choices, list) or len(choices) < MIN_CHOICES:
            got = f"{len(choices)}" if isinstance(choices, list) else type(choices).__name__
            raise TaskError(f"{where}: 'choices' must be a list of at least {MIN_CHOICES} strings, got {got}")
        for index, choice in enumerate(choices):
            if not isinstance(choice, str) or not choice:
                # an empty choice has no tokens to score and no bytes to normalise by
                raise TaskError(f"{where}: choice {index} must be a non-empty string, got {choice!r}")
        if isinstance(label, bool) or not isinstance(label, int):
            raise TaskError(f"{where}: 'label' must be the index of the right choice, got {label!r}")
        if not 0 <= label < len(choices):
            raise TaskError(f"{where}: label {label} is out of range for {len(choices)} choices "
                            f"(0 to {len(choices) - 1})")
        return cls(context, tuple(choices), label, where)


def read_task(path: str | Path) -> list[Question]:
    """The questions of a JSONL task file, every line checked before any is scored (blank lines are skipped).

    Raises TaskError, one line naming the file and line, for an unreadable file, a line that is not UTF-8 or JSON,
    a row that is not a question, or a file without questions.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise TaskError(f"cannot read task file {path}: {error.strerror or error}") from None
    questions = []
    for number, line in enumerate(raw.splitlines(), start=1):
        where = f"{path} line {number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise TaskError(f"{where}: not UTF-8 text") from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise TaskError(f"{where}: not JSON ({error.msg} at column {error.colno})") from None
        questions.append(Question.from_row(row, where))
    if not questions:
        raise TaskError(f"{path} holds no questions: write one JSON object a line, "
                        "{\"context\": ..., \"choices\": [...], \"label\": ...}")
    return questions


def as_questions(rows: Iterable[Question | Mapping]) -> list[Question]:
    """Questions, or rows in the task file's format (as `continuation_task` returns them) checked into questions."""
    return [row if isinstance(row, Question) else Question.from_row(row, f"question {index}")
            for index, row in enumerate(rows)]


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens), lm-evaluation-harness's TemplateLM._encode_pair and loglikelihood
    (lm_eval/api/model.py): trailing whitespace of the context moves to the continuation, then
    whole = encode(context + continuation), context_enc = encode(context), continuation = whole[len(context_enc):].

    Encoding the two together keeps the continuation's tokens the ones the model sees in running text. Where a BPE
    merge crosses the boundary (a choice that does not start a new word), the token spanning it is not scored, so the
    continuation's first bytes go uncounted, as in lm-eval. An empty context is [end of document] (lm-eval's
    prefix_token_id, the EOT token).
    """
    if not context:
        return [tokenizer.eos_id], tokenizer.encode(continuation)
    kept = context.rstrip()
    if len(kept) < len(context):
        context, continuation = kept, context[len(kept):] + continuation
    if not context:  # a context of whitespace only is the continuation's start
        return [tokenizer.eos_id], tokenizer.encode(continuation)
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    return context_ids, whole[len(context_ids):]


def _encoded(tokenizer, question: Question, block_size: int) -> list[tuple[list[int], list[int]]]:
    """encode_pair of every choice, each checked to have tokens of its own that fit the model's context."""
    pairs = []
    for index, choice in enumerate(question.choices):
        context_ids, continuation_ids = encode_pair(tokenizer, question.context, choice)
        if not continuation_ids:  # lm-eval asserts the same (HFLM._loglikelihood_tokens)
            raise TaskError(f"{question.where}: choice {index} ({choice!r}) merges whole into the context's last "
                            "token, leaving nothing to score: start it with a space")
        if len(continuation_ids) > block_size:
            raise TaskError(f"{question.where}: choice {index} is {len(continuation_ids)} tokens, longer than the "
                            f"model's context of {block_size}")
        pairs.append((context_ids, continuation_ids))
    return pairs


@torch.no_grad()
def _log_likelihoods(model: torch.nn.Module, pairs: Sequence[tuple[list[int], list[int]]]) -> list[float]:
    """Summed log-probabilities of each pair's continuation tokens given its context, one forward pass for all.

    As lm-eval's HFLM._loglikelihood_tokens: the input is (context + continuation)[-(block_size + 1):][:-1], so a
    window longer than the model's context loses context tokens from the left, and the last len(continuation)
    positions' logits score the continuation. Rows are padded on the right, which causal attention never looks at.
    """
    block_size = model.config.block_size
    device = next(model.parameters()).device
    inputs = [(context + continuation)[-(block_size + 1):][:-1] for context, continuation in pairs]
    batch = torch.zeros(len(inputs), max(map(len, inputs)), dtype=torch.long)
    for row, ids in enumerate(inputs):
        batch[row, :len(ids)] = torch.tensor(ids)
    log_probs = F.log_softmax(model(batch.to(device)).float(), dim=-1)
    scores = []
    for row, (ids, (_, continuation)) in enumerate(zip(inputs, pairs)):
        targets = torch.tensor(continuation, device=device)
        positions = log_probs[row, len(ids) - len(continuation):len(ids)]
        scores.append(positions.gather(-1, targets.view(-1, 1)).sum().item())
    return scores


def score_choices(model: torch.nn.Module, tokenizer, context: str, choices: Sequence[str]) -> list[float]:
    """The log-likelihood (nats) of each choice as the continuation of `context` under `model` (in eval mode)."""
    if not choices:
        return []
    question = Question(context, tuple(choices), 0)
    was_training = model.training
    model.eval()
    try:
        return _log_likelihoods(model, _encoded(tokenizer, question, model.config.block_size))
    finally:
        model.train(was_training)


def _first_best(values: Sequence[float]) -> int:
    """The index of the highest value, the first on a tie (numpy.argmax, which lm-eval ranks choices with)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def per_byte(log_likelihood: float, choice: str) -> float:
    """A choice's log-likelihood per UTF-8 byte, as lm-eval normalises it. lm-eval's choices come without their
    `target_delimiter` (" "), which it prepends only to score them, and it divides by the bytes of the choice alone
    (process_results: byte_length of doc_to_choice's strings); a task file here writes the delimiter into the choice,
    so one leading space is not counted. A choice of nothing but that space counts 1 byte rather than divide by 0."""
    return log_likelihood / max(1, len(choice.removeprefix(" ").encode("utf-8")))


def evaluate_task(model: torch.nn.Module, tokenizer, questions: Iterable[Question | Mapping]) -> dict:
    """{"acc", "acc_norm", "n", "chance"} of `model` on the questions (Questions or rows of a task file).

    acc_norm ranks choices by log-likelihood per UTF-8 byte of the choice (`per_byte`): lm-eval's `acc_bytes`
    (ConfigurableTask.process_results, lm_eval/api/task.py: byte_length = len(choice.encode("utf-8"))). lm-eval's
    own `acc_norm` divides by len(choice) in characters, which is the same on ASCII text. chance is the expected
    accuracy of a uniform guess, the mean of 1/len(choices). Every question is encoded and checked before any is
    scored, so a bad one fails at once.
    """
    questions = as_questions(questions)
    if not questions:
        raise TaskError("no questions to evaluate")
    encoded = [_encoded(tokenizer, question, model.config.block_size) for question in questions]
    was_training = model.training
    model.eval()
    correct = correct_norm = chance = 0.0
    try:
        for question, pairs in zip(questions, encoded):
            scores = _log_likelihoods(model, pairs)
            correct += _first_best(scores) == question.label
            correct_norm += _first_best([per_byte(s, c) for s, c in zip(scores, question.choices)]) == question.label
            chance += 1 / len(question.choices)
    finally:
        model.train(was_training)
    n = len(questions)
    return {"acc": correct / n, "acc_norm": correct_norm / n, "n": n, "chance": chance / n}


def _cut_before_whitespace(text: str, start: int, end: int) -> int:
    """The position of the last whitespace character in text[start + 1:end + 1], so that text[start:position] ends
    with a whole word and text[position:] starts a new one; `end` when there is none (text without spaces)."""
    window = text[start + 1:end + 1]
    found = [m.start() for m in _WHITESPACE.finditer(window)]
    return start + 1 + found[-1] if found else end


def _context_and_continuation(text: str, context_chars: int, continuation_chars: int) -> tuple[str, str] | None:
    """The start of `text` and what follows it, both cut at word boundaries; None for a text too short for both."""
    if len(text) < context_chars + continuation_chars:
        return None
    cut = _cut_before_whitespace(text, 0, context_chars)
    end = cut + continuation_chars
    if end < len(text):
        end = _cut_before_whitespace(text, cut, end)
    context, continuation = text[:cut], text[cut:end]
    return (context, continuation) if context.strip() and continuation.strip() else None


def continuation_task(texts: Iterable[str], choices: int = CONTINUATION_CHOICES,
                      context_chars: int = CONTINUATION_CONTEXT_CHARS, continuation_chars: int = CONTINUATION_CHARS,
                      seed: int = 0) -> list[dict]:
    """Rows {"context", "choices", "label"} of a task built from documents: the context is the start of a document
    (about `context_chars` characters, cut before a word), the choices its true continuation (about
    `continuation_chars`, so it starts with the space or newline that follows the context) and the continuations of
    `choices - 1` other documents, the label's place drawn at random.

    One question per document of at least context_chars + continuation_chars characters, in the order given; the
    same texts and seed give the same rows. Raises ValueError when fewer than `choices` documents have distinct
    continuations.
    """
    if choices < MIN_CHOICES:
        raise ValueError(f"a question needs at least {MIN_CHOICES} choices, got {choices}")
    if context_chars < 1 or continuation_chars < 1:
        raise ValueError(f"context_chars and continuation_chars must be at least 1, got {context_chars} and "
                         f"{continuation_chars}")
    pieces = [piece for text in texts if (piece := _context_and_continuation(text, context_chars, continuation_chars))]
    pool = list(dict.fromkeys(continuation for _, continuation in pieces))  # distinct, in order: no twin choices
    if len(pool) < choices:
        raise ValueError(f"a continuation task of {choices} choices needs {choices} documents of at least "
                         f"{context_chars + continuation_chars} characters with distinct continuations, "
                         f"found {len(pool)}")
    rng = random.Random(seed)
    rows = []
    for context, true in pieces:
        drawn = [pool[i] for i in rng.sample(range(len(pool)), choices)]
        others = [continuation for continuation in drawn if continuation != true][:choices - 1]
        label = rng.randrange(choices)
        rows.append({"context": context, "choices": others[:label] + [true] + others[label:], "label": label})
    return rows
