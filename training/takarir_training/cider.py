"""Fast CIDEr-D (same formula as coco-caption: n=1..4, sigma=6, clipped counts, x10) for per-epoch dev and SCST."""
import math
import re
from collections import Counter, defaultdict

_PUNCT = re.compile(r"[^\w\s]")


def words(text):
    """Approximation of PTBTokenizer: lowercase, drop punctuation."""
    return _PUNCT.sub(" ", text.lower()).split()


def ngrams(ws, n=4):
    return Counter(tuple(ws[i:i + k]) for k in range(1, n + 1) for i in range(len(ws) - k + 1))


class CiderD:
    def __init__(self, refs):
        """refs: {key: [ref strings]}; document frequencies come from these refs (as coco-caption does)."""
        self.refs = {k: [ngrams(words(r)) for r in rs] for k, rs in refs.items()}
        self.ref_len = {k: [len(words(r)) for r in rs] for k, rs in refs.items()}
        self.df = defaultdict(float)
        for rs in self.refs.values():
            for g in set(g for r in rs for g in r):
                self.df[g] += 1
        self.log_n = math.log(float(len(self.refs)))
        self.ref_vecs = {k: [self._vec(r) for r in rs] for k, rs in self.refs.items()}

    def _vec(self, counts):
        vec, norm = [{} for _ in range(4)], [0.0] * 4
        for g, tf in counts.items():
            n = len(g) - 1
            w = tf * (self.log_n - math.log(max(1.0, self.df.get(g, 0.0))))
            vec[n][g] = w
            norm[n] += w * w
        return vec, [math.sqrt(x) for x in norm]

    def score(self, key, cand):
        """CIDEr-D of one candidate string against the refs of key."""
        ws = words(cand)
        cv, cn = self._vec(ngrams(ws))
        total = 0.0
        for (rv, rn), rl in zip(self.ref_vecs[key], self.ref_len[key]):
            delta = len(ws) - rl
            s = 0.0
            for n in range(4):
                val = sum(min(w, rv[n][g]) * rv[n][g] for g, w in cv[n].items() if g in rv[n])
                if cn[n] and rn[n]:
                    s += val / (cn[n] * rn[n])
            total += s / 4 * math.exp(-delta * delta / (2 * 36.0))
        return total / len(self.ref_vecs[key]) * 10.0

    def corpus(self, cands):
        """cands: {key: string} -> mean CIDEr-D."""
        return sum(self.score(k, c) for k, c in cands.items()) / max(1, len(cands))
