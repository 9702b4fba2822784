/*
 * pbjson.h - any protobuf-c message as JSON, driven only by its
 * descriptors (ProtobufCMessageDescriptor and field descriptors): there is
 * no per-message printer, so a field added to schema/swarm_medic.proto
 * shows up without code changes. For replays printed as JSON lines, and
 * for humans reading a recording.
 *
 * Mapping (built with jansson, dumped JSON_COMPACT | JSON_PRESERVE_ORDER):
 *   - an object per message; keys are the .proto field names (snake_case,
 *     not the lowerCamelCase of the protobuf JSON mapping, which protobuf-c
 *     descriptors do not carry), in descriptor order;
 *   - every field is emitted, proto3 defaults included (0, false, "", [],
 *     the zero enum's name), so every message of a type has the same keys.
 *     Exceptions: an unset message field is null; among oneof members only
 *     the set one appears;
 *   - int32/sint32/sfixed32/uint32/fixed32/int64/sint64/sfixed64 and
 *     uint64/fixed64 up to 2^63-1 are JSON integers; a uint64/fixed64 at or
 *     over 2^63 (not representable by jansson) is a decimal string;
 *     beware that JavaScript readers lose precision past 2^53;
 *   - bool is true/false; string is a JSON string (invalid UTF-8 bytes are
 *     replaced by U+FFFD); bytes is standard base64 with '=' padding;
 *   - enum is its value's name ("SEVERITY_HIGH"), or its number when the
 *     descriptor does not define it;
 *   - float and double are JSON reals ("2.0", never "2"); NaN and the
 *     infinities, which JSON lacks, are the strings "NaN", "Infinity",
 *     "-Infinity";
 *   - repeated fields are arrays; map fields (repeated entry messages) are
 *     arrays of {"key":..,"value":..}.
 *
 * Determinism: the text is a function of the message's field values only.
 * Reals are printed with the fewest significant digits (1..17) with which
 * every real in the document reads back as the same double, chosen once
 * per document (sm_pbjson_dump_flags) since jansson has one precision per
 * dump: usually 0.65 prints as 0.65, and never as an approximation.
 *
 * Thread safety: reentrant; no shared state.
 */
#ifndef SM_PBJSON_H
#define SM_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "status.h"

/* Builds the JSON value of message m (see the mapping above).
 * Output: *out (a new reference the caller json_decref's), only on success.
 * Errors: SM_ERR_INVALID (NULL argument or not a message descriptor),
 * SM_ERR_NOMEM. */
sm_status sm_pbjson_value(const ProtobufCMessage *m, json_t **out);

/* jansson flags to dump `root` (or a larger document holding values from
 * sm_pbjson_value) deterministically: JSON_COMPACT | JSON_PRESERVE_ORDER |
 * JSON_REAL_PRECISION(p), p the fewest digits that round-trip all its reals. */
size_t sm_pbjson_dump_flags(const json_t *root);

/* Formats m as one line of compact JSON (no newline).
 * Output: *out, a malloc'd NUL-terminated string the caller frees, only on
 * success. Errors: as sm_pbjson_value. */
sm_status sm_pbjson_dump(const ProtobufCMessage *m, char **out);

/* Unpacks len bytes of `desc`'s message and formats it as sm_pbjson_dump.
 * Errors: SM_ERR_INVALID (NULL desc or out, or data NULL with len > 0),
 * SM_ERR_DECODE (not a valid encoding of that message), SM_ERR_NOMEM. */
sm_status sm_pbjson_dump_packed(const ProtobufCMessageDescriptor *desc,
                                const void *data, size_t len, char **out);

/* The message of an output subject medic.<swarm>.<kind>.<type>:
 * Bottleneck, Failure or Prediction; NULL for any other subject. */
const ProtobufCMessageDescriptor *sm_pbjson_output_of(const char *subject);

#endif
