/*
 * status.h - the one status type of swarm-medic.
 *
 * Every fallible function in core/ and worker/ returns an sm_status. Codes
 * from cnats (natsStatus), LMDB (int rc) and protobuf-c are converted once,
 * at the edge (worker/), into one of these. sm_status_str() never returns
 * NULL and the strings are static.
 */
#ifndef SM_STATUS_H
#define SM_STATUS_H

typedef enum sm_status {
    SM_OK = 0,
    SM_ERR_INVALID,     /* bad argument or malformed input */
    SM_ERR_NOMEM,       /* allocation failed */
    SM_ERR_FULL,        /* a fixed-capacity structure is full */
    SM_ERR_NOT_FOUND,   /* no such key / entry */
    SM_ERR_DECODE,      /* a message could not be decoded */
    SM_ERR_CONFIG,      /* configuration rejected */
    SM_ERR_STORE,       /* LMDB error other than map full */
    SM_ERR_MAP_FULL,    /* LMDB map is full (MDB_MAP_FULL) */
    SM_ERR_CORRUPT,     /* stored data fails its checks */
    SM_ERR_BUS,         /* NATS error */
    SM_ERR_IO,          /* file or process error */
    SM_ERR_TIMEOUT,     /* a wait ran out */
    SM_ERR_VERSION,     /* stored data of a newer format than this build */
} sm_status;

/* Static, human-readable name of a status; unknown values give "unknown". */
const char *sm_status_str(sm_status s);

#endif
