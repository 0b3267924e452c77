from pipelines.agreement import LocalAgreement
from pipelines.scoring import accepted, normalise_words, word_error_rate


def test_words_are_committed_once_two_hypotheses_agree():
    la = LocalAgreement(n=2)
    assert la.push("what") == []
    assert la.push("what am I") == ["what"]
    assert la.push("what am I looking") == ["am", "I"]
    assert la.push("What am I looking at?") == ["looking"]
    assert la.text == "what am I looking"
    assert la.tentative() == "what am I looking at?"


def test_committed_words_are_never_taken_back():
    la = LocalAgreement(n=2)
    la.push("read the sign")
    la.push("read the sign")
    assert la.text == "read the sign"
    assert la.push("red that sign for me") == []  # disagrees from the first word
    assert la.text == "read the sign"


def test_case_and_punctuation_do_not_break_agreement():
    la = LocalAgreement(n=2)
    la.push("Hello, world")
    assert la.push("hello world!") == ["hello", "world!"]


def test_word_error_rate_counts_substitutions_insertions_deletions():
    assert word_error_rate(["What colour is this?"], ["what color is this"]) == 0.0
    assert word_error_rate(["read that sign"], ["read the sign"]) == 1 / 3
    assert word_error_rate(["a b c d"], ["a b c d e f"]) == 0.5
    assert word_error_rate(["a b"], [""]) == 1.0
    assert normalise_words("It's a well-known café.") == ["it's", "a", "well", "known", "café"]


def test_accepted_words_match_after_normalising():
    assert accepted("A cup of espresso.", ["coffee", "Espresso"])
    assert not accepted("A red mug.", ["coffee"])
    assert accepted("It says EXIT", ["exit"])
    assert not accepted("anything", [""])
