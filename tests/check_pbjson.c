/* Protobuf messages as JSON, from descriptors only: the exact text a
 * replay prints for a Bottleneck, and every field type on a hand-built
 * descriptor. */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "swarm_medic.pb-c.h"
#include "runner.h"

/* ------------------------------------------------------------- Bottleneck */

typedef struct bn_parts {
    Swarmmedic__V1__Bottleneck b;
    Swarmmedic__V1__Decision d;
    Swarmmedic__V1__Evidence e;
    Swarmmedic__V1__Metric m1, m2;
    Swarmmedic__V1__Metric *ms[2];
    char *affected[1];
    char *recs[2];
} bn_parts;

static void make_bottleneck(bn_parts *p)
{
    memset(p, 0, sizeof *p);
    swarmmedic__v1__bottleneck__init(&p->b);
    swarmmedic__v1__decision__init(&p->d);
    swarmmedic__v1__evidence__init(&p->e);
    swarmmedic__v1__metric__init(&p->m1);
    swarmmedic__v1__metric__init(&p->m2);
    p->e.subject = "swarm.s1.task.a3";
    p->e.ts_ms = 1700000000100;
    p->e.window_start_ms = 1699999940123;
    p->e.window_end_ms = 1700000000123;
    p->m1.name = "duration_ratio";
    p->m1.value = 3.5;
    p->m1.threshold = 2.0;
    p->m1.samples = 12;
    p->m2.name = "success_rate";
    p->m2.value = 0.65;
    p->m2.threshold = 0.7;
    p->m2.samples = 12;
    p->ms[0] = &p->m1;
    p->ms[1] = &p->m2;
    p->d.decision_id = "0123456789abcdef";
    p->d.swarm = "s1";
    p->d.decided_at_ms = 1700000000123;
    p->d.evidence = &p->e;
    p->d.n_metrics = 2;
    p->d.metrics = p->ms;
    p->b.decision = &p->d;
    p->b.type = SWARMMEDIC__V1__BOTTLENECK_TYPE__BOTTLENECK_TYPE_SLOW_AGENT;
    p->b.transition = SWARMMEDIC__V1__BOTTLENECK__TRANSITION__TRANSITION_RAISED;
    p->b.severity = SWARMMEDIC__V1__SEVERITY__SEVERITY_HIGH;
    p->b.impact_score = 0.65;
    p->affected[0] = "a3";
    p->b.n_affected = 1;
    p->b.affected = p->affected;
    p->recs[0] = "restart a3";
    p->recs[1] = "move \"slow\" tasks off a3";
    p->b.n_recommendations = 2;
    p->b.recommendations = p->recs;
    p->b.raised_at_ms = 1700000000123;
    p->b.reason = "duration_ratio";
}

static const char BOTTLENECK_JSON[] =
    "{\"decision\":{\"decision_id\":\"0123456789abcdef\",\"swarm\":\"s1\","
    "\"decided_at_ms\":1700000000123,"
    "\"evidence\":{\"subject\":\"swarm.s1.task.a3\",\"ts_ms\":1700000000100,"
    "\"window_start_ms\":1699999940123,\"window_end_ms\":1700000000123},"
    "\"metrics\":[{\"name\":\"duration_ratio\",\"value\":3.5,\"threshold\":2.0,"
    "\"samples\":12},{\"name\":\"success_rate\",\"value\":0.65,"
    "\"threshold\":0.7,\"samples\":12}]},"
    "\"type\":\"BOTTLENECK_TYPE_SLOW_AGENT\",\"transition\":\"TRANSITION_RAISED\","
    "\"severity\":\"SEVERITY_HIGH\",\"impact_score\":0.65,\"affected\":[\"a3\"],"
    "\"recommendations\":[\"restart a3\",\"move \\\"slow\\\" tasks off a3\"],"
    "\"raised_at_ms\":1700000000123,\"reason\":\"duration_ratio\"}";

START_TEST(bottleneck_exact_json)
{
    bn_parts p;
    make_bottleneck(&p);
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump(&p.b.base, &json), SM_OK);
    ck_assert_str_eq(json, BOTTLENECK_JSON);
    free(json);
}
END_TEST

START_TEST(packed_bytes_give_the_same_text_every_time)
{
    bn_parts p;
    make_bottleneck(&p);
    uint8_t buf[1024];
    size_t n = swarmmedic__v1__bottleneck__pack(&p.b, buf);
    for (int i = 0; i < 3; i++) {
        char *json = NULL;
        ck_assert_int_eq(sm_pbjson_dump_packed(&swarmmedic__v1__bottleneck__descriptor,
                                               buf, n, &json), SM_OK);
        ck_assert_str_eq(json, BOTTLENECK_JSON);
        free(json);
    }
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump_packed(&swarmmedic__v1__bottleneck__descriptor,
                                           junk, sizeof junk, &json), SM_ERR_DECODE);
    ck_assert_ptr_null(json);
}
END_TEST

START_TEST(defaults_are_all_emitted)
{
    /* An empty message still has every key: the shape does not depend on
     * which fields the producer happened to set. */
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump_packed(&swarmmedic__v1__bottleneck__descriptor,
                                           NULL, 0, &json), SM_OK);
    ck_assert_str_eq(json,
        "{\"decision\":null,\"type\":\"BOTTLENECK_TYPE_UNSPECIFIED\","
        "\"transition\":\"TRANSITION_UNSPECIFIED\","
        "\"severity\":\"SEVERITY_UNSPECIFIED\",\"impact_score\":0.0,"
        "\"affected\":[],\"recommendations\":[],\"raised_at_ms\":0,\"reason\":\"\"}");
    free(json);
}
END_TEST

START_TEST(unknown_enum_number_prints_as_number)
{
    Swarmmedic__V1__TaskEvent t = SWARMMEDIC__V1__TASK_EVENT__INIT;
    t.ts_ms = 5;
    t.agent = "a1";
    t.kind = (Swarmmedic__V1__TaskEvent__Kind)42;
    t.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_LOW;
    uint8_t buf[128];
    size_t n = swarmmedic__v1__task_event__pack(&t, buf);
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump_packed(&swarmmedic__v1__task_event__descriptor,
                                           buf, n, &json), SM_OK);
    ck_assert_str_eq(json,
        "{\"ts_ms\":5,\"agent\":\"a1\",\"task_id\":\"\",\"task_type\":\"\","
        "\"kind\":42,\"priority\":\"PRIORITY_LOW\",\"tokens_estimated\":0,"
        "\"tokens_used\":0,\"duration_ms\":0,\"attempt\":0}");
    free(json);
}
END_TEST

/* ---------------------------------------- every type, hand-built descriptor */

typedef struct all_types {
    ProtobufCMessage base;
    int32_t i32, s32, sf32;
    uint32_t u32, f32;
    int64_t i64, s64, sf64;
    uint64_t u64, f64;
    float fl;
    double db;
    protobuf_c_boolean flag;
    char *str;
    ProtobufCBinaryData raw;
    int sev;
    size_t n_nums;
    int32_t *nums;
    size_t n_reals;
    double *reals;
    size_t n_blobs;
    ProtobufCBinaryData *blobs;
    ProtobufCMessage *child;
    uint32_t pick_case;
    union {
        char *pick_text;
        int32_t pick_num;
    };
} all_types;

#define F(nm, num, lbl, ty, q, member, desc, fl)                               \
    {nm, num, PROTOBUF_C_LABEL_##lbl, PROTOBUF_C_TYPE_##ty, q,                 \
     offsetof(all_types, member), desc, NULL, fl, 0, NULL, NULL}

static const ProtobufCMessageDescriptor all_types_descriptor;

static const ProtobufCFieldDescriptor all_fields[] = {
    F("i32", 1, NONE, INT32, 0, i32, NULL, 0),
    F("s32", 2, NONE, SINT32, 0, s32, NULL, 0),
    F("sf32", 3, NONE, SFIXED32, 0, sf32, NULL, 0),
    F("u32", 4, NONE, UINT32, 0, u32, NULL, 0),
    F("f32", 5, NONE, FIXED32, 0, f32, NULL, 0),
    F("i64", 6, NONE, INT64, 0, i64, NULL, 0),
    F("s64", 7, NONE, SINT64, 0, s64, NULL, 0),
    F("sf64", 8, NONE, SFIXED64, 0, sf64, NULL, 0),
    F("u64", 9, NONE, UINT64, 0, u64, NULL, 0),
    F("f64", 10, NONE, FIXED64, 0, f64, NULL, 0),
    F("fl", 11, NONE, FLOAT, 0, fl, NULL, 0),
    F("db", 12, NONE, DOUBLE, 0, db, NULL, 0),
    F("flag", 13, NONE, BOOL, 0, flag, NULL, 0),
    F("str", 14, NONE, STRING, 0, str, NULL, 0),
    F("raw", 15, NONE, BYTES, 0, raw, NULL, 0),
    F("sev", 16, NONE, ENUM, 0, sev, &swarmmedic__v1__severity__descriptor, 0),
    F("nums", 17, REPEATED, INT32, offsetof(all_types, n_nums), nums, NULL,
      PROTOBUF_C_FIELD_FLAG_PACKED),
    F("reals", 18, REPEATED, DOUBLE, offsetof(all_types, n_reals), reals, NULL, 0),
    F("blobs", 19, REPEATED, BYTES, offsetof(all_types, n_blobs), blobs, NULL, 0),
    F("child", 20, NONE, MESSAGE, 0, child, &all_types_descriptor, 0),
    F("pick_text", 21, NONE, STRING, offsetof(all_types, pick_case), pick_text,
      NULL, PROTOBUF_C_FIELD_FLAG_ONEOF),
    F("pick_num", 22, NONE, INT32, offsetof(all_types, pick_case), pick_num,
      NULL, PROTOBUF_C_FIELD_FLAG_ONEOF),
};

static const ProtobufCMessageDescriptor all_types_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.AllTypes", "AllTypes",
    "AllTypes", "test", sizeof(all_types),
    sizeof all_fields / sizeof all_fields[0], all_fields,
    NULL, 0, NULL, NULL, NULL, NULL, NULL};

START_TEST(every_field_type)
{
    int32_t nums[] = {1, -2, 3};
    double reals[] = {0.25, -INFINITY, 1e300};
    ProtobufCBinaryData blobs[] = {{0, NULL}, {1, (uint8_t *)"M"}};
    all_types child = {.base = {&all_types_descriptor, 0, NULL},
                       .str = "inner", .db = NAN};
    all_types m = {
        .base = {&all_types_descriptor, 0, NULL},
        .i32 = -5, .s32 = -6, .sf32 = -7, .u32 = 4000000000u, .f32 = 8,
        .i64 = -9000000000LL, .s64 = INT64_MIN, .sf64 = -1,
        .u64 = UINT64_MAX, .f64 = 10, .fl = 0.65f, .db = -0.5, .flag = 1,
        .str = "caf\xc3\xa9 \xff!",
        .raw = {5, (uint8_t *)"\x00\x01\x02\xfe\xff"},
        .sev = 3,
        .n_nums = 3, .nums = nums, .n_reals = 3, .reals = reals,
        .n_blobs = 2, .blobs = blobs, .child = &child.base,
        .pick_case = 22, .pick_num = 7,
    };
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump(&m.base, &json), SM_OK);
    ck_assert_str_eq(json,
        "{\"i32\":-5,\"s32\":-6,\"sf32\":-7,\"u32\":4000000000,\"f32\":8,"
        "\"i64\":-9000000000,\"s64\":-9223372036854775808,\"sf64\":-1,"
        "\"u64\":\"18446744073709551615\",\"f64\":10,\"fl\":0.65,\"db\":-0.5,"
        "\"flag\":true,\"str\":\"caf\xc3\xa9 \xef\xbf\xbd!\",\"raw\":\"AAEC/v8=\","
        "\"sev\":\"SEVERITY_HIGH\",\"nums\":[1,-2,3],"
        "\"reals\":[0.25,\"-Infinity\",1e300],\"blobs\":[\"\",\"TQ==\"],"
        "\"child\":{\"i32\":0,\"s32\":0,\"sf32\":0,\"u32\":0,\"f32\":0,\"i64\":0,"
        "\"s64\":0,\"sf64\":0,\"u64\":0,\"f64\":0,\"fl\":0.0,\"db\":\"NaN\","
        "\"flag\":false,\"str\":\"inner\",\"raw\":\"\",\"sev\":\"SEVERITY_UNSPECIFIED\","
        "\"nums\":[],\"reals\":[],\"blobs\":[],\"child\":null},"
        "\"pick_num\":7}");
    free(json);

    /* the other oneof member, and a real that needs 17 digits */
    m.pick_case = 21;
    m.pick_text = "t";
    m.db = 0.1 + 0.2;
    ck_assert_int_eq(sm_pbjson_dump(&m.base, &json), SM_OK);
    ck_assert_msg(strstr(json, "\"pick_text\":\"t\"}") && !strstr(json, "pick_num"),
                  "%s", json);
    ck_assert_msg(strstr(json, "\"db\":0.30000000000000004,"), "%s", json);
    free(json);
}
END_TEST

START_TEST(bad_input_refused)
{
    char *json = NULL;
    ck_assert_int_eq(sm_pbjson_dump(NULL, &json), SM_ERR_INVALID);
    ProtobufCMessage bogus = {&all_types_descriptor, 0, NULL};
    ProtobufCMessageDescriptor fake = all_types_descriptor;
    fake.magic = 0;
    bogus.descriptor = &fake;
    ck_assert_int_eq(sm_pbjson_dump(&bogus, &json), SM_ERR_INVALID);
    ck_assert_ptr_null(json);
    /* a cycle does not recurse for ever */
    all_types loop = {.base = {&all_types_descriptor, 0, NULL}};
    loop.child = &loop.base;
    ck_assert_int_eq(sm_pbjson_dump(&loop.base, &json), SM_ERR_INVALID);
    ck_assert_ptr_null(json);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pbjson");
    TCase *tc = tcase_create("pbjson");
    tcase_add_test(tc, bottleneck_exact_json);
    tcase_add_test(tc, packed_bytes_give_the_same_text_every_time);
    tcase_add_test(tc, defaults_are_all_emitted);
    tcase_add_test(tc, unknown_enum_number_prints_as_number);
    tcase_add_test(tc, every_field_type);
    tcase_add_test(tc, bad_input_refused);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
