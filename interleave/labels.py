"""Scoring generated text: label matching for identity (labelling) evaluation."""

from __future__ import annotations

import re

LABELS_PREFIX = re.compile(r"^\s*labels?\s*(with acoustic features)?\s*:\s*", re.IGNORECASE)


def reference_labels(answer: str) -> list[str]:
    """The label strings of an LTU-style answer: "Labels: Siren; Drum" -> ["Siren", "Drum"]."""
    body = LABELS_PREFIX.sub("", answer.strip())
    return [label.strip() for label in body.split(";") if label.strip()]


def contains_label(text: str, label: str) -> bool:
    """Exact, case-insensitive, whole-phrase match of an AudioSet label string in generated text."""
    pattern = r"(?<![\w])" + re.escape(label.strip()) + r"(?![\w])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def labels_match(text: str, reference: str) -> bool:
    """Every label of the reference answer appears as a whole phrase in the generated text."""
    labels = reference_labels(reference)
    return bool(labels) and all(contains_label(text, label) for label in labels)
