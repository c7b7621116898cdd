"""A small Marian tokenizer folder as Hugging Face ships them, and HF's own MarianTokenizer ids on real sentences.

Usage:  /usr/bin/python3 scripts/marian-tokenizer-refs.py HF_REF_DIR OUTDIR [--train]
  HF_REF_DIR: the hf-ref folder (vendored, unmodified transformers 4.44.2)
  OUTDIR:     test/fixtures/hf-tokenizer/marian
Needs Debian's python3-sentencepiece. With --train, source.spm and target.spm are (re)trained with sentencepiece's
trainer (Unigram; source: nmt_nfkc, vocab 400; target: identity normalisation, vocab 300) on Debian fortunes; without it the committed models are kept, so the
references can be regenerated against the same files. vocab.json is the union of both models' pieces in Marian's
order (</s> 0, <unk> 1, then pieces; <pad> last), minus a few source pieces (so that a source piece missing from
vocab.json maps to <unk>, as MarianTokenizer does); target_vocab.json (separate_vocabs) is the target model's pieces.
reference.json: 1000 sentences (fortune lines of 4..100 characters, plus hand-written edge cases) with HF's ids for the source side
(tokenizer(text)), the target side (tokenizer(text_target=...)) with shared and separate vocabularies, and decode().
"""
import json
import os
import sys

sys.dont_write_bytecode = True
HF_REF, OUT = sys.argv[1], sys.argv[2]
TRAIN = "--train" in sys.argv
sys.path[0:0] = [os.path.join(HF_REF, "vendor"), os.path.join(HF_REF, "stubs")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", "/tmp/hf-ref-home")

import sentencepiece as spm  # noqa: E402
import transformers  # noqa: E402
from transformers.models.marian.tokenization_marian import MarianTokenizer  # noqa: E402

assert transformers.__version__ == "4.44.2", transformers.__version__
# Without the Rust `tokenizers` package (hf-ref stubs it), transformers 4.44.2 falls back to a dataclass AddedToken
# with eq=True, which makes it unhashable and breaks every slow tokenizer's __init__. The Rust AddedToken hashes by
# its content; restoring exactly that changes no tokenization.
import transformers.tokenization_utils_base as tub  # noqa: E402
tub.AddedToken.__hash__ = lambda self: hash(self.content)
FORTUNES = "/usr/share/games/fortunes"


def entries(names):
    out = []
    for n in names:
        with open(os.path.join(FORTUNES, n), encoding="utf-8", errors="replace") as f:
            for e in f.read().split("\n%\n"):
                e = " ".join(e.split())
                if e:
                    out.append(e)
    return out


os.makedirs(OUT, exist_ok=True)
src_text = entries(["computers", "science", "education", "law"])
tgt_text = entries(["love", "politics", "food", "sports"])
if TRAIN:
    # the source model normalises with nmt_nfkc (its precompiled charsmap is most of the file), the target with none
    for name, text, size, rule in [("source", src_text, 400, "nmt_nfkc"), ("target", tgt_text, 300, "identity")]:
        corpus = f"/tmp/marian-{name}.txt"
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(text))
        spm.SentencePieceTrainer.train(input=corpus, model_prefix=f"/tmp/marian-{name}", vocab_size=size, model_type="unigram",
                                       character_coverage=0.9995, normalization_rule_name=rule, num_threads=1,
                                       unk_id=2, bos_id=-1, eos_id=1, pad_id=-1, unk_piece="<unk>", eos_piece="</s>")
        os.replace(f"/tmp/marian-{name}.model", os.path.join(OUT, f"{name}.spm"))

src = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "source.spm"))
tgt = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "target.spm"))
src_pieces = [src.id_to_piece(i) for i in range(src.get_piece_size())]
tgt_pieces = [tgt.id_to_piece(i) for i in range(tgt.get_piece_size())]
dropped = set(src_pieces[-3:])  # source pieces left out of vocab.json: they tokenize as <unk>
vocab = {"</s>": 0, "<unk>": 1}
for p in src_pieces + tgt_pieces:
    if p not in vocab and p not in dropped and p not in ("<s>",):
        vocab[p] = len(vocab)
vocab["<pad>"] = len(vocab)
target_vocab = {"</s>": 0, "<unk>": 1}
for p in tgt_pieces:
    if p not in target_vocab:
        target_vocab[p] = len(target_vocab)
target_vocab["<pad>"] = len(target_vocab)
with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(vocab, f, ensure_ascii=False, indent=0)
with open(os.path.join(OUT, "target_vocab.json"), "w", encoding="utf-8") as f:
    json.dump(target_vocab, f, ensure_ascii=False, indent=0)
cfg = {"tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "en", "model_max_length": 512,
       "unk_token": "<unk>", "eos_token": "</s>", "pad_token": "<pad>", "separate_vocabs": False}
with open(os.path.join(OUT, "tokenizer_config.json"), "w") as f:
    json.dump(cfg, f, indent=2)

shared = MarianTokenizer.from_pretrained(OUT)
separate = MarianTokenizer(os.path.join(OUT, "source.spm"), os.path.join(OUT, "target.spm"), os.path.join(OUT, "vocab.json"),
                           target_vocab_file=os.path.join(OUT, "target_vocab.json"), separate_vocabs=True)
lines = []
for n in sorted(n for n in os.listdir(FORTUNES) if not n.endswith((".dat", ".u8")) and os.path.isfile(os.path.join(FORTUNES, n))):
    with open(os.path.join(FORTUNES, n), encoding="utf-8", errors="replace") as f:
        lines += [x.strip() for x in f if 3 < len(x.strip()) <= 100 and x.strip() != "%"]
step = max(1, len(lines) // 1000)
sentences = lines[::step][:1000]
sentences += [
    "  leading and   inner   spaces\tand a tab  ", ">>fr<< Bonjour le monde", "no code >>de<< inside", "Hello</s>world <unk> <pad>",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m", "\uff21\uff22\uff23 fullwidth \uff11\uff12\uff13", "ligature \ufb01ne \u2163 \u00bd",
    "Zero\u200bwidth and nbsp\u00a0here", "emoji \U0001F600 and \u4e2d\u6587", "", " ", "a", "...!?", "don't can't won't",
    "Line\nbreak", "\u2581already marked", "control\u0007char",
]
refs = []
for k, s in enumerate(sentences):
    refs.append({
        "text": s,
        "ids": shared(s)["input_ids"],
        "target_ids": shared(text_target=s)["input_ids"],
    })
    if k % 5 == 0 or k >= len(sentences) - 17:   # the other outputs on every fifth sentence and every edge case
        refs[-1].update({
            "separate_target_ids": separate(text_target=s)["input_ids"],
            "decoded": shared.decode(shared(text_target=s)["input_ids"], skip_special_tokens=True),
            "decoded_special": shared.decode(shared(text_target=s)["input_ids"]),
        })
with open(os.path.join(OUT, "reference.json"), "w", encoding="utf-8") as f:
    json.dump({"transformers": transformers.__version__, "sentencepiece": spm.__version__, "dropped_source_pieces": sorted(dropped),
               "cases": refs}, f, ensure_ascii=False, separators=(",", ":"))
print(len(refs), "sentences;", "vocab", len(vocab), "target vocab", len(target_vocab))
