/*
 * service_int.h - the sm_service struct, shared by service.c (the
 * endpoints, on the worker thread) and service_srv.c (subscriptions and
 * $SRV discovery, on cnats's threads). Not for other modules.
 */
#ifndef SM_SERVICE_INT_H
#define SM_SERVICE_INT_H

#include <pthread.h>

#include "scale.h"
#include "service.h"

typedef enum sm_endpoint {
    EP_REPORT, EP_STATS, EP_SELECT, EP_PLAN, EP_EXPLAIN, EP_STATUS, EP_COUNT
} sm_endpoint;

/* "report", "stats", ...: the <verb> token and the $SRV endpoint name. */
extern const char *const sm_endpoint_names[EP_COUNT];

/* One endpoint's figures for $SRV.STATS (under sm_service.mu). */
typedef struct sm_ep_stats {
    uint64_t requests;
    uint64_t errors;
    int64_t processing_ns;
    char last_error[160];
} sm_ep_stats;

/* What the service keeps per swarm (worker thread). */
typedef struct sm_report_clock {
    char swarm[SM_ID_MAX];
    int64_t next_ms;            /* end of the report interval now open */
    sm_scale_state scale;       /* the scaling policy's memory */
} sm_report_clock;

#define SM_SRV_SUBS 10

struct sm_service {
    const sm_config *cfg;
    const sm_log *log;
    sm_registry *reg;
    sm_service_owner_fn owner;  /* partition ownership, or NULL */
    const void *owner_ud;
    const sm_sink *sink;
    sm_svcstore *ss;
    sm_inbox *ib;
    void *nc;                   /* natsConnection (service_srv.c) */
    void *subs[SM_SRV_SUBS];    /* natsSubscription */
    size_t n_subs;
    void *srv_closures;         /* one per $SRV verb (service_srv.c) */
    char id[32];
    char started[40];           /* RFC 3339, UTC */
    pthread_mutex_t mu;         /* eps and st, read by $SRV.STATS */
    sm_ep_stats eps[EP_COUNT];
    sm_service_stats st;
    sm_report *report;          /* scratch, worker thread */
    uint8_t *out;               /* reply buffer, worker thread */
    size_t out_cap;
    sm_report_clock *clocks;
    size_t n_clocks, cap_clocks;
    /* commit windows (service.h): the state lock, held by the worker
     * thread while sm_service_serve_start..stop except inside a window,
     * and the window thread's wake-up */
    pthread_mutex_t state_mu;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    bool window;                /* under wmu: the worker is in a commit */
    bool quit;                  /* under wmu: the window thread ends */
    bool serving;               /* worker thread only: the thread runs */
    pthread_t window_thread;
};

/* Wakes the window thread if a window is open (cnats thread, after a
 * push to the urgent lane). */
void sm_service_wake(sm_service *svc);

/* Whether a request on subject is for a swarm of a partition another
 * worker owns (false when not partitioned, or for a subject that names
 * no swarm); any thread: it asks the owner function only, not the
 * registry. */
bool sm_service_elsewhere(const sm_service *svc, const char *subject);

/* Publishes an error reply (empty payload, Nats-Service-Error headers) on
 * reply through the sink; safe from any thread the sink is. */
void sm_service_reply_error(const sm_service *svc, const char *reply,
                            int code, const char *text);

/* service_srv.c: subscribe / unsubscribe (drained: no callback after). */
sm_status sm_srv_subscribe(sm_service *svc, sm_bus *bus);
void sm_srv_unsubscribe(sm_service *svc);

#endif
