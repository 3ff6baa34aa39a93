"""Entities from word tags, and entity-level precision, recall and F1 against gold tags.

Entities open as conlleval and seqeval's default mode open them: at B-X, or at I-X after O or another type.

```python
>>> group_entities(["B-PER", "I-PER", "O", "I-LOC"])
[(0, 2, 'PER'), (3, 4, 'LOC')]
>>> counts = EntityCounts()
>>> counts.add(["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "B-LOC"])
>>> counts.scores()
{'precision': 0.5, 'recall': 1.0, 'f1': 0.6666666666666666}
```
"""

from __future__ import annotations


def group_entities(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first word, last word + 1, type) of each entity, opened as conlleval does: B-X, or I-X after O/another type."""
    spans, start, kind = [], None, None
    for index, tag in enumerate(tags + ["O"]):
        prefix, entity_type = (tag[:1], tag[2:]) if tag != "O" else ("O", None)
        continues = prefix == "I" and start is not None and entity_type == kind
        if start is not None and not continues:
            spans.append((start, index, kind))
            start, kind = None, None
        if prefix in ("B", "I") and start is None:
            start, kind = index, entity_type
    return spans


def entity_dicts(text: str, words) -> list[dict]:
    """Entities of one raw line from its ``WordPredictions``; ``text[start:end] == entity["text"]``; the score is
    the mean word probability."""
    entities = []
    for first, stop, label in group_entities(words.tags):
        start, end = words.spans[first][0], words.spans[stop - 1][1]
        score = sum(words.scores[first:stop]) / (stop - first)
        entities.append({"start": start, "end": end, "label": label, "text": text[start:end],
                         "score": round(score, 4)})
    return entities


class EntityCounts:
    """Micro entity P/R/F1 accumulated sentence by sentence: seqeval's default (conlleval) mode, streamed."""

    def __init__(self):
        self.get_entities = None  # seqeval (and scikit-learn under it) load on the first gold sentence: ~1 s
        self.available = True
        self.gold = self.predicted = self.correct = self.sentences = 0

    def load(self) -> None:
        try:
            from seqeval.metrics.sequence_labeling import get_entities
        except ImportError:  # optional in serve/ (its scores extra)
            self.available = False
            return
        self.get_entities = get_entities

    def add(self, gold: list[str], predicted: list[str]) -> None:
        if self.get_entities is None and self.available:
            self.load()
        if not self.available:
            return
        gold_set, predicted_set = set(self.get_entities(gold)), set(self.get_entities(predicted))
        self.gold += len(gold_set)
        self.predicted += len(predicted_set)
        self.correct += len(gold_set & predicted_set)
        self.sentences += 1

    def scores(self) -> dict[str, float]:
        precision = self.correct / self.predicted if self.predicted else 0.0
        recall = self.correct / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}
