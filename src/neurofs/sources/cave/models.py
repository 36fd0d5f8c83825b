"""Pydantic models of the CAVE API payloads neurofs reads whole (CAVEclient
``caveclient/endpoints.py`` and the services it names).

Unknown fields are ignored; the modelled ones are the ones neurofs shows or depends on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TermsOfService(_Model):
    """A terms-of-service document the user has yet to accept."""

    tos_id: int | None = None
    tos_name: str = ""
    tos_form_url: str | None = None


class User(_Model):
    """middle_auth's ``auth/api/v1/user/cache`` (CAVEconnectome/middle_auth,
    ``neuroglancer_auth/model/user.py``, ``create_cache``): the account the token belongs to,
    its permissions per dataset and the terms of service it has not accepted.

    ``permissions`` is the highest level per dataset (0 none, 1 view, 2 edit) and
    ``permissions_v2`` the permission names; datasets whose terms are not accepted are in
    neither."""

    id: int
    name: str = ""
    email: str = ""
    admin: bool = False
    permissions: dict[str, int] = Field(default_factory=dict)
    permissions_v2: dict[str, list[str]] = Field(default_factory=dict)
    missing_tos: list[TermsOfService] = Field(default_factory=list)

    @property
    def display(self) -> str:
        name = self.name or str(self.id)
        return f"{name} <{self.email}>" if self.email else name

    @property
    def note(self) -> str | None:
        """Terms of service not accepted: every data request is refused until they are."""
        return "terms of service not accepted" if self.missing_tos else None
