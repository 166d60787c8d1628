"""Country names as shops write them -> ISO 3166 alpha-3 codes, for the explorer's map.

A small table instead of a country library: English and French names, the usual short
forms (USA, UK, EIRE, RSA) and two-letter codes. Names it does not know stay off the map
and are listed under it, with their customers.
"""

from __future__ import annotations

import unicodedata

_ISO3: dict[str, tuple[str, ...]] = {
    "ARE": ("united arab emirates", "uae", "emirats arabes unis", "ae"),
    "ARG": ("argentina", "argentine", "ar"),
    "AUS": ("australia", "australie", "au"),
    "AUT": ("austria", "autriche", "osterreich", "at"),
    "BEL": ("belgium", "belgique", "belgie", "be"),
    "BGR": ("bulgaria", "bulgarie", "bg"),
    "BHR": ("bahrain", "bahrein", "bh"),
    "BRA": ("brazil", "bresil", "brasil", "br"),
    "CAN": ("canada", "ca"),
    "CHE": ("switzerland", "suisse", "schweiz", "svizzera", "ch"),
    "CHL": ("chile", "chili", "cl"),
    "CHN": ("china", "chine", "cn"),
    "COL": ("colombia", "colombie", "co"),
    "CYP": ("cyprus", "chypre", "cy"),
    "CZE": ("czech republic", "czechia", "republique tcheque", "tchequie", "cz"),
    "DEU": ("germany", "allemagne", "deutschland", "de"),
    "DNK": ("denmark", "danemark", "dk"),
    "DZA": ("algeria", "algerie", "dz"),
    "EGY": ("egypt", "egypte", "eg"),
    "ESP": ("spain", "espagne", "espana", "es"),
    "EST": ("estonia", "estonie", "ee"),
    "FIN": ("finland", "finlande", "fi"),
    "FRA": ("france", "fr"),
    "GBR": ("united kingdom", "uk", "great britain", "britain", "england", "scotland", "wales",
            "northern ireland", "royaume-uni", "royaume uni", "gb"),
    "GRC": ("greece", "grece", "gr"),
    "HKG": ("hong kong", "hk"),
    "HRV": ("croatia", "croatie", "hr"),
    "HUN": ("hungary", "hongrie", "hu"),
    "IDN": ("indonesia", "indonesie", "id"),
    "IND": ("india", "inde", "in"),
    "IRL": ("ireland", "eire", "irlande", "republic of ireland", "ie"),
    "ISL": ("iceland", "islande", "is"),
    "ISR": ("israel", "il"),
    "ITA": ("italy", "italie", "italia", "it"),
    "JPN": ("japan", "japon", "jp"),
    "KOR": ("south korea", "korea", "republic of korea", "coree du sud", "kr"),
    "LBN": ("lebanon", "liban", "lb"),
    "LTU": ("lithuania", "lituanie", "lt"),
    "LUX": ("luxembourg", "lu"),
    "LVA": ("latvia", "lettonie", "lv"),
    "MAR": ("morocco", "maroc", "ma"),
    "MEX": ("mexico", "mexique", "mx"),
    "MLT": ("malta", "malte", "mt"),
    "MYS": ("malaysia", "malaisie", "my"),
    "NGA": ("nigeria", "ng"),
    "NLD": ("netherlands", "the netherlands", "holland", "pays-bas", "pays bas", "nederland", "nl"),
    "NOR": ("norway", "norvege", "norge", "no"),
    "NZL": ("new zealand", "nouvelle-zelande", "nz"),
    "PER": ("peru", "perou", "pe"),
    "PHL": ("philippines", "ph"),
    "POL": ("poland", "pologne", "polska", "pl"),
    "PRT": ("portugal", "pt"),
    "ROU": ("romania", "roumanie", "ro"),
    "RUS": ("russia", "russian federation", "russie", "ru"),
    "SAU": ("saudi arabia", "arabie saoudite", "sa"),
    "SEN": ("senegal", "sn"),
    "SGP": ("singapore", "singapour", "sg"),
    "SVK": ("slovakia", "slovaquie", "sk"),
    "SVN": ("slovenia", "slovenie", "si"),
    "SWE": ("sweden", "suede", "sverige", "se"),
    "THA": ("thailand", "thailande", "th"),
    "TUN": ("tunisia", "tunisie", "tn"),
    "TUR": ("turkey", "turkiye", "turquie", "tr"),
    "UKR": ("ukraine", "ua"),
    "USA": ("united states", "united states of america", "usa", "us", "etats-unis", "etats unis"),
    "VNM": ("vietnam", "viet nam", "vn"),
    "ZAF": ("south africa", "rsa", "afrique du sud", "za"),
}
_BY_NAME: dict[str, str] = {name: code for code, names in _ISO3.items() for name in names}
_BY_NAME.update({code.lower(): code for code in _ISO3})


def _key(name: str) -> str:
    """Lower case, accents and surrounding spaces removed: 'Brésil ' -> 'bresil'."""
    text = unicodedata.normalize("NFKD", name.strip().lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def iso3(name: object) -> str | None:
    """The ISO alpha-3 code of a country name or code, or None when unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    return _BY_NAME.get(_key(name))
