"""Sample: a realistic, seeded sample business with ground truth.

Kaffeekorb GmbH, a German omnichannel retailer of coffee, tea, cereals and kitchen goods: the
same people appear in four source systems under different keys and with noise, buy by the
BG/NBD process, subscribe to a cereal-mix box, browse, read e-mails, give consent, refer friends
and post about the brand.  Ground truth in ``truth/`` says who is who.

    >>> from xrm.sample import generate_sample
    >>> manifest = generate_sample(Path("sample"), customers=20_000, seed=42)  # doctest: +SKIP
"""

from __future__ import annotations

from xrm.sample._generate import CHUNK_SIZE, EVENT_FILES, generate_sample
from xrm.sample._params import Behaviour, Coverage, NoiseRates, SampleParams

__all__ = [
    "CHUNK_SIZE",
    "EVENT_FILES",
    "Behaviour",
    "Coverage",
    "NoiseRates",
    "SampleParams",
    "generate_sample",
]
