/*
 * hash.h - FNV-1a 64-bit, for decision ids and hash tables.
 *
 * Pure, deterministic across runs and machines (byte-wise). Chain calls by
 * passing the previous result as `h`; start with SM_HASH_INIT.
 */
#ifndef SM_HASH_H
#define SM_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SM_HASH_INIT 0xcbf29ce484222325ULL

static inline uint64_t sm_hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Hashes the string including a terminating 0 byte, so ("ab","c") and
 * ("a","bc") differ. */
static inline uint64_t sm_hash_str(uint64_t h, const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return sm_hash_bytes(h, s, n + 1);
}

/* Hashes v as 8 little-endian bytes, so ids match on any host. */
static inline uint64_t sm_hash_u64(uint64_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return sm_hash_bytes(h, b, 8);
}

#endif
