from interleave.labels import contains_label, labels_match, reference_labels


def test_reference_labels():
    assert reference_labels("Labels: Siren; Drum") == ["Siren", "Drum"]
    assert reference_labels("labels with acoustic features: Beep, bleep") == ["Beep, bleep"]
    assert reference_labels("Labels: ") == []


def test_contains_label_is_whole_phrase_and_case_insensitive():
    assert contains_label("labels: siren", "Siren")
    assert contains_label("It is a Beep, bleep.", "Beep, bleep")
    assert not contains_label("Sirens wail", "Siren")
    assert not contains_label("a drumroll", "Drum")
    assert not contains_label("Pink", "Pink noise")


def test_labels_match_needs_every_label():
    assert labels_match("Labels: Drum; Siren", "Labels: Siren; Drum")
    assert not labels_match("Labels: Drum", "Labels: Siren; Drum")
    assert not labels_match("anything", "Labels:")
