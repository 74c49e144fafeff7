"""Captioner: frozen CNN grid -> linear projection -> pre-norm transformer decoder with a self-attention KV cache."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .features import backbone as load_backbone, top


class Attention(nn.Module):
    def __init__(self, d, heads, dropout):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.drop = dropout

    def split(self, x):
        return x.view(x.shape[0], x.shape[1], self.h, self.dh).transpose(1, 2)

    def forward(self, x, k, v, causal=False):
        """x: queries [B,T,d]; k,v: already split [B,h,S,dh]."""
        q = self.split(self.q(x))
        if causal:  # queries are the last T of S positions
            T, S = q.shape[2], k.shape[2]  # arange-based mask keeps past length dynamic in ONNX
            mask = torch.arange(S, device=x.device)[None, :] <= (torch.arange(T, device=x.device) + (S - T))[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.drop if self.training else 0.0)
        else:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.drop if self.training else 0.0)
        return self.o(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class Layer(nn.Module):
    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.n1, self.n2, self.n3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = Attention(d, heads, dropout)
        self.cross = Attention(d, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mem, mem_index=None, past=None):
        """mem: [M,cells,d]; mem_index maps each row of x to its memory row (shared images). Returns x, (k, v)."""
        a = self.self_attn
        h = self.n1(x)
        k, v = a.split(a.k(h)), a.split(a.v(h))
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        x = x + self.drop(a(h, k, v, causal=True))
        c = self.cross
        ck, cv = c.split(c.k(mem)), c.split(c.v(mem))
        if mem_index is not None:
            ck, cv = ck[mem_index], cv[mem_index]
        x = x + self.drop(c(self.n2(x), ck, cv))
        x = x + self.drop(self.ff(self.n3(x)))
        return x, (k, v)


class GridLayer(nn.Module):
    """Pre-norm self-attention over the grid cells: lets each cell see the whole image before the decoder reads it."""

    def __init__(self, d, heads, ff, dropout):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, heads, dropout)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        a, h = self.attn, self.n1(x)
        x = x + self.drop(a(h, a.split(a.k(h)), a.split(a.v(h))))
        return x + self.drop(self.ff(self.n2(x)))


class CnnTop(nn.Module):
    """The pretrained backbone's blocks from `cut` on plus its head, fine-tuned on cached block inputs.
    Always in eval mode: batch-norm statistics stay ImageNet's and drop-connect stays off; only weights move."""

    def __init__(self, backbone, cut, size):
        super().__init__()
        m = load_backbone(backbone, size)
        self.blocks, self.head, self.bn, self.act = nn.ModuleList(m._blocks[cut:]), m._conv_head, m._bn1, m._swish

    def train(self, mode=True):
        return super().train(False)

    def forward(self, x):
        """x: block input, channels last [B,cells,C] -> final grid [B,cells',1280]."""
        B, N, C = x.shape
        side = math.isqrt(N)
        x = x.float().transpose(1, 2).reshape(B, C, side, side)
        return top(self.blocks, self.head, self.bn, self.act, x).flatten(2).transpose(1, 2)


class Captioner(nn.Module):
    def __init__(self, vocab, feat_dim=1280, d=320, heads=8, layers=3, ff=1280, dropout=0.1, max_len=40, grid=49,
                 enc_layers=0, cnn_top=None):
        super().__init__()
        self.cfg = dict(vocab=vocab, feat_dim=feat_dim, d=d, heads=heads, layers=layers, ff=ff, dropout=dropout,
                        max_len=max_len, grid=grid, enc_layers=enc_layers, cnn_top=cnn_top)
        # cnn_top {"backbone", "cut", "size"}: the backbone's blocks from `cut` on are part of this model (fine-tuned)
        self.cnn_top = CnnTop(**cnn_top) if cnn_top else None
        self.cut = cnn_top["cut"] if cnn_top else None
        self.proj = nn.Sequential(nn.Linear(feat_dim, d), nn.LayerNorm(d))
        self.grid_pos = nn.Parameter(torch.zeros(grid, d))
        # enc_layers 0 keeps the original model (projection only) and its checkpoints loadable
        self.grid_layers = nn.ModuleList(GridLayer(d, heads, ff, dropout) for _ in range(enc_layers))
        self.grid_norm = nn.LayerNorm(d) if enc_layers else nn.Identity()
        self.mem_drop = nn.Dropout(dropout)
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(Layer(d, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.emb.weight, std=d ** -0.5)
        nn.init.normal_(self.grid_pos, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def encode(self, feats):
        """feats [B,cells,C] (CNN grid, channels last; the input of block `cut` when the top is fine-tuned)
        -> encoder_hidden_states [B,cells,d]."""
        if self.cnn_top is not None:
            feats = self.cnn_top(feats)
        x = self.proj(feats.float()) + self.grid_pos
        for layer in self.grid_layers:
            x = layer(x)
        return self.mem_drop(self.grid_norm(x))

    def decode(self, ids, mem, mem_index=None, past=None):
        """ids [B,T] -> logits [B,T,V], presents; positions continue after the cached past."""
        start = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(start, start + ids.shape[1], device=ids.device)
        x = self.drop(self.emb(ids) * math.sqrt(self.emb.embedding_dim) + self.pos(pos))
        presents = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, mem, mem_index, None if past is None else past[i])
            presents.append(kv)
        return self.norm(x) @ self.emb.weight.t(), presents
