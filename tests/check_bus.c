/*
 * check_bus.c - the bus edge against a real nats-server: the input
 * subscription turns each message into an inbox item with its subject,
 * reply subject, headers and payload; a drain delivers what was sent
 * before it and then ends the source cleanly; publishing carries headers.
 */
#include <check.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "inbox.h"
#include "support.h"
#include "runner.h"

typedef struct rig {
    sm_test_server srv;
    sm_config cfg;
    sm_log log;
    sm_inbox *ib;
    sm_bus *bus;
    natsConnection *nc;         /* the test's own connection */
} rig;

static void rig_up(rig *r)
{
    memset(r, 0, sizeof *r);
    sm_test_server_start(&r->srv, 0, NULL);
    ck_assert_int_eq(sm_config_init(&r->cfg), SM_OK);
    free(r->cfg.nats_url);
    r->cfg.nats_url = strdup(r->srv.url);
    r->log = (sm_log){.out = stderr, .level = SM_LOG_WARN};
    char err[256];
    ck_assert_int_eq(sm_inbox_create(&r->ib, 64), SM_OK);
    ck_assert_int_eq(sm_bus_connect(&r->bus, &r->cfg, &r->log, err, sizeof err), SM_OK);
    ck_assert_int_eq(sm_bus_subscribe(r->bus, "swarm.>", 1000, r->ib), SM_OK);
    ck_assert_int_eq(sm_bus_flush(r->bus, 2000), SM_OK);
    ck_assert_int_eq(natsConnection_ConnectTo(&r->nc, r->srv.url), NATS_OK);
}

static void rig_down(rig *r)
{
    natsConnection_Destroy(r->nc);
    sm_inbox_close(r->ib);
    sm_bus_close(r->bus);
    sm_inbox_destroy(r->ib);
    sm_config_free(&r->cfg);
    sm_test_server_stop(&r->srv);
    sm_test_rmtree(r->srv.dir);
}

START_TEST(message_becomes_item_with_reply_and_headers)
{
    rig r;
    rig_up(&r);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsMsg_Create(&m, "swarm.s.task.a", "_INBOX.r1", "pay", 3), NATS_OK);
    ck_assert_int_eq(natsMsgHeader_Set(m, "Nats-Msg-Id", "id-7"), NATS_OK);
    ck_assert_int_eq(natsConnection_PublishMsg(r.nc, m), NATS_OK);
    natsMsg_Destroy(m);
    ck_assert_int_eq(natsConnection_Publish(r.nc, "swarm.s.task.b", "x", 1), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);

    sm_item it[2];
    size_t n = 0;
    for (int i = 0; i < 50 && n < 2; i++)
        n += sm_inbox_pop(r.ib, it + n, 2 - n, 100);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(it[0].subject, "swarm.s.task.a");
    ck_assert_str_eq(it[0].reply, "_INBOX.r1");
    ck_assert_uint_eq(it[0].len, 3);
    ck_assert_mem_eq(it[0].data, "pay", 3);
    ck_assert_str_eq(sm_item_header(&it[0], "Nats-Msg-Id"), "id-7");
    ck_assert_ptr_null(sm_item_header(&it[0], "Medic-Reason"));
    ck_assert_int_eq(sm_item_settle(&it[0], SM_SETTLE_ACK, 0), SM_OK);
    ck_assert_str_eq(it[1].subject, "swarm.s.task.b");
    ck_assert_ptr_null(it[1].reply);
    ck_assert_ptr_null(sm_item_header(&it[1], "Nats-Msg-Id"));
    sm_item_release(&it[0]);
    sm_item_release(&it[1]);
    rig_down(&r);
}
END_TEST

START_TEST(drain_delivers_what_was_sent_then_ends_the_source)
{
    enum { N = 500 };
    rig r;
    rig_up(&r);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(natsConnection_Publish(r.nc, "swarm.s.task.a", &i, sizeof i),
                         NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    ck_assert_int_eq(sm_bus_drain(r.bus, 5000), SM_OK);
    int next = 0;
    sm_item it[16];
    for (int spins = 0; spins < 200; spins++) {
        size_t n = sm_inbox_pop(r.ib, it, 16, 100);
        for (size_t i = 0; i < n; i++) {
            int v;
            memcpy(&v, it[i].data, sizeof v);
            ck_assert_int_eq(v, next++);        /* in order, none lost */
            sm_item_release(&it[i]);
        }
        sm_inbox_stats st;
        sm_inbox_stats_get(r.ib, &st);
        if (n == 0 && st.sources == 0 && st.queued == 0)
            break;
    }
    ck_assert_int_eq(next, N);
    ck_assert_int_eq(sm_bus_drain_wait(r.bus, 1000), SM_OK);
    sm_inbox_stats st;
    sm_inbox_stats_get(r.ib, &st);
    ck_assert_uint_eq(st.sources, 0);
    ck_assert_int_eq(st.failure, SM_OK);       /* an end we asked for */
    /* after the drain nothing more arrives */
    ck_assert_int_eq(natsConnection_Publish(r.nc, "swarm.s.task.a", "z", 1), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    ck_assert_uint_eq(sm_inbox_pop(r.ib, it, 16, 200), 0);
    rig_down(&r);
}
END_TEST

START_TEST(publish_carries_headers)
{
    rig r;
    rig_up(&r);
    natsSubscription *sub = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&sub, r.nc, "medic.x"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(r.nc, 2000), NATS_OK);
    const char *h[] = {"Medic-Reason", "because", NULL};
    ck_assert_int_eq(sm_bus_publish(r.bus, "medic.x", "d", 1, h), SM_OK);
    ck_assert_int_eq(sm_bus_flush(r.bus, 2000), SM_OK);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    const char *v = NULL;
    ck_assert_int_eq(natsMsgHeader_Get(m, "Medic-Reason", &v), NATS_OK);
    ck_assert_str_eq(v, "because");
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    rig_down(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("bus");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, message_becomes_item_with_reply_and_headers);
    tcase_add_test(tc, drain_delivers_what_was_sent_then_ends_the_source);
    tcase_add_test(tc, publish_carries_headers);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
