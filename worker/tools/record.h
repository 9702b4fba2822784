/*
 * record.h - `swarm-medic record`: capture bus traffic into a recording
 * file (worker/recfile.h) for replay.
 *
 * Each message is appended with its receive time (nats_Now(), wall ms:
 * the one place a wall clock enters a recording, as a label; decisions on
 * replay still read only the payloads' event times), its subject, every
 * header value (keys in byte order, each key's values in arrival order, so
 * the same message records to the same bytes) and its payload untouched.
 *
 * Order: with one subject (the default "swarm.>") there is one synchronous
 * subscription and the file holds messages in bus order. With several
 * subjects each gets its own subscription, polled in turn: order is kept
 * within each subject, not across them, so prefer one wildcard subject
 * when cross-subject order matters (it decides when detectors fire).
 * Overlapping subjects record a message once per matching subscription.
 *
 * The file is flushed whenever the bus is idle and at the end, so a
 * recorder killed hard loses at most the messages of its last busy burst;
 * the reader then reports the torn last record as corrupt after returning
 * every earlier one.
 *
 * Thread safety: runs on the calling thread; cnats's threads only fill the
 * subscriptions' queues.
 */
#ifndef SM_RECORD_H
#define SM_RECORD_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "status.h"

/* Records messages on `subjects` (NULL-terminated; NULL or empty means
 * {"swarm.>"}) into `path` (created or truncated) until a signal in `stop`
 * is pending (the caller blocks those signals; NULL: never) or, if
 * max_msgs > 0, that many messages are written. Logs event=record_started
 * once subscribed (so a test or script can start publishing) and
 * event=record_done with the count at the end.
 * Output: *written (if not NULL), the number of records in the file, also
 * set on error.
 * Errors: SM_ERR_INVALID (NULL cfg, log or path), SM_ERR_IO (cannot
 * create or write the file; the records written so far stay readable),
 * SM_ERR_BUS / SM_ERR_TIMEOUT / SM_ERR_CONFIG (connect or subscribe
 * failed, or the connection closed), SM_ERR_NOMEM. A slow-consumer drop is
 * logged (event=record_dropped) and recording goes on. */
sm_status sm_record_run(const sm_config *cfg, const sm_log *log,
                        const char *path, const char *const *subjects,
                        const sigset_t *stop, int64_t max_msgs,
                        uint64_t *written);

#endif
