/* The wire edge: subjects, decoding with validation, Bottleneck encoding. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "swarm_medic.pb-c.h"
#include "watch.h"
#include "runner.h"

static size_t pack_task(uint8_t *buf, int64_t ts, const char *agent, int kind,
                        uint32_t dur)
{
    Swarmmedic__V1__TaskEvent m = SWARMMEDIC__V1__TASK_EVENT__INIT;
    m.ts_ms = ts;
    m.agent = (char *)agent;
    m.kind = (Swarmmedic__V1__TaskEvent__Kind)kind;
    m.duration_ms = dur;
    m.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_HIGH;
    return swarmmedic__v1__task_event__pack(&m, buf);
}

START_TEST(subjects)
{
    sm_subject s;
    const char *why = NULL;
    ck_assert_int_eq(sm_subject_parse("swarm.s1.task.a7", &s, &why), SM_OK);
    ck_assert_int_eq(s.kind, SM_IN_TASK);
    ck_assert_str_eq(s.swarm, "s1");
    ck_assert_str_eq(s.id, "a7");
    ck_assert_int_eq(sm_subject_parse("swarm.s1.consensus.g0", &s, &why), SM_OK);
    ck_assert_int_eq(s.kind, SM_IN_CONSENSUS);

    const char *bad[] = {"swarm.s1.task", "swarm.s1.tusk.a1", "other.s1.task.a1",
                         "swarm.s1.task.a1.extra", "swarm..task.a1", "swarm.s1.task.",
                         /* tokens that would make an output subject a
                          * wildcard, or carry control bytes */
                         "swarm.*.task.a1", "swarm.>.task.a1", "swarm.s*.task.a1",
                         "swarm.s\x1b[2J.task.a1", "swarm.s1\x7f.task.a1",
                         "swarm.s1.task.a\x07", "swarm.s1.task.*",
                         "swarm.s1.task.a\n1", NULL};
    for (int i = 0; bad[i]; i++) {
        why = NULL;
        ck_assert_msg(sm_subject_parse(bad[i], &s, &why) == SM_ERR_INVALID,
                      "%s accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
    char longid[200] = "swarm.s.task.";
    memset(longid + 13, 'x', 100);
    ck_assert_int_eq(sm_subject_parse(longid, &s, &why), SM_ERR_INVALID);
}
END_TEST

START_TEST(task_decode_and_validation)
{
    sm_codec *c;
    ck_assert_int_eq(sm_codec_create(&c), SM_OK);
    sm_subject subj;
    const char *why;
    sm_subject_parse("swarm.s1.task.a1", &subj, &why);
    uint8_t buf[256];
    sm_task_event ev;

    size_t n = pack_task(buf, 1000, "a1", 3, 1500);
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_OK);
    ck_assert_int_eq(ev.ts_ms, 1000);
    ck_assert_str_eq(ev.agent, "a1");
    ck_assert_int_eq(ev.kind, SM_TASK_COMPLETED);
    ck_assert_uint_eq(ev.duration_ms, 1500);
    ck_assert_int_eq(ev.priority, SM_PRIO_HIGH);

    n = pack_task(buf, 1000, "", 3, 1500);      /* agent from the subject */
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_OK);
    ck_assert_str_eq(ev.agent, "a1");

    n = pack_task(buf, 1000, "a2", 3, 1500);    /* payload disagrees */
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "agent"));

    n = pack_task(buf, 0, "a1", 3, 1500);       /* no event time */
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "ts_ms"));

    n = pack_task(buf, 1000, "a1", 0, 1500);    /* kind unspecified */
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    n = pack_task(buf, 1000, "a1", 42, 1500);   /* kind unknown */
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);

    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    ck_assert_int_eq(sm_codec_task(c, &subj, junk, sizeof junk, &ev, &why),
                     SM_ERR_DECODE);
    sm_codec_destroy(c);
}
END_TEST

/* subject_ids = payload: a server mapping folded the agent token into a
 * bucket ("7"), so the payload's agent is the agent, whatever the token. */
START_TEST(ids_from_the_payload_when_the_token_is_a_bucket)
{
    sm_codec *c;
    ck_assert_int_eq(sm_codec_create(&c), SM_OK);
    sm_subject subj;
    const char *why = NULL;
    ck_assert_int_eq(sm_subject_parse("swarm.s1.task.7", &subj, &why), SM_OK);
    ck_assert(!subj.id_in_payload);
    uint8_t buf[256];
    sm_task_event ev;

    /* without the mode, the bucket is not the agent: refused */
    size_t n = pack_task(buf, 1000, "a12", 3, 1500);
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "differs"));

    subj.id_in_payload = true;
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_OK);
    ck_assert_str_eq(ev.agent, "a12");

    /* a queued task before assignment has no agent, not the bucket */
    n = pack_task(buf, 1000, "", 1, 0);
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_OK);
    ck_assert_str_eq(ev.agent, "");
    /* any other kind needs its agent */
    n = pack_task(buf, 1000, "", 3, 1500);
    ck_assert_int_eq(sm_codec_task(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "subject_ids = payload"));

    /* the payload id is held to the subject token's rule */
    const char *bad[] = {"a.b", "a*", ">", "a b", "\x01x",
                         "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = pack_task(buf, 1000, bad[i], 3, 1500);
        ck_assert_msg(sm_codec_task(c, &subj, buf, n, &ev, &why) == SM_ERR_INVALID,
                      "payload agent '%s' taken", bad[i]);
    }

    /* the same for a resource sample's source */
    ck_assert_int_eq(sm_subject_parse("swarm.s1.resource.3", &subj, &why), SM_OK);
    subj.id_in_payload = true;
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.ts_ms = 5;
    m.source = "sched";
    n = swarmmedic__v1__resource_sample__pack(&m, buf);
    sm_resource_sample rs;
    ck_assert_int_eq(sm_codec_resource(c, &subj, buf, n, &rs, &why), SM_OK);
    ck_assert_str_eq(rs.source, "sched");
    m.source = "";
    n = swarmmedic__v1__resource_sample__pack(&m, buf);
    ck_assert_int_eq(sm_codec_resource(c, &subj, buf, n, &rs, &why), SM_ERR_INVALID);
    sm_codec_destroy(c);
}
END_TEST

START_TEST(resource_pending_summed_by_priority)
{
    sm_codec *c;
    sm_codec_create(&c);
    sm_subject subj;
    const char *why;
    sm_subject_parse("swarm.s1.resource.sched", &subj, &why);
    Swarmmedic__V1__PendingByPriority p1 = SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT,
                                      p2 = SWARMMEDIC__V1__PENDING_BY_PRIORITY__INIT;
    p1.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_CRITICAL;
    p1.count = 7;
    p2.priority = SWARMMEDIC__V1__PRIORITY__PRIORITY_LOW;
    p2.count = 40;
    Swarmmedic__V1__PendingByPriority *ps[] = {&p1, &p2};
    Swarmmedic__V1__ResourceSample m = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    m.ts_ms = 5;
    m.token_budget = 1000;
    m.tokens_used = 850;
    m.n_pending = 2;
    m.pending = ps;
    m.active_agents = 10;
    m.agent_quota = 12;
    uint8_t buf[256];
    size_t n = swarmmedic__v1__resource_sample__pack(&m, buf);
    sm_resource_sample ev;
    ck_assert_int_eq(sm_codec_resource(c, &subj, buf, n, &ev, &why), SM_OK);
    ck_assert(ev.has_pending);
    ck_assert_uint_eq(ev.pending[0], 7);
    ck_assert_uint_eq(ev.pending[3], 40);
    ck_assert_str_eq(ev.source, "sched");
    ck_assert_uint_eq(ev.tokens_used, 850);
    p2.priority = 9;
    n = swarmmedic__v1__resource_sample__pack(&m, buf);
    ck_assert_int_eq(sm_codec_resource(c, &subj, buf, n, &ev, &why), SM_ERR_INVALID);
    sm_codec_destroy(c);
}
END_TEST

START_TEST(bottleneck_round_trip)
{
    sm_codec *c;
    sm_codec_create(&c);
    sm_decision t = {0};
    t.kind = SM_DEC_BOTTLENECK;
    t.bn.type = SM_BN_SLOW_AGENT;
    t.bn.transition = SM_TR_RAISED;
    t.bn.severity = SM_SEV_HIGH;
    t.bn.impact = 0.65;
    snprintf(t.swarm, sizeof t.swarm, "s1");
    snprintf(t.subject, sizeof t.subject, "a3");
    t.bn.reason = "duration_ratio";
    t.at_ms = 123456;
    t.bn.raised_at_ms = 123456;
    t.evidence.signal = SM_SIG_TASK;
    snprintf(t.evidence.id, sizeof t.evidence.id, "a3");
    t.evidence.ts_ms = 123400;
    t.evidence.window_start_ms = 63456;
    t.evidence.window_end_ms = 123456;
    t.id = 0x0123456789abcdefULL;
    t.n_metrics = 1;
    t.metrics[0] = (sm_metric){"duration_ratio", 3.5, 2.0, 12};
    const uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sm_codec_bottleneck(c, &t, &buf, &len), SM_OK);
    Swarmmedic__V1__Bottleneck *b = swarmmedic__v1__bottleneck__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(b->decision->decision_id, "0123456789abcdef");
    ck_assert_str_eq(b->decision->swarm, "s1");
    ck_assert_int_eq(b->decision->decided_at_ms, 123456);
    ck_assert_str_eq(b->decision->evidence->subject, "swarm.s1.task.a3");
    ck_assert_int_eq(b->decision->evidence->ts_ms, 123400);
    ck_assert_int_eq(b->decision->evidence->window_start_ms, 63456);
    ck_assert_uint_eq(b->decision->n_metrics, 1);
    ck_assert_str_eq(b->decision->metrics[0]->name, "duration_ratio");
    ck_assert_double_eq_tol(b->decision->metrics[0]->threshold, 2.0, 1e-12);
    ck_assert_int_eq(b->type, SWARMMEDIC__V1__BOTTLENECK_TYPE__BOTTLENECK_TYPE_SLOW_AGENT);
    ck_assert_int_eq(b->severity, SWARMMEDIC__V1__SEVERITY__SEVERITY_HIGH);
    ck_assert_uint_eq(b->n_affected, 1);
    ck_assert_str_eq(b->affected[0], "a3");
    ck_assert_uint_gt(b->n_recommendations, 0);
    ck_assert_str_eq(b->reason, "duration_ratio");
    swarmmedic__v1__bottleneck__free_unpacked(b, NULL);

    char line[1024];
    ck_assert_int_eq(sm_watch_format(buf, len, line, sizeof line), SM_OK);
    ck_assert_msg(strstr(line, "RAISED") && strstr(line, "slow_agent") &&
                  strstr(line, "high") && strstr(line, "a3"), "%s", line);

    char subj[128];
    ck_assert_int_eq(sm_output_subject("medic", &t, subj, sizeof subj), SM_OK);
    ck_assert_str_eq(subj, "medic.s1.bottleneck.slow_agent");
    snprintf(t.swarm, sizeof t.swarm, "*");     /* e.g. from an old store */
    ck_assert_int_eq(sm_output_subject("medic", &t, subj, sizeof subj),
                     SM_ERR_INVALID);
    t.kind = SM_DEC_FAILURE;
    t.fail.type = SM_FAIL_AGENT_DOWN;
    ck_assert_int_eq(sm_output_subject("medic", &t, subj, sizeof subj),
                     SM_ERR_INVALID);
    t.kind = SM_DEC_PREDICTION;
    t.pred.type = SM_FAIL_AGENT_DOWN;
    ck_assert_int_eq(sm_output_subject("medic", &t, subj, sizeof subj),
                     SM_ERR_INVALID);
    sm_codec_destroy(c);
}
END_TEST

START_TEST(arena_survives_large_then_small)
{
    /* A message larger than the arena falls back, grows the arena, and
     * later messages still decode correctly. */
    sm_codec *c;
    sm_codec_create(&c);
    sm_subject subj;
    const char *why;
    sm_subject_parse("swarm.s1.agent.a1", &subj, &why);
    Swarmmedic__V1__AgentLifecycle m = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
    m.ts_ms = 9;
    m.agent = "a1";
    m.kind = SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
    enum { N = 200 };
    char *caps[N];
    char capbuf[N][200];
    for (int i = 0; i < N; i++) {
        memset(capbuf[i], 'a' + i % 26, 199);
        capbuf[i][199] = 0;
        caps[i] = capbuf[i];
    }
    m.n_capabilities = N;
    m.capabilities = caps;
    size_t need = swarmmedic__v1__agent_lifecycle__get_packed_size(&m);
    uint8_t *buf = malloc(need);
    size_t n = swarmmedic__v1__agent_lifecycle__pack(&m, buf);
    sm_agent_lifecycle ev;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(sm_codec_agent(c, &subj, buf, n, &ev, &why), SM_OK);
        ck_assert(ev.registered);
        ck_assert_str_eq(ev.agent, "a1");
    }
    m.n_capabilities = 0;
    n = swarmmedic__v1__agent_lifecycle__pack(&m, buf);
    ck_assert_int_eq(sm_codec_agent(c, &subj, buf, n, &ev, &why), SM_OK);
    free(buf);
    sm_codec_destroy(c);
}
END_TEST

/* Messages bigger than any seen before decode the first time: the
 * arena is sized for them, not for the next one. */
START_TEST(large_valid_messages_decode_the_first_time)
{
    const char *why = NULL;
    sm_codec *c;
    ck_assert_int_eq(sm_codec_create(&c), SM_OK);
    sm_subject subj;
    sm_subject_parse("swarm.s1.resource.sched", &subj, &why);
    enum { NP = 400 };
    Swarmmedic__V1__PendingByPriority p[NP], *ps[NP];
    for (int i = 0; i < NP; i++) {
        swarmmedic__v1__pending_by_priority__init(&p[i]);
        p[i].priority = (Swarmmedic__V1__Priority)(1 + i % 5);
        p[i].count = 1;
        ps[i] = &p[i];
    }
    Swarmmedic__V1__ResourceSample r = SWARMMEDIC__V1__RESOURCE_SAMPLE__INIT;
    r.ts_ms = 5;
    r.n_pending = NP;
    r.pending = ps;
    uint8_t *buf = malloc(swarmmedic__v1__resource_sample__get_packed_size(&r));
    size_t n = swarmmedic__v1__resource_sample__pack(&r, buf);
    sm_resource_sample ev;
    ck_assert_msg(sm_codec_resource(c, &subj, buf, n, &ev, &why) == SM_OK,
                  "400 pending entries rejected: %s", why);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(ev.pending[i], NP / 5);
    free(buf);
    sm_codec_destroy(c);

    ck_assert_int_eq(sm_codec_create(&c), SM_OK);
    sm_subject_parse("swarm.s1.agent.a1", &subj, &why);
    enum { NC = 3000 };
    static char capbuf[NC][16];
    char *caps[NC];
    for (int i = 0; i < NC; i++) {
        snprintf(capbuf[i], sizeof capbuf[i], "cap-%d", i);
        caps[i] = capbuf[i];
    }
    Swarmmedic__V1__AgentLifecycle m = SWARMMEDIC__V1__AGENT_LIFECYCLE__INIT;
    m.ts_ms = 9;
    m.agent = "a1";
    m.kind = SWARMMEDIC__V1__AGENT_LIFECYCLE__KIND__KIND_REGISTERED;
    m.n_capabilities = NC;
    m.capabilities = caps;
    buf = malloc(swarmmedic__v1__agent_lifecycle__get_packed_size(&m));
    n = swarmmedic__v1__agent_lifecycle__pack(&m, buf);
    sm_agent_lifecycle al;
    ck_assert_msg(sm_codec_agent(c, &subj, buf, n, &al, &why) == SM_OK,
                  "3,000 capabilities rejected: %s", why);
    ck_assert_str_eq(al.agent, "a1");
    /* still strict: junk is junk, however big the arena got */
    memset(buf, 0xff, n);
    ck_assert_int_eq(sm_codec_agent(c, &subj, buf, n, &al, &why), SM_ERR_DECODE);
    free(buf);
    sm_codec_destroy(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, subjects);
    tcase_add_test(tc, task_decode_and_validation);
    tcase_add_test(tc, ids_from_the_payload_when_the_token_is_a_bucket);
    tcase_add_test(tc, resource_pending_summed_by_priority);
    tcase_add_test(tc, bottleneck_round_trip);
    tcase_add_test(tc, arena_survives_large_then_small);
    tcase_add_test(tc, large_valid_messages_decode_the_first_time);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
