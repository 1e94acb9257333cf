/* tokentally_fastparse: the compiled fast path of the Claude Code and Codex line parsers.
 *
 * A first run spends most of its time in the per-line Python of two adapters
 * (scripts/adapters/claude.py and codex.py). These two functions do the same work for a
 * whole file's complete lines in one call, for the common case only: every line is
 * valid UTF-8 JSON, every field the adapter reads has its usual type, every timestamp is
 * canonical and nothing is rejected. On anything else they return None *before the
 * caller's sink is touched*, and the file is parsed by the Python adapter, which stays
 * the one definition of what a line means. So this file never decides an edge case; it
 * only has to recognise one (tests/test_native_parser.py checks both paths agree).
 *
 * claude_lines(data, first_lineno, path, device, fallback_session, fallback_project,
 *              canonical_model, project_name, schema_version, adapter_version, seeds)
 * codex_lines(data, first_lineno, path, device, state, fallback_model, canonical_model,
 *             project_name, schema_version, adapter_version, seeds)
 * (``seeds``: the sink's events so far, a resumed file's earlier calls; copied)
 * -> (lines, events, versions, records, duplicates, not_a_call[, state]) or None
 *
 * rollup_by_day(events, thresholds, slot_ms) -> (by_day, rollup) or None: event_cache's
 * _by_day and Rollup.add_event over a file's events, for events of the usual shape.
 * events_jsonl(events) -> bytes or None: event_cache.event_lines (orjson, sorted keys).
 * id_hashes(ids) -> bytes or None: event_cache.id_hashes (BLAKE2b, 8 bytes, sorted).
 *
 * ``data`` ends with a newline (or is empty): only complete lines are given.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef SOURCE_HASH
#define SOURCE_HASH "unknown"
#endif

#define MAX_DEPTH 64
#define MAX_TOKENS (1LL << 40)
#define BAIL NULL

typedef struct {
    const char *s;
    Py_ssize_t n;
    int esc; /* holds an escape: ``s`` is the raw JSON, not the value */
} Str;

/* what a field held */
enum { V_ABSENT = 0, V_NULL, V_STR, V_TRUE, V_FALSE, V_OTHER };

/* ------------------------------------------------------------------ JSON scanning */

static inline const char *ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

static inline int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 sequence starting at a byte >= 0x80: its length, or 0 if it is not valid
 * UTF-8 (overlong, surrogate, beyond U+10FFFF, truncated). */
static inline int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;
        if (c == 0xED && p[1] > 0x9F) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] > 0x8F) return 0;
        return 4;
    }
    return 0;
}

/* A string at p (on its opening quote): the position after it, or NULL if it is not a
 * valid JSON string of valid UTF-8 (a \u escape of a surrogate also gives NULL: the
 * Python parsers read those differently). ``out`` gets the raw contents; ``escaped``
 * whether they hold an escape (then they are not the string's value). */
static const char *scan_string(const char *p, const char *end, Str *out, int *escaped) {
    const char *start = ++p;
    int esc = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if (out) {
                out->s = start;
                out->n = p - start;
                out->esc = esc;
            }
            if (escaped) *escaped = esc;
            return p + 1;
        }
        if (c == '\\') {
            esc = 1;
            if (p + 1 >= end) return BAIL;
            char e = p[1];
            if (e == 'u') {
                if (end - p < 6) return BAIL;
                int v = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(p[i]);
                    if (h < 0) return BAIL;
                    v = v * 16 + h;
                }
                if (v >= 0xDC00 && v <= 0xDFFF) return BAIL; /* a lone low surrogate */
                if (v >= 0xD800 && v <= 0xDBFF) {
                    /* a high surrogate: only as the first of a pair */
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return BAIL;
                    int w = 0;
                    for (int i = 8; i < 12; i++) {
                        int h = hexval(p[i]);
                        if (h < 0) return BAIL;
                        w = w * 16 + h;
                    }
                    if (w < 0xDC00 || w > 0xDFFF) return BAIL;
                    p += 6;
                }
                p += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
                p += 2;
            } else {
                return BAIL;
            }
        } else if (c < 0x20) {
            return BAIL;
        } else if (c < 0x80) {
            p++;
        } else {
            int n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (!n) return BAIL;
            p += n;
        }
    }
    return BAIL;
}

/* A number at p: the position after it, or NULL when it is not JSON's number grammar or
 * is long enough that the Python parsers might read it differently (huge or precise). */
static const char *skip_number(const char *p, const char *end) {
    const char *start = p;
    if (p < end && *p == '-') p++;
    if (p >= end) return BAIL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return BAIL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return BAIL;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return BAIL;
        const char *e0 = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p - e0 > 2) return BAIL;
    }
    if (p - start > 20) return BAIL;
    return p;
}

static const char *skip_value(const char *p, const char *end, int depth);

static const char *skip_container(const char *p, const char *end, int depth) {
    char close = *p == '{' ? '}' : ']';
    int is_obj = *p == '{';
    if (depth > MAX_DEPTH) return BAIL;
    p = ws(p + 1, end);
    if (p < end && *p == close) return p + 1;
    for (;;) {
        if (is_obj) {
            if (p >= end || *p != '"') return BAIL;
            p = scan_string(p, end, NULL, NULL);
            if (!p) return BAIL;
            p = ws(p, end);
            if (p >= end || *p != ':') return BAIL;
            p = ws(p + 1, end);
        }
        p = skip_value(p, end, depth + 1);
        if (!p) return BAIL;
        p = ws(p, end);
        if (p >= end) return BAIL;
        if (*p == ',') {
            p = ws(p + 1, end);
            continue;
        }
        if (*p == close) return p + 1;
        return BAIL;
    }
}

static const char *skip_value(const char *p, const char *end, int depth) {
    if (p >= end) return BAIL;
    switch (*p) {
        case '"':
            return scan_string(p, end, NULL, NULL);
        case '{':
        case '[':
            return skip_container(p, end, depth);
        case 't':
            return (end - p >= 4 && memcmp(p, "true", 4) == 0) ? p + 4 : BAIL;
        case 'f':
            return (end - p >= 5 && memcmp(p, "false", 5) == 0) ? p + 5 : BAIL;
        case 'n':
            return (end - p >= 4 && memcmp(p, "null", 4) == 0) ? p + 4 : BAIL;
        default:
            return skip_number(p, end);
    }
}

/* A value that is kept as a string (``kind`` V_STR; ``out->esc`` if it holds escapes),
 * null, true, false, or anything else (V_OTHER, skipped). */
static const char *read_scalar(const char *p, const char *end, Str *out, int *kind, int depth) {
    if (p >= end) return BAIL;
    if (*p == '"') {
        p = scan_string(p, end, out, NULL);
        if (!p) return BAIL;
        *kind = V_STR;
        return p;
    }
    if (*p == 'n') {
        *kind = V_NULL;
    } else if (*p == 't') {
        *kind = V_TRUE;
    } else if (*p == 'f') {
        *kind = V_FALSE;
    } else {
        *kind = V_OTHER;
    }
    return skip_value(p, end, depth);
}

/* A token count: a plain non-negative integer of at most MAX_TOKENS (anything else, a
 * null included, is the Python parser's to judge). */
static const char *read_count(const char *p, const char *end, long long *out) {
    const char *start = p;
    long long v = 0;
    if (p >= end || *p < '0' || *p > '9') return BAIL;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9') return BAIL;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - start >= 15) return BAIL;
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return BAIL;
    if (v > MAX_TOKENS) return BAIL;
    *out = v;
    return p;
}

/* Object iteration at a level whose fields are read. obj_open: p on '{'; returns the
 * position of the first key's quote, or of the char after '}' with *empty set. */
static const char *obj_open(const char *p, const char *end, int *more) {
    p = ws(p + 1, end);
    if (p < end && *p == '}') {
        *more = 0;
        return p + 1;
    }
    *more = 1;
    return p;
}

/* p on a key's quote: reads the key (an escaped key gives NULL: it might spell a field
 * name) and the colon; returns the value's position. */
static const char *obj_key(const char *p, const char *end, Str *key) {
    int esc;
    if (p >= end || *p != '"') return BAIL;
    p = scan_string(p, end, key, &esc);
    if (!p || esc) return BAIL;
    p = ws(p, end);
    if (p >= end || *p != ':') return BAIL;
    return ws(p + 1, end);
}

/* After a value: the next key's position (*more = 1) or the position after '}'. */
static const char *obj_next(const char *p, const char *end, int *more) {
    p = ws(p, end);
    if (p >= end) return BAIL;
    if (*p == ',') {
        *more = 1;
        return ws(p + 1, end);
    }
    if (*p == '}') {
        *more = 0;
        return p + 1;
    }
    return BAIL;
}

#define KEY_IS(k, lit) ((k).n == (Py_ssize_t)(sizeof(lit) - 1) && memcmp((k).s, lit, sizeof(lit) - 1) == 0)
/* in a field reader: a field read twice in one object (the parsers may keep either copy)
 * gives NULL */
#define ONCE(bit) \
    do { \
        if (*seen & (bit)) return BAIL; \
        *seen |= (bit); \
    } while (0)

/* Reads the value of one field (at p) whose name is ``key`` into ``ctx``, or skips it;
 * returns the position after the value, NULL to leave the line to Python. ``seen`` is
 * the object's ONCE mask. */
typedef const char *(*FieldReader)(const char *p, const char *end, Str key, void *ctx, unsigned *seen);

/* An object (p on '{') whose fields go to ``field``: the position after its '}'. Inlined
 * into each caller, the reader is a direct call. */
static inline const char *read_object(const char *p, const char *end, FieldReader field, void *ctx) {
    int more;
    unsigned seen = 0;
    Str key;
    p = obj_open(p, end, &more);
    while (more) {
        if (!(p = obj_key(p, end, &key)) || !(p = field(p, end, key, ctx, &seen)) || !(p = obj_next(p, end, &more))) return BAIL;
    }
    return p;
}

/* A whole line that is one object (whitespace around it allowed), read by ``field``. */
static const char *read_line(const char *p, const char *end, FieldReader field, void *ctx) {
    p = ws(p, end);
    if (p >= end || *p != '{' || !(p = read_object(p, end, field, ctx))) return BAIL;
    p = ws(p, end);
    return p == end ? p : BAIL;
}

/* an object read by ``field``, or null (``*present`` 0); anything else gives NULL */
static const char *read_object_or_null(const char *p, const char *end, FieldReader field, void *ctx, int *present, int depth) {
    if (p < end && *p == '{') {
        *present = 1;
        return read_object(p, end, field, ctx);
    }
    if (p < end && *p == 'n') return skip_value(p, end, depth);
    return BAIL;
}

/* ------------------------------------------------------------------ shared helpers */

static const char *DAYS_IN_MONTH = "\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f";

/* A canonical timestamp (``2026-08-06T17:49:45.767Z``, a real date and time of the years
 * 1970-2999): what normalize_timestamp returns unchanged. */
static int canonical_timestamp(Str t) {
    const char *s = t.s;
    if (t.n != 24) return 0;
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd') {
            if (s[i] < '0' || s[i] > '9') return 0;
        } else if (s[i] != shape[i]) {
            return 0;
        }
    }
#define NUM2(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    int year = NUM2(0) * 100 + NUM2(2), month = NUM2(5), day = NUM2(8);
    if (year < 1970 || year > 2999 || month < 1 || month > 12 || day < 1) return 0;
    int dim = DAYS_IN_MONTH[month - 1];
    if (month == 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))) dim = 29;
    if (day > dim || NUM2(11) > 23 || NUM2(14) > 59 || NUM2(17) > 59) return 0;
#undef NUM2
    return 1;
}

static inline int is_blank(const char *p, const char *end) {
    for (; p < end; p++) {
        char c = *p;
        if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c')) return 0;
    }
    return 1;
}

/* the value of a JSON string (scan_string validated it: escapes, UTF-8, surrogate pairs) */
static PyObject *str_of(Str s) {
    if (!s.esc) return PyUnicode_DecodeUTF8(s.s, s.n, "strict");
    char *buf = PyMem_Malloc(s.n ? s.n : 1), *o = buf; /* never longer than the raw JSON */
    if (!buf) return PyErr_NoMemory();
    const char *p = s.s, *end = s.s + s.n;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        char e = p[1];
        if (e != 'u') {
            *o++ = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
            p += 2;
            continue;
        }
        unsigned v = 0;
        for (int i = 2; i < 6; i++) v = v * 16 + (unsigned)hexval(p[i]);
        p += 6;
        if (v >= 0xD800 && v <= 0xDBFF) {
            unsigned w = 0;
            for (int i = 2; i < 6; i++) w = w * 16 + (unsigned)hexval(p[i]);
            p += 6;
            v = 0x10000 + ((v - 0xD800) << 10) + (w - 0xDC00);
        }
        if (v < 0x80) {
            *o++ = (char)v;
        } else if (v < 0x800) {
            *o++ = (char)(0xC0 | (v >> 6));
            *o++ = (char)(0x80 | (v & 0x3F));
        } else if (v < 0x10000) {
            *o++ = (char)(0xE0 | (v >> 12));
            *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
            *o++ = (char)(0x80 | (v & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (v >> 18));
            *o++ = (char)(0x80 | ((v >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((v >> 6) & 0x3F));
            *o++ = (char)(0x80 | (v & 0x3F));
        }
    }
    PyObject *r = PyUnicode_DecodeUTF8(buf, o - buf, "strict");
    PyMem_Free(buf);
    return r;
}

/* The last raw value and the object made of it: consecutive lines repeat a session, a
 * model, a working directory. */
typedef struct {
    const char *s;
    Py_ssize_t n;
    PyObject *obj;
} Memo;

static PyObject *memo_str(Memo *m, Str s) {
    if (m->obj && m->n == s.n && memcmp(m->s, s.s, s.n) == 0) return m->obj; /* the same raw JSON, the same value */
    PyObject *o = str_of(s);
    if (!o) return NULL;
    Py_XDECREF(m->obj);
    m->obj = o;
    m->s = s.s;
    m->n = s.n;
    return o;
}

/* a Python function's value for the last argument object given */
typedef struct {
    PyObject *arg;
    PyObject *value;
} Applied;

static PyObject *apply_memo(Applied *m, PyObject *fn, PyObject *arg) {
    if (m->value && m->arg == arg) return m->value;
    PyObject *v = PyObject_CallOneArg(fn, arg);
    if (!v) return NULL;
    Py_XDECREF(m->value);
    Py_XDECREF(m->arg);
    Py_INCREF(arg);
    m->arg = arg;
    m->value = v;
    return v;
}

static void applied_clear(Applied *m) {
    Py_CLEAR(m->arg);
    Py_CLEAR(m->value);
}

/* interned keys of an event */
static PyObject *K_schema_version, *K_id, *K_provider, *K_model, *K_raw_model, *K_session_id, *K_project, *K_timestamp,
    *K_usage, *K_total_tokens, *K_source_file, *K_source_line, *K_adapter, *K_adapter_version, *K_source_version,
    *K_device, *K_model_inferred, *K_usage_keys[8], *S_claude, *S_codex, *S_unknown;

typedef struct {
    PyObject *events;   /* id -> event, the sink's dict */
    PyObject *versions; /* version -> count */
    long long records, duplicates, not_a_call;
    PyObject *path, *device, *schema_version, *adapter_version, *provider;
} Sink;

static int set_steal(PyObject *d, PyObject *k, PyObject *v) {
    if (!v) return -1;
    int r = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return r;
}

/* make_event: the same keys in the same order (``usage`` in USAGE_KEYS order) */
static PyObject *build_event(Sink *k, PyObject *id, PyObject *model, PyObject *raw_model, PyObject *session, PyObject *project,
                             PyObject *timestamp, const long long u[8], Py_ssize_t lineno, PyObject *source_version, int inferred) {
    PyObject *usage = PyDict_New();
    if (!usage) return NULL;
    for (int i = 0; i < 8; i++) {
        if (set_steal(usage, K_usage_keys[i], PyLong_FromLongLong(u[i])) < 0) {
            Py_DECREF(usage);
            return NULL;
        }
    }
    long long total = u[0] + u[2] + u[3] + u[1] + u[4] + u[5];
    PyObject *ev = PyDict_New();
    if (!ev) {
        Py_DECREF(usage);
        return NULL;
    }
    if (PyDict_SetItem(ev, K_schema_version, k->schema_version) < 0 || PyDict_SetItem(ev, K_id, id) < 0 ||
        PyDict_SetItem(ev, K_provider, k->provider) < 0 || PyDict_SetItem(ev, K_model, model) < 0 ||
        PyDict_SetItem(ev, K_raw_model, raw_model) < 0 || PyDict_SetItem(ev, K_session_id, session) < 0 ||
        PyDict_SetItem(ev, K_project, project) < 0 || PyDict_SetItem(ev, K_timestamp, timestamp) < 0 ||
        set_steal(ev, K_usage, usage) < 0 || set_steal(ev, K_total_tokens, PyLong_FromLongLong(total)) < 0 ||
        PyDict_SetItem(ev, K_source_file, k->path) < 0 || set_steal(ev, K_source_line, PyLong_FromSsize_t(lineno)) < 0 ||
        PyDict_SetItem(ev, K_adapter, k->provider) < 0 || PyDict_SetItem(ev, K_adapter_version, k->adapter_version) < 0 ||
        PyDict_SetItem(ev, K_source_version, source_version) < 0 || PyDict_SetItem(ev, K_device, k->device) < 0 ||
        (inferred && PyDict_SetItem(ev, K_model_inferred, Py_True) < 0)) {
        Py_DECREF(ev);
        return NULL;
    }
    return ev;
}

static long long event_total(PyObject *ev) {
    PyObject *t = PyDict_GetItemWithError(ev, K_total_tokens);
    return t ? PyLong_AsLongLong(t) : -1;
}

/* FileSink.event for an event that passes its checks: one per id, a later copy replaces
 * the kept one only when its total is larger (steals ``ev``) */
static int sink_event(Sink *k, PyObject *id, PyObject *ev, long long total) {
    k->records++;
    PyObject *kept = PyDict_GetItemWithError(k->events, id);
    if (!kept) {
        if (PyErr_Occurred()) {
            Py_DECREF(ev);
            return -1;
        }
        return set_steal(k->events, id, ev);
    }
    k->duplicates++;
    if (total > event_total(kept)) return set_steal(k->events, id, ev);
    Py_DECREF(ev);
    return 0;
}

static int saw_version(Sink *k, PyObject *version) {
    if (!version || PyUnicode_GET_LENGTH(version) == 0) return 0;
    PyObject *n = PyDict_GetItemWithError(k->versions, version);
    if (!n && PyErr_Occurred()) return -1;
    long long c = n ? PyLong_AsLongLong(n) : 0;
    return set_steal(k->versions, version, PyLong_FromLongLong(c + 1));
}

static int sink_init(Sink *k, PyObject *seeds, PyObject *path, PyObject *device, PyObject *schema_version, PyObject *adapter_version,
                     PyObject *provider) {
    memset(k, 0, sizeof(*k));
    k->events = PyDict_Copy(seeds); /* a copy: the caller's stays as it is if the file is left */
    k->versions = PyDict_New();
    k->path = path;
    k->device = device;
    k->schema_version = schema_version;
    k->adapter_version = adapter_version;
    k->provider = provider;
    return (k->events && k->versions) ? 0 : -1;
}

static void sink_clear(Sink *k) {
    Py_CLEAR(k->events);
    Py_CLEAR(k->versions);
}

/* ------------------------------------------------------------------ Claude Code */

typedef struct {
    int message, usage; /* present as objects */
    int msg_id, model, request_id, uuid, version, timestamp, session, cwd, api_error;
    Str s_msg_id, s_model, s_request_id, s_uuid, s_version, s_timestamp, s_session, s_cwd;
    long long input, output, cache_read, five_min, one_hour, cache_write;
    int cache_write_set;
} ClaudeLine;

static const char *claude_cache_creation_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    ClaudeLine *r = ctx;
    if (KEY_IS(key, "ephemeral_5m_input_tokens")) {
        ONCE(1);
        return read_count(p, end, &r->five_min);
    }
    if (KEY_IS(key, "ephemeral_1h_input_tokens")) {
        ONCE(2);
        return read_count(p, end, &r->one_hour);
    }
    return skip_value(p, end, 4);
}

static const char *claude_usage_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    ClaudeLine *r = ctx;
    int ignored;
    if (KEY_IS(key, "input_tokens")) {
        ONCE(1);
        return read_count(p, end, &r->input);
    }
    if (KEY_IS(key, "output_tokens")) {
        ONCE(2);
        return read_count(p, end, &r->output);
    }
    if (KEY_IS(key, "cache_read_input_tokens")) {
        ONCE(4);
        return read_count(p, end, &r->cache_read);
    }
    if (KEY_IS(key, "cache_creation_input_tokens")) {
        ONCE(8);
        if (p < end && *p == 'n') return skip_value(p, end, 3); /* null: the 5m + 1h split's sum */
        r->cache_write_set = 1;
        return read_count(p, end, &r->cache_write);
    }
    if (KEY_IS(key, "cache_creation")) {
        ONCE(16);
        return read_object_or_null(p, end, claude_cache_creation_field, r, &ignored, 3);
    }
    return skip_value(p, end, 3);
}

static const char *claude_message_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    ClaudeLine *r = ctx;
    if (KEY_IS(key, "id")) {
        ONCE(1);
        return read_scalar(p, end, &r->s_msg_id, &r->msg_id, 2);
    }
    if (KEY_IS(key, "model")) {
        ONCE(2);
        return read_scalar(p, end, &r->s_model, &r->model, 2);
    }
    if (KEY_IS(key, "usage")) {
        ONCE(4);
        return read_object_or_null(p, end, claude_usage_field, r, &r->usage, 2);
    }
    return skip_value(p, end, 2);
}

static const char *claude_line_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    ClaudeLine *r = ctx;
    Str ignored;
    if (KEY_IS(key, "message")) {
        ONCE(1);
        return read_object_or_null(p, end, claude_message_field, r, &r->message, 1);
    }
    if (KEY_IS(key, "requestId")) {
        ONCE(2);
        return read_scalar(p, end, &r->s_request_id, &r->request_id, 1);
    }
    if (KEY_IS(key, "uuid")) {
        ONCE(4);
        return read_scalar(p, end, &r->s_uuid, &r->uuid, 1);
    }
    if (KEY_IS(key, "version")) {
        ONCE(8);
        return read_scalar(p, end, &r->s_version, &r->version, 1);
    }
    if (KEY_IS(key, "timestamp")) {
        ONCE(16);
        return read_scalar(p, end, &r->s_timestamp, &r->timestamp, 1);
    }
    if (KEY_IS(key, "sessionId")) {
        ONCE(32);
        return read_scalar(p, end, &r->s_session, &r->session, 1);
    }
    if (KEY_IS(key, "cwd")) {
        ONCE(64);
        return read_scalar(p, end, &r->s_cwd, &r->cwd, 1);
    }
    if (KEY_IS(key, "isApiErrorMessage")) {
        ONCE(128);
        return read_scalar(p, end, &ignored, &r->api_error, 1);
    }
    return skip_value(p, end, 1);
}

/* One line that holds ``"usage"``: its fields, or NULL when the Python parser decides. */
static const char *claude_line(const char *p, const char *end, ClaudeLine *r) {
    memset(r, 0, sizeof(*r));
    if (!(p = read_line(p, end, claude_line_field, r))) return BAIL;
    /* the fields kept as values must be strings or null (the Python parser judges others) */
    if (r->msg_id == V_OTHER || r->msg_id == V_TRUE || r->msg_id == V_FALSE) return BAIL;
    if (r->model != V_ABSENT && r->model != V_NULL && r->model != V_STR) return BAIL;
    int *kinds[] = {&r->request_id, &r->uuid, &r->version, &r->session, &r->cwd};
    for (int i = 0; i < 5; i++) {
        if (*kinds[i] != V_ABSENT && *kinds[i] != V_NULL && *kinds[i] != V_STR) return BAIL;
    }
    return p;
}

typedef struct {
    PyObject *id;
    long long total;
    Py_ssize_t lineno;
    Str session, cwd, model, timestamp;
    int has_session, has_cwd, has_model;
    PyObject *version; /* borrowed from the memo until emitted: kept as a new reference */
    long long u[8];
} ClaudeCall;

typedef struct {
    Sink sink;
    PyObject *fallback_session, *fallback_project, *canonical_model, *project_name;
    Memo session, model, cwd, version;
    Applied canonical, project;
} ClaudeRun;

static void claude_call_clear(ClaudeCall *c) {
    Py_CLEAR(c->id);
    Py_CLEAR(c->version);
}

static int claude_emit(ClaudeRun *run, ClaudeCall *c) {
    /* every object here is borrowed from a memo (each memo is asked once) */
    PyObject *session = c->has_session ? memo_str(&run->session, c->session) : run->fallback_session;
    PyObject *raw_model = c->has_model ? memo_str(&run->model, c->model) : Py_None;
    PyObject *cwd = c->has_cwd ? memo_str(&run->cwd, c->cwd) : Py_None;
    if (!session || !raw_model || !cwd) return -1;
    PyObject *model = apply_memo(&run->canonical, run->canonical_model, raw_model);
    if (!model) return -1;
    PyObject *project = apply_memo(&run->project, run->project_name, cwd);
    if (!project) return -1;
    int truth = PyObject_IsTrue(project); /* project_name(cwd) or the project of the path */
    if (truth < 0) return -1;
    if (!truth) project = run->fallback_project;
    PyObject *raw_shown = (raw_model != Py_None && PyUnicode_GET_LENGTH(raw_model) > 0) ? raw_model : S_unknown;
    PyObject *ts = PyUnicode_FromStringAndSize(c->timestamp.s, c->timestamp.n);
    if (!ts) return -1;
    PyObject *ev = build_event(&run->sink, c->id, model, raw_shown, session, project, ts, c->u, c->lineno,
                               c->version ? c->version : Py_None, 0);
    Py_DECREF(ts);
    return ev ? sink_event(&run->sink, c->id, ev, c->total) : -1;
}

/* the id Claude Code's call gets (claude.parse_lines) */
static PyObject *claude_event_id(ClaudeLine *r, PyObject *path, Py_ssize_t lineno) {
    char small[256];
    if (r->msg_id == V_STR && r->s_msg_id.n > 0) {
        int with_request = r->request_id == V_STR && r->s_request_id.n > 0;
        if (r->s_msg_id.esc || (with_request && r->s_request_id.esc)) {
            PyObject *m = str_of(r->s_msg_id), *q = with_request ? str_of(r->s_request_id) : NULL, *id = NULL;
            if (m && (q || !with_request)) id = q ? PyUnicode_FromFormat("claude:%U:%U", m, q) : PyUnicode_FromFormat("claude:%U", m);
            Py_XDECREF(m);
            Py_XDECREF(q);
            return id;
        }
        Py_ssize_t n = 7 + r->s_msg_id.n + (with_request ? 1 + r->s_request_id.n : 0);
        char *buf = n <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc(n);
        if (!buf) return PyErr_NoMemory();
        memcpy(buf, "claude:", 7);
        memcpy(buf + 7, r->s_msg_id.s, r->s_msg_id.n);
        if (with_request) {
            buf[7 + r->s_msg_id.n] = ':';
            memcpy(buf + 8 + r->s_msg_id.n, r->s_request_id.s, r->s_request_id.n);
        }
        PyObject *id = PyUnicode_DecodeUTF8(buf, n, "strict");
        if (buf != small) PyMem_Free(buf);
        return id;
    }
    if (r->uuid == V_STR && r->s_uuid.n > 0) {
        PyObject *u = str_of(r->s_uuid);
        if (!u) return NULL;
        PyObject *id = PyUnicode_FromFormat("claude:line:%U", u);
        Py_DECREF(u);
        return id;
    }
    return PyUnicode_FromFormat("claude:%U:%zd", path, lineno);
}

static PyObject *claude_lines(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t first_lineno;
    PyObject *path, *device, *fallback_session, *fallback_project, *canonical_model, *project_name, *schema_version,
        *adapter_version;
    PyObject *seeds;
    if (!PyArg_ParseTuple(args, "y*nUUOOOOOUO!", &buf, &first_lineno, &path, &device, &fallback_session, &fallback_project,
                          &canonical_model, &project_name, &schema_version, &adapter_version, &PyDict_Type, &seeds))
        return NULL;
    ClaudeRun run;
    memset(&run, 0, sizeof(run));
    run.fallback_session = fallback_session;
    run.fallback_project = fallback_project;
    run.canonical_model = canonical_model;
    run.project_name = project_name;
    PyObject *result = NULL;
    ClaudeCall pending, call;
    int has_pending = 0;
    memset(&pending, 0, sizeof(pending));
    memset(&call, 0, sizeof(call));
    if (sink_init(&run.sink, seeds, path, device, schema_version, adapter_version, S_claude) < 0) goto fail;
    const char *p = buf.buf, *end = p + buf.len;
    Py_ssize_t lineno = first_lineno;
    for (; p < end; lineno++) {
        const char *eol = memchr(p, '\n', end - p);
        if (!eol) break; /* only complete lines are given: nothing follows the last newline */
        const char *line = p;
        p = eol + 1;
        Py_ssize_t n = eol - line;
        if (!memmem(line, n, "\"usage\"", 7)) {
            /* the pre-filter: an object-shaped line without a usage block is not a call */
            if (n > 0 && line[0] == '{' && line[n - 1] == '}') {
                run.sink.records++;
                run.sink.not_a_call++;
                continue;
            }
            if (is_blank(line, eol)) continue;
            goto bail;
        }
        ClaudeLine r;
        if (!claude_line(line, eol, &r)) goto bail;
        if (r.model == V_STR && r.s_model.esc) goto bail; /* compared with "<synthetic>" below */
        if (!r.message || !r.usage || (r.model == V_STR && KEY_IS(r.s_model, "<synthetic>")) || r.api_error == V_TRUE) {
            run.sink.records++;
            run.sink.not_a_call++;
            continue;
        }
        long long cache_write = r.cache_write_set ? r.cache_write : r.five_min + r.one_hour;
        long long total = r.input + r.output + cache_write + r.cache_read;
        if (!total) {
            run.sink.records++;
            run.sink.not_a_call++;
            continue;
        }
        if (cache_write > MAX_TOKENS) goto bail; /* a rejection: the Python parser says why */
        PyObject *version = NULL;
        if (r.version == V_STR) {
            if (!(version = memo_str(&run.version, r.s_version))) goto fail;
            if (saw_version(&run.sink, version) < 0) goto fail;
        }
        if (r.timestamp != V_STR || !canonical_timestamp(r.s_timestamp)) goto bail;
        memset(&call, 0, sizeof(call));
        if (!(call.id = claude_event_id(&r, path, lineno))) goto fail;
        call.total = total;
        call.lineno = lineno;
        call.has_session = r.session == V_STR && r.s_session.n > 0;
        call.session = r.s_session;
        call.has_cwd = r.cwd == V_STR;
        call.cwd = r.s_cwd;
        call.has_model = r.model == V_STR;
        call.model = r.s_model;
        call.timestamp = r.s_timestamp;
        call.version = version;
        Py_XINCREF(version);
        call.u[0] = r.input;
        call.u[1] = r.output;
        call.u[2] = cache_write;
        call.u[3] = r.cache_read;
        call.u[7] = r.one_hour < cache_write ? r.one_hour : cache_write;
        if (has_pending) {
            int same = PyUnicode_Compare(pending.id, call.id);
            if (same == -1 && PyErr_Occurred()) goto fail;
            if (same == 0) {
                /* the next streaming snapshot of the call just read: keep the larger */
                run.sink.records++;
                run.sink.duplicates++;
                if (total > pending.total) {
                    claude_call_clear(&pending);
                    pending = call;
                } else {
                    claude_call_clear(&call);
                }
                memset(&call, 0, sizeof(call));
                continue;
            }
            if (claude_emit(&run, &pending) < 0) goto fail;
            claude_call_clear(&pending);
            has_pending = 0;
        }
        PyObject *kept = PyDict_GetItemWithError(run.sink.events, call.id);
        if (!kept && PyErr_Occurred()) goto fail;
        if (kept && total <= event_total(kept)) {
            run.sink.records++;
            run.sink.duplicates++;
            claude_call_clear(&call);
            continue;
        }
        pending = call;
        has_pending = 1;
        memset(&call, 0, sizeof(call));
    }
    if (has_pending) {
        if (claude_emit(&run, &pending) < 0) goto fail;
    }
    result = Py_BuildValue("(nOOLLL)", lineno - first_lineno, run.sink.events, run.sink.versions, run.sink.records,
                           run.sink.duplicates, run.sink.not_a_call);
    goto done;
bail:
    result = Py_None;
    Py_INCREF(result);
    goto done;
fail:
    result = NULL;
done:
    claude_call_clear(&pending);
    claude_call_clear(&call);
    sink_clear(&run.sink);
    Py_XDECREF(run.session.obj);
    Py_XDECREF(run.model.obj);
    Py_XDECREF(run.cwd.obj);
    Py_XDECREF(run.version.obj);
    applied_clear(&run.canonical);
    applied_clear(&run.project);
    PyBuffer_Release(&buf);
    return result;
}

/* ------------------------------------------------------------------ Codex */

typedef struct {
    int present; /* an object (not null) */
    long long v[4]; /* input, cached_input, output, reasoning_output */
} Counts;

typedef struct {
    int type, timestamp, payload;
    Str s_type, s_timestamp;
    /* payload */
    int p_type, p_model, p_cwd, p_id, p_cli_version, p_timestamp, p_forked, info;
    Str s_p_type, s_p_model, s_p_cwd, s_p_id, s_p_cli_version, s_p_timestamp, s_p_forked;
    Counts total, last;
} CodexLine;

static const char *codex_counts_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    Counts *c = ctx;
    int i = KEY_IS(key, "input_tokens") ? 0 : KEY_IS(key, "cached_input_tokens") ? 1 : KEY_IS(key, "output_tokens") ? 2
          : KEY_IS(key, "reasoning_output_tokens") ? 3 : -1;
    if (i < 0) return skip_value(p, end, 4);
    ONCE(1u << i);
    return read_count(p, end, &c->v[i]);
}

static const char *codex_info_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    CodexLine *r = ctx;
    if (KEY_IS(key, "total_token_usage")) {
        ONCE(1);
        return read_object_or_null(p, end, codex_counts_field, &r->total, &r->total.present, 4);
    }
    if (KEY_IS(key, "last_token_usage")) {
        ONCE(2);
        return read_object_or_null(p, end, codex_counts_field, &r->last, &r->last.present, 4);
    }
    return skip_value(p, end, 3);
}

/* session_meta's ``source``: only its falsy case is read here (a subagent spawn is a
 * fork: the Python parser reads that one) */
static const char *codex_source_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    return KEY_IS(key, "subagent") ? BAIL : skip_value(p, end, 3);
}

static const char *codex_payload_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    CodexLine *r = ctx;
    if (KEY_IS(key, "type")) {
        ONCE(1);
        return read_scalar(p, end, &r->s_p_type, &r->p_type, 2);
    }
    if (KEY_IS(key, "info")) {
        ONCE(2);
        int present = 0;
        p = read_object_or_null(p, end, codex_info_field, r, &present, 2);
        r->info = present ? V_OTHER : V_NULL;
        return p;
    }
    if (KEY_IS(key, "model")) {
        ONCE(4);
        return read_scalar(p, end, &r->s_p_model, &r->p_model, 2);
    }
    if (KEY_IS(key, "cwd")) {
        ONCE(8);
        return read_scalar(p, end, &r->s_p_cwd, &r->p_cwd, 2);
    }
    if (KEY_IS(key, "id")) {
        ONCE(16);
        return read_scalar(p, end, &r->s_p_id, &r->p_id, 2);
    }
    if (KEY_IS(key, "cli_version")) {
        ONCE(32);
        return read_scalar(p, end, &r->s_p_cli_version, &r->p_cli_version, 2);
    }
    if (KEY_IS(key, "timestamp")) {
        ONCE(64);
        return read_scalar(p, end, &r->s_p_timestamp, &r->p_timestamp, 2);
    }
    if (KEY_IS(key, "forked_from_id")) {
        ONCE(128);
        return read_scalar(p, end, &r->s_p_forked, &r->p_forked, 2);
    }
    if (KEY_IS(key, "source")) {
        ONCE(256);
        return (p < end && *p == '{') ? read_object(p, end, codex_source_field, NULL) : skip_value(p, end, 2);
    }
    return skip_value(p, end, 2);
}

static const char *codex_line_field(const char *p, const char *end, Str key, void *ctx, unsigned *seen) {
    CodexLine *r = ctx;
    if (KEY_IS(key, "type")) {
        ONCE(1);
        return read_scalar(p, end, &r->s_type, &r->type, 1);
    }
    if (KEY_IS(key, "timestamp")) {
        ONCE(2);
        return read_scalar(p, end, &r->s_timestamp, &r->timestamp, 1);
    }
    if (KEY_IS(key, "payload")) {
        ONCE(4);
        /* an object; anything else is a line without a payload (not a call) */
        if (p < end && *p == '{') {
            r->payload = 1;
            return read_object(p, end, codex_payload_field, r);
        }
        return skip_value(p, end, 1);
    }
    return skip_value(p, end, 1);
}

static const char *codex_line(const char *p, const char *end, CodexLine *r) {
    memset(r, 0, sizeof(*r));
    return read_line(p, end, codex_line_field, r);
}

/* earliest of the three record-type markers wholly inside line[0:window] (codex._WANTED) */
static int codex_marker(const char *line, Py_ssize_t window) {
    static const struct {
        const char *s;
        int n, kind;
    } marks[] = {{"\"token_count\"", 13, 1}, {"\"turn_context\"", 14, 2}, {"\"session_meta\"", 14, 3}};
    const char *p = line, *end = line + window;
    while (p < end && (p = memchr(p, '"', end - p))) {
        for (int i = 0; i < 3; i++) {
            if (end - p >= marks[i].n && memcmp(p, marks[i].s, marks[i].n) == 0) return marks[i].kind;
        }
        p++;
    }
    return 0;
}

typedef struct {
    Sink sink;
    PyObject *canonical_model, *project_name, *fallback_model;
    PyObject *session_id, *model, *cwd, *version; /* owned; model/cwd/version may be Py_None */
    int has_totals;
    long long totals[4];
    int has_fork;
    char fork_ts[20];
    Py_ssize_t fork_n;
    Applied canonical, project;
} CodexRun;

static void replace_ref(PyObject **slot, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
}

/* a state string: the object given, or one made from the line's bytes */
static int set_state_str(PyObject **slot, Str s) {
    PyObject *o = str_of(s);
    if (!o) return -1;
    Py_XSETREF(*slot, o);
    return 0;
}

/* the length in bytes of ``s``'s first ``max`` characters when they are ASCII (a Python
 * slice counts characters), -1 if they are not */
static Py_ssize_t ascii_prefix(Str s, Py_ssize_t max) {
    Py_ssize_t n = s.n < max ? s.n : max;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((unsigned char)s.s[i] >= 0x80) return -1;
    }
    return n;
}

static int codex_call(CodexRun *run, CodexLine *r, Py_ssize_t lineno, int *bail) {
    Counts *total = r->total.present ? &r->total : NULL, *last = r->last.present ? &r->last : NULL;
    if (!total && !last) {
        *bail = 1; /* a rejection */
        return 0;
    }
    if (run->has_fork && run->fork_n > 0 && r->timestamp == V_STR && total) {
        Py_ssize_t n = ascii_prefix(r->s_timestamp, 19);
        if (n < 0) {
            *bail = 1;
            return 0;
        }
        if (n == run->fork_n && memcmp(r->s_timestamp.s, run->fork_ts, n) == 0) {
            memcpy(run->totals, total->v, sizeof(run->totals));
            run->has_totals = 1;
            run->sink.records++;
            run->sink.duplicates++;
            return 0;
        }
    }
    long long delta[4];
    if (total) {
        long long *prev = run->totals, *now = total->v;
        if (run->has_totals && now[0] == prev[0] && now[1] == prev[1] && now[2] == prev[2] && now[3] == prev[3]) {
            run->sink.records++;
            run->sink.duplicates++;
            return 0;
        }
        if (!run->has_totals) {
            memcpy(delta, now, sizeof(delta));
        } else if (now[0] >= prev[0] && now[1] >= prev[1] && now[2] >= prev[2] && now[3] >= prev[3]) {
            for (int i = 0; i < 4; i++) delta[i] = now[i] - prev[i];
        } else {
            memcpy(delta, last ? last->v : now, sizeof(delta));
        }
        memcpy(run->totals, now, sizeof(run->totals));
        run->has_totals = 1;
    } else {
        memcpy(delta, last->v, sizeof(delta));
    }
    long long inp = delta[0], cached = delta[1], out = delta[2], reasoning = delta[3];
    if (!(inp || out)) {
        run->sink.records++;
        run->sink.not_a_call++;
        return 0;
    }
    if (r->timestamp != V_STR || !canonical_timestamp(r->s_timestamp) || cached > inp || reasoning > out) {
        *bail = 1;
        return 0;
    }
    PyObject *id = total ? PyUnicode_FromFormat("codex:%U:%lld:%lld", run->session_id, total->v[0], total->v[2])
                         : PyUnicode_FromFormat("codex:%U:L%zd", run->session_id, lineno);
    if (!id) return -1;
    int inferred = run->model == Py_None;
    PyObject *raw_model = inferred ? run->fallback_model : run->model;
    PyObject *model = apply_memo(&run->canonical, run->canonical_model, raw_model);
    PyObject *project = model ? apply_memo(&run->project, run->project_name, run->cwd) : NULL;
    PyObject *ts = project ? PyUnicode_FromStringAndSize(r->s_timestamp.s, r->s_timestamp.n) : NULL;
    if (!ts) {
        Py_DECREF(id);
        return -1;
    }
    long long u[8] = {inp - cached, out, 0, cached, 0, 0, reasoning, 0};
    PyObject *ev = build_event(&run->sink, id, model, raw_model, run->session_id, project, ts, u, lineno, run->version, inferred);
    Py_DECREF(ts);
    int rc = ev ? sink_event(&run->sink, id, ev, u[0] + u[1] + u[3]) : -1;
    Py_DECREF(id);
    return rc;
}

static int codex_session_meta(CodexRun *run, CodexLine *r, int *bail) {
    if (r->p_id == V_STR && r->s_p_id.n > 0 && set_state_str(&run->session_id, r->s_p_id) < 0) return -1;
    if (r->p_cwd == V_STR && r->s_p_cwd.n > 0 && set_state_str(&run->cwd, r->s_p_cwd) < 0) return -1;
    if (r->p_cli_version == V_STR && set_state_str(&run->version, r->s_p_cli_version) < 0) return -1;
    int forked;
    if (r->p_forked == V_ABSENT || r->p_forked == V_NULL || r->p_forked == V_FALSE) {
        forked = 0;
    } else if (r->p_forked == V_STR) {
        forked = r->s_p_forked.n > 0;
    } else if (r->p_forked == V_TRUE) {
        forked = 1;
    } else {
        *bail = 1; /* a number, list or object: its truth is the Python parser's to judge */
        return 0;
    }
    if (forked) {
        /* obj["timestamp"] or payload["timestamp"], then its first 19 characters */
        Str ts;
        int kind;
        if (r->timestamp == V_STR && r->s_timestamp.n > 0) {
            ts = r->s_timestamp;
            kind = V_STR;
        } else if (r->timestamp == V_STR || r->timestamp == V_ABSENT || r->timestamp == V_NULL || r->timestamp == V_FALSE) {
            ts = r->s_p_timestamp;
            kind = r->p_timestamp;
        } else {
            *bail = 1;
            return 0;
        }
        if (kind == V_STR) {
            Py_ssize_t n = ascii_prefix(ts, 19);
            if (n < 0) {
                *bail = 1;
                return 0;
            }
            memcpy(run->fork_ts, ts.s, n);
            run->fork_n = n;
            run->has_fork = 1;
        } else {
            run->has_fork = 0; /* ts[:19] if type(ts) is str else None */
        }
    }
    return run->version == Py_None ? 0 : saw_version(&run->sink, run->version);
}

static PyObject *codex_lines(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t first_lineno;
    PyObject *path, *device, *state, *fallback_model, *canonical_model, *project_name, *schema_version, *adapter_version, *seeds;
    if (!PyArg_ParseTuple(args, "y*nUUO!UOOOUO!", &buf, &first_lineno, &path, &device, &PyTuple_Type, &state, &fallback_model,
                          &canonical_model, &project_name, &schema_version, &adapter_version, &PyDict_Type, &seeds))
        return NULL;
    CodexRun run;
    memset(&run, 0, sizeof(run));
    run.canonical_model = canonical_model;
    run.project_name = project_name;
    run.fallback_model = fallback_model;
    PyObject *result = NULL;
    if (sink_init(&run.sink, seeds, path, device, schema_version, adapter_version, S_codex) < 0) goto fail;
    /* state: (session_id, model, cwd, version, totals, fork_ts) as codex.parse_lines keeps it */
    PyObject *st_session, *st_model, *st_cwd, *st_version, *st_totals, *st_fork;
    if (!PyArg_ParseTuple(state, "UOOOOO", &st_session, &st_model, &st_cwd, &st_version, &st_totals, &st_fork)) goto fail;
    if ((st_model != Py_None && !PyUnicode_Check(st_model)) || (st_cwd != Py_None && !PyUnicode_Check(st_cwd)) ||
        (st_version != Py_None && !PyUnicode_Check(st_version)))
        goto bail;
    replace_ref(&run.session_id, st_session);
    replace_ref(&run.model, st_model);
    replace_ref(&run.cwd, st_cwd);
    replace_ref(&run.version, st_version);
    if (st_totals != Py_None) {
        if (!PyList_Check(st_totals) || PyList_GET_SIZE(st_totals) != 4) goto bail;
        for (int i = 0; i < 4; i++) {
            PyObject *v = PyList_GET_ITEM(st_totals, i);
            if (!PyLong_CheckExact(v)) goto bail;
            int overflow;
            run.totals[i] = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || run.totals[i] < 0 || run.totals[i] > MAX_TOKENS) goto bail;
        }
        run.has_totals = 1;
    }
    if (st_fork != Py_None) {
        if (!PyUnicode_Check(st_fork) || !PyUnicode_IS_ASCII(st_fork) || PyUnicode_GET_LENGTH(st_fork) > 19) goto bail;
        run.fork_n = PyUnicode_GET_LENGTH(st_fork);
        memcpy(run.fork_ts, PyUnicode_DATA(st_fork), run.fork_n);
        run.has_fork = 1;
    }
    const char *p = buf.buf, *end = p + buf.len;
    Py_ssize_t lineno = first_lineno;
    for (; p < end; lineno++) {
        const char *eol = memchr(p, '\n', end - p);
        if (!eol) break;
        const char *line = p;
        p = eol + 1;
        Py_ssize_t n = eol - line;
        /* the pre-filter: the record type within the head of a line of the usual shape */
        Py_ssize_t window = (n >= 14 && memcmp(line, "{\"timestamp\":\"", 14) == 0 && n > 128) ? 128 : n;
        int marker = codex_marker(line, window);
        if (!marker) {
            if (n > 0 && line[0] == '{' && line[n - 1] == '}') {
                run.sink.records++;
                run.sink.not_a_call++;
                continue;
            }
            if (is_blank(line, eol)) continue;
            goto bail;
        }
        CodexLine r;
        if (!codex_line(line, eol, &r)) goto bail;
        /* the strings compared as bytes here hold no escapes */
        if ((r.type == V_STR && r.s_type.esc) || (r.p_type == V_STR && r.s_p_type.esc) || (r.timestamp == V_STR && r.s_timestamp.esc) ||
            (r.p_timestamp == V_STR && r.s_p_timestamp.esc))
            goto bail;
        if (!r.payload) {
            run.sink.records++;
            run.sink.not_a_call++;
            continue;
        }
        int bail = 0;
        if (r.type == V_STR && KEY_IS(r.s_type, "event_msg") && r.p_type == V_STR && KEY_IS(r.s_p_type, "token_count")) {
            if (r.info == V_ABSENT || r.info == V_NULL) {
                run.sink.records++;
                run.sink.not_a_call++; /* rate limits only */
                continue;
            }
            if (codex_call(&run, &r, lineno, &bail) < 0) goto fail;
        } else if (r.type == V_STR && KEY_IS(r.s_type, "turn_context")) {
            if (r.p_model == V_STR && r.s_p_model.n > 0 && set_state_str(&run.model, r.s_p_model) < 0) goto fail;
            if (r.p_cwd == V_STR && r.s_p_cwd.n > 0 && set_state_str(&run.cwd, r.s_p_cwd) < 0) goto fail;
            run.sink.records++;
            run.sink.not_a_call++;
        } else if (r.type == V_STR && KEY_IS(r.s_type, "session_meta")) {
            if (codex_session_meta(&run, &r, &bail) < 0) goto fail;
            run.sink.records++;
            run.sink.not_a_call++;
        } else {
            run.sink.records++;
            run.sink.not_a_call++;
        }
        if (bail) goto bail;
    }
    {
        PyObject *totals = Py_None, *fork = Py_None;
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        if (run.has_totals) {
            Py_DECREF(totals);
            totals = Py_BuildValue("[LLLL]", run.totals[0], run.totals[1], run.totals[2], run.totals[3]);
        }
        if (run.has_fork) {
            Py_DECREF(fork);
            fork = PyUnicode_FromStringAndSize(run.fork_ts, run.fork_n);
        }
        if (totals && fork) {
            result = Py_BuildValue("(nOOLLL(OOOOOO))", lineno - first_lineno, run.sink.events, run.sink.versions, run.sink.records,
                                   run.sink.duplicates, run.sink.not_a_call, run.session_id, run.model, run.cwd,
                                   run.version, totals, fork);
        }
        Py_XDECREF(totals);
        Py_XDECREF(fork);
        goto done;
    }
bail:
    result = Py_None;
    Py_INCREF(result);
    goto done;
fail:
    result = NULL;
done:
    sink_clear(&run.sink);
    Py_XDECREF(run.session_id);
    Py_XDECREF(run.model);
    Py_XDECREF(run.cwd);
    Py_XDECREF(run.version);
    applied_clear(&run.canonical);
    applied_clear(&run.project);
    PyBuffer_Release(&buf);
    return result;
}

/* ------------------------------------------------------------------ rollup and days */

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm) */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* epoch ms of a canonical timestamp (as rollup.timestamp_ms), -1 if it is not one */
static long long timestamp_ms(PyObject *t) {
    if (!PyUnicode_CheckExact(t) || !PyUnicode_IS_ASCII(t)) return -1;
    Str s = {(const char *)PyUnicode_DATA(t), PyUnicode_GET_LENGTH(t), 0};
    if (!canonical_timestamp(s)) return -1;
    const char *c = s.s;
    long long y = 0;
    for (int i = 0; i < 4; i++) y = y * 10 + (c[i] - '0');
    long long mo = (c[5] - '0') * 10 + (c[6] - '0'), d = (c[8] - '0') * 10 + (c[9] - '0');
    long long h = (c[11] - '0') * 10 + (c[12] - '0'), mi = (c[14] - '0') * 10 + (c[15] - '0');
    long long sec = (c[17] - '0') * 10 + (c[18] - '0'), ms = (c[20] - '0') * 100 + (c[21] - '0') * 10 + (c[22] - '0');
    return ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms;
}

typedef struct {
    long long v[11]; /* events, first_ms, last_ms, the USAGE_KEYS counts */
} RollupRow;

static PyObject *rollup_by_day(PyObject *self, PyObject *args) {
    PyObject *events, *thresholds;
    long long slot_ms;
    if (!PyArg_ParseTuple(args, "O!O!L", &PyList_Type, &events, &PyTuple_Type, &thresholds, &slot_ms)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(events), nt = PyTuple_GET_SIZE(thresholds);
    long long th[8];
    if (nt < 1 || nt > 8 || slot_ms <= 0) Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < nt; i++) {
        th[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(thresholds, i));
        if (th[i] == -1 && PyErr_Occurred()) return NULL;
    }
    /* first every event is checked, so that None leaves nothing half done */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = PyList_GET_ITEM(events, i);
        if (!PyDict_CheckExact(ev)) Py_RETURN_NONE;
        PyObject *t = PyDict_GetItemWithError(ev, K_timestamp), *u = PyDict_GetItemWithError(ev, K_usage);
        if (!t || !u || !PyDict_CheckExact(u) || timestamp_ms(t) < 0 || !PyDict_GetItemWithError(ev, K_provider) ||
            !PyDict_GetItemWithError(ev, K_model) || !PyDict_GetItemWithError(ev, K_session_id)) {
            if (PyErr_Occurred()) return NULL;
            Py_RETURN_NONE;
        }
        for (int k = 0; k < 8; k++) {
            PyObject *v = PyDict_GetItemWithError(u, K_usage_keys[k]);
            if (!v || !PyLong_CheckExact(v)) {
                if (PyErr_Occurred()) return NULL;
                Py_RETURN_NONE;
            }
            int overflow;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow || x < 0 || x > MAX_TOKENS) Py_RETURN_NONE;
        }
    }
    PyObject *by_day = PyDict_New(), *index = PyDict_New(), *keys = PyList_New(0), *rollup = NULL, *result = NULL;
    RollupRow *rows = NULL;
    Py_ssize_t n_rows = 0, cap = 0;
    PyObject *last_day = NULL, *last_day_list = NULL;
    const char *last_day_s = NULL;
    if (!by_day || !index || !keys) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = PyList_GET_ITEM(events, i);
        PyObject *t = PyDict_GetItem(ev, K_timestamp), *u = PyDict_GetItem(ev, K_usage);
        long long ts = timestamp_ms(t), c[8];
        for (int k = 0; k < 8; k++) c[k] = PyLong_AsLongLong(PyDict_GetItem(u, K_usage_keys[k]));
        /* the day: the first ten characters; consecutive events mostly share it */
        const char *ts_s = (const char *)PyUnicode_DATA(t);
        if (!last_day || memcmp(last_day_s, ts_s, 10) != 0) {
            PyObject *day = PyUnicode_FromStringAndSize(ts_s, 10);
            if (!day) goto done;
            PyObject *lst = PyDict_GetItemWithError(by_day, day);
            if (!lst) {
                if (PyErr_Occurred() || !(lst = PyList_New(0)) || PyDict_SetItem(by_day, day, lst) < 0) {
                    Py_XDECREF(lst);
                    Py_DECREF(day);
                    goto done;
                }
                Py_DECREF(lst); /* the dict holds it */
            }
            Py_XSETREF(last_day, day);
            last_day_s = PyUnicode_DATA(day);
            last_day_list = lst;
        }
        if (PyList_Append(last_day_list, ev) < 0) goto done;
        long long prompt = c[0] + c[2] + c[3] + c[4], ctx = 0;
        for (Py_ssize_t k = 0; k < nt; k++) {
            if (prompt > th[k]) ctx = th[k];
        }
        PyObject *project = PyDict_GetItem(ev, K_project), *device = PyDict_GetItem(ev, K_device);
        if (!project) project = Py_None;
        if (!device || !PyObject_IsTrue(device)) device = PyUnicode_New(0, 0);
        else Py_INCREF(device);
        PyObject *key = Py_BuildValue("(LOOOOOL)", ts - ts % slot_ms, PyDict_GetItem(ev, K_provider), PyDict_GetItem(ev, K_model),
                                      project, PyDict_GetItem(ev, K_session_id), device, ctx);
        Py_DECREF(device);
        if (!key) goto done;
        PyObject *at = PyDict_GetItemWithError(index, key);
        if (!at) {
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                goto done;
            }
            if (n_rows == cap) {
                cap = cap ? cap * 2 : 64;
                RollupRow *grown = PyMem_Realloc(rows, cap * sizeof(RollupRow));
                if (!grown) {
                    Py_DECREF(key);
                    PyErr_NoMemory();
                    goto done;
                }
                rows = grown;
            }
            RollupRow *r = &rows[n_rows];
            r->v[0] = 1;
            r->v[1] = r->v[2] = ts;
            memcpy(r->v + 3, c, sizeof(c));
            PyObject *pos = PyLong_FromSsize_t(n_rows++);
            int bad = !pos || PyDict_SetItem(index, key, pos) < 0 || PyList_Append(keys, key) < 0;
            Py_XDECREF(pos);
            Py_DECREF(key);
            if (bad) goto done;
            continue;
        }
        Py_DECREF(key);
        RollupRow *r = &rows[PyLong_AsSsize_t(at)];
        r->v[0] += 1;
        if (ts < r->v[1]) r->v[1] = ts;
        if (ts > r->v[2]) r->v[2] = ts;
        for (int k = 0; k < 8; k++) r->v[3 + k] += c[k];
    }
    if (!(rollup = PyDict_New())) goto done;
    for (Py_ssize_t i = 0; i < n_rows; i++) {
        PyObject *vals = PyList_New(11);
        if (!vals) goto done;
        for (int k = 0; k < 11; k++) {
            PyObject *x = PyLong_FromLongLong(rows[i].v[k]);
            if (!x) {
                Py_DECREF(vals);
                goto done;
            }
            PyList_SET_ITEM(vals, k, x);
        }
        if (set_steal(rollup, PyList_GET_ITEM(keys, i), vals) < 0) goto done;
    }
    result = PyTuple_Pack(2, by_day, rollup);
done:
    Py_XDECREF(last_day);
    Py_XDECREF(by_day);
    Py_XDECREF(index);
    Py_XDECREF(keys);
    Py_XDECREF(rollup);
    PyMem_Free(rows);
    return result;
}

/* ------------------------------------------------------------------ event lines and id hashes */

/* An output buffer that grows. */
typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Out;

static int out_grow(Out *o, Py_ssize_t extra) {
    if (o->len + extra <= o->cap) return 0;
    Py_ssize_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + extra) cap *= 2;
    char *b = PyMem_Realloc(o->buf, cap);
    if (!b) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = b;
    o->cap = cap;
    return 0;
}

static inline int out_put(Out *o, const char *s, Py_ssize_t n) {
    if (out_grow(o, n) < 0) return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* what writing a value gave: written, a value orjson's way should write (-2), an error */
#define UNSUPPORTED (-2)

/* a str as orjson writes it: only '"', '\\' and control characters escaped */
static int put_str(Out *o, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n); /* a lone surrogate: not UTF-8, orjson's */
    if (!u) {
        PyErr_Clear();
        return UNSUPPORTED;
    }
    if (out_grow(o, n * 6 + 2) < 0) return -1;
    char *w = o->buf + o->len;
    *w++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
            case '"': *w++ = '"'; break;
            case '\\': *w++ = '\\'; break;
            case '\b': *w++ = 'b'; break;
            case '\t': *w++ = 't'; break;
            case '\n': *w++ = 'n'; break;
            case '\f': *w++ = 'f'; break;
            case '\r': *w++ = 'r'; break;
            default:
                *w++ = 'u';
                *w++ = '0';
                *w++ = '0';
                *w++ = "0123456789abcdef"[c >> 4];
                *w++ = "0123456789abcdef"[c & 15];
        }
    }
    *w++ = '"';
    o->len = w - o->buf;
    return 0;
}

/* The sorted order of a dict's keys, for the next dict with the same keys in the same
 * insertion order (every event of a file has them): found by comparing key objects. */
#define MAX_KEYS 32
typedef struct {
    Py_ssize_t n;
    PyObject *keys[MAX_KEYS]; /* held, in insertion order */
    int order[MAX_KEYS];      /* insertion positions, sorted by key */
    Out text;                 /* each key written ("key":), in sorted order */
    Py_ssize_t at[MAX_KEYS + 1];
} KeyOrder;

static void key_order_clear(KeyOrder *c) {
    for (Py_ssize_t i = 0; i < c->n; i++) Py_CLEAR(c->keys[i]);
    c->n = 0;
    PyMem_Free(c->text.buf);
    c->text.buf = NULL;
    c->text.len = c->text.cap = 0;
}

/* c: the keys of ``keys`` (n of them) sorted in code point order (UTF-8 byte order) */
static int key_order_set(KeyOrder *c, PyObject **keys, Py_ssize_t n) {
    const char *u[MAX_KEYS];
    Py_ssize_t len[MAX_KEYS];
    key_order_clear(c);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyUnicode_CheckExact(keys[i])) return UNSUPPORTED;
        if (!(u[i] = PyUnicode_AsUTF8AndSize(keys[i], &len[i]))) {
            PyErr_Clear();
            return UNSUPPORTED;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t j = i;
        while (j > 0) {
            int prev = c->order[j - 1];
            Py_ssize_t m = len[prev] < len[i] ? len[prev] : len[i];
            int cmp = memcmp(u[prev], u[i], m);
            if (cmp < 0 || (cmp == 0 && len[prev] <= len[i])) break;
            c->order[j] = prev;
            j--;
        }
        c->order[j] = (int)i;
    }
    c->at[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int r = put_str(&c->text, keys[c->order[i]]);
        if (r) return r;
        if (out_put(&c->text, ":", 1) < 0) return -1;
        c->at[i + 1] = c->text.len;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(keys[i]);
        c->keys[i] = keys[i];
    }
    c->n = n;
    return 0;
}

typedef struct {
    KeyOrder orders[2]; /* the events' keys; their usage blocks' */
} Writer;

static int put_value(Writer *w, Out *o, PyObject *v, int depth);

static int put_dict(Writer *w, Out *o, PyObject *d, int depth) {
    PyObject *keys[MAX_KEYS], *values[MAX_KEYS], *k, *v;
    Py_ssize_t n = 0, pos = 0;
    if (depth > 1 || PyDict_GET_SIZE(d) > MAX_KEYS) return UNSUPPORTED;
    while (PyDict_Next(d, &pos, &k, &v)) {
        keys[n] = k;
        values[n++] = v;
    }
    KeyOrder *c = &w->orders[depth];
    int same = c->n == n;
    for (Py_ssize_t i = 0; same && i < n; i++) same = c->keys[i] == keys[i];
    if (!same) {
        int r = key_order_set(c, keys, n);
        if (r) return r;
    }
    if (out_put(o, "{", 1) < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i && out_put(o, ",", 1) < 0) return -1;
        if (out_put(o, c->text.buf + c->at[i], c->at[i + 1] - c->at[i]) < 0) return -1;
        int r = put_value(w, o, values[c->order[i]], depth + 1);
        if (r) return r;
    }
    return out_put(o, "}", 1);
}

static int put_int(Out *o, long long x) {
    char num[24], *e = num + sizeof(num), *p = e;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0) *--p = '-';
    return out_put(o, p, e - p);
}

static int put_value(Writer *w, Out *o, PyObject *v, int depth) {
    if (v == Py_None) return out_put(o, "null", 4);
    if (v == Py_True) return out_put(o, "true", 4);
    if (v == Py_False) return out_put(o, "false", 5);
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        return overflow ? UNSUPPORTED : put_int(o, x);
    }
    if (PyUnicode_CheckExact(v)) return put_str(o, v);
    if (PyDict_CheckExact(v)) return put_dict(w, o, v, depth);
    return UNSUPPORTED;
}

/* event_cache.event_lines: each event as orjson writes it with sorted keys, a line each;
 * None for an event holding anything but dicts, str, int, bool and None */
static PyObject *events_jsonl(PyObject *self, PyObject *args) {
    PyObject *events;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &events)) return NULL;
    Out o = {NULL, 0, 0};
    Writer w;
    memset(&w, 0, sizeof(w));
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
        PyObject *ev = PyList_GET_ITEM(events, i);
        int r = PyDict_CheckExact(ev) ? put_dict(&w, &o, ev, 0) : UNSUPPORTED;
        if (r == UNSUPPORTED) {
            result = Py_None;
            Py_INCREF(result);
            goto done;
        }
        if (r < 0 || out_put(&o, "\n", 1) < 0) goto done;
    }
    result = PyBytes_FromStringAndSize(o.buf ? o.buf : "", o.len);
done:
    PyMem_Free(o.buf);
    key_order_clear(&w.orders[0]);
    key_order_clear(&w.orders[1]);
    return result;
}

/* BLAKE2b (RFC 7693) with an 8-byte digest and no key: hashlib.blake2b(data,
 * digest_size=8), as the little-endian integer event_cache.id_hash makes of it. */
static const uint64_t BLAKE2B_IV[8] = {0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
                                       0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
                                       0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};
static const unsigned char BLAKE2B_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

#define ROTR64(x, y) (((x) >> (y)) | ((x) << (64 - (y))))
#define B2G(a, b, c, d, x, y) \
    do { \
        v[a] = v[a] + v[b] + (x); \
        v[d] = ROTR64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d]; \
        v[b] = ROTR64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y); \
        v[d] = ROTR64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d]; \
        v[b] = ROTR64(v[b] ^ v[c], 63); \
    } while (0)

static void blake2b_compress(uint64_t h[8], const unsigned char *block, uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = BLAKE2B_IV[i];
    }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) {
        uint64_t w = 0;
        for (int b = 7; b >= 0; b--) w = (w << 8) | block[i * 8 + b];
        m[i] = w;
    }
    for (int r = 0; r < 12; r++) {
        const unsigned char *s = BLAKE2B_SIGMA[r];
        B2G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

static uint64_t blake2b_8(const unsigned char *in, Py_ssize_t n) {
    uint64_t h[8];
    memcpy(h, BLAKE2B_IV, sizeof(h));
    h[0] ^= 0x01010000ULL ^ 8; /* fanout 1, depth 1, no key, an 8-byte digest */
    uint64_t t = 0;
    while (n > 128) {
        t += 128;
        blake2b_compress(h, in, t, 0);
        in += 128;
        n -= 128;
    }
    unsigned char last[128] = {0};
    memcpy(last, in, n);
    blake2b_compress(h, last, t + (uint64_t)n, 1);
    return h[0]; /* the digest's 8 bytes are h[0]'s, little-endian */
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* event_cache.id_hashes: the ids' hashes, sorted, as the bytes of an array("Q"); None for
 * an id that is not UTF-8 (a lone surrogate: Python's surrogatepass encoding) */
static PyObject *id_hashes(PyObject *self, PyObject *args) {
    PyObject *ids;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &ids)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(ids);
    uint64_t *hs = PyMem_Malloc((n ? n : 1) * sizeof(uint64_t));
    if (!hs) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *id = PyList_GET_ITEM(ids, i);
        Py_ssize_t len;
        const char *u = PyUnicode_CheckExact(id) ? PyUnicode_AsUTF8AndSize(id, &len) : NULL;
        if (!u) {
            PyErr_Clear();
            PyMem_Free(hs);
            Py_RETURN_NONE;
        }
        hs[i] = blake2b_8((const unsigned char *)u, len);
    }
    qsort(hs, n, sizeof(uint64_t), cmp_u64);
    PyObject *r = PyBytes_FromStringAndSize((const char *)hs, n * sizeof(uint64_t));
    PyMem_Free(hs);
    return r;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef methods[] = {
    {"claude_lines", claude_lines, METH_VARARGS, "Claude Code's complete lines -> (events, versions, records, duplicates, not_a_call) or None."},
    {"events_jsonl", events_jsonl, METH_VARARGS, "Events -> their JSONL as orjson writes it with sorted keys, or None."},
    {"id_hashes", id_hashes, METH_VARARGS, "Event ids -> their 64-bit BLAKE2b hashes, sorted, as array('Q') bytes, or None."},
    {"rollup_by_day", rollup_by_day, METH_VARARGS, "A file's events -> (events by UTC day, rollup accumulator) or None."},
    {"codex_lines", codex_lines, METH_VARARGS, "Codex's complete lines -> (events, versions, records, duplicates, not_a_call, state) or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "tokentally_fastparse", .m_size = -1, .m_methods = methods};

#define INTERN(var, s) \
    if (!((var) = PyUnicode_InternFromString(s))) return NULL

PyMODINIT_FUNC PyInit_tokentally_fastparse(void) {
    static const char *usage_keys[8] = {"input_tokens",      "output_tokens",      "cache_write_tokens", "cache_read_tokens",
                                        "tool_input_tokens", "tool_output_tokens", "reasoning_tokens",   "cache_write_1h_tokens"};
    INTERN(K_schema_version, "schema_version");
    INTERN(K_id, "id");
    INTERN(K_provider, "provider");
    INTERN(K_model, "model");
    INTERN(K_raw_model, "raw_model");
    INTERN(K_session_id, "session_id");
    INTERN(K_project, "project");
    INTERN(K_timestamp, "timestamp");
    INTERN(K_usage, "usage");
    INTERN(K_total_tokens, "total_tokens");
    INTERN(K_source_file, "source_file");
    INTERN(K_source_line, "source_line");
    INTERN(K_adapter, "adapter");
    INTERN(K_adapter_version, "adapter_version");
    INTERN(K_source_version, "source_version");
    INTERN(K_device, "device");
    INTERN(K_model_inferred, "model_inferred");
    for (int i = 0; i < 8; i++) INTERN(K_usage_keys[i], usage_keys[i]);
    INTERN(S_claude, "claude");
    INTERN(S_codex, "codex");
    INTERN(S_unknown, "unknown");
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddStringConstant(m, "SOURCE_HASH", SOURCE_HASH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
