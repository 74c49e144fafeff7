"""Decoding with the engine's semantics (transformers encoder-decoder generate):
start [BOS]; the language token is forced as first generated token (logprob 0);
beam score = sum(log_softmax) / generated_len ** length_penalty, generated_len counting the language token and EOS;
no_repeat_ngram_size bans tokens completing an n-gram already in the sequence (BOS and language token included);
EOS candidates among the top num_beams of the 2*num_beams ranked candidates finish; early_stopping=True stops an
image once num_beams hypotheses finished; unfinished beams at max_new_tokens are finalised as they are."""
import numpy as np
import torch

from .tokenizer import BOS, EOS


class TorchStepper:
    """Decoder step on PyTorch: (new ids [N,T], past) -> (last-position logits [N,V] numpy, past)."""

    def __init__(self, model, mem):
        self.model, self.mem = model, mem  # mem [B,cells,d]

    def __call__(self, ids, past, rows):
        with torch.no_grad():
            logits, presents = self.model.decode(torch.from_numpy(ids), self.mem, torch.from_numpy(rows), past)
        return logits[:, -1].float().numpy(), presents

    @staticmethod
    def reorder(past, idx):
        idx = torch.from_numpy(idx)
        return [(k[idx], v[idx]) for k, v in past]


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def banned(seq, n):
    """Tokens that would complete an n-gram already present in seq."""
    if n <= 0 or len(seq) + 1 < n:
        return []
    prefix = tuple(seq[len(seq) - n + 1:])
    return [seq[i + n - 1] for i in range(len(seq) - n + 1) if tuple(seq[i:i + n - 1]) == prefix]


def beam_search(stepper, n_images, lang_id, num_beams=3, no_repeat=3, length_penalty=1.0, max_new_tokens=32):
    """Returns generated ids per image: language token, caption tokens, EOS (absent if max_new_tokens hit)."""
    K = num_beams
    seqs = [[BOS] for _ in range(n_images * K)]
    rows = np.repeat(np.arange(n_images), K)
    scores = np.tile(np.array([0.0] + [-np.inf] * (K - 1)), n_images)
    finished = [[] for _ in range(n_images)]
    done = np.zeros(n_images, bool)
    past, new = None, np.array(seqs, np.int64)
    for step in range(max_new_tokens):
        logits, past = stepper(new, past, rows)
        logp = log_softmax(logits.astype(np.float64))
        if step == 0:
            forced = np.full_like(logp, -np.inf)
            forced[:, lang_id] = 0.0
            logp = forced
        for r, s in enumerate(seqs):
            b = banned(s, no_repeat)
            if b:
                logp[r, b] = -np.inf
        cand = (scores[:, None] + logp).reshape(len(done), K * logp.shape[1])
        top = np.argsort(-cand, axis=1, kind="stable")[:, :2 * K]
        next_seqs, next_scores, next_src, next_tok = [], [], [], []
        V = logp.shape[1]
        for i in range(len(done)):
            keep = []
            for rank, c in enumerate(top[i]):
                sc, src, tok = cand[i, c], i * K + c // V, int(c % V)
                if done[i] or sc == -np.inf:
                    continue
                if tok == EOS:
                    if rank < K:
                        gen_len = len(seqs[src])  # tokens after BOS, plus this EOS
                        finished[i].append((sc / gen_len ** length_penalty, seqs[src][1:] + [EOS]))
                elif len(keep) < K:
                    keep.append((sc, src, tok))
            if not done[i]:
                finished[i] = sorted(finished[i], key=lambda x: -x[0])[:K]
                if len(finished[i]) >= K:
                    done[i] = True
            while len(keep) < K:  # pad dead images/beams so the batch stays rectangular
                keep.append((-np.inf, i * K, EOS))
            for sc, src, tok in keep:
                next_seqs.append(seqs[src] + [tok]), next_scores.append(sc), next_src.append(src), next_tok.append(tok)
        if done.all():
            break
        seqs, scores = next_seqs, np.array(next_scores)
        past = stepper.reorder(past, np.array(next_src))
        new = np.array(next_tok, np.int64)[:, None]
    for i in range(len(done)):
        if not done[i]:
            for r in range(i * K, i * K + K):
                if scores[r] > -np.inf:
                    finished[i].append((scores[r] / (len(seqs[r]) - 1) ** length_penalty, seqs[r][1:]))
    return [max(f, key=lambda x: x[0])[1] for f in finished]


def greedy(model, mem, lang_id, max_new_tokens=32, sample=False, n=1, temperature=1.0, top_k=0):
    """Batched greedy (or multinomial sampling, n per image, from the top_k tokens when top_k > 0) with KV cache;
    returns ids [B*n, T]."""
    B = mem.shape[0]
    rows = torch.arange(B).repeat_interleave(n)
    ids = torch.full((B * n, 1), BOS, dtype=torch.long)
    tok = torch.full((B * n,), lang_id, dtype=torch.long)
    out, alive, past = [tok], torch.ones(B * n, dtype=torch.bool), None
    cur = torch.stack([ids[:, 0], tok], 1)
    for _ in range(max_new_tokens - 1):
        logits, past = model.decode(cur, mem, rows, past)
        logits = logits[:, -1].float()
        if sample:
            if top_k:
                kth = logits.topk(top_k, -1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            tok = torch.multinomial(torch.softmax(logits / temperature, -1), 1)[:, 0]
        else:
            tok = logits.argmax(-1)
        tok = torch.where(alive, tok, torch.full_like(tok, EOS))
        out.append(tok)
        alive &= tok != EOS
        if not alive.any():
            break
        cur = tok[:, None]
    return torch.stack(out, 1)


def strip(ids):
    """Drop the language token and everything from EOS on."""
    ids = list(ids)[1:]
    return ids[:ids.index(EOS)] if EOS in ids else ids
