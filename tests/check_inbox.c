/*
 * check_inbox.c - the bounded queue between sources and the worker:
 * order kept across batches, a full inbox blocks its producer (and says
 * so in its counters) instead of dropping, close releases a blocked
 * producer, source ends and failures wake the consumer, and items still
 * queued at destroy are released.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>

#include "inbox.h"
#include "proc.h"
#include "runner.h"

enum { N_ITEMS = 10000 };

typedef struct producer {
    sm_inbox *ib;
    int n;
    int refused;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        sm_item it;
        sm_item_plain(&it, "swarm.s.task.a", NULL, (size_t)i, NULL);
        if (sm_inbox_push(p->ib, &it) != SM_OK)
            p->refused++;
    }
    sm_inbox_source_done(p->ib, SM_OK);
    return NULL;
}

START_TEST(order_kept_and_full_inbox_blocks_not_drops)
{
    sm_inbox *ib = NULL;
    ck_assert_int_eq(sm_inbox_create(&ib, 8), SM_OK);
    sm_inbox_source_open(ib);
    producer p = {.ib = ib, .n = N_ITEMS};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, produce, &p), 0);
    sm_proc_sleep_ms(20);               /* let the producer fill it */
    size_t next = 0;
    sm_item batch[5];
    for (;;) {
        size_t n = sm_inbox_pop(ib, batch, 5, 1000);
        if (n == 0)
            break;
        ck_assert_uint_le(n, 5);
        for (size_t i = 0; i < n; i++)
            ck_assert_uint_eq(batch[i].len, next++);
    }
    pthread_join(t, NULL);
    ck_assert_uint_eq(next, N_ITEMS);
    ck_assert_int_eq(p.refused, 0);
    sm_inbox_stats st;
    sm_inbox_stats_get(ib, &st);
    ck_assert_uint_eq(st.pushed, N_ITEMS);
    ck_assert_uint_gt(st.full_waits, 0);
    ck_assert_uint_eq(st.sources, 0);
    ck_assert_int_eq(st.failure, SM_OK);
    sm_inbox_destroy(ib);
}
END_TEST

START_TEST(close_releases_a_blocked_producer)
{
    sm_inbox *ib = NULL;
    ck_assert_int_eq(sm_inbox_create(&ib, 2), SM_OK);
    sm_inbox_source_open(ib);
    producer p = {.ib = ib, .n = 10};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, produce, &p), 0);
    sm_proc_sleep_ms(50);
    sm_inbox_close(ib);                 /* nobody pops: it is blocked */
    pthread_join(t, NULL);
    ck_assert_int_eq(p.refused, 8);
    sm_item it[4];
    ck_assert_uint_eq(sm_inbox_pop(ib, it, 4, 0), 2);   /* queued ones stay */
    sm_inbox_destroy(ib);
}
END_TEST

static int released;

static void count_release(sm_item *it)
{
    (void)it;
    released++;
}

START_TEST(failure_wakes_the_consumer_and_destroy_releases)
{
    static const sm_item_ops ops = {.release = count_release};
    sm_inbox *ib = NULL;
    ck_assert_int_eq(sm_inbox_create(&ib, 4), SM_OK);
    sm_inbox_source_open(ib);
    sm_item out[1];
    int64_t t0 = sm_proc_mono_ns();
    ck_assert_uint_eq(sm_inbox_pop(ib, out, 1, 50), 0);  /* times out */
    ck_assert_int_ge(sm_proc_mono_ns() - t0, 40 * 1000000LL);
    sm_inbox_fail(ib, SM_ERR_BUS);
    t0 = sm_proc_mono_ns();
    ck_assert_uint_eq(sm_inbox_pop(ib, out, 1, 5000), 0);  /* at once */
    ck_assert_int_lt(sm_proc_mono_ns() - t0, 1000 * 1000000LL);
    sm_inbox_stats st;
    sm_inbox_stats_get(ib, &st);
    ck_assert_int_eq(st.failure, SM_ERR_BUS);
    sm_item it = {.subject = "x", .ops = &ops};
    ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    ck_assert_int_eq(sm_inbox_push(ib, &it), SM_OK);
    released = 0;
    sm_inbox_destroy(ib);
    ck_assert_int_eq(released, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inbox");
    TCase *tc = tcase_create("inbox");
    tcase_add_test(tc, order_kept_and_full_inbox_blocks_not_drops);
    tcase_add_test(tc, close_releases_a_blocked_producer);
    tcase_add_test(tc, failure_wakes_the_consumer_and_destroy_releases);
    suite_add_tcase(s, tc);
    return sm_run_suite(s);
}
