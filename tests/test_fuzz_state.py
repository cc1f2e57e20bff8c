"""A short deterministic run of the mutation fuzz of every serialized kind (tests/statefuzz.py; the long
run is ``python bench/fuzz_state.py --blobs 100000``): no crash, no hang, no exception outside
FastDriftError, and every decoded object works consistently when used."""
import numpy as np
import pytest

import statefuzz
from fastdrift import codec
from fastdrift.errors import CorruptStateError


@pytest.fixture(scope="module")
def corpus():
    return statefuzz.seeds()


def test_every_seed_decodes_and_works(corpus):
    for kind in statefuzz.KINDS:
        assert corpus[kind], kind
        for blob in corpus[kind]:
            outcome, detail = statefuzz.classify(kind, blob)
            # the golden checkpoints of Rule objects hold the default rules: they load by themselves too
            assert outcome == "ok", (kind, detail)


@pytest.mark.parametrize("kind", statefuzz.KINDS)
def test_mutated_blobs_are_rejected_or_work(kind):
    counts, bad = statefuzz.run(400, seed=statefuzz.KINDS.index(kind), kinds=(kind,), hang_seconds=20.0)
    assert not bad, [(b[:4], b[4][-800:]) for b in bad[:3]]
    outcomes = {o for (_, _, o) in counts}
    assert "rejected" in outcomes and "ok" in outcomes  # the run reaches both sides of the decoders
    assert sum(counts.values()) == 400


def test_fix_checksums_reaches_the_body_parsers(corpus):
    # behind a recomputed checksum the envelope accepts the damage: the body parser must find it
    blob = corpus["histogram"][0]
    kind, params, payload = codec.decode(blob)
    damaged = codec.encode(kind, params, payload[:-3])
    assert statefuzz.fix_checksums(damaged) == damaged
    with pytest.raises(CorruptStateError, match="histogram payload"):
        statefuzz.decode("histogram", damaged)
    rng = np.random.default_rng(0)
    deep = [statefuzz.mutate(rng, corpus["profile"][0], corpus["fdp"], "deep")[1] for _ in range(50)]
    assert all(codec.decode(b)[0] == codec.Kind.PROFILE for b in deep)  # the outer envelope stays valid
