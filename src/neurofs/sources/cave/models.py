"""Pydantic models of the CAVE API payloads neurofs reads whole (CAVEclient
``caveclient/endpoints.py`` and the services it names).

Unknown fields are ignored; the modelled ones are the ones neurofs shows or depends on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
)
from typing_extensions import TypedDict


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


# ---------------------------------------------------------------- global server


class AlignedVolume(_Model):
    name: str | None = None
    image_source: str | None = None


class DatastackInfo(_Model):
    """``info/api/v2/datastack/full/{datastack}`` (the info service,
    AnnotationFrameworkInfoService): where the datastack's annotation and materialization
    services are (``local_server``) and the aligned volume its tables are kept under.
    ``info.json`` shows the answer whole."""

    local_server: str
    aligned_volume: AlignedVolume | None = None
    description: str | None = None
    viewer_site: str | None = None
    segmentation_source: str | None = None
    synapse_table: str | None = None
    soma_table: str | None = None
    viewer_resolution_x: float | None = None
    viewer_resolution_y: float | None = None
    viewer_resolution_z: float | None = None


class SchemaProperty(_Model):
    """One property of an annotation schema: a point (``$ref`` to a point definition, placed
    by ``order``) or a scalar column (``type``, ``enum``)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    ref: str = Field(default="", alias="$ref")
    type: str | list[str] = "string"
    # The schema service writes points' order as whole numbers; any finite number sorts.
    order: Annotated[float, Strict(), AllowInfNan(False)] = 1000
    enum: list[Any] | None = None


class SchemaObject(_Model):
    """A JSON Schema object definition: its properties and the ones required."""

    required: list[str] = Field(default_factory=list)
    properties: dict[str, SchemaProperty] = Field(default_factory=dict)


class TableSchema(SchemaObject):
    """``schema/api/v2/type/{schema_type}`` (CAVEconnectome/EMAnnotationSchemas, marshmallow
    JSON Schema): the annotation's own definition is ``definitions[$ref]``, else the schema's
    top level. ``schema.json`` shows the answer whole."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    ref: str = Field(default="", alias="$ref")
    definitions: dict[str, SchemaObject] = Field(default_factory=dict)

    @property
    def root(self) -> SchemaObject:
        return self.definitions.get(self.ref.rsplit("/", 1)[-1], self)


def _state_id(answer: str | int) -> str:
    """The id at the end of the URL the state server answers (or the id alone)."""
    text = str(answer).strip().strip('"').rstrip("/").rsplit("/", 1)[-1]
    if not text.isdigit():
        raise ValueError(f"not a state id: {text[:100]!r}")
    return text


# ``nglstate/api/v1/post`` (NeuroglancerJsonServer): the new state's URL, as a JSON
# string, whose last segment is its id.
StateId = Annotated[StrictStr | StrictInt, AfterValidator(_state_id)]


# A neuroglancer deployment's ``version.json``: its build information (tag, commit URL,
# build time); only whether it is empty matters (``neurofs.neuroglancer.kind_of``).
ViewerVersion = dict[str, Any] | list[Any] | str


# ---------------------------------------------------------------- local server


class TableMetadata(_Model):
    """``annotation/api/v2/aligned_volume/{volume}/table/{table}`` (CAVEconnectome/
    AnnotationEngine, DynamicAnnotationDB ``get_table_metadata``). ``metadata.json`` shows the
    answer whole; the editable keys are the ones a PUT of the table takes."""

    schema_type: str
    table_name: str | None = None
    description: str | None = None
    notice_text: str | None = None
    read_permission: str | None = None
    write_permission: str | None = None
    flat_segmentation_source: str | None = None
    voxel_resolution_x: float | None = None
    voxel_resolution_y: float | None = None
    voxel_resolution_z: float | None = None


# A table's row count (``table/{table}/count``), a materialized version's number
# (``materialize/api/v3/datastack/{ds}/versions``).
Count = Annotated[int, Field(ge=0, strict=True)]


class QueryCount(_Model):
    """The one record of a materialization query asked with ``count=true``."""

    count: Count


Version = Annotated[int, Field(ge=0, lt=2**31, strict=True)]


class AnnotationRow(TypedDict):
    """One row of a table, flat (the materialization query's JSON records, positions split
    into ``<point>_position_x/_y/_z``; or the annotation engine's rows). Only the id is
    structured alike in every table; the other columns follow the table's schema and are
    read with it (``table_format``). Rows stay plain dictionaries: a table may have millions."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    id: Annotated[int, Strict()]


class VersionMetadata(_Model):
    """``materialize/api/v3/datastack/{ds}/version/{v}``: when a materialized version was made
    and until when it is kept. The mount does not read it yet: a version's directory shows
    no time of its own."""

    time_stamp: datetime
    expires_on: datetime | None = None


# A ChunkedGraph node id (supervoxel or root): an unsigned 64-bit integer.
NodeId = Annotated[int, Field(ge=0, lt=2**64, strict=True)]


class IsLatest(_Model):
    """``segmentation/api/v1/table/{t}/is_latest_roots``: whether each root asked is current."""

    is_latest: list[StrictBool]


class LineageNode(_Model):
    """A root in a lineage graph: when it was made, by which edit (none for the first)."""

    id: NodeId
    timestamp: float | None = None
    operation_id: int | None = None


class LineageLink(_Model):
    """An edit's edge in a lineage graph: ``source`` was replaced by ``target``."""

    source: NodeId
    target: NodeId


class LineageGraph(_Model):
    """``segmentation/api/v1/table/{t}/lineage_graph_multiple``: networkx's ``node_link_data``
    of the roots an object has had (``lineage.json`` shows the answer whole)."""

    directed: bool = True
    nodes: list[LineageNode]
    links: list[LineageLink]

    def latest(self, root: int) -> list[int]:
        """The current roots ``root`` became: the roots without successors reached from it
        along the graph's links (itself when it has none), as caveclient's
        ``get_latest_roots`` finds them."""
        successors: dict[int, list[int]] = {}
        for link in self.links:
            successors.setdefault(link.source, []).append(link.target)
        found: set[int] = set()
        seen = {root}
        todo = [root]
        while todo:
            node = todo.pop()
            after = successors.get(node, [])
            if not after:
                found.add(node)
            for new in after:
                if new not in seen:
                    seen.add(new)
                    todo.append(new)
        return sorted(found)
