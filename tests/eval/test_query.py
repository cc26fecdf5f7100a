"""interleave.eval.query: a query's clips in placeholder order, and its id made and read back in one place."""

from __future__ import annotations

from interleave.eval.query import Query, clip_of, query_id, slug


def test_a_query_holds_its_clips_in_placeholder_order():
    one = Query("synonym/siren/0/alarm", "synonym", "Siren", "siren", "/a/siren_0.wav", "alarm", "yes")
    pair = Query(
        "pair/yes/0/siren/siren",
        "pair",
        "Siren",
        "siren",
        "/a/siren_0.wav",
        "siren",
        "yes",
        other_audio="/a/siren_1.wav",
    )
    assert one.clips == ("/a/siren_0.wav",) and pair.clips == ("/a/siren_0.wav", "/a/siren_1.wav")


def test_a_slug_is_the_id_form_of_a_label():
    assert slug("Heart sounds, heartbeat") == "heart_sounds_heartbeat" and slug("Rock 'n' roll") == "rock_n_roll"


def test_a_query_id_is_made_and_read_back_in_one_place():
    assert (
        query_id("synonym", "Heart sounds, heartbeat", 2, "Alarm clock")
        == "synonym/heart_sounds_heartbeat/2/alarm_clock"
    )
    assert query_id("identity", "Siren", 0) == "identity/siren/0"
    assert clip_of("synonym/heart_sounds_heartbeat/2/alarm_clock", "synonym", "Heart sounds, heartbeat") == "2"
    assert clip_of("identity/siren/0", "identity", "Siren") == "0"
    assert clip_of("identity/siren/0", "synonym", "Siren") is None  # another task's layout
    assert clip_of("pair/yes/0/siren/siren", "pair", "Siren") is None  # pairs are numbered otherwise
    assert clip_of("my-own-id", "synonym", "Siren") is None
