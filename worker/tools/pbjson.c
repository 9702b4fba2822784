#include "pbjson.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "swarm_medic.pb-c.h"

#define MAX_DEPTH 64        /* nested messages; guards cyclic hand-built ones */

/* ------------------------------------------------------------ leaf values */

static json_t *real_value(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* A float as the double nearest to its shortest decimal form, so that
 * 0.65f prints as 0.65 rather than 0.64999997615814209. */
static json_t *float_value(float f)
{
    if (!isfinite(f))
        return real_value((double)f);
    char buf[40];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f)
            break;
    }
    return json_real(strtod(buf, NULL));
}

/* Length of the valid UTF-8 sequence at s (as jansson checks it: no
 * overlongs, surrogates or code points past U+10FFFF), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;          /* range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static json_t *string_value(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, k;
    while (i < n && (k = utf8_seq(u + i, n - i)) > 0)
        i += k;
    if (i == n)
        return json_stringn(s, n);
    /* Replace each invalid byte with U+FFFD (3 bytes). */
    char *fixed = malloc(3 * n + 1);
    if (!fixed)
        return NULL;
    size_t o = 0;
    for (i = 0; i < n;) {
        k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(fixed + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *v = json_stringn(fixed, o);
    free(fixed);
    return v;
}

static json_t *bytes_value(const ProtobufCBinaryData *b)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = b->data ? b->len : 0;
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b->data[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)b->data[i + 1] << 8;
        if (i + 2 < n)
            v |= b->data[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    json_t *j = json_stringn(out, o);
    free(out);
    return j;
}

static json_t *uint64_value(uint64_t v)
{
    if (v <= (uint64_t)INT64_MAX)
        return json_integer((json_int_t)v);
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return json_string(buf);
}

static json_t *enum_value(const ProtobufCEnumDescriptor *ed, int v)
{
    const ProtobufCEnumValue *ev =
        ed ? protobuf_c_enum_descriptor_get_value(ed, v) : NULL;
    return ev ? json_string(ev->name) : json_integer(v);
}

/* Bytes one element of this type occupies in a protobuf-c struct/array. */
static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* ------------------------------------------------------------- structures */

static sm_status message_value(const ProtobufCMessage *m, int depth,
                               json_t **out);

/* The JSON of one element of field f stored at p. */
static sm_status field_value(const ProtobufCFieldDescriptor *f, const void *p,
                             int depth, json_t **out)
{
    json_t *v = NULL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        v = json_integer(*(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        v = json_integer(*(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        v = json_integer(*(const int64_t *)p); break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        v = uint64_value(*(const uint64_t *)p); break;
    case PROTOBUF_C_TYPE_FLOAT: v = float_value(*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: v = real_value(*(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: v = json_boolean(*(const protobuf_c_boolean *)p); break;
    case PROTOBUF_C_TYPE_ENUM: v = enum_value(f->descriptor, *(const int *)p); break;
    case PROTOBUF_C_TYPE_STRING: v = string_value(*(char *const *)p); break;
    case PROTOBUF_C_TYPE_BYTES: v = bytes_value(p); break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        if (!sub) {
            v = json_null();
            break;
        }
        return message_value(sub, depth + 1, out);
    }
    }
    if (!v)
        return SM_ERR_NOMEM;
    *out = v;
    return SM_OK;
}

/* The JSON of field f of message base: a value, an array, or nothing
 * (*out stays NULL) for an unset oneof member. */
static sm_status member_value(const ProtobufCFieldDescriptor *f,
                              const char *base, int depth, json_t **out)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            return SM_OK;
        return field_value(f, base + f->offset, depth, out);
    }
    size_t n = *(const size_t *)(base + f->quantifier_offset);
    const char *arr = *(const char *const *)(base + f->offset);
    json_t *a = json_array();
    sm_status s = a ? SM_OK : SM_ERR_NOMEM;
    for (size_t i = 0; s == SM_OK && i < n; i++) {
        json_t *e = NULL;
        s = field_value(f, arr + i * elem_size(f->type), depth, &e);
        if (s == SM_OK && json_array_append_new(a, e) != 0)
            s = SM_ERR_NOMEM;
    }
    if (s != SM_OK) {
        json_decref(a);
        return s;
    }
    *out = a;
    return SM_OK;
}

static sm_status message_value(const ProtobufCMessage *m, int depth,
                               json_t **out)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > MAX_DEPTH || !d || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return SM_ERR_INVALID;
    json_t *obj = json_object();
    sm_status s = obj ? SM_OK : SM_ERR_NOMEM;
    for (unsigned i = 0; s == SM_OK && i < d->n_fields; i++) {
        json_t *v = NULL;
        s = member_value(&d->fields[i], (const char *)m, depth, &v);
        if (s == SM_OK && v && json_object_set_new(obj, d->fields[i].name, v) != 0)
            s = SM_ERR_NOMEM;
    }
    if (s != SM_OK) {
        json_decref(obj);
        return s;
    }
    *out = obj;
    return SM_OK;
}

/* -------------------------------------------------------------- precision */

/* Fewest %g digits with which d reads back as itself. */
static int shortest_digits(double d)
{
    char buf[40];
    for (int p = 1; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d)
            return p;
    }
    return 17;
}

static int max_digits(const json_t *v)
{
    int best = 1;
    if (json_is_real(v)) {
        best = shortest_digits(json_real_value(v));
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            int p = max_digits(json_array_get(v, i));
            best = p > best ? p : best;
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e) {
            int p = max_digits(e);
            best = p > best ? p : best;
        }
    }
    return best;
}

/* ------------------------------------------------------------------ public */

sm_status sm_pbjson_value(const ProtobufCMessage *m, json_t **out)
{
    if (!m || !out)
        return SM_ERR_INVALID;
    return message_value(m, 0, out);
}

size_t sm_pbjson_dump_flags(const json_t *root)
{
    return JSON_COMPACT | JSON_PRESERVE_ORDER |
           JSON_REAL_PRECISION(max_digits(root));
}

sm_status sm_pbjson_dump(const ProtobufCMessage *m, char **out)
{
    if (!out)
        return SM_ERR_INVALID;
    json_t *v = NULL;
    sm_status s = sm_pbjson_value(m, &v);
    if (s != SM_OK)
        return s;
    char *text = json_dumps(v, sm_pbjson_dump_flags(v));
    json_decref(v);
    if (!text)
        return SM_ERR_NOMEM;
    *out = text;
    return SM_OK;
}

sm_status sm_pbjson_dump_packed(const ProtobufCMessageDescriptor *desc,
                                const void *data, size_t len, char **out)
{
    if (!desc || !out || (!data && len > 0) ||
        desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
        return SM_ERR_INVALID;
    static const uint8_t empty[1];
    ProtobufCMessage *m =
        protobuf_c_message_unpack(desc, NULL, len, data ? data : empty);
    if (!m)
        return SM_ERR_DECODE;
    sm_status s = sm_pbjson_dump(m, out);
    protobuf_c_message_free_unpacked(m, NULL);
    return s;
}

const ProtobufCMessageDescriptor *sm_pbjson_output_of(const char *subject)
{
    if (subject == NULL)
        return NULL;
    if (strstr(subject, ".bottleneck."))
        return &swarmmedic__v1__bottleneck__descriptor;
    if (strstr(subject, ".failure."))
        return &swarmmedic__v1__failure__descriptor;
    if (strstr(subject, ".prediction."))
        return &swarmmedic__v1__prediction__descriptor;
    if (strstr(subject, ".heal."))
        return &swarmmedic__v1__healing_command__descriptor;
    if (strstr(subject, ".verdict."))
        return &swarmmedic__v1__healing_verdict__descriptor;
    return NULL;
}
