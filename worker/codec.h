/*
 * codec.h - the wire edge: subjects and protobuf (schema/swarm_medic.proto)
 * in, core events out; core transitions in, protobuf out.
 *
 * An sm_codec owns a decode arena and an encode buffer, both reused for
 * every message: decoding allocates nothing per message once warm (the
 * arena only grows when a message is larger than any before). A message
 * larger than the arena still decodes the first time it is seen: the
 * arena is grown for it and the decode retried (up to 64 MiB of decoded
 * objects; a message needing more is undecodable). A decoded event
 * borrows its strings from the arena: it is valid until the next decode
 * call on the same codec.
 *
 * Validation is strict and every rejection comes with a static reason
 * sentence (*why) for the dead-letter header: undecodable bytes, missing
 * event time, an id longer than SM_ID_MAX - 1, an agent id that differs
 * from the subject's, an enum value the contract does not define.
 *
 * Thread safety: one thread per sm_codec.
 */
#ifndef SM_CODEC_H
#define SM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "swarm.h"
#include "event.h"
#include "status.h"

typedef enum sm_input_kind {
    SM_IN_TASK = 1,
    SM_IN_HEARTBEAT,
    SM_IN_RESOURCE,
    SM_IN_CONSENSUS,
    SM_IN_AGENT,
    SM_IN_OUTCOME,
} sm_input_kind;

/* A parsed input subject swarm.<swarm>.<kind>.<id>; tokens are copied. */
typedef struct sm_subject {
    sm_input_kind kind;
    bool id_in_payload;         /* set by the caller (subject_ids =
                                   payload): `id` is not the producer's id
                                   but what a server mapping made of it
                                   (a bucket); the decoders take the
                                   payload's, which must not be empty */
    char swarm[SM_ID_MAX];
    char id[SM_ID_MAX];         /* agent, source, group or command */
} sm_subject;

/* Parses an input subject. Its swarm and id tokens must be 1 to 63 bytes
 * with no wildcard ('*', '>'), space or control byte: the swarm token
 * becomes a token of the output subjects. out->id_in_payload is false.
 * Errors: SM_ERR_INVALID with *why set. */
sm_status sm_subject_parse(const char *subject, sm_subject *out,
                           const char **why);

/* The "task", "heartbeat", ... token of a kind. */
const char *sm_input_kind_str(sm_input_kind k);

/* A decoded HealingOutcome (healing itself is later work; the worker
 * validates and counts these). */
typedef struct sm_outcome {
    int64_t ts_ms;
    const char *command_id;
    uint64_t command;           /* command_id's value */
    uint32_t result;            /* HealingOutcome.Result */
} sm_outcome;

typedef struct sm_codec sm_codec;

sm_status sm_codec_create(sm_codec **out);
void sm_codec_destroy(sm_codec *c);

/* Decoders. `subj` is the parsed subject of the message; ids in the
 * payload must match it (an empty payload id takes the subject's), or,
 * with subj->id_in_payload, must be present (the subject's is ignored).
 * Errors: SM_ERR_DECODE (bytes), SM_ERR_INVALID (contents), SM_ERR_NOMEM
 * (ours, not the sender's); *why set. */
sm_status sm_codec_task(sm_codec *c, const sm_subject *subj, const void *buf,
                        size_t len, sm_task_event *out, const char **why);
sm_status sm_codec_heartbeat(sm_codec *c, const sm_subject *subj,
                             const void *buf, size_t len, sm_heartbeat *out,
                             const char **why);
sm_status sm_codec_resource(sm_codec *c, const sm_subject *subj,
                            const void *buf, size_t len,
                            sm_resource_sample *out, const char **why);
sm_status sm_codec_consensus(sm_codec *c, const sm_subject *subj,
                             const void *buf, size_t len,
                             sm_consensus_round *out, const char **why);
sm_status sm_codec_agent(sm_codec *c, const sm_subject *subj, const void *buf,
                         size_t len, sm_agent_lifecycle *out,
                         const char **why);
sm_status sm_codec_outcome(sm_codec *c, const sm_subject *subj,
                           const void *buf, size_t len, sm_outcome *out,
                           const char **why);

/* Packs a Bottleneck for decision d (kind SM_DEC_BOTTLENECK). *out
 * points into the codec's buffer, valid until the next encode. Errors:
 * SM_ERR_NOMEM, SM_ERR_FULL (evidence subject too long). */
sm_status sm_codec_bottleneck(sm_codec *c, const sm_decision *d,
                              const uint8_t **out, size_t *len);

/* Packs a Failure for decision d (kind SM_DEC_FAILURE); as above. */
sm_status sm_codec_failure(sm_codec *c, const sm_decision *d,
                           const uint8_t **out, size_t *len);

/* Packs a Prediction for decision d (kind SM_DEC_PREDICTION); as above. */
sm_status sm_codec_prediction(sm_codec *c, const sm_decision *d,
                              const uint8_t **out, size_t *len);

/* Packs a HealingCommand for decision d (kind SM_DEC_HEAL); as above. */
sm_status sm_codec_heal(sm_codec *c, const sm_decision *d,
                        const uint8_t **out, size_t *len);

/* Packs a HealingVerdict for decision d (kind SM_DEC_VERDICT); as above. */
sm_status sm_codec_verdict(sm_codec *c, const sm_decision *d,
                           const uint8_t **out, size_t *len);

/* Packs decision d, whatever its kind, with the function above for it. */
sm_status sm_codec_decision(sm_codec *c, const sm_decision *d,
                            const uint8_t **out, size_t *len);

/* Writes the 16-hex-digit form of a decision id into buf (cap >= 17). */
void sm_decision_id_hex(uint64_t id, char *buf, size_t cap);

/* Output subject of decision d: <prefix>.<swarm>.<kind>.<type>, kind
 * "bottleneck" (type: sm_bn_type_str), "failure" and "prediction" (type:
 * sm_fail_type_str), "heal" and "verdict" (type: the action token,
 * sm_heal_action_str, or a custom action's name). Returns SM_ERR_FULL if
 * cap is too small, SM_ERR_INVALID if the swarm or type token is empty or
 * holds a wildcard, dot, space or control byte (never a wildcard
 * subject). */
sm_status sm_output_subject(const char *prefix, const sm_decision *d,
                            char *buf, size_t cap);

/* The input subject a decision's evidence names:
 * swarm.<swarm>.<signal>.<id> ("" when it rests on no input). Returns
 * SM_ERR_FULL if cap is too small. */
sm_status sm_evidence_subject(const sm_decision *d, char *buf, size_t cap);

#endif
