/*
 * toml.c - the TOML tree: nodes, the key index of tables, and the read-only
 * accessors of toml.h. Parsing lives in toml_parse.c and toml_lex.c.
 *
 * Tables keep their entries in an array in document order. Once a table
 * grows past a handful of keys it also gets an open-addressing hash index
 * over that array, so that a document with a million keys in one table
 * costs a million lookups, not a million squared.
 */
#include "toml.h"

#include "alloc.h"
#include "toml_internal.h"

#include <string.h>

/* Below this many keys a linear scan is cheaper than hashing. */
#define INDEX_MIN_KEYS 8

tr_toml_value *tr_toml_value_new(tr_toml_type type, int line, int depth)
{
    tr_toml_value *value = tr_calloc(1, sizeof(*value));

    if (value == NULL)
        return NULL;
    value->type = type;
    value->line = line;
    value->depth = depth;
    return value;
}

void tr_toml_free(tr_toml_value *value)
{
    size_t i;

    if (value == NULL)
        return;
    /* Recursion is bounded: the parser refuses trees deeper than TR_TOML_MAX_DEPTH. */
    switch (value->type) {
    case TR_TOML_TABLE:
        for (i = 0; i < value->u.table.count; i++) {
            tr_free(value->u.table.entries[i].key);
            tr_toml_free(value->u.table.entries[i].value);
        }
        tr_free(value->u.table.entries);
        tr_free(value->u.table.index);
        break;
    case TR_TOML_ARRAY:
        for (i = 0; i < value->u.array.count; i++)
            tr_toml_free(value->u.array.items[i]);
        tr_free(value->u.array.items);
        break;
    case TR_TOML_STRING:
        tr_free(value->u.string.ptr);
        break;
    default:
        break;
    }
    tr_free(value);
}

static uint32_t hash_key(const char *key, size_t len)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < len; i++) {
        hash ^= (unsigned char)key[i];
        hash *= 16777619u;
    }
    return hash;
}

static void index_insert(uint32_t *index, size_t index_cap, const tr_toml_entry *entry,
                         size_t entry_no)
{
    size_t mask = index_cap - 1;
    size_t slot = hash_key(entry->key, entry->key_len) & mask;

    while (index[slot] != 0)
        slot = (slot + 1) & mask;
    index[slot] = (uint32_t)(entry_no + 1);
}

/* Keep the index at most half full; rebuilt from the entries when it grows. */
static int index_reserve(tr_toml_value *table, size_t want_count)
{
    size_t cap = table->u.table.index_cap;
    uint32_t *index;
    size_t i;

    if (want_count < INDEX_MIN_KEYS || want_count * 2 <= cap)
        return TR_OK;
    if (want_count >= UINT32_MAX / 4)
        return TR_ETOOBIG;
    if (cap == 0)
        cap = 32;
    while (want_count * 2 > cap)
        cap *= 2;
    index = tr_calloc(cap, sizeof(*index));
    if (index == NULL)
        return TR_ENOMEM;
    for (i = 0; i < table->u.table.count; i++)
        index_insert(index, cap, &table->u.table.entries[i], i);
    tr_free(table->u.table.index);
    table->u.table.index = index;
    table->u.table.index_cap = cap;
    return TR_OK;
}

static bool key_equal(const tr_toml_entry *entry, const char *key, size_t key_len)
{
    return entry->key_len == key_len && memcmp(entry->key, key, key_len) == 0;
}

tr_toml_value *tr_toml_table_find(const tr_toml_value *table, const char *key, size_t key_len)
{
    const tr_toml_entry *entries;
    size_t i, mask, slot;

    if (table == NULL || table->type != TR_TOML_TABLE)
        return NULL;
    entries = table->u.table.entries;
    if (table->u.table.index == NULL) {
        for (i = 0; i < table->u.table.count; i++)
            if (key_equal(&entries[i], key, key_len))
                return entries[i].value;
        return NULL;
    }
    mask = table->u.table.index_cap - 1;
    slot = hash_key(key, key_len) & mask;
    while (table->u.table.index[slot] != 0) {
        const tr_toml_entry *entry = &entries[table->u.table.index[slot] - 1];

        if (key_equal(entry, key, key_len))
            return entry->value;
        slot = (slot + 1) & mask;
    }
    return NULL;
}

int tr_toml_table_add(tr_toml_value *table, char *key, size_t key_len, tr_toml_value *value)
{
    size_t count = table->u.table.count;
    int rc;

    if (count == table->u.table.cap) {
        size_t cap = count ? count * 2 : 4;
        tr_toml_entry *entries = tr_realloc(table->u.table.entries, cap * sizeof(*entries));

        if (entries == NULL)
            return TR_ENOMEM;
        table->u.table.entries = entries;
        table->u.table.cap = cap;
    }
    rc = index_reserve(table, count + 1);
    if (rc != TR_OK)
        return rc;
    table->u.table.entries[count].key = key;
    table->u.table.entries[count].key_len = key_len;
    table->u.table.entries[count].value = value;
    if (table->u.table.index != NULL)
        index_insert(table->u.table.index, table->u.table.index_cap,
                     &table->u.table.entries[count], count);
    table->u.table.count = count + 1;
    return TR_OK;
}

int tr_toml_array_push(tr_toml_value *array, tr_toml_value *item)
{
    size_t count = array->u.array.count;

    if (count == array->u.array.cap) {
        size_t cap = count ? count * 2 : 4;
        tr_toml_value **items = tr_realloc(array->u.array.items, cap * sizeof(tr_toml_value *));

        if (items == NULL)
            return TR_ENOMEM;
        array->u.array.items = items;
        array->u.array.cap = cap;
    }
    array->u.array.items[count] = item;
    array->u.array.count = count + 1;
    return TR_OK;
}

tr_toml_type tr_toml_type_of(const tr_toml_value *value)
{
    return value ? value->type : TR_TOML_TABLE;
}

const char *tr_toml_type_name(tr_toml_type type)
{
    switch (type) {
    case TR_TOML_TABLE: return "table";
    case TR_TOML_ARRAY: return "array";
    case TR_TOML_STRING: return "string";
    case TR_TOML_INTEGER: return "integer";
    case TR_TOML_FLOAT: return "float";
    case TR_TOML_BOOL: return "boolean";
    case TR_TOML_DATETIME: return "datetime";
    case TR_TOML_DATETIME_LOCAL: return "local datetime";
    case TR_TOML_DATE_LOCAL: return "local date";
    case TR_TOML_TIME_LOCAL: return "local time";
    }
    return "unknown";
}

int tr_toml_line(const tr_toml_value *value)
{
    return value ? value->line : 0;
}

size_t tr_toml_count(const tr_toml_value *value)
{
    if (value == NULL)
        return 0;
    if (value->type == TR_TOML_TABLE)
        return value->u.table.count;
    if (value->type == TR_TOML_ARRAY)
        return value->u.array.count;
    return 0;
}

const tr_toml_value *tr_toml_at(const tr_toml_value *value, size_t i)
{
    if (value == NULL || i >= tr_toml_count(value))
        return NULL;
    if (value->type == TR_TOML_TABLE)
        return value->u.table.entries[i].value;
    return value->u.array.items[i];
}

const char *tr_toml_key_at(const tr_toml_value *table, size_t i)
{
    return tr_toml_key_at_len(table, i, NULL);
}

const char *tr_toml_key_at_len(const tr_toml_value *table, size_t i, size_t *len_out)
{
    if (len_out != NULL)
        *len_out = 0;
    if (table == NULL || table->type != TR_TOML_TABLE || i >= table->u.table.count)
        return NULL;
    if (len_out != NULL)
        *len_out = table->u.table.entries[i].key_len;
    return table->u.table.entries[i].key;
}

const tr_toml_value *tr_toml_get(const tr_toml_value *table, const char *key)
{
    if (key == NULL)
        return NULL;
    return tr_toml_table_find(table, key, strlen(key));
}

const char *tr_toml_string(const tr_toml_value *value, size_t *len_out)
{
    if (len_out != NULL)
        *len_out = 0;
    if (value == NULL || value->type != TR_TOML_STRING)
        return NULL;
    if (len_out != NULL)
        *len_out = value->u.string.len;
    return value->u.string.ptr;
}

int64_t tr_toml_integer(const tr_toml_value *value)
{
    return value && value->type == TR_TOML_INTEGER ? value->u.integer : 0;
}

double tr_toml_float(const tr_toml_value *value)
{
    return value && value->type == TR_TOML_FLOAT ? value->u.number : 0.0;
}

bool tr_toml_bool(const tr_toml_value *value)
{
    return value && value->type == TR_TOML_BOOL ? value->u.boolean : false;
}

const char *tr_toml_datetime_text(const tr_toml_value *value, tr_toml_datetime *parts_out)
{
    bool is_datetime = value != NULL &&
                       (value->type == TR_TOML_DATETIME || value->type == TR_TOML_DATETIME_LOCAL ||
                        value->type == TR_TOML_DATE_LOCAL || value->type == TR_TOML_TIME_LOCAL);

    if (parts_out != NULL) {
        if (is_datetime)
            *parts_out = value->u.datetime.parts;
        else
            memset(parts_out, 0, sizeof(*parts_out));
    }
    return is_datetime ? value->u.datetime.text : NULL;
}
