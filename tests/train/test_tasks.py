"""train/tasks.py: multiple-choice scores against log-likelihoods computed by hand (a GPT with fixed weights, and a
model whose probabilities are known in closed form), lm-eval's encoding at the context/choice boundary, truncation
from the left, acc against acc_norm, the task file's errors, the continuation task, and `mdr eval --task` on a run."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch.nn import functional as F

from mdr.train.checkpointing import load_model
from mdr.train.model import GPT, GPTConfig, padded_vocab_size
from mdr.train.tasks import (TaskError, as_questions, continuation_task, encode_pair, evaluate_task, read_task,
                             per_byte, score_choices)
from mdr.train.tokenizer import load_tokenizer
from tests.pipeline.commands import mdr_here
from tests.train.runs import shakespeare_data, shakespeare_tokenizer, tiny_run
from tests.train.shards import shakespeare_speeches

CONTEXT = "First Citizen:\nBefore we proceed any further, hear me"


def _fixed_gpt(vocab_size: int, block_size: int = 64) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=padded_vocab_size(vocab_size), block_size=block_size, n_layer=2, n_head=2,
                         n_embd=32)).eval()


def _by_hand(model, ids: list[int], first_scored: int) -> float:
    """sum over i >= first_scored of log P(ids[i] | ids[:i]), one position at a time."""
    with torch.no_grad():
        log_probs = F.log_softmax(model(torch.tensor([ids[:-1]]))[0], dim=-1)
    return sum(log_probs[i - 1, ids[i]].item() for i in range(first_scored, len(ids)))


def test_scores_are_the_log_likelihoods_of_the_choice_tokens():
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    model = _fixed_gpt(tokenizer.vocab_size)
    choices = [" speak.", " sing", " run away, quickly!"]
    expected = []
    for choice in choices:
        whole, context = tokenizer.encode(CONTEXT + choice), tokenizer.encode(CONTEXT)
        assert whole[:len(context)] == context  # a choice that starts a word leaves the context's tokens as they are
        expected.append(_by_hand(model, whole, len(context)))
    assert score_choices(model, tokenizer, CONTEXT, choices) == pytest.approx(expected, rel=1e-5)
    assert len(set(expected)) == 3 and all(e < 0 for e in expected)


def test_the_choice_is_split_off_at_the_contexts_token_boundary_as_in_lm_eval():
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    # "proc" + "eed": BPE merges across the boundary; lm-eval scores whole[len(encode(context)):]
    context, choice = "Before we proc", "eed"
    whole, context_ids = tokenizer.encode(context + choice), tokenizer.encode(context)
    assert whole[:len(context_ids)] != context_ids and tokenizer.encode(choice) != whole[len(context_ids):]
    assert encode_pair(tokenizer, context, choice) == (context_ids, whole[len(context_ids):])
    # the context's trailing whitespace moves to the choice; an empty context is the end-of-document token
    assert encode_pair(tokenizer, "Before we ", "proceed") == encode_pair(tokenizer, "Before we", " proceed")
    assert encode_pair(tokenizer, "", " proceed") == ([tokenizer.eos_id], tokenizer.encode(" proceed"))
    model = _fixed_gpt(tokenizer.vocab_size)
    [score] = score_choices(model, tokenizer, context, [choice])  # lm-eval's input: context_enc + continuation_enc
    assert score == pytest.approx(_by_hand(model, context_ids + whole[len(context_ids):], len(context_ids)), rel=1e-5)
    [empty] = score_choices(model, tokenizer, "", [" proceed"])
    assert empty == pytest.approx(_by_hand(model, [tokenizer.eos_id, *tokenizer.encode(" proceed")], 1), rel=1e-5)


def test_a_window_longer_than_the_context_loses_tokens_from_the_left():
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    model = _fixed_gpt(tokenizer.vocab_size, block_size=8)
    context, choice = CONTEXT * 3, " speak, sir"
    context_ids, choice_ids = encode_pair(tokenizer, context, choice)
    window = (context_ids + choice_ids)[-9:]  # block_size + 1 tokens: 8 inputs, the last predicted
    assert len(context_ids) > 8 and 1 < len(choice_ids) < 8
    [score] = score_choices(model, tokenizer, context, [choice])
    assert score == pytest.approx(_by_hand(model, window, len(window) - len(choice_ids)), rel=1e-5)
    with pytest.raises(TaskError, match="longer than the model's context of 8"):
        score_choices(model, tokenizer, "Hear", [" me speak" * 8])


class _Bytes:
    """A tokenizer of one token per UTF-8 byte, end of document 256."""

    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class _Fixed(torch.nn.Module):
    """Whatever the input, the next token's logit is `logits[c]` for the characters given and 0 for the other tokens
    of 257: P(t) = e^logit(t) / Z."""

    def __init__(self, logits: dict[str, float]):
        super().__init__()
        self.config = SimpleNamespace(block_size=32, vocab_size=257)
        self.logits = torch.nn.Parameter(torch.zeros(257, dtype=torch.float64))
        for character, logit in logits.items():
            self.logits.data[ord(character)] = logit

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(*idx.shape, -1)


def test_acc_counts_the_likeliest_choice_and_acc_norm_the_likeliest_per_byte():
    boost = 5.0
    log_z = math.log(256 + math.exp(boost))
    model, tokenizer = _Fixed({"x": boost}), _Bytes()
    short, long = " y", " xxxxxxxx"  # 1 and 8 bytes after the delimiter space
    scores = score_choices(model, tokenizer, "a", [short, long])
    assert scores == pytest.approx([-2 * log_z, -log_z + 8 * (boost - log_z)], rel=1e-6)  # float32
    # the long choice is less likely in all (-14.0 < -12.0) but likelier per byte (-1.75 > -12.0)
    assert scores[1] < scores[0] and scores[1] / 8 > scores[0] / 1
    # question 0: acc picks the short choice, acc_norm the long one (the label); question 1: " y" and " z" tie,
    # and a tie goes to the first (numpy.argmax), so acc misses the label " z" too
    rows = [{"context": "a", "choices": [short, long], "label": 1},
            {"context": "b", "choices": [long, short, " z"], "label": 2}]
    assert evaluate_task(model, tokenizer, rows) == {"acc": 0.0, "acc_norm": 0.5, "n": 2,
                                                     "chance": pytest.approx((1 / 2 + 1 / 3) / 2)}


def test_acc_norm_leaves_the_delimiter_space_out_of_the_length_as_lm_eval_does():
    # lm-eval scores " a" and " bbbb" but divides by len("a") and len("bbbb"): -2/1 < -5.5/4, so " bbbb" ranks first;
    # counting the space (-2/2 > -5.5/5) would rank " a" first
    assert per_byte(-5.5, " bbbb") > per_byte(-2.0, " a")
    assert per_byte(-2.0, " a") == -2.0 and per_byte(-5.5, " bbbb") == -5.5 / 4
    assert per_byte(-3.0, "é") == -1.5  # no delimiter: every byte counts
    assert per_byte(-3.0, " ") == -3.0  # the delimiter alone: 1 byte, not a division by 0


def test_acc_norm_divides_by_bytes_not_characters():
    # " é": the space and é's 2 bytes, each of likelihood 1/Z; " q": the space, then "q" suppressed to e^-2/Z. Per
    # byte of the choice after its delimiter, " é" is likelier (-1.5 log Z > -2 - 2 log Z), per character " q" would
    # be (-2 - 2 log Z > -3 log Z, log Z about 6)
    model, tokenizer = _Fixed({"x": 5.0, "q": -2.0}), _Bytes()
    log_z = math.log(255 + math.exp(5.0) + math.exp(-2.0))
    assert score_choices(model, tokenizer, "a", [" q", " é"]) == pytest.approx([-2 - 2 * log_z, -3 * log_z], rel=1e-6)
    scores = evaluate_task(model, tokenizer, [{"context": "a", "choices": [" q", " é"], "label": 1}])
    assert scores["acc"] == 0.0 and scores["acc_norm"] == 1.0


def _write(path, *lines: str):
    path.write_text("".join(line + "\n" for line in lines))
    return path


GOOD = '{"context": "Hear me", "choices": [" speak", " sing"], "label": 0}'


@pytest.mark.parametrize("line, message", [
    ('{"context": "Hear me", "choices": [" speak"', "not JSON"),
    ('["Hear me", [" speak", " sing"], 0]', "expected a JSON object"),
    ('{"context": "Hear me", "label": 0}', "missing 'choices'"),
    ('{"choices": [" a", " b"]}', "missing 'context' and 'label'"),
    ('{"context": 3, "choices": [" a", " b"], "label": 0}', "'context' must be a string"),
    ('{"context": "Hear me", "choices": [], "label": 0}', "at least 2 strings, got 0"),
    ('{"context": "Hear me", "choices": " speak", "label": 0}', "at least 2 strings, got str"),
    ('{"context": "Hear me", "choices": [" speak", ""], "label": 0}', "choice 1 must be a non-empty string"),
    ('{"context": "Hear me", "choices": [" speak", 7], "label": 0}', "choice 1 must be a non-empty string"),
    ('{"context": "Hear me", "choices": [" speak", " sing"], "label": 2}', "label 2 is out of range for 2 choices"),
    ('{"context": "Hear me", "choices": [" speak", " sing"], "label": -1}', "label -1 is out of range"),
    ('{"context": "Hear me", "choices": [" speak", " sing"], "label": true}', "'label' must be the index"),
    ('{"context": "Hear me", "choices": [" speak", " sing"], "label": "0"}', "'label' must be the index"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path, line, message):
    path = _write(tmp_path / "task.jsonl", GOOD, "", line, GOOD)
    with pytest.raises(TaskError) as error:
        read_task(path)
    assert str(error.value).startswith(f"{path} line 3: ") and message in str(error.value)


def test_task_files_without_questions_or_not_text_are_refused(tmp_path):
    assert [q.label for q in read_task(_write(tmp_path / "ok.jsonl", GOOD, "  ", GOOD))] == [0, 0]
    with pytest.raises(TaskError, match="holds no questions"):
        read_task(_write(tmp_path / "empty.jsonl", "", " "))
    (tmp_path / "latin1.jsonl").write_bytes(GOOD.encode() + b"\n" + b'{"context": "caf\xe9"}\n')
    with pytest.raises(TaskError, match=r"latin1.jsonl line 2: not UTF-8"):
        read_task(tmp_path / "latin1.jsonl")
    with pytest.raises(TaskError, match="cannot read task file"):
        read_task(tmp_path / "absent.jsonl")


def test_a_choice_that_merges_into_the_context_is_refused_before_scoring():
    tokenizer = load_tokenizer(shakespeare_tokenizer())
    model = _fixed_gpt(tokenizer.vocab_size)
    context = "Before we proc"  # "proc" + "e" is one token: "e" adds none of its own
    assert len(tokenizer.encode(context + "e")) == len(tokenizer.encode(context))
    rows = [{"context": "Hear me", "choices": [" a", " b"], "label": 0},
            {"context": context, "choices": [" eed", "e"], "label": 0}]
    with pytest.raises(TaskError, match="question 1: choice 1 .* merges whole into the context's last token"):
        evaluate_task(model, tokenizer, rows)


def _texts() -> list[str]:
    shakespeare_data()  # skips when the text is absent
    return [" ".join(s.split()) for s in shakespeare_speeches()[:400]]


def test_the_continuation_task_is_built_from_the_documents_and_its_seed():
    texts = _texts()
    rows = continuation_task(texts, choices=4, context_chars=120, continuation_chars=60, seed=7)
    long_enough = [t for t in texts if len(t) >= 180]
    assert len(rows) == len(long_enough) > 20
    continuations = {row["choices"][row["label"]] for row in rows}
    for row, text in zip(rows, long_enough):
        true = row["choices"][row["label"]]
        assert text.startswith(row["context"] + true)  # the document's own continuation
        assert 0 < len(row["context"]) <= 120 and true.startswith(" ") and len(true) <= 60
        assert len(set(row["choices"])) == 4 and set(row["choices"]) <= continuations  # the others: other documents'
    assert {row["label"] for row in rows} == {0, 1, 2, 3}
    assert continuation_task(texts, 4, 120, 60, seed=7) == rows
    assert continuation_task(texts, 4, 120, 60, seed=8) != rows
    assert [q.label for q in as_questions(rows)] == [row["label"] for row in rows]  # the task file's format
    with pytest.raises(ValueError, match="needs 4 documents of at least 180 characters"):
        continuation_task(long_enough[:3], 4, 120, 60)


def test_mdr_eval_task_scores_a_run(tmp_path):
    run = tiny_run()
    path = tmp_path / "continuation.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in continuation_task(_texts()[:60], 4, 80, 40, seed=1)))
    result = mdr_here("eval", str(run), "--task", str(path), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)["tasks"][str(path)]
    model, _ = load_model(run)
    tokenizer = load_tokenizer(str(run / "tokenizer.json"))
    assert scores == evaluate_task(model, tokenizer, read_task(path))
    assert scores["n"] == len(path.read_text().splitlines()) and scores["chance"] == 0.25
    other = tmp_path / "other.jsonl"
    other.write_text(GOOD + "\n")
    text = mdr_here("eval", str(run), "--task", str(path), "--task", str(other))
    assert text.returncode == 0
    first, second = text.stdout.splitlines()
    assert first == (f"{path}: acc {scores['acc']:.4f}  acc_norm {scores['acc_norm']:.4f}  n {scores['n']}  "
                     "chance 0.2500")
    assert second.startswith(f"{other}: acc ") and second.endswith("n 1  chance 0.5000")
    both = json.loads(mdr_here("eval", str(run), "--data", *shakespeare_data(), "--max-batches", "1",
                               "--task", str(path), "--json").stdout)
    assert both["tasks"][str(path)] == scores and both["tokens"] > 0


def test_mdr_eval_checks_the_task_file_before_the_model(tmp_path):
    path = _write(tmp_path / "task.jsonl", GOOD, '{"context": "x", "choices": [" a", " b"], "label": 5}')
    result = mdr_here("eval", str(tmp_path / "no-run"), "--task", str(path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"{path} line 2: label 5 is out of range" in result.stderr
    nothing = mdr_here("eval", str(tmp_path / "no-run"))
    assert nothing.returncode == 2 and "give --data SHARDS, --task FILE.jsonl or both" in nothing.stderr
    # the options of --data are refused without it rather than ignored
    path = _write(tmp_path / "good.jsonl", GOOD)
    for extra in (["--split", "val"], ["--max-batches", "2"], ["--batch-size", "4"]):
        ignored = mdr_here("eval", str(tmp_path / "no-run"), "--task", str(path), *extra)
        assert ignored.returncode == 2 and ignored.stderr.count("\n") == 1
        assert f"{extra[0]} applies to --data, which is not given" in ignored.stderr
