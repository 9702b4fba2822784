#include "replay.h"
#include "proc.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bus.h"
#include "pbjson.h"
#include "recfile.h"
#include "swarm_medic.pb-c.h"
#include "worker.h"

/* ---- offline ---------------------------------------------------------- */

typedef struct offline {
    const sm_replay_opts *opts;
    sm_recw *rec;
    sm_replay_stats *st;
    int64_t recv_ms;            /* of the input being handled */
    sm_status out_status;       /* first output failure */
} offline;

static json_t *headers_json(const char *const *headers)
{
    json_t *h = json_object();
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        json_object_set_new(h, headers[i], json_string(headers[i + 1]));
    return h;
}

static sm_status write_json(FILE *f, const char *subject,
                            const char *const *headers, const void *data,
                            size_t len)
{
    json_t *line = json_object();
    json_object_set_new(line, "subject", json_string(subject));
    json_object_set_new(line, "headers", headers_json(headers));
    sm_status s = SM_OK;
    const ProtobufCMessageDescriptor *desc = sm_pbjson_output_of(subject);
    if (desc != NULL) {
        ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
        json_t *msg = NULL;
        s = m ? sm_pbjson_value(m, &msg) : SM_ERR_DECODE;
        if (s == SM_OK)
            json_object_set_new(line, "message", msg);
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
    } else {
        json_object_set_new(line, "payload_bytes", json_integer((json_int_t)len));
    }
    if (s == SM_OK) {
        char *text = json_dumps(line, sm_pbjson_dump_flags(line));
        if (!text || fprintf(f, "%s\n", text) < 0)
            s = SM_ERR_IO;
        free(text);
    }
    json_decref(line);
    return s;
}

static sm_status offline_sink(void *ud, const char *subject, const void *data,
                              size_t len, const char *const *headers)
{
    offline *o = ud;
    sm_status s = SM_OK;
    o->st->outputs++;
    if (o->rec)
        s = sm_recw_append(o->rec, o->recv_ms, subject, headers, data, len);
    if (s == SM_OK && o->opts->out_json)
        s = write_json(o->opts->out_json, subject, headers, data, len);
    if (o->opts->fn)
        o->opts->fn(o->opts->ud, o->recv_ms, subject, headers, data, len);
    if (s != SM_OK && o->out_status == SM_OK)
        o->out_status = s;
    return s;
}

sm_status sm_replay_offline(const sm_config *cfg, const sm_log *log,
                            const char *path, const sm_replay_opts *opts,
                            sm_replay_stats *st)
{
    memset(st, 0, sizeof *st);
    offline o = {.opts = opts, .st = st};
    sm_worker *w = NULL;
    sm_recr *r = NULL;
    sm_config local = *cfg;     /* shallow: only store_dir differs */
    sm_status s = sm_recr_open(&r, path, st->error, sizeof st->error);
    if (s != SM_OK)
        goto cleanup;
    if (opts->out_rec && (s = sm_recw_open(&o.rec, opts->out_rec)) != SM_OK) {
        snprintf(st->error, sizeof st->error, "cannot write %s", opts->out_rec);
        goto cleanup;
    }
    if (opts->store_dir)
        local.store_dir = (char *)opts->store_dir;
    if ((s = sm_worker_create(&w, &local, log)) != SM_OK)
        goto cleanup;
    if (opts->store_dir && (s = sm_worker_open(w)) != SM_OK)
        goto cleanup;
    sm_sink sink = {.publish = offline_sink, .ud = &o};
    sm_worker_set_sink(w, &sink);

    int64_t t0 = sm_proc_mono_ns();
    sm_rec rec;
    while ((s = sm_recr_next(r, &rec)) == SM_OK) {
        if (st->records++ == 0)
            st->first_recv_ms = rec.recv_ms;
        st->last_recv_ms = rec.recv_ms;
        o.recv_ms = rec.recv_ms;
        if (sm_worker_handle(w, rec.subject, rec.data, rec.len) == SM_OK)
            st->accepted++;
        else
            st->deadletters++;
    }
    if (opts->store_dir)
        sm_worker_flush(w);
    st->wall_ns = sm_proc_mono_ns() - t0;
    if (s == SM_ERR_NOT_FOUND)
        s = SM_OK;
    else
        snprintf(st->error, sizeof st->error, "%s", sm_recr_error(r));
    if (s == SM_OK && o.out_status != SM_OK) {
        s = o.out_status;
        snprintf(st->error, sizeof st->error, "writing the conclusions failed");
    }
cleanup:
    if (o.rec) {
        sm_status cs = sm_recw_close(o.rec);
        if (s == SM_OK && cs != SM_OK) {
            s = cs;
            snprintf(st->error, sizeof st->error, "closing %s failed", opts->out_rec);
        }
    }
    sm_worker_destroy(w);
    sm_recr_close(r);
    return s;
}

/* ---- onto a bus ------------------------------------------------------- */

static sm_status publish_rec(sm_bus *bus, const sm_rec *rec)
{
    enum { MAXH = 32 };
    const char *h[2 * MAXH + 1];
    size_t n = 0;
    for (size_t i = 0; i < rec->n_headers && i < MAXH; i++) {
        h[n++] = rec->headers[i].key;
        h[n++] = rec->headers[i].value;
    }
    h[n] = NULL;
    return sm_bus_publish(bus, rec->subject, rec->data, rec->len, n ? h : NULL);
}

/* Waits beyond this are as good as for ever (73 years), and t0 plus one
 * cannot overflow. */
#define WAIT_MAX_NS (INT64_MAX / 4)
/* Longest sleep between two looks at the stop signals. */
#define SLICE_MS 50

/* When a record received at recv_ms is due, in ns after the first one
 * (received at first_ms), at `speed` times the recorded pace. In doubles
 * and saturated: a crafted receive time cannot overflow; one earlier than
 * the first is due at once. */
static int64_t due_after_ns(int64_t first_ms, int64_t recv_ms, double speed)
{
    if (recv_ms <= first_ms)
        return 0;
    double ns = ((double)recv_ms - (double)first_ms) * 1e6 / speed;
    return ns >= (double)WAIT_MAX_NS ? WAIT_MAX_NS : (int64_t)ns;
}

/* Sleeps until the monotonic time `due` (ns), in slices, looking at the
 * stop signals between them. Returns false if one came first. */
static bool wait_until(int64_t due, const sigset_t *stop)
{
    for (;;) {
        if (sm_proc_stop_pending(stop, NULL))
            return false;
        int64_t left = due - sm_proc_mono_ns();
        if (left <= 0)
            return true;
        int64_t ms = (left + 999999) / 1000000;
        sm_proc_sleep_ms(ms > SLICE_MS ? SLICE_MS : (int)ms);
    }
}

sm_status sm_replay_to_bus(const sm_config *cfg, const sm_log *log,
                           const char *path, double speed,
                           const sigset_t *stop, sm_replay_stats *st)
{
    memset(st, 0, sizeof *st);
    sm_recr *r = NULL;
    sm_bus *bus = NULL;
    sm_config bulk = *cfg;      /* shallow: many publishes, let cnats batch */
    bulk.send_asap = false;
    sm_status s = sm_recr_open(&r, path, st->error, sizeof st->error);
    if (s == SM_OK)
        s = sm_bus_connect(&bus, &bulk, log, st->error, sizeof st->error);
    if (s != SM_OK)
        goto cleanup;
    int64_t t0 = sm_proc_mono_ns();
    sm_rec rec;
    while (!sm_proc_stop_pending(stop, NULL) && (s = sm_recr_next(r, &rec)) == SM_OK) {
        if (st->records++ == 0)
            st->first_recv_ms = rec.recv_ms;
        st->last_recv_ms = rec.recv_ms;
        if (speed > 0 &&
            !wait_until(t0 + due_after_ns(st->first_recv_ms, rec.recv_ms, speed),
                        stop))
            break;                  /* stopped in a gap: that record stays */
        if (publish_rec(bus, &rec) != SM_OK) {
            snprintf(st->error, sizeof st->error, "publish of record %llu failed",
                     (unsigned long long)rec.index);
            s = SM_ERR_BUS;
            break;
        }
        st->outputs++;
    }
    if (s == SM_ERR_NOT_FOUND || s == SM_OK)
        s = sm_bus_flush(bus, 10000) == SM_OK ? SM_OK : SM_ERR_BUS;
    else if (s == SM_ERR_CORRUPT)
        snprintf(st->error, sizeof st->error, "%s", sm_recr_error(r));
    st->wall_ns = sm_proc_mono_ns() - t0;
cleanup:
    sm_bus_close(bus);
    sm_recr_close(r);
    return s;
}
