"""Every rate and model parameter of the sample business, in one place.

Change a number here and the whole business follows: the noise in the source files, the
buying behaviour, the channel mix.  Ground truth records each person's drawn parameters, so tests
and benchmarks compare against the process that made the data.

    >>> from xrm.sample import SampleParams
    >>> SampleParams().noise.typo["loyalty"]
    0.06
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Behaviour", "Coverage", "NoiseRates", "SampleParams"]


def _per_source(webshop: float, loyalty: float, newsletter: float, crm: float) -> dict[str, float]:
    return {"webshop": webshop, "loyalty": loyalty, "newsletter": newsletter, "crm": crm}


@dataclass(frozen=True)
class NoiseRates:
    """How dirty each source is: the probability that a record shows each kind of noise."""

    # one typo (swap, drop, double or neighbouring key) in a name or street
    typo: dict[str, float] = field(default_factory=lambda: _per_source(0.01, 0.06, 0.02, 0.04))
    # a nickname instead of the first name (Johannes -> Hans)
    nickname: dict[str, float] = field(default_factory=lambda: _per_source(0.03, 0.15, 0.25, 0.05))
    # umlauts written out (Müller -> Mueller) and ß as ss (Groß -> Gross)
    transliterate: dict[str, float] = field(
        default_factory=lambda: _per_source(0.05, 0.30, 0.0, 0.10)
    )
    # a record written before a name change still shows the maiden name
    maiden_name: dict[str, float] = field(default_factory=lambda: _per_source(0.2, 0.7, 0.0, 0.5))
    # a record written before a move still shows the old address
    old_address: dict[str, float] = field(default_factory=lambda: _per_source(0.1, 0.6, 0.0, 0.4))
    # a field left empty
    missing_birth_date: dict[str, float] = field(
        default_factory=lambda: _per_source(0.15, 0.35, 1.0, 0.5)
    )
    missing_phone: dict[str, float] = field(default_factory=lambda: _per_source(0.55, 0.25, 1.0, 0.05))
    missing_email: dict[str, float] = field(default_factory=lambda: _per_source(0.0, 0.5, 0.0, 0.4))
    missing_first_name_newsletter: float = 0.55
    # Straße written as Str. / Strasse / str.
    street_abbreviation: float = 0.35
    # e-mail variants on the newsletter list: upper case, capitalised, stray whitespace
    email_upper: float = 0.06
    email_capitalised: float = 0.10
    email_whitespace: float = 0.05
    # a household member signs up with the family e-mail address instead of their own
    family_email: float = 0.12
    # the CRM writes a title (Dr., Prof.) the person holds
    crm_title_shown: float = 0.8


@dataclass(frozen=True)
class Coverage:
    """Who appears in which source, and how often one person has two records in one source."""

    online_only: float = 0.35  # shares of persons by channel; the rest shop in both
    store_only: float = 0.30
    newsletter_online: float = 0.55  # P(on the newsletter list | shops online)
    newsletter_store_only: float = 0.25
    crm: float = 0.15  # P(called the call centre)
    second_account: float = 0.03  # forgot the password, opened a second web-shop account
    second_card: float = 0.04  # lost the card, got a new one
    second_newsletter: float = 0.05  # subscribed twice with another address
    moved: float = 0.12  # moved house during or shortly before the window
    name_changed: float = 0.25  # of partners in a couple: took the other's last name
    title_dr: float = 0.04
    title_prof: float = 0.005
    social_handle: float = 0.10  # has a public social-media handle
    handle_in_profile: float = 0.5  # ... and told the web shop (identify trait)
    app_user: float = 0.4  # of online shoppers: also uses the app
    shared_device: float = 0.35  # households with two online shoppers sharing a tablet
    referred: float = 0.05  # of online shoppers: came through a referral


@dataclass(frozen=True)
class Behaviour:
    """The buying and engagement processes (time in weeks, money in EUR).

    Purchases follow BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way",
    Marketing Science 24(2), §2): λ ~ Gamma(r, α) (rate α), p ~ Beta(a, b).  Spend follows the
    Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42(4), eq. 1-2):
    z ~ Gamma(p_gg, ν), ν ~ Gamma(q_gg, γ_gg), per-customer mean p_gg / ν.  The cereal-mix
    subscription churns by the shifted-beta-geometric model (Fader & Hardie 2007, "How to project
    customer retention", J. Interactive Marketing 21(1), eq. 2): θ ~ Beta(α_sbg, β_sbg).
    """

    r: float = 0.9
    alpha: float = 9.0
    a: float = 1.2
    b: float = 6.0
    p_gg: float = 6.0
    q_gg: float = 4.0
    gamma_gg: float = 17.0
    acquisition_share: float = 0.9  # first purchases fall in the first 90% of the window
    refund_rate: float = 0.03
    subscribe: float = 0.3  # P(subscribes | has a web-shop account)
    alpha_sbg: float = 1.2
    beta_sbg: float = 4.0
    subscription_price: float = 24.90
    sessions_per_year: float = 10.0  # web/app sessions of an online shopper
    pages_per_session: float = 3.3
    anonymous_sessions_per_year: float = 2.0  # store-only shoppers browsing without an account
    login_share: float = 0.6  # sessions in which the visitor logs in
    campaigns_per_year: float = 36.0
    campaign_reach: float = 0.6  # P(a subscriber is in a campaign's audience)
    open_rate: tuple[float, float] = (2.0, 4.0)  # Beta parameters, per person
    click_rate: tuple[float, float] = (1.0, 4.0)
    unsubscribe: float = 0.15
    posts_per_author: float = 2.0


@dataclass(frozen=True)
class SampleParams:
    """All parameters of the sample business."""

    noise: NoiseRates = field(default_factory=NoiseRates)
    coverage: Coverage = field(default_factory=Coverage)
    behaviour: Behaviour = field(default_factory=Behaviour)
