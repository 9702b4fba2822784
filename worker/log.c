#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *level_name[] = {"debug", "info", "warn", "error"};

int sm_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_name[i]) == 0)
            return i;
    return -1;
}

int sm_log_format_parse(const char *s)
{
    return strcmp(s, "text") == 0 ? SM_LOG_TEXT
         : strcmp(s, "json") == 0 ? SM_LOG_JSON : -1;
}

/* How the character at p is shown: as is (returns 1, esc ""), or escaped
 * into esc: a backslash as \\, a C0 control byte or DEL as \xNN, a C1
 * control character (U+0080..U+009F, two bytes in UTF-8) as \u00NN.
 * Returns the bytes of p it stands for. */
static size_t escape_at(const unsigned char *p, char esc[8])
{
    esc[0] = 0;
    if (*p == '\\') {
        snprintf(esc, 8, "\\\\");
    } else if (*p < 0x20 || *p == 0x7f) {
        snprintf(esc, 8, "\\x%02x", *p);
    } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
        snprintf(esc, 8, "\\u%04x", p[1]);
        return 2;
    }
    return 1;
}

/* Writes s to out with escape_at's escapes. */
static void put_escaped(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *run = p;
    char esc[8];
    while (*p) {
        size_t n = escape_at(p, esc);
        if (!esc[0]) {
            p += n;
            continue;
        }
        fwrite(run, 1, (size_t)(p - run), out);
        fputs(esc, out);
        p += n;
        run = p;
    }
    fwrite(run, 1, (size_t)(p - run), out);
}

/* ---- JSON lines --------------------------------------------------------- */

/* Bytes of the UTF-8 sequence at p (2 to 4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = *p >= 0xf0 && *p <= 0xf4 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;
    if (*p >= 0xf5)
        n = 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && *p == 0xe0 && p[1] < 0xa0) ||       /* overlong */
        (n == 3 && *p == 0xed && p[1] >= 0xa0) ||      /* surrogate */
        (n == 4 && *p == 0xf0 && p[1] < 0x90) ||
        (n == 4 && *p == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

/* Writes [s, s + n) as a JSON string, quotes included. */
static void put_json_str(FILE *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    fputc('"', out);
    while (p < end) {
        size_t u = *p >= 0x80 ? utf8_len(p) : 1;
        if (u > (size_t)(end - p))
            u = 0;
        if (*p == '"' || *p == '\\') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else if (u == 2 && *p == 0xc2 && p[1] <= 0x9f) {
            fprintf(out, "\\u%04x", p[1]);           /* C1 control */
        } else if (u == 0) {
            fprintf(out, "\\\\x%02x", *p);          /* not UTF-8 */
            u = 1;
        } else {
            fwrite(p, 1, u, out);
        }
        p += u ? u : 1;
    }
    fputc('"', out);
}

/* Whether [s, s + n) is a JSON number of at most 15 digits. */
static bool json_number(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++, digits++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t before = i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
        if (i == before + 1)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t before = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == before)
            return false;
    }
    return i == n && digits <= 15;
}

/* Whether p starts with a key and its '=' ([A-Za-z0-9_]+=). */
static bool key_follows(const char *p)
{
    const char *k = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (*p >= '0' && *p <= '9') || *p == '_')
        p++;
    return p > k && *p == '=';
}

/* One pair of the caller's text at *pp: key [k, k + kn), value
 * [v, v + vn), quoted or not; a word without '=' has kn 0. Advances *pp.
 * Returns false at the end. */
static bool next_pair(const char **pp, const char **k, size_t *kn,
                      const char **v, size_t *vn, bool *quoted)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    if (!*p)
        return false;
    const char *word = p;
    while (*p && *p != ' ' && *p != '=')
        p++;
    *quoted = false;
    if (*p != '=') {                    /* a bare word */
        *k = word;
        *kn = 0;
        *v = word;
        *vn = (size_t)(p - word);
        *pp = p;
        return true;
    }
    *k = word;
    *kn = (size_t)(p - word);
    p++;
    if (*p == '"') {                    /* to the quote that ends the line or
                                           comes before " key=" */
        const char *q = ++p;
        while (*q && !(*q == '"' && (!q[1] || (q[1] == ' ' && key_follows(q + 2)))))
            q++;
        *v = p;
        *vn = (size_t)(q - p);
        *quoted = true;
        *pp = *q ? q + 1 : q;
        return true;
    }
    *v = p;
    while (*p && *p != ' ')
        p++;
    *vn = (size_t)(p - *v);
    *pp = p;
    return true;
}

/* Whether key [k, k + n) is one of the line's own: ts, level, event. */
static bool reserved(const char *k, size_t n)
{
    return (n == 2 && memcmp(k, "ts", 2) == 0) ||
           (n == 5 && memcmp(k, "level", 5) == 0) ||
           (n == 5 && memcmp(k, "event", 5) == 0);
}

/* The JSON form of a line (without its newline). A caller's key that is
 * one of the line's own (ts, level, event) gets a leading '_'. */
static void put_json_line(FILE *out, long long ms, const char *level,
                          const char *event, const char *text)
{
    fprintf(out, "{\"ts\":%lld,\"level\":\"%s\",\"event\":", ms, level);
    put_json_str(out, event, strlen(event));
    const char *p = text, *k, *v;
    size_t kn, vn;
    bool quoted;
    while (next_pair(&p, &k, &kn, &v, &vn, &quoted)) {
        fputc(',', out);
        if (!kn) {
            fputs("\"msg\"", out);
        } else if (reserved(k, kn)) {   /* the line's own stay as they are */
            char renamed[8] = "_";
            memcpy(renamed + 1, k, kn);
            put_json_str(out, renamed, kn + 1);
        } else {
            put_json_str(out, k, kn);
        }
        fputc(':', out);
        if (!quoted && kn && json_number(v, vn))
            fwrite(v, 1, vn, out);
        else
            put_json_str(out, v, vn);
    }
    fputc('}', out);
}

const char *sm_log_escape(const char *s, char *buf, size_t cap)
{
    size_t len = 0;
    char esc[8];
    buf[0] = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        size_t n = escape_at(p, esc);
        const char *show = esc[0] ? esc : (const char *)p;
        size_t k = esc[0] ? strlen(esc) : n;
        if (len + k >= cap)
            break;
        memcpy(buf + len, show, k);
        buf[len += k] = 0;
        p += n;
    }
    return buf;
}

void sm_log_write(const sm_log *lg, sm_log_level level, const char *event,
                  const char *fmt, ...)
{
    if (level < lg->level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    /* the caller's pairs, rendered, then written escaped: values come
     * from the wire (subjects), the format never holds a control byte */
    char local[1024], *text = local;
    va_list ap;
    va_start(ap, fmt);
    int n = fmt ? vsnprintf(local, sizeof local, fmt, ap) : 0;
    va_end(ap);
    if (n >= (int)sizeof local && (text = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!text)
        text = local;           /* out of memory: the line, cut short */
    FILE *out = lg->out ? lg->out : stderr;
    /* The line is rendered whole, then written in one go: stderr is
     * unbuffered, and piece by piece a reader of the file (a log shipper,
     * a test) could see half a line. Out of memory: piece by piece. */
    char *line = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&line, &len);
    FILE *to = mem ? mem : out;
    if (!mem)
        flockfile(out);
    if (lg->format == SM_LOG_JSON) {
        put_json_line(to, ms, level_name[level], event, n > 0 ? text : "");
    } else {
        fprintf(to, "ts=%lld level=%s event=%s", ms, level_name[level], event);
        if (n > 0) {
            fputc(' ', to);
            put_escaped(to, text);
        }
    }
    fputc('\n', to);
    if (mem) {
        bool whole = fclose(mem) == 0;
        flockfile(out);
        if (whole)
            fwrite(line, 1, len, out);
        free(line);
    }
    fflush(out);
    funlockfile(out);
    if (text != local)
        free(text);
}

/* Appends n bytes of s to buf at *len, keeping it terminated (cap > 0). */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    size_t room = cap - 1 - *len;
    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = 0;
}

/* One URL [s, end): the user information, up to the last '@' of the
 * authority (after "scheme://", before any '/', '?' or '#'), is masked. */
static void put_url(char *buf, size_t cap, size_t *len, const char *s,
                    const char *end)
{
    const char *auth = s;
    for (const char *p = s; p + 3 <= end; p++)
        if (memcmp(p, "://", 3) == 0) {
            auth = p + 3;
            break;
        }
    const char *at = NULL;
    for (const char *p = auth; p < end && !strchr("/?#", *p); p++)
        if (*p == '@')
            at = p;
    if (!at) {
        put(buf, cap, len, s, (size_t)(end - s));
        return;
    }
    put(buf, cap, len, s, (size_t)(auth - s));
    put(buf, cap, len, "***", 3);
    put(buf, cap, len, at, (size_t)(end - at));
}

const char *sm_log_url(const char *url, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (const char *s = url ? url : ""; *s;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        put_url(buf, cap, &len, s, end);
        if (!comma)
            break;
        put(buf, cap, &len, ",", 1);
        s = comma + 1;
    }
    return buf;
}
