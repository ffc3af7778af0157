"""The OpenAPI 3.1 document of ``/api/v1``, generated at request time.

Each template's parameters are its own JSON Schema (``Template.schema()``, from the
parameter model) placed in ``components.schemas``; an order line is a ``oneOf`` over the
templates, told apart by ``template``. Lengths that accept units (``"32in"``) are widened
to "a number in mm, or a string with a unit". Nothing here repeats a template's fields.
Another blueprint documents its own endpoints with :func:`add_to_openapi`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import parametric
from parametric import FORMATS
from parametric.fdm.vendors import home_printers
from parametric.materials import materials

from .models import ITEM_STATES

ORDER_STATUSES = ("queued", "rendering", "ready", "failed")
UNIT_STRING = {"type": "string", "minLength": 1, "maxLength": 64,
               "description": "a length or angle with its unit, e.g. 32in, 80cm, 3/4\", 12.5 mm, 15deg"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def params_schema(template: parametric.Template) -> dict[str, Any]:
    """The template's parameter schema, with unit-accepting fields also taking a string."""
    schema = copy.deepcopy(template.schema())
    for field in schema.get("properties", {}).values():
        if not field.get("accepts_units"):
            continue
        if "anyOf" in field:
            field["anyOf"].append(dict(UNIT_STRING))
            continue
        number = {key: field.pop(key) for key in ("type", "minimum", "maximum", "exclusiveMinimum",
                                                   "exclusiveMaximum", "multipleOf") if key in field}
        field["anyOf"] = [number, dict(UNIT_STRING)]
    return schema


def item_schema(template: parametric.Template, max_quantity: int) -> dict[str, Any]:
    """One order line (or a quote request) for ``template``."""
    properties: dict[str, Any] = {
        "template": {"type": "string", "const": template.id},
        "params": _ref(f"{template.id}_params"),
        "quantity": {"type": "integer", "minimum": 1, "maximum": max_quantity, "default": 1},
        "material": {"type": "string", "enum": list(template.materials), "default": template.default_material},
    }
    if template.presets:
        properties["preset"] = {"type": "string", "enum": list(template.presets),
                                "description": "start from a preset; params override its values"}
    return {"type": "object", "title": f"{template.name} line", "additionalProperties": False,
            "required": ["template"], "properties": properties}


def _errors(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Errors")}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NULLABLE_STRING = {"type": ["string", "null"]}


def _static_schemas(config: Mapping[str, Any]) -> dict[str, Any]:
    max_items, max_quantity = int(config["MAX_ITEMS_PER_ORDER"]), int(config["MAX_QUANTITY"])
    file_ = {"type": "object", "required": ["format", "part", "filename", "bytes", "sha256", "url"],
             "properties": {"format": {"type": "string", "enum": list(FORMATS)}, "part": {"type": "string"},
                            "filename": {"type": "string"},
                            "download_name": {"type": "string", "description": "the name it is saved under: "
                                              "order, item, product, part and copies "
                                              "(order-1a2b3c4d_item-1_wall_shelf_bracket_x4.stl)"},
                            "bytes": {"type": "integer"},
                            "sha256": {"type": "string"}, "url": {"type": "string"}}}
    return {
        "Errors": {
            "type": "object", "required": ["errors"],
            "description": "Every problem with the request; field is a path into the body "
                           "(items[0].params.width), a header, a parameter, or empty for the request as a whole.",
            "properties": {"errors": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
        "Customer": {"type": "object", "additionalProperties": False, "required": ["name", "email"],
                     "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                                    "email": {"type": "string", "format": "email", "maxLength": 254}}},
        "OrderRequest": {"type": "object", "additionalProperties": False, "required": ["customer", "items"],
                         "properties": {"customer": _ref("Customer"),
                                        "items": {"type": "array", "minItems": 1, "maxItems": max_items,
                                                  "items": _ref("Item")}}},
        "TemplateSummary": {
            "type": "object",
            "required": ["id", "version", "name", "family", "process", "materials", "default_material", "presets"],
            "properties": {"id": {"type": "string"}, "version": {"type": "string"}, "name": {"type": "string"},
                           "family": {"type": "string"}, "description": {"type": "string"},
                           "process": {"type": "array", "items": {"type": "string"}},
                           "materials": {"type": "array", "items": {"type": "string", "enum": list(materials())}},
                           "default_material": {"type": "string"},
                           "presets": {"type": "array", "items": {"type": "string"}},
                           "links": {"type": "object", "properties": {"self": {"type": "string"}}}}},
        "TemplateDetail": {"allOf": [_ref("TemplateSummary"), {
            "type": "object", "required": ["schema", "units", "preset_params"],
            "properties": {"schema": {"type": "object", "description": "JSON Schema of the parameters"},
                           "units": {"type": "object", "additionalProperties": {"type": "string"}},
                           "preset_params": {"type": "object"}}}]},
        "Quote": {
            "type": "object", "required": ["template", "version", "params", "material", "quantity", "unit", "price",
                                           "lead_time"],
            "properties": {
                "template": {"type": "string"}, "version": {"type": "string"}, "params": {"type": "object"},
                "figures": {"type": "string", "enum": ["estimate", "final"],
                            "description": "final: sliced (or CAM, or volume rate), what checkout and the order show; "
                                           "estimate: from the printers' past slices while the slice is made"},
                "estimate": {"type": "object", "required": ["error_pct", "low", "high"],
                             "properties": {"error_pct": {"type": "number", "minimum": 0},
                                            "low": {"type": "number"}, "high": {"type": "number"},
                                            "slices": {"type": "integer"}, "note": {"type": "string"}}},
                "quantity": {"type": "integer", "minimum": 1, "maximum": max_quantity},
                "material": {"type": "object", "required": ["id", "process", "cost_per_kg"]},
                "unit": {"type": "object", "required": ["mass_g", "volume_mm3", "machine_hours"],
                         "properties": {"mass_g": {"type": "number"}, "volume_mm3": {"type": "number"},
                                        "machine_hours": {"type": "number"},
                                        "bbox_mm": {"type": "array", "items": {"type": "number"}}}},
                "price": {"type": "object", "required": ["currency", "material", "machine", "setup", "unit", "total"],
                          "properties": {key: {"type": "number", "minimum": 0}
                                         for key in ("material", "machine", "setup", "unit", "total")}
                          | {"currency": {"type": "string"}}},
                "lead_time": {"type": "object",
                              "required": ["days", "ships_by", "production_days", "queue_depth", "files_ready_in_s"],
                              "properties": {"days": {"type": "integer", "minimum": 0},
                                             "ships_by": {"type": "string", "format": "date"},
                                             "production_days": {"type": "integer"},
                                             "queue_depth": {"type": "integer", "minimum": 0},
                                             "files_ready_in_s": {"type": "number", "minimum": 0},
                                             "average_render_s": {"type": "number"}}},
                "parts": {"type": "array", "description": "how each part is made and priced", "items": {
                    "type": "object",
                    "required": ["name", "process", "material", "copies", "unit_mass_g", "unit_machine_hours",
                                 "estimate"],
                    "properties": {
                        "name": {"type": "string"}, "process": {"type": "string", "enum": ["fdm", "cnc"]},
                        "material": {"type": "string"}, "copies": {"type": "integer", "minimum": 1},
                        "unit_mass_g": {"type": "number", "minimum": 0},
                        "unit_machine_hours": {"type": "number", "minimum": 0},
                        "unit_sheet_m2": {"type": "number", "minimum": 0, "description":
                                          "sheet parts: the sheet one copy takes (footprint / nesting utilisation)"},
                        "estimate": {"type": "object", "required": ["source", "machine_time_s"], "description":
                                     "PrusaSlicer's estimates for the printer the part would go to (print_time_s, "
                                     "filament_mm, filament_cm3, filament_g, cost), CAM's for the router it would "
                                     "go to (machining_time_s per copy, size_mm), or the volume rate and why; "
                                     "machine_time_s is the time of all the line's copies, as the job shows it",
                                     "properties": {"source": {"type": "string",
                                                               "enum": ["prusaslicer", "cam", "volume rate"]},
                                                    "machine": {"type": "string"}, "reason": {"type": "string"},
                                                    "print_time_s": {"type": "number"},
                                                    "machining_time_s": {"type": "number"},
                                                    "machine_time_s": {"type": "number"},
                                                    "filament_g": {"type": "number"}}}}}}}},
        "Production": {
            "type": "object", "required": ["part", "state", "label", "process", "progress", "estimated_time_s"],
            "properties": {"part": {"type": "string"}, "state": {"type": "string"}, "label": {"type": "string"},
                           "process": {"type": "string"}, "progress": {"type": "number", "minimum": 0,
                                                                       "maximum": 100},
                           "estimated_time_s": {"type": ["number", "null"],
                                                "description": "the job's machine time (its slicer's or CAM's) "
                                                               "once it has one; before, the time the part was "
                                                               "quoted at, when one job makes it"},
                           "made_again": {"type": "boolean",
                                          "description": "the part is made again: it did not come out right"},
                           "replaced": {"type": "boolean",
                                        "description": "the part did not come out right and is being made again "
                                                       "by another entry (made_again)"}}},
        "File": file_,
        "OrderItemState": {
            "type": "object",
            "required": ["position", "template", "version", "params", "quantity", "material", "state", "reason",
                         "attempts", "files", "manifest"],
            "properties": {"position": {"type": "integer", "minimum": 1}, "template": {"type": "string"},
                           "version": {"type": "string"}, "params": {"type": "object"},
                           "quantity": {"type": "integer"}, "material": {"type": "string"},
                           "state": {"type": "string", "enum": list(ITEM_STATES)},
                           "reason": {**NULLABLE_STRING, "description": "why it failed (the kernel's reason)"},
                           "attempts": {"type": "integer", "minimum": 0},
                           "files": {"type": "array", "items": _ref("File")},
                           "manifest": {**NULLABLE_STRING, "description": "URL of manifest.json once ready"},
                           "archive": {**NULLABLE_STRING, "description": "URL of the item's \"download all\" zip "
                                                                           "once ready"},
                           "plates": {**NULLABLE_STRING, "description": "URL of print-ready plates of its printed "
                                                                          "parts (add ?printer=), for the customer"},
                           "plate_materials": {"type": "array", "items": {
                               "type": "object", "required": ["id", "name"],
                               "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
                                               "description": "the materials of the parts those plates hold (their "
                                                              "temperatures are in the plates' projects)"},
                           "production": {"type": "array", "items": _ref("Production"),
                                          "description": "the manufacturing jobs of the item, once planned"}}},
        "OrderTotalLine": {
            "type": "object", "required": ["position", "currency", "material", "machine", "setup", "setup_processes",
                                           "total"],
            "properties": {"position": {"type": "integer", "minimum": 1}, "currency": {"type": "string"},
                           **{key: {"type": "number", "minimum": 0} for key in ("material", "machine", "setup",
                                                                                 "total")},
                           "setup_processes": {"type": "array", "items": {"type": "string"},
                                               "description": "the processes whose setup fee is charged on this "
                                                             "line (the first line each process makes)"}}},
        "OrderTotal": {
            "type": "object", "required": ["state", "currency", "total", "lines"],
            "description": "the order's price, the figure the confirmation and the tracking page show: each line's "
                           "quote with each process's setup fee once per order. pending: a line has no price yet "
                           "(missing says which and why; ask again later), never a partial sum",
            "properties": {"state": {"type": "string", "enum": ["final", "pending"]},
                           "currency": {"type": ["string", "null"]},
                           "total": {"type": ["number", "null"], "minimum": 0},
                           **{key: {"type": "number", "minimum": 0} for key in ("material", "machine", "setup")},
                           "lines": {"type": "array", "items": _ref("OrderTotalLine"),
                                     "description": "the priced lines' shares of the total"},
                           "missing": {"type": "array", "items": {
                               "type": "object", "required": ["position", "reason"],
                               "properties": {"position": {"type": "integer", "minimum": 1},
                                              "reason": {"type": "string"}}}}}},
        "Order": {
            "type": "object", "required": ["id", "status", "created_at", "customer", "links", "items", "total"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": list(ORDER_STATUSES)},
                           "created_at": {"type": "string", "format": "date-time"},
                           "customer": {"type": "object", "required": ["name", "email"]},
                           "token": {"type": "string", "description": "the secret that reads the order; "
                                                                      "given once, with the order"},
                           "links": {"type": "object", "required": ["self"]},
                           "items": {"type": "array", "items": _ref("OrderItemState")},
                           "total": _ref("OrderTotal"),
                           "snapped": {"type": "array", "items": {"type": "object"},
                                       "description": "per line, the values moved to their fields' steps "
                                                      "({name: {given, used}}; lengths in inches or feet are kept "
                                                      "exact); only in the answer to the POST"}}},
        "OrderPage": {"type": "object", "required": ["orders", "total", "limit", "offset"],
                      "properties": {"orders": {"type": "array", "items": _ref("Order")},
                                     "total": {"type": "integer"}, "limit": {"type": "integer"},
                                     "offset": {"type": "integer"}}},
        "Preparing": {"type": "object", "required": ["state", "retry_after", "params"],
                      "properties": {"state": {"type": "string", "enum": ["preparing"]},
                                     "estimate_unavailable": {"type": "string",
                                                              "description": "why no instant estimate is given"},
                                     "retry_after": {"type": "integer", "minimum": 1},
                                     "params": {"type": "object", "description": "the values used (snapped to "
                                                                                 "their fields' steps)"},
                                     "snapped": {"type": "object"}}},
        "QueueState": {"type": "object", "required": ["states", "depth", "average_render_s", "expired_leases"],
                       "properties": {"states": {"type": "object",
                                                 "properties": {s: {"type": "integer"} for s in ITEM_STATES}},
                                      "depth": {"type": "integer"}, "average_render_s": {"type": "number"},
                                      "expired_leases": {"type": "integer"}}},
    }


def _paths() -> dict[str, Any]:
    token_header = {"name": "X-Order-Token", "in": "header", "required": False, "schema": {"type": "string"},
                    "description": "the order's token (or ?token=)"}
    token_query = {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}}
    order_id = {"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}
    no_token = _errors("no token sent")
    not_found = _errors("no such order, or a wrong token")
    body_errors = {"400": _errors("the body is not JSON"), "413": _errors("the body is too large"),
                   "415": _errors("the body is not declared JSON (Content-Type: application/json)"),
                   "422": _errors("invalid input (control characters included): every problem listed")}
    staff = [{"staff": []}]
    unauthorized = _errors("staff login required")
    retry_after = {"Retry-After": {"schema": {"type": "integer", "minimum": 1},
                                   "description": "seconds until the client may try again"}}
    login_locked = {**_errors("too many wrong staff passwords from this client or for this account: locked out for "
                              "a while"), "headers": retry_after}
    staff_errors = {"401": unauthorized, "403": _errors("sent from another site's page (Origin or Referer)"),
                    "429": login_locked}
    return {
        "/api/v1/templates": {"get": {
            "operationId": "listTemplates", "summary": "Every template: id, version, process, materials, presets",
            "responses": {"200": _json({"type": "object", "required": ["templates"], "properties": {
                "templates": {"type": "array", "items": _ref("TemplateSummary")}}})}}},
        "/api/v1/templates/{template_id}": {"get": {
            "operationId": "showTemplate", "summary": "A template's parameter schema, units and presets",
            "parameters": [{"name": "template_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ref("TemplateDetail")), "404": _errors("no such template")}}},
        "/api/v1/quotes": {"post": {
            "operationId": "createQuote", "summary": "Price and lead time of one line before ordering",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Item")}}},
            "responses": {"200": _json(_ref("Quote")),
                          "202": {"content": {"application/json": {"schema": {"oneOf": [
                                      _ref("Preparing"),
                                      {"allOf": [_ref("Quote"), {"type": "object", "required": ["state", "estimate"],
                                                                 "properties": {"state": {"enum": ["estimate"]}}}]}]}}},
                                  "description": "a new configuration: a worker measures it (meanwhile, for printed "
                                                 "parts, an estimate from the printers' past slices); send the same "
                                                 "request again after Retry-After seconds",
                                  "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                          **body_errors,
                          "429": {**_errors("too many new configurations from this client; retry after "
                                            "Retry-After seconds"),
                                  "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}}},
        "/api/v1/orders": {"post": {
            "operationId": "createOrder", "summary": "Place an order; its files are generated in the background",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                            "description": "a retried request with the same key from the same client (its "
                                           "address) within IDEMPOTENCY_HOURS returns the same order"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OrderRequest")}}},
            "responses": {"201": {**_json(_ref("Order"), "the order (also for a replayed Idempotency-Key)"),
                                  "headers": {"Location": {"schema": {"type": "string"}}}}, **body_errors,
                          "409": _errors("the Idempotency-Key was used by another client"),
                          "429": {**_errors("too many orders from this client for now"),
                                  "headers": retry_after}}}},
        "/api/v1/orders/{order_id}": {"get": {
            "operationId": "showOrder", "summary": "An order's items: state, failure reason, file links",
            "parameters": [order_id, token_header, token_query],
            "responses": {"200": _json(_ref("Order")), "403": no_token, "404": not_found}}},
        "/api/v1/orders/{order_id}/items/{position}/files/{filename}": {"get": {
            "operationId": "downloadFile", "summary": "A generated file (STEP, STL, 3MF, SVG drawing) or manifest.json",
            "parameters": [order_id,
                           {"name": "position", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}},
                           {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}},
                           token_header, token_query],
            "responses": {"200": {"description": "the file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "403": no_token, "404": _errors("no such order, token or file")}}},
        "/api/v1/orders/{order_id}/items/{position}/archive": {"get": {
            "operationId": "downloadArchive",
            "summary": "Every file of an item and its manifest in one zip, named by order, item, product, part and "
                       "copies",
            "parameters": [order_id, {"name": "position", "in": "path", "required": True,
                                      "schema": {"type": "integer", "minimum": 1}}, token_header, token_query],
            "responses": {"200": {"description": "the zip, as an attachment", "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                "403": no_token, "404": _errors("no such order or token, or the item has no files yet"),
                "503": _errors("a fault of ours: the archive could not be written (disk full or read-only), or "
                               "a file no longer matches its record; try again later")}}},
        "/api/v1/orders/{order_id}/items/{position}/plates": {"get": {
            "operationId": "downloadPlates",
            "summary": "Print-ready plates of an item's printed parts for the customer's own printer: one PrusaSlicer "
                       "project 3MF per plate (its embedded configuration is the printer's PrusaSlicer preset with "
                       "the material's temperatures), a zip when there are several",
            "parameters": [order_id, {"name": "position", "in": "path", "required": True,
                                      "schema": {"type": "integer", "minimum": 1}},
                           {"name": "printer", "in": "query", "required": True,
                            "schema": {"type": "string", "enum": sorted(home_printers())},
                            "description": "the customer's printer (the tracking page lists them by name)"},
                           token_header, token_query],
            "responses": {"200": {"description": "the plate (3MF) or plates (zip), as an attachment, once a worker "
                                                 "has made them (ETag: send If-None-Match for a 304)", "content": {
                "model/3mf": {"schema": {"type": "string", "format": "binary"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                "202": {"description": "a worker is slicing the plates (the request never does): send the same "
                                       "request again after Retry-After seconds; asking again queues nothing more",
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["state", "retry_after"],
                            "properties": {"state": {"type": "string", "enum": ["preparing"]},
                                           "retry_after": {"type": "integer", "minimum": 1}}}}},
                        "headers": retry_after},
                "403": no_token, "404": _errors("no such order or token, or the item has no printed parts ready"),
                "422": _errors("a printer we do not know (the message lists those we do), or parts that do not "
                               "fit on it (field printer; the same answer until the order's files change)"),
                "429": {**_errors("too many new builds from this client; retry after Retry-After seconds"),
                        "headers": retry_after},
                "503": {**_errors("a fault of ours (disk full or read-only, a file that no longer matches its "
                                  "record, or a worker's attempt that failed and is being made again); try again "
                                  "after Retry-After seconds"), "headers": retry_after}}}},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document",
            "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]})}}},
        "/api/v1/staff/orders": {"get": {
            "operationId": "staffListOrders", "summary": "Every order, newest first", "security": staff,
            "parameters": [
                {"name": "state", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": list(ITEM_STATES)}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}],
            "responses": {"200": _json(_ref("OrderPage")), **staff_errors,
                          "422": _errors("bad query parameters")}}},
        "/api/v1/staff/orders/{order_id}": {"get": {
            "operationId": "staffShowOrder", "summary": "One order, without its token", "security": staff,
            "parameters": [order_id],
            "responses": {"200": _json(_ref("Order")), **staff_errors, "404": _errors("no such order")}}},
        "/api/v1/staff/orders/{order_id}/items/{position}/files/{filename}": {"get": {
            "operationId": "staffDownloadFile", "summary": "A generated file of any order", "security": staff,
            "parameters": [order_id,
                           {"name": "position", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1}},
                           {"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file", "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                **staff_errors, "404": _errors("no such order or file")}}},
        "/api/v1/staff/orders/{order_id}/items/{position}/archive": {"get": {
            "operationId": "staffDownloadArchive", "summary": "Every file of an item of any order in one zip",
            "security": staff,
            "parameters": [order_id, {"name": "position", "in": "path", "required": True,
                                      "schema": {"type": "integer", "minimum": 1}}],
            "responses": {"200": {"description": "the zip, as an attachment", "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                **staff_errors, "404": _errors("no such order, or the item has no files yet")}}},
        "/api/v1/staff/items/{item_id}/retry": {"post": {
            "operationId": "staffRetryItem", "summary": "Queue a failed item again", "security": staff,
            "parameters": [{"name": "item_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}],
            "responses": {"200": _json(_ref("OrderItemState")), **staff_errors,
                          "415": _errors("a body that is not declared JSON"),
                          "404": _errors("no such item"), "409": _errors("the item has not failed")}}},
        "/api/v1/staff/queue": {"get": {
            "operationId": "staffQueue", "summary": "Items per state, render time, expired leases", "security": staff,
            "responses": {"200": _json(_ref("QueueState")), **staff_errors}}},
    }


def add_to_openapi(app: Any, paths: Mapping[str, Any], schemas: Mapping[str, Any] | None = None) -> None:
    """Document another blueprint's endpoints (OpenAPI path items, and component schemas they refer to)."""
    extra = app.extensions.setdefault("openapi", {"paths": {}, "schemas": {}})
    extra["paths"].update(paths)
    extra["schemas"].update(schemas or {})


def openapi_document(config: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole document, from the registered templates, the configured limits and ``add_to_openapi``."""
    templates = parametric.templates()
    max_quantity = int(config["MAX_QUANTITY"])
    schemas: dict[str, Any] = {}
    for template in templates:
        schemas[f"{template.id}_params"] = params_schema(template)
        schemas[f"{template.id}_item"] = item_schema(template, max_quantity)
    schemas["Item"] = {
        "oneOf": [_ref(f"{t.id}_item") for t in templates],
        "discriminator": {"propertyName": "template",
                          "mapping": {t.id: f"#/components/schemas/{t.id}_item" for t in templates}}}
    schemas.update(_static_schemas(config))
    schemas.update((extra or {}).get("schemas", {}))
    paths = {**_paths(), **(extra or {}).get("paths", {})}
    for item in paths.values():  # every input is cleaned at the edge (web.inputs): a control character is a 422
        for operation in item.values():
            operation["responses"].setdefault("422", _errors("an input holds a control character or is not valid"))
    return {
        "openapi": "3.1.0",
        "info": {"title": "parametric", "version": "1",
                 "description": "Parametric CAD templates to manufacturing files: quotes, orders, generated files. "
                                "Errors are {\"errors\": [{\"field\", \"message\"}]}."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"staff": {"type": "http", "scheme": "basic"}}},
    }
