/*
 * toml.h - a TOML 1.0.0 parser (Debian 12 ships no C TOML library).
 *
 * tr_toml_parse() turns a document into a tree of tr_toml_value nodes that
 * the caller owns and frees with tr_toml_free(). Every node remembers the
 * line its key (or, for array items, the value) was written on, so that the
 * config loader can report `FILE:LINE: key: what is wrong`.
 *
 * Tables keep their keys in document order. Strings are UTF-8 and carry an
 * explicit length (TOML allows "\u0000"). Date-times are kept as their
 * canonical RFC 3339 text plus a broken-down form.
 *
 * The parser is checked against the official toml-test suite
 * (build/toml-decoder) and fuzzed (tests/fuzz/fuzz_toml.c).
 */
#ifndef TR_TOML_H
#define TR_TOML_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tr_toml_type {
    TR_TOML_TABLE,
    TR_TOML_ARRAY,
    TR_TOML_STRING,
    TR_TOML_INTEGER,
    TR_TOML_FLOAT,
    TR_TOML_BOOL,
    TR_TOML_DATETIME,        /* offset date-time: 1979-05-27T07:32:00Z */
    TR_TOML_DATETIME_LOCAL,  /* 1979-05-27T07:32:00 */
    TR_TOML_DATE_LOCAL,      /* 1979-05-27 */
    TR_TOML_TIME_LOCAL,      /* 07:32:00 */
} tr_toml_type;

typedef struct tr_toml_value tr_toml_value;

/* Documents larger than this are rejected with TR_ETOOBIG. */
#define TR_TOML_MAX_INPUT ((size_t)16 * 1024 * 1024)
/* Arrays and inline tables nested deeper than this are rejected. */
#define TR_TOML_MAX_DEPTH 128

/*
 * Parse len bytes of text (need not be NUL-terminated). On success *out is
 * the root table (caller frees with tr_toml_free). On failure returns
 * TR_EPARSE (or TR_ENOMEM, TR_ETOOBIG), *out is NULL, and err->message reads
 * "LINE:COLUMN: what is wrong" (1-based), e.g. "3:7: duplicate key 'name'".
 */
int tr_toml_parse(tr_toml_value **out, const char *text, size_t len, tr_error *err);
void tr_toml_free(tr_toml_value *value);

tr_toml_type tr_toml_type_of(const tr_toml_value *value);
/* "table", "array", "string", "integer", "float", "boolean", "datetime", ... */
const char *tr_toml_type_name(tr_toml_type type);
/* 1-based line where the value's key (array item: the value) appears. */
int tr_toml_line(const tr_toml_value *value);

/* Tables and arrays: number of entries. Other types: 0. */
size_t tr_toml_count(const tr_toml_value *value);
/* Table or array entry i (0-based, document order); NULL when out of range. */
const tr_toml_value *tr_toml_at(const tr_toml_value *value, size_t i);
/* Table: key of entry i (borrowed); NULL when not a table or out of range. */
const char *tr_toml_key_at(const tr_toml_value *table, size_t i);
/* Same (borrowed), with the key's length in *len_out: quoted keys may hold "\u0000". */
const char *tr_toml_key_at_len(const tr_toml_value *table, size_t i, size_t *len_out);
/* Table: the entry named key, or NULL. */
const tr_toml_value *tr_toml_get(const tr_toml_value *table, const char *key);

/* Accessors; each is only meaningful for its type (others get 0/NULL). */
const char *tr_toml_string(const tr_toml_value *value, size_t *len_out);
int64_t tr_toml_integer(const tr_toml_value *value);
double tr_toml_float(const tr_toml_value *value);
bool tr_toml_bool(const tr_toml_value *value);

/* Date-time parts; fields a type lacks are 0 (has_offset false). */
typedef struct tr_toml_datetime {
    int year, month, day;
    int hour, minute, second;
    int nanosecond;
    bool has_offset;
    int offset_minutes; /* east of UTC; Z is 0 */
} tr_toml_datetime;

/*
 * The four date-time types: canonical RFC 3339 text such as
 * "1979-05-27T07:32:00.5-07:00", "1979-05-27", "07:32:00" (borrowed), and
 * the parts in *parts_out when it is not NULL.
 */
const char *tr_toml_datetime_text(const tr_toml_value *value, tr_toml_datetime *parts_out);

#endif
