"""TextBrewer's GeneralDistiller: a saved student distilled from a saved teacher on a CoNLL training file, run
inside the textbrewer environment (make_venvs.sh). Imports nothing of the project.

Follows TextBrewer's documented use (its README's "workflow" and its CoNLL-2003 example,
examples/conll2003_example/run_ner_distill.py): ``GeneralDistiller(TrainingConfig, DistillationConfig, model_T,
model_S, adaptor_T, adaptor_S).train(optimizer, dataloader, num_epochs, scheduler=...)``; the adaptors return the
logits masked by the attention mask, the hidden states and their mask. The settings default to what TextBrewer
recommends for a 3-layer student on English tasks: temperature 8 and KD only (the CoNLL-2003 example), and the
matches ``L3_hidden_mse + L3_hidden_smmd`` (its README's table; examples/matches/matches.py), whose 12-layer teacher
indices (0, 4, 8, 12) become 0, 2, 4, 6 for a 6-layer one. The schedule (epochs, batch, learning rate, warmup) is
the caller's, so that both tools train on one.

The adapters, the smallest that work: word-level CoNLL labels go on each word's first piece (-100 elsewhere), as
TextBrewer's example does; after each epoch the callback scores validation F1 (seqeval, entity level, first
pieces) and the best epoch's weights are saved, as our rows keep their best epoch.

    python peer_textbrewer.py --teacher T --student S --train_file train.txt --validation_file valid.txt \\
        --epochs 2 --batch_size 32 --learning_rate 1e-4 --output_dir D --result r.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

MATCH_LAYERS = {3: [0, 1, 2, 3]}  # student hidden-state indices of L3_* (embeddings, then each layer)


def read_conll(path: str) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8"):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        words.append(columns[0])
        tags.append(columns[-1])
    if words:
        sentences.append((words, tags))
    return sentences


def encode(tokenizer, sentences, label2id: dict, max_length: int) -> list[dict]:
    features = []
    for words, tags in sentences:
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
        labels, previous = [], None
        for word in encoded.word_ids():
            labels.append(-100 if word is None or word == previous else label2id[tags[word]])
            previous = word
        features.append({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                         "token_type_ids": encoded["token_type_ids"], "labels": labels})
    return features


def collate(batch: list[dict]) -> dict:
    import torch

    width = max(len(f["input_ids"]) for f in batch)
    padded = {key: [f[key] + [pad] * (width - len(f[key])) for f in batch]
              for key, pad in (("input_ids", 0), ("attention_mask", 0), ("token_type_ids", 0), ("labels", -100))}
    return {key: torch.tensor(value) for key, value in padded.items()}


def validation_f1(model, features: list[dict], id2label: dict, batch_size: int = 64) -> float:
    import torch
    from seqeval.metrics import f1_score

    model.eval()
    gold, predicted = [], []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            batch = collate(features[start:start + batch_size])
            labels = batch.pop("labels")
            best = model(**batch).logits.argmax(-1)
            for row_labels, row_best in zip(labels.tolist(), best.tolist()):
                kept = [(g, p) for g, p in zip(row_labels, row_best) if g != -100]
                gold.append([id2label[g] for g, _ in kept])
                predicted.append([id2label[p] for _, p in kept])
    return f1_score(gold, predicted)


def matches(kind: str, teacher_layers: int, student_layers: int) -> list[dict]:
    student = MATCH_LAYERS.get(student_layers, list(range(student_layers + 1)))
    step = teacher_layers // student_layers
    teacher = [index * step for index in range(student_layers + 1)]
    found = []
    if "hidden_mse" in kind:
        found += [{"layer_T": t, "layer_S": s, "feature": "hidden", "loss": "hidden_mse", "weight": 1}
                  for t, s in zip(teacher, student)]
    if "smmd" in kind:
        found += [{"layer_T": [t, t], "layer_S": [s, s], "feature": "hidden", "loss": "mmd", "weight": 1}
                  for t, s in zip(teacher, student)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", required=True, help="The student's starting weights (a saved BERT folder).")
    parser.add_argument("--train_file", required=True)
    parser.add_argument("--validation_file", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--warmup", type=float, default=0.1, help="Warmup as a fraction of the steps.")
    parser.add_argument("--temperature", type=float, default=8.0)
    parser.add_argument("--hard_label_weight", type=float, default=0.0)
    parser.add_argument("--matches", default="hidden_mse+smmd", choices=("none", "hidden_mse", "hidden_mse+smmd"))
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--max_train_samples", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    import textbrewer
    import torch
    import transformers
    from textbrewer import DistillationConfig, GeneralDistiller, TrainingConfig
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    teacher = AutoModelForTokenClassification.from_pretrained(args.teacher, output_hidden_states=True).eval()
    student = AutoModelForTokenClassification.from_pretrained(args.student, output_hidden_states=True)
    label2id, id2label = teacher.config.label2id, {int(k): v for k, v in teacher.config.id2label.items()}
    train = read_conll(args.train_file)
    if args.max_train_samples:
        train = train[:args.max_train_samples]
    train_features = encode(tokenizer, train, label2id, args.max_seq_length)
    validation_features = encode(tokenizer, read_conll(args.validation_file), label2id, args.max_seq_length)
    loader = torch.utils.data.DataLoader(train_features, batch_size=args.batch_size, shuffle=True, collate_fn=collate)
    steps = len(loader) * args.epochs
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * steps), steps)

    def adaptor(batch, output):
        return {"logits": (output.logits,), "logits_mask": (batch["attention_mask"],),
                "hidden": output.hidden_states, "inputs_mask": batch["attention_mask"], "losses": (output.loss,)}

    best = {"f1": -1.0, "step": None, "by_step": {}}

    def callback(model, step):
        f1 = validation_f1(model, validation_features, id2label)
        best["by_step"][step] = round(f1, 4)
        if f1 > best["f1"]:
            best.update(f1=f1, step=step, state={k: v.detach().clone() for k, v in model.state_dict().items()})

    matched = [] if args.matches == "none" else matches(args.matches, teacher.config.num_hidden_layers,
                                                        student.config.num_hidden_layers)
    distiller = GeneralDistiller(
        TrainingConfig(device="cpu", output_dir=os.path.join(args.output_dir, "checkpoints"),
                       log_dir=os.path.join(args.output_dir, "logs")),
        DistillationConfig(temperature=args.temperature, hard_label_weight=args.hard_label_weight,
                           kd_loss_type="ce", intermediate_matches=matched),
        teacher, student, adaptor, adaptor)
    started = time.perf_counter()
    with distiller:
        distiller.train(optimizer, loader, num_epochs=args.epochs, scheduler=scheduler, callback=callback)
    seconds = time.perf_counter() - started
    student.load_state_dict(best.pop("state"))
    final = os.path.join(args.output_dir, "best")
    student.config.output_hidden_states = False
    student.save_pretrained(final)
    tokenizer.save_pretrained(final)
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"model_dir": os.path.abspath(final), "train_seconds": round(seconds, 1), "steps": steps,
                   "best_step": best["step"], "validation_f1_by_step": best["by_step"],
                   "settings": {"temperature": args.temperature, "hard_label_weight": args.hard_label_weight,
                                "matches": matched, "epochs": args.epochs, "batch_size": args.batch_size,
                                "learning_rate": args.learning_rate, "warmup": args.warmup,
                                "max_seq_length": args.max_seq_length, "train_sentences": len(train_features)},
                   "versions": {"textbrewer": textbrewer.__version__, "transformers": transformers.__version__,
                                "torch": torch.__version__}}, f)


if __name__ == "__main__":
    main()
