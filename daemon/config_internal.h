/*
 * config_internal.h - private to config*.c: the schema that drives loading,
 * defaults, printing, comparison and freeing of tr_config.
 *
 * Each section of the file is a table of field descriptors (key, kind,
 * offset into the section struct, limits, default). One table serves all five
 * jobs, so a key cannot be loadable but missing from check-config's output,
 * or printed but never freed.
 */
#ifndef TR_CONFIG_INTERNAL_H
#define TR_CONFIG_INTERNAL_H

#include "config.h"
#include "toml.h"

typedef enum cfg_kind {
    CFG_STRING,   /* char * */
    CFG_BOOL,     /* bool */
    CFG_INT,      /* int64_t within [min, max] */
    CFG_FLOAT,    /* double within [min, max]; integers accepted */
    CFG_DURATION, /* uint64_t milliseconds within [min, max] */
    CFG_ENUM,     /* an int-sized enum; names[i] is value i */
    CFG_FLAGS,    /* unsigned bit set from a list of names; [] means all */
    CFG_LIST,     /* tr_config_strlist */
    CFG_HEADERS,  /* tr_config_headers, a sub-table name -> string */
} cfg_kind;

/* cfg_field.flags */
#define CFG_NONEMPTY 0x01u /* "" is refused */
#define CFG_ENV 0x02u      /* an environment variable name (or "") */
#define CFG_FILE 0x04u     /* a path to a secret file: printed with readable/missing */
#define CFG_URL 0x08u      /* masked when printed */
#define CFG_HTTP 0x10u     /* when not "": must be an http:// or https:// URL */

typedef struct cfg_field {
    const char *key;
    cfg_kind kind;
    unsigned flags;
    size_t offset;
    double min, max;
    const char *const *names;    /* CFG_ENUM, CFG_FLAGS: NULL-terminated */
    unsigned kinds;              /* notify keys: bit (1 << kind) per kind using it; 0 = all */
    const char *def_str;         /* CFG_STRING, CFG_DURATION */
    double def_num;              /* CFG_BOOL, CFG_INT, CFG_FLOAT, CFG_ENUM, CFG_FLAGS */
    const char *const *def_list; /* CFG_LIST: NULL-terminated, NULL = empty */
} cfg_field;

typedef struct cfg_section {
    const char *name;
    size_t offset; /* of the section struct inside tr_config */
    const cfg_field *fields;
    size_t field_count;
} cfg_section;

extern const cfg_section cfg_sections[];
extern const size_t cfg_section_count;
extern const cfg_field cfg_repo_fields[];
extern const size_t cfg_repo_field_count;
extern const cfg_field cfg_notify_fields[];
extern const size_t cfg_notify_field_count;
extern const char *const cfg_notify_kind_names[];

/* Generic operations over one struct described by fields. */
int cfg_fields_default(void *base, const cfg_field *fields, size_t count);
void cfg_fields_free(void *base, const cfg_field *fields, size_t count);
bool cfg_fields_equal(const void *a, const void *b, const cfg_field *fields, size_t count);

/* Longest dotted key built for messages ("gitops.repos[12].allowed_paths[3]"). */
#define CFG_KEY_MAX 256

typedef struct load_ctx {
    const char *file; /* FILE in messages */
    tr_error *err;
} load_ctx;

/* Record `FILE:LINE: key: what` (line of node; no line when node is NULL). */
int cfg_fail(load_ctx *ctx, const tr_toml_value *node, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cfg_fail_nomem(load_ctx *ctx);

/*
 * Load every entry of table into base. kind_bit (notify only) refuses keys
 * that belong to another kind; skip names a key the caller loads itself.
 * Bit i of *seen is set when fields[i] was in the table.
 */
int cfg_load_fields(load_ctx *ctx, void *base, const cfg_field *fields, size_t count,
                    const tr_toml_value *table, const char *prefix, unsigned kind_bit,
                    const char *skip, uint64_t *seen);
/* Load one value of field into at (the field's storage). */
int cfg_load_value(load_ctx *ctx, const tr_toml_value *node, const char *key,
                   const cfg_field *field, char *at);
/* Key i of table; keys holding a NUL come back as a name no schema key matches. */
const char *cfg_key_at(const tr_toml_value *table, size_t i);
int cfg_field_index(const cfg_field *fields, size_t count, const char *key);
bool cfg_was_seen(uint64_t seen, const cfg_field *fields, size_t count, const char *key);
/* The node of key in table when present, else the table itself (for its line). */
const tr_toml_value *cfg_node_or_table(const tr_toml_value *table, const char *key);
bool cfg_is_env_name(const char *s);

void cfg_strlist_free(tr_config_strlist *list);
int cfg_strlist_copy(tr_config_strlist *dst, const tr_config_strlist *src);

#endif
