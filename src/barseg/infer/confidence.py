"""Reading as evidence: a detection's score after zxing-cpp tried to read it.

The network's false regions on real photos are print that looks like a code (bold lettering,
digit strings, logos); almost none of them read, while almost every true detection does (on
the real dev sets, 95 % of true detections at score 0.5 read, 2-20 % of the false ones). So
a read is evidence, and its absence too: the network's score, as odds, is multiplied by the
likelihood ratio of the outcome (Bayes' rule with the score as the prior). Both ratios are
round figures: a read makes a region ``READ_RATIO`` times likelier a code; a region whose
crops do not read becomes ``UNREAD_RATIO`` as likely (the reader misses about one true
detection in twenty). At the default cut of 0.5 an unread detection then needs a network
score of 0.952 (odds of 20), and one that reads 0.091.
"""

from __future__ import annotations

READ_RATIO = 10.0
UNREAD_RATIO = 1 / 20


def verified_score(network_score: float, read: bool) -> float:
    """The score of a detection whose reading came out ``read`` (True: a code's text)."""
    score = min(max(network_score, 1e-6), 1 - 1e-6)
    odds = score / (1 - score) * (READ_RATIO if read else UNREAD_RATIO)
    return odds / (1 + odds)


def network_floor(threshold: float) -> float:
    """The lowest network score a read can lift to ``threshold``: detections from it up are
    worth reading."""
    if threshold >= 1.0:
        return 1.0
    return threshold / (threshold + READ_RATIO * (1 - threshold))
