"""The mapping files (TOML) that tell the loader how each source file's columns become records.

    >>> print(MAPPINGS["mappings/loyalty_cards.toml"])  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["MAPPINGS"]

_WEBSHOP = """\
# Web-shop customer accounts: UTF-8, comma-separated, ISO dates.
kind = "records"
source = "webshop"
format = "csv"
encoding = "utf-8"
delimiter = ","
decimal = "."
date_formats = ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S"]

[columns]
source_key = "account_id"
account_id = "account_id"
user_id = "account_id"
email = "email"
first_name = "first_name"
last_name = "last_name"
birth_date = "birth_date"
street = "street"
house_number = "house_number"
postcode = "postcode"
city = "city"
phone = "phone"
updated_at = "updated_at"

[constants]
country = "DE"
"""

_LOYALTY = """\
# Store loyalty cards, exported from the till system: Windows-1252, semicolons, dd.mm.yyyy,
# decimal commas; street and house number share one field.
kind = "records"
source = "loyalty"
format = "csv"
encoding = "cp1252"
delimiter = ";"
decimal = ","
date_formats = ["%d.%m.%Y"]

[columns]
source_key = "kartennr"
loyalty_card = "kartennr"
user_id = "kartennr"
gender = "anrede"
first_name = "vorname"
last_name = "nachname"
street = "strasse"
postcode = "plz"
city = "ort"
phone = "telefon"
email = "email"
birth_date = "geburtsdatum"
updated_at = "ausgestellt_am"

[constants]
country = "DE"
"""

_NEWSLETTER = """\
# Newsletter list, exported from the e-mail platform: UTF-8, comma-separated.
kind = "records"
source = "newsletter"
format = "csv"
encoding = "utf-8"
delimiter = ","
decimal = "."
date_formats = ["%Y-%m-%d"]

[columns]
source_key = "subscriber_id"
user_id = "subscriber_id"
email = "email"
first_name = "first_name"
updated_at = "opt_in_date"
"""

_CRM = """\
# Call-centre CRM contacts (Parquet: typed dates, no encoding questions).
kind = "records"
source = "crm"
format = "parquet"

[columns]
source_key = "crm_id"
gender = "salutation"
title = "title"
first_name = "first_name"
last_name = "last_name"
phone = "phone"
email = "email"
street = "street"
house_number = "house_number"
postcode = "postcode"
city = "city"
birth_date = "birth_date"
updated_at = "last_contact"

[constants]
country = "DE"
"""

MAPPINGS: dict[str, str] = {
    "mappings/webshop_accounts.toml": _WEBSHOP,
    "mappings/loyalty_cards.toml": _LOYALTY,
    "mappings/newsletter.toml": _NEWSLETTER,
    "mappings/crm_contacts.toml": _CRM,
}
