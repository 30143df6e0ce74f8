"""Settings of the probabilistic record linkage (the ``[identify.linkage]`` table).

    >>> LinkageSettings().link_probability
    0.7
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

__all__ = ["LinkageSettings"]


class LinkageSettings(BaseModel):
    """How fuzzy duplicates are found (Splink) and which of them become links."""

    model_config = {"extra": "forbid", "frozen": True}

    enabled: bool = Field(
        default=True,
        description="Run probabilistic record linkage (Splink) over normalised records in each batch.",
    )
    link_probability: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description=(
            "Pairs whose match probability reaches this become 'probabilistic' links in the "
            "identity graph (below deterministic glue: limits, overrides and conflicts still apply)."
        ),
    )
    review_probability: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description=(
            "Pairs from here up to link_probability are the grey zone: they go to the review "
            "queue unless their records already share a profile."
        ),
    )
    min_train_records: int = Field(
        default=5_000,
        ge=100,
        description=(
            "Train m and u on the data only from this many records up; smaller data uses the "
            "packaged parameters (trained on the sample business)."
        ),
    )
    prior_max_records: int = Field(
        default=10_000,
        ge=2,
        description=(
            "Match probabilities use the prior of a file of at most this many records (expected "
            "true partners per record over min(records, this) - 1), so the same evidence gives the "
            "same decision at 100k and at 1M records; the prior per random pair shrinks as 1/n."
        ),
    )
    prior_records_ratio: float = Field(
        default=10.0,
        ge=1,
        description=(
            "Above prior_max_records x this many records, the prior's file size grows again as "
            "records / this (calibrated on the sample: 10,000 fits 100k records, 100,000 fits 1M)."
        ),
    )
    reuse_model: bool = Field(
        default=True,
        description=(
            "Reuse the last trained model (linkage_models) when the data's shape has not changed: "
            "record count within 10 % and each field's fill rate within 2 points."
        ),
    )
    train_max_records: int = Field(
        default=100_000,
        ge=100,
        description=(
            "Train on a uniform sample of about this many records when there are more (u, λ and "
            "EM's m are the same in a uniform sample; training time stays flat as data grows)."
        ),
    )
    u_max_pairs: float = Field(
        default=1e7, ge=1e4,
        description=(
            "Most random pairs sampled to estimate u (Splink max_pairs); below it 40 per record, "
            "at least 200,000."
        ),
    )
    em_max_pairs: float = Field(
        default=2e6, ge=1e3, description="Cap on blocked pairs per EM training run (memory stays flat)."
    )
    seed: int = Field(default=42, description="Seed of the u sampling, so runs are repeatable.")
    memory_limit: str | None = Field(
        default=None,
        description="DuckDB memory_limit of the linkage connection; default: the store's memory_limit.",
    )
    respect_limits: bool = Field(
        default=False,
        description=(
            "Refuse fuzzy links that would break a per-type limit. Off by default: limits guard "
            "against shared devices and cards in deterministic glue, while a person with a web "
            "account and a loyalty card legitimately holds two user ids (one per source system)."
        ),
    )
    email_names: bool = Field(
        default=True,
        description=(
            "Link a record holding an e-mail but no surname (a newsletter sign-up) to the one profile "
            "its e-mail's user part names with the birth year ('detlef.schneider64' -> Detlef "
            "Schneider, born 1964); no link when namesakes born that year make it ambiguous."
        ),
    )
    email_names_undated_namesakes: bool = Field(
        default=False,
        description=(
            "Let e-mail names link even when another profile holds the same full name without any "
            "birth date (it may be the person). More links, less precise: at 1M sample records "
            "cluster F1 0.878 -> 0.881 but 611 more over-merged profiles (about 7 links in 10 right)."
        ),
    )
    first_name_conflict_below: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description=(
            "Cannot-link rule: two records whose nickname-folded first names have a Jaro-Winkler "
            "similarity below this are different people (households share surname, address, phone), "
            "unless both carry the same birth date (not 1 January, the placeholder for a year alone)."
        ),
    )
    gender_conflict_share: float = Field(
        default=0.95,
        ge=0.5,
        le=1.01,
        description=(
            "Cannot-link rule: records whose genders differ are different people (a mother and son "
            "of one house, one record without a birth date). The gender is the salutation (Frau, "
            "Herr), else the first name's when at least this share of the data's records with a "
            "salutation and that (nickname-folded) first name, and at least 5 of them, agree; "
            "above 1: the salutation alone."
        ),
    )
    birth_date_conflict_edits: int = Field(
        default=1,
        ge=0,
        description=(
            "Cannot-link rule: two known birth dates more than this many character edits apart "
            "(YYYY-MM-DD) are different people; 1 forgives one typo. Month and day digits swapped "
            "are forgiven, and account ids within one typo lift both cannot-link rules."
        ),
    )

    @model_validator(mode="after")
    def _order(self) -> LinkageSettings:
        if self.review_probability > self.link_probability:
            raise ValueError(
                f"review_probability ({self.review_probability}) must not exceed link_probability "
                f"({self.link_probability})"
            )
        return self
