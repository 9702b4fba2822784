/*
 * recfile.h - the recording file: bus messages as they were received, for
 * `swarm-medic record` (writer) and replay (reader). No bus code here.
 *
 * A recording is a 16-byte file header followed by length-framed records.
 * Every integer is fixed-width little-endian; there is no padding.
 *
 *   file header (16 bytes)
 *     0   8  magic    "SMREC\0\0\0"  (53 4d 52 45 43 00 00 00)
 *     8   2  version  u16, 1
 *    10   2  flags    u16, 0. No flag is defined in version 1; a reader
 *                     refuses unknown bits, since a flag may change how
 *                     records must be read.
 *    12   4  reserved u32, 0; written as 0, ignored when read
 *
 *   record (repeated until end of file)
 *     0   4  body_len u32, bytes of body that follow the CRC
 *     4   4  crc      u32, CRC-32 (ISO-HDLC polynomial: the value zlib's
 *                     crc32() gives; computed with ISA-L) of body
 *     8      body:
 *            i64  recv_ms          receive time, ms since the epoch, as
 *                                  stamped by the writer's caller
 *            u16  subject_len      then subject bytes (no NUL)
 *            u32  headers_len      then headers_len bytes of header pairs:
 *                 { u16 key_len, key bytes, u16 value_len, value bytes }*
 *                                  a key repeats for a multi-value header;
 *                                  pairs fill headers_len exactly
 *            u32  payload_len      then payload bytes; the body ends there
 *
 *   body_len = 18 + subject_len + headers_len + payload_len and is at most
 *   SM_REC_MAX_BODY. A file ends cleanly only on a record boundary.
 *
 * Writing the same records (same recv_ms, subjects, headers in the same
 * order, payloads) always gives byte-identical files: nothing else (no
 * wall time, no host data, no padding garbage) enters the file.
 *
 * The reader checks, per record: a whole 8-byte frame, a body_len within
 * SM_REC_MAX_BODY, a whole body, the CRC, then the body's inner lengths.
 * The first failure stops the reader with SM_ERR_CORRUPT and a sentence
 * naming the 0-based record index and the byte offset where that record
 * starts; every record before it was returned intact. It never allocates
 * more than the file actually holds, whatever a corrupt length says.
 *
 * Thread safety: a writer or a reader is used by one thread at a time;
 * different objects are independent.
 */
#ifndef SM_RECFILE_H
#define SM_RECFILE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SM_REC_MAGIC "SMREC\0\0\0"          /* 8 bytes, NULs included */
#define SM_REC_VERSION 1
#define SM_REC_FILE_HEADER 16               /* bytes */
#define SM_REC_FRAME 8                      /* body_len + crc */
#define SM_REC_BODY_MIN 18                  /* body with empty fields */
#define SM_REC_MAX_BODY (128u * 1024u * 1024u)

/* ------------------------------------------------------------------ writer */

typedef struct sm_recw sm_recw;

/* Creates (or truncates) `path` and writes the file header. Writes go
 * through a 64 KiB stdio buffer: records reach the file on sm_recw_flush,
 * when the buffer fills, and at sm_recw_close.
 * Output: *out, only on success; release it with sm_recw_close.
 * Errors: SM_ERR_INVALID (NULL argument), SM_ERR_NOMEM, SM_ERR_IO (could
 * not create or write the file; errno is left as the failing call set it,
 * so the caller can print strerror(errno)). */
sm_status sm_recw_open(sm_recw **out, const char *path);

/* Appends one record. `headers` is a NULL-terminated list of key, value
 * C strings (a key may repeat), or NULL for none; `data` may be NULL when
 * len is 0. Nothing is allocated; the record is written in the order given.
 * Errors: SM_ERR_INVALID (NULL subject, subject/key/value over 65535 bytes,
 * odd headers list, body over SM_REC_MAX_BODY; nothing is written),
 * SM_ERR_IO (a write failed; the writer is then failed: every later append
 * returns SM_ERR_IO and the file ends with a partial record, which a reader
 * reports as corrupt after the earlier records). */
sm_status sm_recw_append(sm_recw *w, int64_t recv_ms, const char *subject,
                         const char *const *headers, const void *data,
                         size_t len);

/* Pushes buffered records to the file (fflush). Errors: SM_ERR_IO. */
sm_status sm_recw_flush(sm_recw *w);

/* Records appended successfully so far. */
uint64_t sm_recw_count(const sm_recw *w);

/* Flushes, closes and frees. Returns SM_OK only if every append, the flush
 * and the close succeeded (otherwise SM_ERR_IO, or the first error seen).
 * NULL is a no-op returning SM_OK. */
sm_status sm_recw_close(sm_recw *w);

/* ------------------------------------------------------------------ reader */

typedef struct sm_recr sm_recr;

/* One header pair. key and value are NUL-terminated (the NUL is not counted
 * in the lengths); a NUL inside the recorded bytes would end the C string
 * early, so use the lengths when that matters. */
typedef struct sm_rec_header {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} sm_rec_header;

/* One record, as views into the reader's buffers: valid until the next
 * sm_recr_next or sm_recr_close on that reader. */
typedef struct sm_rec {
    uint64_t index;                 /* 0-based position in the file */
    uint64_t offset;                /* byte offset of its frame */
    int64_t recv_ms;
    const char *subject;            /* NUL-terminated */
    size_t subject_len;
    const sm_rec_header *headers;   /* n_headers pairs, in file order */
    size_t n_headers;
    const uint8_t *data;            /* payload, followed by a NUL byte that */
    size_t len;                     /* is not counted in len */
} sm_rec;

/* Opens `path` and checks the file header.
 * Output: *out, only on success; release it with sm_recr_close.
 * Errors (a sentence naming the path in err, if errcap > 0):
 *   SM_ERR_INVALID  NULL argument; a version other than 1 ("... format
 *                   version 2, this build reads version 1"); unknown flags
 *   SM_ERR_CORRUPT  shorter than the header, or wrong magic ("not a
 *                   swarm-medic recording")
 *   SM_ERR_IO       cannot open or read (strerror text in err)
 *   SM_ERR_NOMEM */
sm_status sm_recr_open(sm_recr **out, const char *path, char *err,
                       size_t errcap);

/* Reads the next record into *out (views, see sm_rec).
 * Returns SM_OK with a record; SM_ERR_NOT_FOUND at a clean end of file (the
 * last record ended exactly at end of file); SM_ERR_CORRUPT when the
 * record is truncated, too long, fails its CRC or is malformed inside, with
 * sm_recr_error() saying, e.g.
 *   "record 41 at byte 8812: truncated body (expected 120 bytes, 37 left)"
 * SM_ERR_IO on a read error; SM_ERR_NOMEM. Errors and the end are sticky:
 * later calls return the same status. Records returned before stay valid
 * only as described in sm_rec (copy what you keep). */
sm_status sm_recr_next(sm_recr *r, sm_rec *out);

/* The reader's last error sentence, "" if none. Owned by the reader. */
const char *sm_recr_error(const sm_recr *r);

/* 0-based index of the record the next sm_recr_next reads, that is the
 * number of records returned so far (also the index named by an error). */
uint64_t sm_recr_index(const sm_recr *r);

/* Byte offset where the next record starts (after an error: where the
 * broken record starts). */
uint64_t sm_recr_offset(const sm_recr *r);

/* Closes and frees. NULL is a no-op. */
void sm_recr_close(sm_recr *r);

#endif
