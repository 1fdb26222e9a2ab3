/*
 * ingest._batchfast: BatchPreparer._whole_batch (ingest/batch.py) in one pass over the body.
 *
 * whole_batch(body, cache, memo, lowest, highest, zeros, max_line_bytes, max_fields, max_points,
 *             allow_unsigned, refused_field_keys) -> (payload, points, memo) | None
 *
 * body is the request body after the UTF-8 check and CRLF -> LF; a final newline ends the last
 * line (it does not start an empty one). Every line must be a cached series (the bytes before
 * the first space, looked up in ``cache``, which maps them to the rewritten series and its
 * space) followed by exactly what _block_pattern accepts: fields without quotes or backslashes
 * whose numbers are certainly in range, a space and a timestamp of exactly len(lowest) digits
 * within [lowest, highest] (compared as text). No field may be named ``time`` or as one of
 * ``refused_field_keys`` (a tuple of bytes: ForcedTags.refused_field_keys_bytes, the keys of
 * the tags the caller forces and ``host``). The payload is, per line, the cached head, the part
 * after the series and ``zeros``, lines joined by newlines.
 *
 * A collector sends the same series in the same order every interval. ``memo`` (None, or what
 * an earlier call returned) is an earlier batch's series, each followed by a newline, and their
 * heads: while this batch's lines have the memo's series at the same positions, their heads are
 * taken from it after a comparison of bytes, without a lookup (which made two thirds of the
 * time here). From the first line that differs on, the cache decides. The memo returned is the
 * one given when the batch followed it (or a prefix of it), else this batch's. Heads depend on
 * the forced tags, so the caller keeps memos per key's forced tags, like the cache.
 *
 * None means "not sure": the Python paths then decide, and give every error message. So this
 * never has to be more accepting than the Python pattern, only exactly as accepting, which the
 * property tests in tests/unit/test_ingest_batchfast.py check against the Python code.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <string.h>

/* The Python pattern's limits (ingest/batch.py, _fast_patterns): numbers this long cannot
 * overflow in InfluxDB, longer ones are left to the exact parser. */
#define MAX_INTEGER_DIGITS 18
#define MAX_UNSIGNED_DIGITS 19
#define MAX_FLOAT_DIGITS 200
#define MAX_EXPONENT_DIGITS 2

/* Up to this many fields, duplicates are found by comparing every pair (on the stack);
 * beyond, with a Python set. */
#define PAIRWISE_FIELDS 16

/* Byte classes of the pattern's names, filled once at import:
 * name_byte: [^\x00-\x20\x7f,=\\"]   (bytes >= 0x80, i.e. UTF-8 sequences, are name bytes)
 * name_first: the same without _ and # (the first byte of a field name). */
static bool name_byte[256];
static bool name_first[256];

static void
fill_classes(void)
{
    for (int c = 0; c < 256; c++) {
        name_byte[c] = !(c <= 0x20 || c == 0x7f || c == ',' || c == '=' || c == '\\' || c == '"');
        name_first[c] = name_byte[c] && c != '_' && c != '#';
    }
}

static inline bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline Py_ssize_t
digit_run(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *start = p;
    while (p < end && is_digit(*p)) {
        p++;
    }
    return p - start;
}

static inline bool
starts_with(const unsigned char *p, const unsigned char *end, const char *word, size_t size)
{
    return (size_t)(end - p) >= size && memcmp(p, word, size) == 0;
}

/*
 * Where the field value starting at p ends, as the pattern's atomic group matches it:
 *
 *   (?>-?+[0-9]{1,18}+i | [0-9]{1,19}+u (when allowed)
 *      | -?+(?:[0-9]{1,200}+(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][+-]?+[0-9]{1,2}+)?+
 *      | t(?:rue)?+ | T(?:rue|RUE)?+ | f(?:alse)?+ | F(?:alse|ALSE)?+)
 *
 * The first alternative that matches is taken and never given back, and every quantifier is
 * possessive, so there is one answer: the end of that match, or NULL when none matches. The end
 * may stop short of the value's real end (a 19th integer digit, a third exponent digit); the
 * caller then finds neither ',' nor ' ' there and refuses the line, as the pattern does.
 */
static const unsigned char *
value_end(const unsigned char *p, const unsigned char *end, bool allow_unsigned)
{
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case 't':
        return p + 1 + (starts_with(p + 1, end, "rue", 3) ? 3 : 0);
    case 'T':
        return p + 1 + (starts_with(p + 1, end, "rue", 3) || starts_with(p + 1, end, "RUE", 3)
                            ? 3 : 0);
    case 'f':
        return p + 1 + (starts_with(p + 1, end, "alse", 4) ? 4 : 0);
    case 'F':
        return p + 1 + (starts_with(p + 1, end, "alse", 4) || starts_with(p + 1, end, "ALSE", 4)
                            ? 4 : 0);
    default:
        break;
    }
    bool negative = *p == '-';
    const unsigned char *digits = p + negative;
    Py_ssize_t run = digit_run(digits, end);

    /* integer: at most 18 digits, then i (a longer run leaves a digit where i must be) */
    if (run >= 1 && run <= MAX_INTEGER_DIGITS && digits + run < end && digits[run] == 'i') {
        return digits + run + 1;
    }
    /* unsigned: no sign, at most 19 digits, then u */
    if (allow_unsigned && !negative && run >= 1 && run <= MAX_UNSIGNED_DIGITS
        && digits + run < end && digits[run] == 'u') {
        return digits + run + 1;
    }
    /* float: digits with an optional fraction, or a fraction alone; then an optional exponent */
    const unsigned char *q;
    if (run >= 1) {
        q = digits + (run > MAX_FLOAT_DIGITS ? MAX_FLOAT_DIGITS : run);
        if (run <= MAX_FLOAT_DIGITS && q < end && *q == '.') {
            q++;
            q += digit_run(q, end);
        }
    }
    else if (digits + 1 < end && *digits == '.' && is_digit(digits[1])) {
        q = digits + 1;
        q += digit_run(q, end);
    }
    else {
        return NULL;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        const unsigned char *exponent = q + 1;
        if (exponent < end && (*exponent == '+' || *exponent == '-')) {
            exponent++;
        }
        Py_ssize_t size = digit_run(exponent, end);
        if (size >= 1) {  /* else the group does not match: the value ends before the e */
            q = exponent + (size > MAX_EXPONENT_DIGITS ? MAX_EXPONENT_DIGITS : size);
        }
    }
    return q;
}

/* The field name starting at p (one name_first byte, then name bytes), up to its '='. */
static inline const unsigned char *
name_end(const unsigned char *p, const unsigned char *end)
{
    if (p >= end || !name_first[*p]) {
        return NULL;
    }
    p++;
    while (p < end && name_byte[*p]) {
        p++;
    }
    return p;
}

/* The field keys ingest refuses besides "time" (ForcedTags.refused_field_keys_bytes: the
 * forced tags' keys and "host"): a few short names. */
#define MAX_REFUSED_KEYS 8

typedef struct {
    const char *names[MAX_REFUSED_KEYS];
    size_t sizes[MAX_REFUSED_KEYS];
    Py_ssize_t count;
} RefusedKeys;

/* Field keys the exact parser refuses: InfluxDB's "time", and those ``refused`` names. */
static inline int
reserved_field(const unsigned char *p, const unsigned char *end, const RefusedKeys *refused)
{
    size_t size = (size_t)(end - p);
    if (size == 4 && memcmp(p, "time", 4) == 0) {
        return 1;
    }
    for (Py_ssize_t i = 0; i < refused->count; i++) {
        if (size == refused->sizes[i] && memcmp(p, refused->names[i], size) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ``refused_field_keys`` (a tuple of at most MAX_REFUSED_KEYS bytes) read into ``refused``; -1
 * with an exception set otherwise. The bytes stay the tuple's, which the caller holds for the
 * call. */
static int
read_refused_keys(PyObject *refused_field_keys, RefusedKeys *refused)
{
    Py_ssize_t count = PyTuple_GET_SIZE(refused_field_keys);
    if (count > MAX_REFUSED_KEYS) {
        PyErr_Format(PyExc_ValueError, "at most %d refused field keys", MAX_REFUSED_KEYS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *name = PyTuple_GET_ITEM(refused_field_keys, i);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "refused_field_keys must be a tuple of bytes");
            return -1;
        }
        refused->names[i] = PyBytes_AS_STRING(name);
        refused->sizes[i] = (size_t)PyBytes_GET_SIZE(name);
    }
    refused->count = count;
    return 0;
}

/*
 * Whether the fields [p, end) (already matched: names and values without ',' or '=', separated
 * by ',') repeat a key; -1 with an exception set on failure. ``count`` is their number.
 */
static int
has_duplicate_keys(const unsigned char *p, const unsigned char *end, Py_ssize_t count)
{
    if (count <= PAIRWISE_FIELDS) {
        const unsigned char *names[PAIRWISE_FIELDS];
        size_t sizes[PAIRWISE_FIELDS];
        Py_ssize_t found = 0;
        while (p < end && found < count) {
            const unsigned char *equals = memchr(p, '=', (size_t)(end - p));
            const unsigned char *comma = memchr(p, ',', (size_t)(end - p));
            if (equals == NULL) {
                break;
            }
            names[found] = p;
            sizes[found] = (size_t)(equals - p);
            for (Py_ssize_t other = 0; other < found; other++) {
                if (sizes[other] == sizes[found]
                    && memcmp(names[other], names[found], sizes[found]) == 0) {
                    return 1;
                }
            }
            found++;
            p = comma == NULL ? end : comma + 1;
        }
        return 0;
    }
    PyObject *seen = PySet_New(NULL);
    if (seen == NULL) {
        return -1;
    }
    Py_ssize_t added = 0;
    while (p < end) {
        const unsigned char *equals = memchr(p, '=', (size_t)(end - p));
        const unsigned char *comma = memchr(p, ',', (size_t)(end - p));
        if (equals == NULL) {
            break;
        }
        PyObject *name = PyBytes_FromStringAndSize((const char *)p, equals - p);
        if (name == NULL || PySet_Add(seen, name) < 0) {
            Py_XDECREF(name);
            Py_DECREF(seen);
            return -1;
        }
        Py_DECREF(name);
        added++;
        p = comma == NULL ? end : comma + 1;
    }
    int duplicate = PySet_GET_SIZE(seen) != added;
    Py_DECREF(seen);
    return duplicate;
}

/* The output buffer: a bytes object written in place, grown by doubling, cut to size at the
 * end (_PyBytes_Resize is the documented way to do this with a bytes object nobody else has
 * seen yet). */
typedef struct {
    PyObject *bytes;
    Py_ssize_t used;
    Py_ssize_t capacity;
} Output;

static int
output_reserve(Output *out, Py_ssize_t more)
{
    if (more <= out->capacity - out->used) {
        return 0;
    }
    if (more > PY_SSIZE_T_MAX - out->used) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t needed = out->used + more;
    Py_ssize_t capacity = out->capacity <= PY_SSIZE_T_MAX / 2 ? out->capacity * 2 : needed;
    if (capacity < needed) {
        capacity = needed;
    }
    if (_PyBytes_Resize(&out->bytes, capacity) < 0) {  /* on failure it freed the object */
        return -1;
    }
    out->capacity = capacity;
    return 0;
}

static inline void
output_write(Output *out, const void *data, Py_ssize_t size)
{
    memcpy(PyBytes_AS_STRING(out->bytes) + out->used, data, (size_t)size);
    out->used += size;
}

/* The memo being built: every series of the batch so far, each followed by a newline, and
 * their heads (strong references, so the memo outlives a cleared cache). */
typedef struct {
    Output signature;
    PyObject *heads; /* a list */
} NewMemo;

static void
new_memo_clear(NewMemo *memo)
{
    Py_CLEAR(memo->signature.bytes);
    Py_CLEAR(memo->heads);
}

/* Start a memo with the first `lines` lines of the old one (its signature's first
 * `signature_size` bytes); old_heads may be NULL when there is none. */
static int
new_memo_start(NewMemo *memo, Py_ssize_t capacity, const char *old_signature,
               Py_ssize_t signature_size, PyObject *old_heads, Py_ssize_t lines)
{
    if (capacity < signature_size + 64) {
        capacity = signature_size + 64;
    }
    memo->signature.used = 0;
    memo->signature.capacity = capacity;
    memo->signature.bytes = PyBytes_FromStringAndSize(NULL, capacity);
    memo->heads = old_heads == NULL ? PyList_New(0) : PyTuple_GetSlice(old_heads, 0, lines);
    if (memo->signature.bytes == NULL || memo->heads == NULL) {
        new_memo_clear(memo);
        return -1;
    }
    if (old_heads != NULL) {
        PyObject *list = PySequence_List(memo->heads);
        Py_SETREF(memo->heads, list);
        if (list == NULL) {
            new_memo_clear(memo);
            return -1;
        }
    }
    output_write(&memo->signature, old_signature, signature_size);
    return 0;
}

static int
new_memo_add(NewMemo *memo, const unsigned char *series, Py_ssize_t size, PyObject *head)
{
    if (PyList_Append(memo->heads, head) < 0) {
        return -1;
    }
    if (output_reserve(&memo->signature, size + 1) < 0) {
        memo->signature.bytes = NULL; /* output_reserve freed it */
        return -1;
    }
    output_write(&memo->signature, series, size);
    output_write(&memo->signature, "\n", 1);
    return 0;
}

/* The finished memo: (signature, heads as a tuple); the builder is emptied. */
static PyObject *
new_memo_finish(NewMemo *memo)
{
    if (_PyBytes_Resize(&memo->signature.bytes, memo->signature.used) < 0) {
        memo->signature.bytes = NULL;
        new_memo_clear(memo);
        return NULL;
    }
    PyObject *heads = PyList_AsTuple(memo->heads);
    PyObject *result = heads == NULL ? NULL : PyTuple_Pack(2, memo->signature.bytes, heads);
    Py_XDECREF(heads);
    new_memo_clear(memo);
    return result;
}

static PyObject *
whole_batch(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *body, *cache, *memo, *refused_field_keys;
    const char *lowest, *highest, *zeros;
    Py_ssize_t lowest_size, highest_size, zeros_size;
    Py_ssize_t max_line_bytes, max_fields, max_points;
    int allow_unsigned;
    RefusedKeys refused;
    if (!PyArg_ParseTuple(args, "O!O!Oy#y#y#nnnpO!:whole_batch", &PyBytes_Type, &body,
                          &PyDict_Type, &cache, &memo, &lowest, &lowest_size, &highest,
                          &highest_size, &zeros, &zeros_size, &max_line_bytes, &max_fields,
                          &max_points, &allow_unsigned, &PyTuple_Type, &refused_field_keys)) {
        return NULL;
    }
    if (read_refused_keys(refused_field_keys, &refused) < 0) {
        return NULL;
    }
    if (lowest_size < 1 || lowest_size != highest_size) {
        PyErr_SetString(PyExc_ValueError, "lowest and highest must have one, non-zero length");
        return NULL;
    }
    /* The memo of an earlier batch, followed while this batch's series are the same, in the
     * same order: a comparison of bytes instead of a lookup per line. */
    const char *memo_signature = NULL;
    Py_ssize_t memo_signature_size = 0, memo_offset = 0, memo_lines = 0;
    PyObject *memo_heads = NULL;
    if (memo != Py_None) {
        if (!PyTuple_Check(memo) || PyTuple_GET_SIZE(memo) != 2
            || !PyBytes_Check(PyTuple_GET_ITEM(memo, 0))
            || !PyTuple_Check(PyTuple_GET_ITEM(memo, 1))) {
            PyErr_SetString(PyExc_TypeError, "memo must be None or (bytes, tuple)");
            return NULL;
        }
        memo_signature = PyBytes_AS_STRING(PyTuple_GET_ITEM(memo, 0));
        memo_signature_size = PyBytes_GET_SIZE(PyTuple_GET_ITEM(memo, 0));
        memo_heads = PyTuple_GET_ITEM(memo, 1);
        memo_lines = PyTuple_GET_SIZE(memo_heads);
    }
    bool following = memo_heads != NULL;
    NewMemo built = {{NULL, 0, 0}, NULL};
    const Py_ssize_t digits = lowest_size;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(body);
    const unsigned char *end = p + PyBytes_GET_SIZE(body);
    if (end > p && end[-1] == '\n') {
        end--;  /* the body's final newline: what follows it is not a line */
    }

    /* The payload is the body plus, per line, what the rewritten series adds (the forced tags,
     * a few dozen bytes): half as much again is enough for typical lines, it grows otherwise. */
    Py_ssize_t size = PyBytes_GET_SIZE(body);
    Output out = {NULL, 0, size <= PY_SSIZE_T_MAX / 2 ? size + size / 2 + 64 : size};
    out.bytes = PyBytes_FromStringAndSize(NULL, out.capacity);
    if (out.bytes == NULL) {
        return NULL;
    }
    Py_ssize_t points = 0;
    for (;;) {
        const unsigned char *newline = memchr(p, '\n', (size_t)(end - p));
        const unsigned char *line_end = newline == NULL ? end : newline;
        if (line_end - p > max_line_bytes || ++points > max_points) {
            goto not_sure;
        }
        /* the series: the bytes before the first space (a cached series has no space) */
        const unsigned char *space = memchr(p, ' ', (size_t)(line_end - p));
        if (space == NULL) {
            goto not_sure;
        }

        /* the fields: name=value, separated by commas */
        const unsigned char *rest = space + 1;
        const unsigned char *q = rest;
        Py_ssize_t fields = 0;
        for (;;) {
            const unsigned char *key = q;
            q = name_end(q, line_end);
            if (q == NULL || q >= line_end || *q != '=' || reserved_field(key, q, &refused)) {
                goto not_sure;
            }
            q = value_end(q + 1, line_end, allow_unsigned);
            if (q == NULL) {
                goto not_sure;
            }
            fields++;
            if (q < line_end && *q == ',') {
                q++;
                continue;
            }
            break;
        }
        const unsigned char *fields_end = q;

        /* the timestamp: exactly `digits` digits, no leading zero, within the window */
        if (q >= line_end || *q != ' ') {
            goto not_sure;
        }
        q++;
        if (line_end - q != digits || *q == '0' || digit_run(q, line_end) != digits
            || memcmp(q, lowest, (size_t)digits) < 0 || memcmp(q, highest, (size_t)digits) > 0) {
            goto not_sure;
        }

        /* several fields: within the limit, no key twice (one field is never checked, as in
         * Python, where only lines with a comma are) */
        if (fields > 1) {
            if (fields > max_fields) {
                goto not_sure;
            }
            int duplicate = has_duplicate_keys(rest, fields_end, fields);
            if (duplicate < 0) {
                goto error;
            }
            if (duplicate) {
                goto not_sure;
            }
        }

        /* The rewritten series, looked up last: the reference is borrowed, and from here on
         * nothing that could run Python code (a garbage collection that a set allocated above
         * might start, say) happens before its bytes are copied. */
        Py_ssize_t series_size = space - p;
        PyObject *head = NULL;
        if (following) {
            if (points <= memo_lines && series_size < memo_signature_size - memo_offset
                && memo_signature[memo_offset + series_size] == '\n'
                && memcmp(memo_signature + memo_offset, p, (size_t)series_size) == 0) {
                head = PyTuple_GET_ITEM(memo_heads, points - 1);
                memo_offset += series_size + 1;
            } else {
                following = false;
                if (new_memo_start(&built, size / 2, memo_signature, memo_offset, memo_heads,
                                   points - 1) < 0) {
                    goto error;
                }
            }
        } else if (built.heads == NULL) {
            if (new_memo_start(&built, size / 2, NULL, 0, NULL, 0) < 0) {
                goto error;
            }
        }
        if (head == NULL) {
            PyObject *series = PyBytes_FromStringAndSize((const char *)p, series_size);
            if (series == NULL) {
                goto error;
            }
            head = PyDict_GetItemWithError(cache, series);
            Py_DECREF(series);
            if (head == NULL) {
                if (PyErr_Occurred()) {
                    goto error;
                }
                goto not_sure;
            }
        }
        if (!PyBytes_Check(head)) {
            goto not_sure;
        }
        if (!following && new_memo_add(&built, p, series_size, head) < 0) {
            goto error;
        }

        /* head (with its space), the rest of the line, zeros; a newline before the next */
        Py_ssize_t head_size = PyBytes_GET_SIZE(head);
        Py_ssize_t rest_size = line_end - rest;
        if (output_reserve(&out, head_size + rest_size + zeros_size + 1) < 0) {
            new_memo_clear(&built);
            return NULL;  /* out.bytes was freed */
        }
        output_write(&out, PyBytes_AS_STRING(head), head_size);
        output_write(&out, rest, rest_size);
        output_write(&out, zeros, zeros_size);
        if (newline == NULL) {
            break;
        }
        output_write(&out, "\n", 1);
        p = newline + 1;
    }
    if (_PyBytes_Resize(&out.bytes, out.used) < 0) {
        new_memo_clear(&built);
        return NULL;
    }
    /* A batch that followed the memo to its end, or stopped early, leaves it as it was: a
     * batch of the memo's first lines follows it as well. */
    PyObject *memo_out = following ? Py_NewRef(memo) : new_memo_finish(&built);
    PyObject *count = PyLong_FromSsize_t(points);
    PyObject *result = count == NULL || memo_out == NULL
        ? NULL : PyTuple_Pack(3, out.bytes, count, memo_out);
    Py_DECREF(out.bytes);
    Py_XDECREF(count);
    Py_XDECREF(memo_out);
    return result;

not_sure:
    Py_DECREF(out.bytes);
    new_memo_clear(&built);
    Py_RETURN_NONE;
error:
    Py_XDECREF(out.bytes);
    new_memo_clear(&built);
    return NULL;
}

static PyMethodDef methods[] = {
    {"whole_batch", whole_batch, METH_VARARGS,
     "whole_batch(body, cache, memo, lowest, highest, zeros, max_line_bytes, max_fields, "
     "max_points, allow_unsigned, refused_field_keys)\n--\n\n"
     "BatchPreparer._whole_batch over the whole body at once: (payload, points, memo) when every "
     "line is a plain point of a cached series with a timestamp in [lowest, highest] and no field "
     "named time or as one of refused_field_keys, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ingest._batchfast",
    .m_doc = "The whole-batch fast path of ingest.batch, in C (optional: batch.py falls back).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__batchfast(void)
{
    fill_classes();
    return PyModuleDef_Init(&module);
}
