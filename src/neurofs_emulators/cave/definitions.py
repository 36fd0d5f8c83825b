"""JSON Schema definitions the schema service serves (``GET /schema/api/v2/type/{name}``).

Verbatim from what EMAnnotationSchemas 5.26.3 with its pinned marshmallow-jsonschema produces
(CAVEconnectome/EMAnnotationSchemas, ``emannotationschemas/views.py``; copies in
tests/fixtures/cave/generated/schema_api_v2_type_*.json), so key order and details such as
``"format": "integer"`` on ``number`` fields match the real service. Generated; do not edit by hand.
"""

from __future__ import annotations

from typing import Any

# In the order the real ``GET /schema/api/v2/type`` lists them.
SCHEMA_NAMES: tuple[str, ...] = (
    "synapse",
    "microns_func_coreg",
    "cell_type_local",
    "cell_type_reference",
    "nucleus_detection",
    "bound_tag",
    "bound_tag_user",
)

DEFINITIONS: dict[str, dict[str, Any]] = {
    "synapse": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "SpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {"position": {"type": "array"}},
                "additionalProperties": False,
            },
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "SynapseSchema": {
                "required": ["ctr_pt", "post_pt", "pre_pt"],
                "type": "object",
                "properties": {
                    "ctr_pt": {
                        "type": "object",
                        "$ref": "#/definitions/SpatialPoint",
                        "description": "central point",
                        "order": 1,
                    },
                    "post_pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "a "
                        "nearby "
                        "point "
                        "located "
                        "in "
                        "the "
                        "postsynaptic "
                        "compartment "
                        "of "
                        "the "
                        "synapse",
                        "order": 2,
                    },
                    "pre_pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "a "
                        "nearby "
                        "point "
                        "located "
                        "in "
                        "the "
                        "presynaptic "
                        "compartment "
                        "of "
                        "the "
                        "synapse",
                        "order": 0,
                    },
                    "size": {
                        "title": "size",
                        "type": ["number", "null"],
                        "format": "float",
                        "description": "size of synapse",
                    },
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/SynapseSchema",
    },
    "microns_func_coreg": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "FunctionalCoregistration": {
                "required": ["func_id", "pt"],
                "type": "object",
                "properties": {
                    "func_id": {
                        "title": "func_id",
                        "type": "number",
                        "format": "integer",
                        "description": "functional cell ID",
                    },
                    "pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "location of cell body of functional cell",
                    },
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/FunctionalCoregistration",
    },
    "cell_type_local": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "CellTypeLocal": {
                "required": ["cell_type", "classification_system", "pt"],
                "type": "object",
                "properties": {
                    "cell_type": {
                        "title": "cell_type",
                        "type": "string",
                        "description": "Cell type name",
                    },
                    "classification_system": {
                        "title": "classification_system",
                        "type": "string",
                        "description": "Classification system followed",
                    },
                    "pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "Location associated with classification",
                    },
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/CellTypeLocal",
    },
    "cell_type_reference": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "CellTypeReference": {
                "required": ["cell_type", "classification_system", "target_id"],
                "type": "object",
                "properties": {
                    "cell_type": {
                        "title": "cell_type",
                        "type": "string",
                        "description": "Cell type name",
                    },
                    "classification_system": {
                        "title": "classification_system",
                        "type": "string",
                        "description": "Classification system followed",
                    },
                    "target_id": {"type": "integer"},
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            }
        },
        "$ref": "#/definitions/CellTypeReference",
    },
    "nucleus_detection": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "SpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {"position": {"type": "array"}},
                "additionalProperties": False,
            },
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "NucleusDetection": {
                "required": ["pt"],
                "type": "object",
                "properties": {
                    "bb_end": {
                        "type": "object",
                        "$ref": "#/definitions/SpatialPoint",
                        "description": "high corner of the bounding box",
                    },
                    "bb_start": {
                        "type": "object",
                        "$ref": "#/definitions/SpatialPoint",
                        "description": "low corner of the bounding box",
                    },
                    "pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "the "
                        "centroid "
                        "of "
                        "the "
                        "nucleus, "
                        "to "
                        "be "
                        "linked "
                        "to "
                        "the "
                        "segmentation",
                    },
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                    "volume": {
                        "title": "volume",
                        "type": ["number", "null"],
                        "format": "float",
                        "description": "the volume of the nucleus detected in um^3",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/NucleusDetection",
    },
    "bound_tag": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "BoundTagAnnotation": {
                "required": ["pt", "tag"],
                "type": "object",
                "properties": {
                    "pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "Location associated with the tag",
                    },
                    "tag": {"title": "tag", "type": "string", "description": "Arbitrary text tag"},
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/BoundTagAnnotation",
    },
    "bound_tag_user": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {
            "BoundSpatialPoint": {
                "required": ["position"],
                "type": "object",
                "properties": {
                    "position": {"type": "array"},
                    "root_id": {"type": "integer"},
                    "supervoxel_id": {"type": "integer"},
                },
                "additionalProperties": False,
            },
            "BoundTagAnnotationUser": {
                "required": ["pt", "tag", "user_id"],
                "type": "object",
                "properties": {
                    "pt": {
                        "type": "object",
                        "$ref": "#/definitions/BoundSpatialPoint",
                        "description": "Location associated with the tag",
                    },
                    "tag": {"title": "tag", "type": "string", "description": "Arbitrary text tag"},
                    "user_id": {
                        "title": "user_id",
                        "type": "number",
                        "format": "integer",
                        "description": "User who created the tag, auto-populated from auth.",
                    },
                    "valid": {
                        "title": "valid",
                        "type": ["boolean", "null"],
                        "default": False,
                        "description": "is this annotation valid",
                    },
                },
                "additionalProperties": True,
            },
        },
        "$ref": "#/definitions/BoundTagAnnotationUser",
    },
}
