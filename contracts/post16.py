"""Post-16 sharing: on what basis the sending school shares a young person's SEN history
with a post-16 provider, and, where it rests on consent, who agreed and when.

Contract layer (an optional `post16_sharing` block on `pupil_moved`, additive to v1):
pydantic and the standard library only, strict like the rest of the inbound contract.

- `lawful_basis`: UK GDPR Article 6(1): `consent` (a), `vital_interests` (d) or
  `public_task` (e). SEN information is often health data, special category under
  Article 9, which needs a condition of its own (9(2)(a) explicit consent, 9(2)(c)
  vital interests, 9(2)(g) with the Data Protection Act 2018 Schedule 1): the school,
  as controller, decides which applies; the hub records what it was told.
- `agreement`: only with `consent`, and then required: `agreed`, `refused` or `withdrawn`.
- `agreed_by`: at the end of compulsory school age the decisions pass from the parent
  to the young person (Children and Families Act 2014 Part 3; SEND Code of Practice
  2015 chapter 8). A parent decides only when the young person lacks capacity to
  (Mental Capacity Act 2005; Children and Families Act 2014 s.80), so `parent` needs
  `young_person_lacks_capacity: true`.
- `agreed_on`: the date the decision was given (or refused, or withdrawn).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from contracts.storable import refuse_unstorable


class LawfulBasis(StrEnum):
    """UK GDPR Article 6(1): (a) consent, (d) vital interests, (e) public task."""

    CONSENT = "consent"
    PUBLIC_TASK = "public_task"
    VITAL_INTERESTS = "vital_interests"


class Agreement(StrEnum):
    AGREED = "agreed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class AgreedBy(StrEnum):
    YOUNG_PERSON = "young_person"
    PARENT = "parent"


class Post16Sharing(BaseModel):
    """What the sending school recorded about sharing with the post-16 provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    _storable = model_validator(mode="before")(refuse_unstorable)

    lawful_basis: LawfulBasis
    agreement: Agreement | None = None
    agreed_by: AgreedBy | None = None
    agreed_on: date | None = None
    young_person_lacks_capacity: bool = False

    @model_validator(mode="after")
    def _agreement_fits_the_basis(self) -> Post16Sharing:
        given = [name for name in ("agreement", "agreed_by", "agreed_on")
                 if getattr(self, name) is not None]
        if self.lawful_basis is not LawfulBasis.CONSENT:
            if given:
                raise ValueError(
                    f"{', '.join(given)} applies only when lawful_basis is consent; with "
                    f"{self.lawful_basis.value} the basis alone decides what is shared")
            return self
        missing = [name for name in ("agreement", "agreed_by", "agreed_on")
                   if getattr(self, name) is None]
        if missing:
            raise ValueError(f"with lawful_basis consent, {', '.join(missing)} must be given: "
                             "whether the young person (or parent) agreed, who, and when")
        if self.agreed_by is AgreedBy.PARENT and not self.young_person_lacks_capacity:
            raise ValueError(
                "a parent decides for a young person over compulsory school age only when "
                "the young person lacks capacity to (Mental Capacity Act 2005; Children and "
                "Families Act 2014 s.80): set young_person_lacks_capacity, or record the "
                "young person's own decision")
        if self.agreed_by is AgreedBy.YOUNG_PERSON and self.young_person_lacks_capacity:
            raise ValueError("a young person who lacks capacity to decide cannot be the one "
                             "who decided: record the parent's (or representative's) decision")
        return self
