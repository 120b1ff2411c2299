/*
 * toml_internal.h - private to the TOML parser (toml.c, toml_parse.c,
 * toml_lex.c); nothing outside those files includes it.
 *
 * toml.c owns the tree (nodes, table index, accessors), toml_parse.c the
 * document grammar and the redefinition rules, toml_lex.c the scalars
 * (strings, numbers, booleans, date-times), the input checks and the
 * "LINE:COLUMN: message" errors.
 */
#ifndef TR_TOML_INTERNAL_H
#define TR_TOML_INTERNAL_H

#include "buf.h"
#include "error.h"
#include "toml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How a table or array came to exist; the redefinition rules of TOML are
 * decided on these alone.
 */
#define TR_TOML_F_IMPLICIT 0x01 /* table: created as a parent by [a.b] */
#define TR_TOML_F_DEFINED 0x02  /* table: named by its own [header] */
#define TR_TOML_F_DOTTED 0x04   /* table: created by a dotted key a.b = 1 */
#define TR_TOML_F_INLINE 0x08   /* table: { ... }, closed once written */
#define TR_TOML_F_AOT 0x10      /* array: built by [[header]], may grow */

typedef struct tr_toml_entry {
    char *key;      /* owned, NUL-terminated, may hold NULs (key_len) */
    size_t key_len;
    tr_toml_value *value; /* owned */
} tr_toml_entry;

struct tr_toml_value {
    tr_toml_type type;
    int line;
    int depth;      /* root table is 0; bounded by TR_TOML_MAX_DEPTH */
    unsigned flags; /* TR_TOML_F_* */
    union {
        struct {
            tr_toml_entry *entries; /* document order */
            size_t count, cap;
            uint32_t *index;        /* hash slots holding entry index + 1 */
            size_t index_cap;       /* power of two, or 0 while small */
        } table;
        struct {
            tr_toml_value **items;
            size_t count, cap;
        } array;
        struct {
            char *ptr; /* owned, NUL-terminated, may hold NULs (len) */
            size_t len;
        } string;
        int64_t integer;
        double number;
        bool boolean;
        struct {
            char text[48];
            tr_toml_datetime parts;
        } datetime;
    } u;
};

typedef struct tr_toml_parser {
    const char *text;
    size_t len;
    size_t pos;
    tr_error *err;
    tr_buf scratch;        /* string contents being unescaped */
    size_t line_cache_pos; /* line_of() resumes counting from here */
    int line_cache_line;
} tr_toml_parser;

/* toml.c: the tree. */
/* A node of the given type, or NULL without memory; caller frees with tr_toml_free. */
tr_toml_value *tr_toml_value_new(tr_toml_type type, int line, int depth);
/* The entry named key (key_len bytes) in table, or NULL. */
tr_toml_value *tr_toml_table_find(const tr_toml_value *table, const char *key, size_t key_len);
/*
 * Append key -> value (the key must not be present). On success the table
 * owns both; on failure (TR_ENOMEM) the caller still owns them.
 */
int tr_toml_table_add(tr_toml_value *table, char *key, size_t key_len, tr_toml_value *value);
/* Append item; on success the array owns it, on failure the caller does. */
int tr_toml_array_push(tr_toml_value *array, tr_toml_value *item);

/* toml_lex.c: input checks, errors, scalars. */
/* Record "LINE:COLUMN: message" for byte offset pos; returns TR_EPARSE. */
int tr_toml_fail(tr_toml_parser *p, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record TR_ENOMEM (with the position, for the curious); returns TR_ENOMEM. */
int tr_toml_nomem(tr_toml_parser *p);
/* 1-based line of byte offset pos. */
int tr_toml_line_of(tr_toml_parser *p, size_t pos);
/* Reject invalid UTF-8, control characters and lone CRs anywhere in the text. */
int tr_toml_check_text(tr_toml_parser *p);
/* Describe the byte at pos for a message: "'x'", "end of input", "newline". */
const char *tr_toml_describe(const tr_toml_parser *p, size_t pos, char *buf, size_t size);
/*
 * The string (any of the four kinds; keys may not be multi-line) that
 * starts at p->pos; *out is a copy the caller frees with tr_free.
 */
int tr_toml_lex_string(tr_toml_parser *p, bool is_key, char **out, size_t *len_out);
/* A boolean, integer, float or date-time at p->pos; caller frees *out. */
int tr_toml_lex_scalar(tr_toml_parser *p, int line, int depth, tr_toml_value **out);

#endif
