"""One shared BPE for English and Indonesian; normalisation lives in the tokenizer so Rust and Python agree."""
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .data import LANGS, captions, split

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>", "<en>", "<id>"]
PAD, BOS, EOS, UNK = 0, 1, 2, 3
LANG_ID = {"en": 4, "id": 5}


def train_tokenizer(path, vocab_size=5000):
    """Train on train-split captions of both languages; punctuation dropped (COCO PTB scoring drops it too)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFKC(), normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[^\w\s'-]"), " "),
        normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  show_progress=False)
    train = set(split("train"))
    texts = [c for lang in LANGS for n, cs in captions(lang).items() if n in train for c in cs]
    tok.train_from_iterator(texts, trainer)
    assert [tok.token_to_id(s) for s in SPECIALS] == list(range(6))
    tok.save(str(path))
    return tok
