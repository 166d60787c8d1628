"""Locale data of the sample shop: places, currency, and the words of its generated text.

Cities carry their region and a population weight so that a city and its region always
agree. Education, occupation, interest and category keys become the shop's own wording
(French for fr_FR, English otherwise), as a real shop's export would be.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocaleData:
    faker_locale: str
    currency: str
    country: str
    cities: tuple[tuple[str, str, float], ...]  # city, region, weight
    abroad: tuple[tuple[str, str, str, float], ...]  # country, city, region, weight
    abroad_share: float
    email_domains: tuple[str, ...]
    words: str  # "fr" or "en": which vocabulary below to use


FR_CITIES = (
    ("Paris", "Île-de-France", 21.0), ("Boulogne-Billancourt", "Île-de-France", 1.2),
    ("Versailles", "Île-de-France", 0.9), ("Marseille", "Provence-Alpes-Côte d'Azur", 8.7),
    ("Nice", "Provence-Alpes-Côte d'Azur", 3.4), ("Toulon", "Provence-Alpes-Côte d'Azur", 1.8),
    ("Lyon", "Auvergne-Rhône-Alpes", 5.2), ("Grenoble", "Auvergne-Rhône-Alpes", 1.6),
    ("Saint-Étienne", "Auvergne-Rhône-Alpes", 1.7), ("Clermont-Ferrand", "Auvergne-Rhône-Alpes", 1.5),
    ("Toulouse", "Occitanie", 4.9), ("Montpellier", "Occitanie", 2.9), ("Nîmes", "Occitanie", 1.5),
    ("Bordeaux", "Nouvelle-Aquitaine", 2.6), ("Limoges", "Nouvelle-Aquitaine", 1.3),
    ("Poitiers", "Nouvelle-Aquitaine", 0.9), ("Nantes", "Pays de la Loire", 3.2),
    ("Angers", "Pays de la Loire", 1.6), ("Le Mans", "Pays de la Loire", 1.4),
    ("Strasbourg", "Grand Est", 2.9), ("Reims", "Grand Est", 1.8), ("Metz", "Grand Est", 1.2),
    ("Lille", "Hauts-de-France", 2.3), ("Amiens", "Hauts-de-France", 1.3),
    ("Rennes", "Bretagne", 2.2), ("Brest", "Bretagne", 1.4), ("Rouen", "Normandie", 1.1),
    ("Caen", "Normandie", 1.1), ("Dijon", "Bourgogne-Franche-Comté", 1.6),
    ("Besançon", "Bourgogne-Franche-Comté", 1.2), ("Tours", "Centre-Val de Loire", 1.4),
    ("Orléans", "Centre-Val de Loire", 1.2), ("Ajaccio", "Corse", 0.7),
)

US_CITIES = (
    ("New York", "New York", 8.3), ("Los Angeles", "California", 3.9), ("Chicago", "Illinois", 2.7),
    ("Houston", "Texas", 2.3), ("Phoenix", "Arizona", 1.6), ("Philadelphia", "Pennsylvania", 1.6),
    ("San Antonio", "Texas", 1.5), ("San Diego", "California", 1.4), ("Dallas", "Texas", 1.3),
    ("Austin", "Texas", 1.0), ("Seattle", "Washington", 0.75), ("Denver", "Colorado", 0.72),
    ("Boston", "Massachusetts", 0.65), ("Miami", "Florida", 0.45), ("Atlanta", "Georgia", 0.5),
)

DE_CITIES = (
    ("Berlin", "Berlin", 3.7), ("Hamburg", "Hamburg", 1.9), ("München", "Bayern", 1.5),
    ("Nürnberg", "Bayern", 0.5), ("Köln", "Nordrhein-Westfalen", 1.1),
    ("Düsseldorf", "Nordrhein-Westfalen", 0.6), ("Dortmund", "Nordrhein-Westfalen", 0.6),
    ("Frankfurt am Main", "Hessen", 0.75), ("Stuttgart", "Baden-Württemberg", 0.63),
    ("Leipzig", "Sachsen", 0.6), ("Dresden", "Sachsen", 0.56), ("Hannover", "Niedersachsen", 0.54),
    ("Bremen", "Bremen", 0.57),
)

LOCALES: dict[str, LocaleData] = {
    "fr_FR": LocaleData(
        faker_locale="fr_FR", currency="EUR", country="France", cities=FR_CITIES,
        abroad=(
            ("Belgium", "Bruxelles", "Bruxelles-Capitale", 4.0),
            ("Switzerland", "Genève", "Genève", 2.0),
            ("Luxembourg", "Luxembourg", "Luxembourg", 1.0),
            ("Canada", "Montréal", "Québec", 1.0),
        ),
        abroad_share=0.06,
        email_domains=("gmail.com", "orange.fr", "free.fr", "laposte.net", "outlook.fr", "yahoo.fr"),
        words="fr",
    ),
    "en_US": LocaleData(
        faker_locale="en_US", currency="USD", country="United States", cities=US_CITIES,
        abroad=(("Canada", "Toronto", "Ontario", 3.0), ("Mexico", "Mexico City", "CDMX", 1.0)),
        abroad_share=0.04,
        email_domains=("gmail.com", "yahoo.com", "outlook.com", "icloud.com"),
        words="en",
    ),
    "de_DE": LocaleData(
        faker_locale="de_DE", currency="EUR", country="Germany", cities=DE_CITIES,
        abroad=(("Austria", "Wien", "Wien", 3.0), ("Switzerland", "Zürich", "Zürich", 2.0)),
        abroad_share=0.06,
        email_domains=("gmail.com", "web.de", "gmx.de", "t-online.de"),
        words="en",
    ),
}

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "fr": {
        "education": {
            "secondary": "Baccalauréat", "vocational": "CAP / BEP", "bachelor": "Licence (Bac+3)",
            "master": "Master (Bac+5)", "doctorate": "Doctorat",
        },
        "occupation": {
            "executive": "Cadres et professions intellectuelles supérieures",
            "intermediate": "Professions intermédiaires", "employee": "Employés",
            "worker": "Ouvriers", "business_owner": "Artisans, commerçants, chefs d'entreprise",
            "farmer": "Agriculteurs exploitants", "retired": "Retraités",
            "student": "Étudiants", "unemployed": "Sans activité professionnelle",
        },
        "interests": {
            "fashion": "mode", "deals": "bons plans", "beauty": "beauté", "home": "maison",
            "sport": "sport", "wine": "vin", "travel": "voyages", "tech": "high-tech",
            "culture": "culture", "kids": "enfants", "cooking": "cuisine", "health": "bien-être",
            "books": "lecture", "gardening": "jardinage", "gaming": "jeux vidéo", "music": "musique",
        },
        "categories": {
            "fashion": "Mode", "beauty": "Beauté", "home": "Maison", "kids": "Enfants & jouets",
            "sport": "Sport", "tech": "High-tech", "gourmet": "Épicerie fine", "books": "Livres & cadeaux",
        },
    },
    "en": {
        "education": {
            "secondary": "High school", "vocational": "Vocational", "bachelor": "Bachelor's",
            "master": "Master's", "doctorate": "Doctorate",
        },
        "occupation": {
            "executive": "Managers and professionals", "intermediate": "Associate professionals",
            "employee": "Clerical and service workers", "worker": "Manual workers",
            "business_owner": "Business owners and self-employed", "farmer": "Farmers",
            "retired": "Retired", "student": "Students", "unemployed": "Not working",
        },
        "interests": {
            "fashion": "fashion", "deals": "deals", "beauty": "beauty", "home": "home",
            "sport": "sport", "wine": "wine", "travel": "travel", "tech": "tech",
            "culture": "culture", "kids": "kids", "cooking": "cooking", "health": "wellness",
            "books": "reading", "gardening": "gardening", "gaming": "gaming", "music": "music",
        },
        "categories": {
            "fashion": "Fashion", "beauty": "Beauty", "home": "Home", "kids": "Kids & toys",
            "sport": "Sport", "tech": "Electronics", "gourmet": "Gourmet food", "books": "Books & gifts",
        },
    },
}

# Product catalogue: per category, (price median, price spread, nouns, adjectives), the words
# per language.
CATEGORY_PRICES: dict[str, tuple[float, float]] = {
    "fashion": (35, 0.6), "beauty": (22, 0.6), "home": (45, 0.8), "kids": (25, 0.7),
    "sport": (40, 0.7), "tech": (120, 0.9), "gourmet": (18, 0.6), "books": (20, 0.6),
}

PRODUCT_NOUNS: dict[str, dict[str, tuple[str, ...]]] = {
    "fr": {
        "fashion": ("Robe", "Chemise", "Pull", "Jean", "Veste", "Écharpe", "Baskets"),
        "beauty": ("Crème", "Sérum", "Parfum", "Rouge à lèvres", "Shampooing", "Coffret soin"),
        "home": ("Lampe", "Coussin", "Plaid", "Vase", "Bougie", "Service à thé", "Tapis"),
        "kids": ("Peluche", "Puzzle", "Jeu de construction", "Pyjama enfant", "Livre d'éveil", "Draisienne"),
        "sport": ("Tapis de yoga", "Gourde", "Legging", "Ballon", "Sac de sport", "Haltères"),
        "tech": ("Écouteurs", "Enceinte", "Chargeur", "Montre connectée", "Liseuse", "Clavier"),
        "gourmet": ("Chocolats", "Thé", "Café", "Confiture", "Huile d'olive", "Biscuits"),
        "books": ("Roman", "Beau livre", "Carnet", "Agenda", "Coffret cadeau", "BD"),
    },
    "en": {
        "fashion": ("Dress", "Shirt", "Sweater", "Jeans", "Jacket", "Scarf", "Sneakers"),
        "beauty": ("Cream", "Serum", "Perfume", "Lipstick", "Shampoo", "Skincare set"),
        "home": ("Lamp", "Cushion", "Throw", "Vase", "Candle", "Tea set", "Rug"),
        "kids": ("Plush toy", "Puzzle", "Building set", "Kids pyjamas", "Board book", "Balance bike"),
        "sport": ("Yoga mat", "Water bottle", "Leggings", "Ball", "Gym bag", "Dumbbells"),
        "tech": ("Earbuds", "Speaker", "Charger", "Smartwatch", "E-reader", "Keyboard"),
        "gourmet": ("Chocolates", "Tea", "Coffee", "Jam", "Olive oil", "Biscuits"),
        "books": ("Novel", "Coffee-table book", "Notebook", "Diary", "Gift box", "Comic"),
    },
}

PRODUCT_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "fr": ("classique", "premium", "bio", "édition limitée", "essentiel", "artisanal", "vintage"),
    "en": ("classic", "premium", "organic", "limited edition", "essential", "handmade", "vintage"),
}
