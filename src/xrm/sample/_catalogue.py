"""What the sample retailer (Kaffeekorb GmbH) sells: coffee, tea, cereals and kitchen goods."""

from __future__ import annotations

__all__ = ["BRAND", "BRAND_HANDLE", "CATEGORIES", "MIX_COMPONENTS", "PAGES", "PRODUCTS", "SITE"]

BRAND = "Kaffeekorb"
BRAND_HANDLE = "kaffeekorb"
SITE = "https://www.kaffeekorb.de"

CATEGORIES: tuple[str, ...] = ("Kaffee", "Tee", "Müsli & Cerealien", "Küche")

# (product id, name, category index, price in EUR); consumables are cheap and bought again,
# kitchen goods are dear and bought once.
PRODUCTS: tuple[tuple[str, str, int, float], ...] = (
    ("KAF-001", "Espresso Classico 1 kg Bohnen", 0, 16.90),
    ("KAF-002", "Café Crema 500 g Bohnen", 0, 9.49),
    ("KAF-003", "Filterkaffee Mild 500 g gemahlen", 0, 6.99),
    ("KAF-004", "Äthiopien Sidamo 250 g", 0, 8.90),
    ("KAF-005", "Kolumbien Huila 250 g", 0, 7.90),
    ("KAF-006", "Entkoffeiniert 500 g", 0, 8.49),
    ("KAF-007", "Kaffeekapseln Lungo 20 Stück", 0, 5.49),
    ("KAF-008", "Kaffeekapseln Ristretto 20 Stück", 0, 5.49),
    ("KAF-009", "Kaltgetränk Cold Brew 6 x 250 ml", 0, 11.94),
    ("KAF-010", "Bio-Fairtrade Hausmischung 1 kg", 0, 18.90),
    ("TEE-001", "Ostfriesen-Mischung 250 g", 1, 5.95),
    ("TEE-002", "Earl Grey 100 g", 1, 4.95),
    ("TEE-003", "Grüner Tee Sencha 100 g", 1, 6.50),
    ("TEE-004", "Pfefferminze Bio 50 g", 1, 3.95),
    ("TEE-005", "Rooibos Vanille 100 g", 1, 4.50),
    ("TEE-006", "Kräutertee Abendruhe 20 Beutel", 1, 2.99),
    ("TEE-007", "Chai Gewürztee 100 g", 1, 5.20),
    ("TEE-008", "Matcha Pulver 30 g", 1, 14.90),
    ("MUE-001", "Knusper-Müsli Schoko 750 g", 2, 4.49),
    ("MUE-002", "Bircher-Müsli 500 g", 2, 3.99),
    ("MUE-003", "Haferflocken kernig 1 kg", 2, 1.99),
    ("MUE-004", "Dinkel-Crunchy Beere 500 g", 2, 4.29),
    ("MUE-005", "Cornflakes 375 g", 2, 2.79),
    ("MUE-006", "Granola Nuss-Honig 400 g", 2, 5.49),
    ("MUE-007", "Porridge Apfel-Zimt 500 g", 2, 3.79),
    ("MUE-008", "Früchtemüsli ohne Zucker 750 g", 2, 4.99),
    ("KUE-001", "Siebträgermaschine Barista Pro", 3, 449.00),
    ("KUE-002", "Kaffeemühle Kegelmahlwerk", 3, 89.90),
    ("KUE-003", "French Press 1 l", 3, 29.90),
    ("KUE-004", "Handfilter Porzellan", 3, 19.90),
    ("KUE-005", "Teekanne Glas 1,2 l", 3, 24.95),
    ("KUE-006", "Milchaufschäumer", 3, 39.90),
    ("KUE-007", "Müslischalen 4er-Set", 3, 22.50),
    ("KUE-008", "Wasserkocher Edelstahl", 3, 49.90),
    ("KUE-009", "Filtertüten Gr. 4, 100 Stück", 3, 2.49),
    ("KUE-010", "Entkalker 500 ml", 3, 7.99),
)

# The cereal-mix subscription box is built from these modules (the configurator's seed).
MIX_COMPONENTS: tuple[str, ...] = (
    "Haferflocken", "Dinkelflakes", "Cornflakes", "Amaranth gepufft", "Walnüsse", "Haselnüsse",
    "Mandeln", "Cranberries", "Rosinen", "Apfelstücke", "Bananenchips", "Zartbitter-Splitter",
    "Kokosraspeln", "Leinsamen", "Chiasamen", "Zimt",
)

# (page name, path, category it belongs to or -1)
PAGES: tuple[tuple[str, str, int], ...] = (
    ("Startseite", "/", -1),
    ("Kaffee", "/kaffee", 0),
    ("Tee", "/tee", 1),
    ("Müsli & Cerealien", "/muesli", 2),
    ("Küche", "/kueche", 3),
    ("Müsli-Mixer", "/muesli-mixer", 2),
    ("Produkt", "/produkt", -1),
    ("Warenkorb", "/warenkorb", -1),
    ("Mein Konto", "/konto", -1),
    ("Filialfinder", "/filialen", -1),
)
