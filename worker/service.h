/*
 * service.h - questions on the bus: request/reply endpoints answered by
 * the worker that holds the swarm, and NATS service discovery.
 *
 * Endpoints (subjects with the default prefix "medic"; protobuf request
 * and reply messages in schema/swarm_medic.proto):
 *
 *   medic.<swarm>.api.report   ReportRequest  -> PerformanceReport
 *   medic.<swarm>.api.stats    StatsRequest   -> StatsReply
 *   medic.<swarm>.api.select   SelectRequest  -> SelectReply
 *   medic.<swarm>.api.plan     PlanRequest    -> PlanReply
 *   medic.<swarm>.api.explain  ExplainRequest -> DecisionRecord
 *   medic.<swarm>.api.status   StatusRequest  -> StatusReply
 *
 * Only the worker that holds the swarm answers (sm_service_owns: the one
 * place that says so); the others stay silent, so the requester gets one
 * reply or a timeout ("no responders" when no worker listens at all). A
 * request the owner cannot answer (undecodable bytes, bad values, an
 * unknown verb, an unknown decision id) gets an empty reply with the
 * headers Nats-Service-Error (a sentence) and Nats-Service-Error-Code
 * (400, 404, 500, 503), as the NATS services protocol does: never
 * silence. A request with no reply subject is counted and dropped.
 *
 * Threads. cnats's delivery thread of the api subscription pushes each
 * request into the worker's inbox on its urgent lane (inbox.h), never
 * blocking: a full lane is answered 503 at once. The worker thread, which
 * owns the swarms, answers urgent items before the next event and
 * between any two events of a batch, so a request waits for at most one
 * event, never for the event queue; while the worker thread syncs a
 * commit, the window thread answers instead (see "Commit windows"
 * below). Answers read the state as of the last event handled. Discovery ($SRV.PING, $SRV.INFO,
 * $SRV.STATS, each also .<name> and .<name>.<id>) touches no swarm and is
 * answered on cnats's thread, in the io.nats.micro.v1 JSON shapes; the
 * endpoint statistics it reports are kept under a mutex.
 *
 * Reports. Finished tasks are aggregated per swarm, task type and minute
 * of event time (service_store.h, persisted with the state); the report
 * endpoint and the periodic PerformanceReport on medic.<swarm>.report
 * (every report_interval of event time, for the interval that just
 * ended; off by default) read them. The decision log read by explain is
 * written at each commit from the conclusions waiting for it
 * (publish_after_commit). stats reads the prediction ledger and the
 * healing analytics (core/swarm.h), status the open episodes
 * (core/query.h) and the healing commands in flight.
 *
 * Scaling (scaling=true, off by default): ScalingDecisions from resource
 * samples, sm_service_on_resource below.
 *
 * Lifecycle: sm_service_create (with the worker), sm_service_attach_store
 * (after the store is open), sm_service_connect (after the bus is),
 * sm_service_destroy (before the bus closes).
 */
#ifndef SM_SERVICE_H
#define SM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "decision.h"
#include "inbox.h"
#include "log.h"
#include "persist.h"
#include "registry.h"
#include "service_store.h"
#include "status.h"
#include "worker.h"

#define SM_SERVICE_NAME "swarm-medic"
#define SM_SERVICE_VERSION "1.0.0"

typedef struct sm_service sm_service;

/* cfg, log, reg and sink are borrowed and must outlive the service (sink
 * is read at each reply: the worker may replace it). */
sm_status sm_service_create(sm_service **out, const sm_config *cfg,
                            const sm_log *log, sm_registry *reg,
                            const sm_sink *sink);
/* Drains the subscriptions (no callback runs after), frees. NULL: no-op. */
void sm_service_destroy(sm_service *svc);

/* Keeps aggregates and the decision log in st (borrowed; no batch open)
 * and loads the log's size. Returns the persist extra writer to install
 * (sm_persist_set_extra). */
sm_status sm_service_attach_store(sm_service *svc, sm_store *st,
                                  sm_persist_extra *extra);

/* Subscribes the api subject and the $SRV subjects on bus; requests go to
 * ib's urgent lane. Errors: SM_ERR_BUS, SM_ERR_NOMEM. */
sm_status sm_service_connect(sm_service *svc, sm_bus *bus, sm_inbox *ib);

/* Commit windows. While the worker thread is inside an LMDB commit (its
 * sync to disk, publish_after_commit makes one per batch with a
 * conclusion) it touches no swarm; a thread of the service answers the
 * requests waiting then, so a request does not wait for the disk. The
 * worker thread holds the service's state lock from serve_start to
 * serve_stop and lets go of it only inside a window (the persist
 * extra's sync_begin .. sync_end), so at any time exactly one thread
 * reads or changes the swarms, and requests always see the state
 * between two events. Outside sm_worker_run (replay, tests) there is no
 * window thread and requests are answered by the worker thread only. */
sm_status sm_service_serve_start(sm_service *svc);
void sm_service_serve_stop(sm_service *svc);

/* Whether this worker answers for swarm: it holds it and, when swarms
 * are partitioned across workers, owns its partition (the owner
 * function, js.h sm_js_owns, set by the worker; NULL: no partitions). */
bool sm_service_owns(const sm_service *svc, const char *swarm);
/* The owner function is called from any thread (cnats's delivery thread
 * asks it before answering "busy"), so it must read only what is safe
 * to read there. Set before sm_service_connect. */
typedef bool (*sm_service_owner_fn)(const void *ud, const char *swarm);
void sm_service_set_owner(sm_service *svc, sm_service_owner_fn owns,
                          const void *ud);

/* Answers one request item (worker thread). The item is not released. */
void sm_service_handle(sm_service *svc, sm_item *it);

/* A task event the core accepted (worker thread): aggregates it, and
 * publishes the PerformanceReport of the interval it closes. prev_ms: the
 * swarm's latest event time before this event (sm_swarm_last_event, 0:
 * none): after a restart it tells which interval was open. */
void sm_service_on_task(sm_service *svc, const char *swarm,
                        const sm_task_event *ev, int64_t prev_ms);

/* A resource sample the core accepted (worker thread): with scaling on
 * and the sample carrying pending tasks and active agents, runs the
 * scaling policy (core/scale.h; its state per swarm lives here, in
 * memory: a restart starts the cooldown and stabilisation afresh) and
 * publishes a ScalingDecision on <prefix>.<swarm>.scale for each change
 * (UP or DOWN; holds are not published). source: the sample's source. */
void sm_service_on_resource(sm_service *svc, const sm_swarm *sw,
                            const char *source, const sm_resource_sample *ev);

/* Queues conclusions for the decision log read by explain; the next
 * commit writes them. For conclusions sent before their commit
 * (publish_after_commit off); held ones are logged by before_commit. */
void sm_service_log(sm_service *svc, const sm_decision *d, size_t n);

/* Before a commit (no batch open): logs the conclusions it will reveal
 * and runs retention when due. */
void sm_service_before_commit(sm_service *svc, const sm_decision *d, size_t n);

/* The service instance id ($SRV), NUL-terminated. */
const char *sm_service_id(const sm_service *svc);

typedef struct sm_service_stats {
    uint64_t requests;          /* answered (errors included) */
    uint64_t errors;            /* answered with Nats-Service-Error */
    uint64_t not_owned;         /* for a swarm another worker holds */
    uint64_t no_reply;          /* no reply subject: dropped */
    uint64_t busy;              /* urgent lane full: answered 503 */
    uint64_t in_commit;         /* answered by the window thread */
    uint64_t reports;           /* periodic PerformanceReports sent */
} sm_service_stats;
void sm_service_stats_get(sm_service *svc, sm_service_stats *out);

#endif
