"""Varied Czech sentences for the Czech Festival voices, rich in p, b and m.

Sentences are built from word lists written for this (people, things, places, verbs, adverbs) in a
few shapes (statements, questions, lists, two clauses); a share are pseudo-words of Czech syllables,
which the voices read by Czech spelling rules. Grammar is loose (no case agreement): the voices only
need real Czech phone sequences and prosody. Seeded: same generator state, same sentence.
"""

from __future__ import annotations

import numpy as np

_PEOPLE = (
    "babička", "maminka", "tatínek", "bratr", "Petr", "Pavel", "Marie", "Barbora", "Milan", "Bohumil",
    "Zdeněk", "Jarmila", "Lenka", "Tomáš", "Jakub", "Eliška", "pan Novák", "paní Malá", "doktor Beneš",
    "profesor", "policista", "prodavačka", "pekař", "malíř", "zpěvák", "soused", "přítel", "sestra",
    "medvěd", "pes", "kočka", "opice", "motýl", "ptáček", "myška", "beran", "kůň", "všichni",
)  # fmt: skip
_VERBS = (
    "má", "mává", "myje", "maluje", "peče", "pije", "píše", "bere", "balí", "buduje", "kupuje", "prodává",
    "vidí", "hledá", "nese", "přináší", "miluje", "potřebuje", "opravuje", "zapomněl", "obdivuje",
    "poslouchá", "vybírá", "vaří", "pomáhá s", "měří", "ukazuje", "schovává", "objednal", "popisuje",
    "prohlíží", "připravuje", "sbírá", "porazil", "zabalila", "zaplatila", "přinesl", "obejmul",
)  # fmt: skip
_THINGS = (
    "polévku", "mléko", "chleba", "pivo", "jablko", "hrušku", "meloun", "papriku", "brambory", "máslo",
    "sýr", "kávu", "vodu", "knihu", "dopis", "obrázek", "mapu", "míč", "balík", "klobouk", "boty",
    "kabát", "papír", "pero", "tužku", "židli", "stůl", "okno", "pokoj", "byt", "dům", "zahradu", "lampu",
    "pumpu", "bambus", "obraz", "hudbu", "písničku", "pohádku", "zprávu", "příběh", "tabuli", "houby",
    "borůvky", "jahody", "maliny", "šunku", "limonádu", "poštu", "peníze", "telefon", "počítač",
    "mobil", "parfém", "kompot", "bonbony", "dýmku", "zámek", "plot", "most", "člun", "autobus",
)  # fmt: skip
_ADJECTIVES = (
    "malé", "modré", "bílé", "pěkné", "velké", "nové", "staré", "dobré", "pomalé", "mokré", "prázdné",
    "plné", "zelené", "žluté", "černé", "krásné", "moudré", "slabé", "hloupé", "dlouhé", "tmavé", "teplé",
    "studené", "obyčejné", "vzácné", "poslední", "první", "levné", "drahé", "sladké",
)  # fmt: skip
_PLACES = (
    "v parku", "na mostě", "u moře", "pod mostem", "v obchodě", "na poště", "v metru", "před domem",
    "za plotem", "ve škole", "na pobřeží", "v Praze", "v Brně", "v Plzni", "na Moravě", "v Olomouci",
    "na zahradě", "v kuchyni", "ve sklepě", "u babičky", "v lese", "na poli", "v pokoji", "na nádraží",
    "v kavárně", "u bazénu", "na balkóně", "v muzeu", "nad městem", "mezi stromy", "v Budějovicích",
)  # fmt: skip
_ADVERBS = (
    "pomalu", "potichu", "rychle", "brzy", "potom", "možná", "opravdu", "zase", "dnes", "zítra", "ráno",
    "večer", "hned", "velmi pěkně", "moc", "přece", "prostě", "pořád", "nejprve", "občas", "bohužel",
    "naštěstí", "samozřejmě", "většinou", "minulý týden", "po obědě", "v pondělí", "v sobotu",
)  # fmt: skip
_QUESTIONS = ("proč", "kdy", "kde", "kdo", "jak", "komu", "kolik", "pročpak", "odkud")
_ONSETS = ("p", "b", "m", "p", "b", "m", "t", "d", "k", "v", "s", "z", "š", "č", "ř", "l", "r", "n", "h", "j",
           "pr", "br", "pl", "bl", "mn", "ml", "st", "zb", "sp", "", "ch", "ž", "c", "ď", "ť", "f")  # fmt: skip
_NUCLEI = ("a", "e", "i", "o", "u", "á", "é", "í", "ó", "ú", "ů", "y", "ou", "ě", "a", "o", "e")
_CODAS = ("", "", "", "", "m", "p", "b", "n", "s", "t", "k", "l", "r", "š", "j", "mp", "mb", "st")


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return str(words[int(rng.integers(len(words)))])


def _clause(rng: np.random.Generator) -> str:
    words = [_pick(rng, _PEOPLE), _pick(rng, _VERBS)]
    if rng.random() < 0.5:
        words.append(_pick(rng, _ADJECTIVES))
    words.append(_pick(rng, _THINGS))
    if rng.random() < 0.5:
        words.append(_pick(rng, _PLACES))
    if rng.random() < 0.4:
        words.insert(0 if rng.random() < 0.5 else 2, _pick(rng, _ADVERBS))
    return " ".join(words)


def _pseudo(rng: np.random.Generator) -> str:
    words = []
    for _ in range(int(rng.integers(3, 9))):
        n = int(rng.integers(1, 4))
        words.append("".join(_pick(rng, _ONSETS) + _pick(rng, _NUCLEI) + _pick(rng, _CODAS) for _ in range(n)))
    return " ".join(words)


def czech_sentence(rng: np.random.Generator) -> str:
    """One Czech sentence (3-20 words) with its punctuation, capitalised."""
    r = rng.random()
    if r < 0.25:
        s, end = _pseudo(rng), _pick(rng, (".", ".", "?", "!"))
    elif r < 0.4:
        s, end = f"{_pick(rng, _QUESTIONS)} {_clause(rng)}", "?"
    elif r < 0.5:
        items = [_pick(rng, _THINGS) for _ in range(int(rng.integers(3, 6)))]
        s, end = f"{_pick(rng, _PEOPLE)} {_pick(rng, _VERBS)} {', '.join(items[:-1])} a {items[-1]}", "."
    elif r < 0.7:
        s, end = f"{_clause(rng)}{_pick(rng, (' a ', ', ale ', ', protože ', ', když '))}{_clause(rng)}", "."
    else:
        s, end = _clause(rng), _pick(rng, (".", ".", ".", "!"))
    return s[0].upper() + s[1:] + end
