from glasses.evaluation.scoring import accepted, normalise_words, word_error_rate
from glasses.pipelines.agreement import LocalAgreement, word_key


def words(text: str) -> list[str]:
    return text.split()


def test_words_are_committed_once_two_hypotheses_agree():
    la = LocalAgreement(n=2, key=word_key)
    assert la.push(words("what")) == []
    assert la.push(words("what am I")) == ["what"]
    assert la.push(words("what am I looking")) == ["am", "I"]
    assert la.push(words("What am I looking at?")) == ["looking"]
    assert la.committed == words("what am I looking")
    assert la.tentative() == words("what am I looking at?")


def test_committed_words_are_never_taken_back():
    la = LocalAgreement(n=2, key=word_key)
    la.push(words("read the sign"))
    la.push(words("read the sign"))
    assert la.committed == words("read the sign")
    assert la.push(words("red that sign for me")) == []  # disagrees from the first word
    assert la.committed == words("read the sign")


def test_case_and_punctuation_do_not_break_word_agreement():
    la = LocalAgreement(n=2, key=word_key)
    la.push(words("Hello, world"))
    assert la.push(words("hello world!")) == ["hello", "world!"]


def test_tokens_agree_exactly_and_three_way_agreement_waits_longer():
    la = LocalAgreement(n=3)
    assert la.push([5, 6]) == [] and la.push([5, 6, 7]) == []
    assert la.push([5, 6, 8]) == [5, 6]
    la.reset()
    assert la.committed == [] and la.tentative() == []


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
