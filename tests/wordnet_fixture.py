"""A tiny WordNet 3.0-format database for tests (CI machines have no WordNet).

About 45 noun synsets shaped like WordNet's own around a few AudioSet words, with its traps:
"siren" first means a mythical sea nymph, "tick" is a sound first and an arachnid second (as
in WordNet 3.0, with "ticktock" a hyponym), a "dog" is also a pawl (a device) and has two
hypernyms (canine, domestic animal: nltk lists them in set order), "heartbeat" is the second
alternative of "Heart sounds, heartbeat", "whistle" has one synonym only, "chirp tone" is
missing. Files follow wndb(5WN): data.* lines start with their own 8-digit byte offset, index.*
lines list a lemma's synset offsets in sense order; verb, adjective and adverb files are empty
but for data.adj's licence line, where nltk reads the version.
"""

from __future__ import annotations

from pathlib import Path

from interleave.shard.wordnet import lexnames_text

# (name nltk will give it, lemmas, hypernyms, lexicographer file number, gloss).
# A name's sense number must be the synset's position among its first lemma's senses below.
SYNSETS: list[tuple[str, list[str], list[str], int, str]] = [
    ("entity.n.01", ["entity"], [], 3, "that which is perceived to have its own distinct existence"),
    ("physical_entity.n.01", ["physical_entity"], ["entity.n.01"], 3, "an entity that has physical existence"),
    ("abstraction.n.01", ["abstraction", "abstract_entity"], ["entity.n.01"], 3, "a general concept"),
    ("object.n.01", ["object", "physical_object"], ["physical_entity.n.01"], 3, "a tangible and visible entity"),
    ("whole.n.01", ["whole", "unit"], ["object.n.01"], 3, "an assemblage of parts regarded as a single entity"),
    ("artifact.n.01", ["artifact", "artefact"], ["whole.n.01"], 6, "a man-made object"),
    ("instrumentality.n.01", ["instrumentality", "instrumentation"], ["artifact.n.01"], 6, "an artifact used for an end"),
    ("device.n.01", ["device"], ["instrumentality.n.01"], 6, "an instrumentality invented for a particular purpose"),
    ("acoustic_device.n.01", ["acoustic_device"], ["device.n.01"], 6, "a device for making or changing sound"),
    ("musical_instrument.n.01", ["musical_instrument", "instrument"], ["device.n.01"], 6, "a device that makes music"),
    ("percussion_instrument.n.01", ["percussion_instrument", "percussive_instrument"], ["musical_instrument.n.01"], 6,
     "a musical instrument in which sound is produced by striking"),
    ("drum.n.01", ["drum", "membranophone", "tympan"], ["percussion_instrument.n.01"], 6, "a musical percussion instrument"),
    ("living_thing.n.01", ["living_thing", "animate_thing"], ["whole.n.01"], 3, "a living entity"),
    ("organism.n.01", ["organism", "being"], ["living_thing.n.01"], 3, "a living thing that can act independently"),
    ("animal.n.01", ["animal", "animate_being", "beast"], ["organism.n.01"], 3, "a living organism"),
    ("arachnid.n.01", ["arachnid", "arachnoid"], ["animal.n.01"], 5, "an air-breathing arthropod"),
    ("tick.n.02", ["tick"], ["arachnid.n.01"], 5, "a small parasitic arachnid"),
    ("carnivore.n.01", ["carnivore"], ["animal.n.01"], 5, "a flesh-eating mammal"),
    ("canine.n.01", ["canine", "canid"], ["carnivore.n.01"], 5, "any of various fissiped mammals"),
    ("domestic_animal.n.01", ["domestic_animal", "domesticated_animal"], ["animal.n.01"], 5, "any of various animals domesticated"),
    ("dog.n.01", ["dog", "domestic_dog", "Canis_familiaris"], ["canine.n.01", "domestic_animal.n.01"], 5,
     "a member of the genus Canis"),
    ("pawl.n.01", ["pawl", "detent", "click", "dog"], ["device.n.01"], 6, "a hinged catch that fits into a notch of a ratchet"),
    ("psychological_feature.n.01", ["psychological_feature"], ["abstraction.n.01"], 3, "a feature of the mental life"),
    ("event.n.01", ["event"], ["psychological_feature.n.01"], 3, "something that happens at a given place and time"),
    ("happening.n.01", ["happening", "occurrence"], ["event.n.01"], 11, "an event that happens"),
    ("periodic_event.n.01", ["periodic_event", "recurrent_event"], ["happening.n.01"], 11, "an event that recurs"),
    ("heartbeat.n.01", ["heartbeat", "pulse", "pulsation"], ["periodic_event.n.01"], 11,
     "the rhythmic contraction and expansion of the arteries"),
    ("attribute.n.01", ["attribute"], ["abstraction.n.01"], 3, "an abstraction belonging to an entity"),
    ("sound.n.01", ["sound"], ["attribute.n.01"], 7, "the particular auditory effect produced by a given cause"),
    ("sound.n.02", ["sound", "auditory_sensation"], ["psychological_feature.n.01"], 9, "the sensation of hearing"),
    ("sound.n.03", ["sound"], ["physical_entity.n.01"], 19, "mechanical vibrations transmitted by an elastic medium"),
    ("sound.n.04", ["sound"], ["happening.n.01"], 11, "the sudden occurrence of an audible event"),
    ("noise.n.01", ["noise"], ["sound.n.04"], 11, "sound of any kind"),
    ("tick.n.01", ["tick", "ticking"], ["sound.n.04"], 11, "a metallic tapping sound"),
    ("ticktock.n.01", ["ticktock", "tick_tock"], ["tick.n.01"], 11, "a steady recurrent ticking sound as made by a clock"),
    ("whistle.n.01", ["whistle", "whistling"], ["sound.n.04"], 11, "the sound made by something moving rapidly"),
    ("buzz.n.01", ["buzz", "bombilation", "bombination"], ["sound.n.04"], 11, "sound of rapid vibration"),
    ("communication.n.01", ["communication"], ["abstraction.n.01"], 3, "something that is communicated"),
    ("signal.n.01", ["signal", "signaling", "sign"], ["communication.n.01"], 10, "a nonverbal action that encodes a message"),
    ("alarm.n.01", ["alarm", "warning_signal", "alarum"], ["signal.n.01"], 10, "an automatic signal warning of danger"),
    ("spiritual_being.n.01", ["spiritual_being", "supernatural_being"], ["abstraction.n.01"], 9, "an ethereal being"),
    ("sea_nymph.n.01", ["sea_nymph"], ["spiritual_being.n.01"], 18, "a nymph of the sea"),
    ("siren.n.01", ["Siren"], ["sea_nymph.n.01"], 18, "a sea nymph supposed to lure sailors to destruction"),
    ("siren.n.02", ["siren", "alarm_siren", "wailer"], ["alarm.n.01"], 10, "a warning signal that is a loud wailing sound"),
    ("siren.n.03", ["siren"], ["acoustic_device.n.01"], 6, "an acoustic device producing a loud wailing sound"),
]  # fmt: skip

# The labels these synsets serve, as AudioSet spells them.
LABELS = ("Siren", "Tick", "Drum", "Dog", "Heart sounds, heartbeat", "Whistle", "Buzz", "Chirp tone")

_HEADER = "  1 This is a tiny test database in the format of WordNet 3.0.  \n"
_VERSION = "  2 WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.  \n"


def _data_lines(offsets: dict[str, int]) -> list[str]:
    lines = []
    for name, lemmas, hypernyms, lexfile, gloss in SYNSETS:
        words = " ".join(f"{lemma} 0" for lemma in lemmas)
        pointers = "".join(f" @ {offsets.get(h, 0):08d} n 0000" for h in hypernyms)
        lines.append(f"{offsets.get(name, 0):08d} {lexfile:02d} n {len(lemmas):02x} {words} {len(hypernyms):03d}{pointers} | {gloss}  \n")
    return lines


def _offsets() -> dict[str, int]:
    """Byte offset of every synset's line; offsets are fixed-width, so placeholders measure right."""
    offsets, position = {}, len(_HEADER)
    for (name, *_), line in zip(SYNSETS, _data_lines({})):
        offsets[name] = position
        position += len(line.encode("ascii"))
    return offsets


def _index_lines(offsets: dict[str, int]) -> list[str]:
    senses: dict[str, list[str]] = {}
    for name, lemmas, *_ in SYNSETS:
        for lemma in lemmas:
            senses.setdefault(lemma.lower(), []).append(name)
    lines = []
    for lemma in sorted(senses):
        names = sorted(senses[lemma], key=lambda n: (n.rsplit(".", 2)[0] != lemma, n))
        for position, name in enumerate(names, start=1):
            if name.rsplit(".", 2)[0] == lemma:
                assert int(name.rsplit(".", 1)[1]) == position, f"fixture sense order: {lemma} {name}"
        listed = " ".join(f"{offsets[n]:08d}" for n in names)
        lines.append(f"{lemma} n {len(names)} 1 @ {len(names)} 0 {listed}  \n")
    return lines


def write_wordnet(folder: Path, lexnames: bool = True) -> Path:
    """Write the database into ``folder`` (created) and return it; without ``lexnames`` it is Debian-like."""
    folder.mkdir(parents=True, exist_ok=True)
    offsets = _offsets()
    files = {
        "data.noun": _HEADER + "".join(_data_lines(offsets)),
        "index.noun": _HEADER + "".join(_index_lines(offsets)),
        "data.adj": _HEADER + _VERSION,
    }
    for pos in ("verb", "adv"):
        files[f"data.{pos}"] = _HEADER
    for pos in ("verb", "adj", "adv"):
        files[f"index.{pos}"] = _HEADER
    for pos in ("noun", "verb", "adj", "adv"):
        files[f"{pos}.exc"] = ""
    if lexnames:
        files["lexnames"] = lexnames_text()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="ascii")
    return folder
