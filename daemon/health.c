#include "health.h"
#include "alloc.h"
#include "error.h"

#include <string.h>

typedef struct component {
    char *name;
    char *detail;
    tr_health_state state;
} component;

struct tr_health {
    component components[TR_HEALTH_MAX_COMPONENTS];
    int count;
    int stopping;
};

int tr_health_new(tr_health **out)
{
    *out = tr_calloc(1, sizeof(tr_health));
    return *out ? TR_OK : TR_ENOMEM;
}

void tr_health_free(tr_health *health)
{
    int i;

    if (health == NULL)
        return;
    for (i = 0; i < health->count; i++) {
        tr_free(health->components[i].name);
        tr_free(health->components[i].detail);
    }
    tr_free(health);
}

static component *find(const tr_health *health, const char *name)
{
    int i;

    for (i = 0; i < health->count; i++)
        if (strcmp(health->components[i].name, name) == 0)
            return (component *)&health->components[i];
    return NULL;
}

int tr_health_set(tr_health *health, const char *name, tr_health_state state,
                  const char *detail)
{
    component *c = find(health, name);
    char *detail_copy = tr_strdup(detail ? detail : "");

    if (detail_copy == NULL)
        return TR_ENOMEM;
    if (c == NULL) {
        if (health->count == TR_HEALTH_MAX_COMPONENTS) {
            tr_free(detail_copy);
            return TR_ELIMIT;
        }
        c = &health->components[health->count];
        c->name = tr_strdup(name);
        if (c->name == NULL) {
            tr_free(detail_copy);
            return TR_ENOMEM;
        }
        health->count++;
    } else {
        tr_free(c->detail);
    }
    c->detail = detail_copy;
    c->state = state;
    return TR_OK;
}

int tr_health_get(const tr_health *health, const char *name, tr_health_state *state_out)
{
    const component *c = find(health, name);

    if (c == NULL)
        return TR_ENOTFOUND;
    *state_out = c->state;
    return TR_OK;
}

void tr_health_set_stopping(tr_health *health)
{
    health->stopping = 1;
}

int tr_health_is_ready(const tr_health *health)
{
    int i;

    if (health->stopping)
        return 0;
    for (i = 0; i < health->count; i++)
        if (health->components[i].state == TR_HEALTH_STARTING ||
            health->components[i].state == TR_HEALTH_FAILED)
            return 0;
    return 1;
}

const char *tr_health_state_name(tr_health_state state)
{
    switch (state) {
    case TR_HEALTH_OK: return "ok";
    case TR_HEALTH_STARTING: return "starting";
    case TR_HEALTH_DEGRADED: return "degraded";
    case TR_HEALTH_UNAVAILABLE: return "unavailable";
    case TR_HEALTH_DISABLED: return "disabled";
    case TR_HEALTH_FAILED: return "failed";
    }
    return "unknown";
}

int tr_health_render_json(const tr_health *health, tr_buf *out)
{
    int rc;
    int i;

    rc = tr_buf_printf(out, "{\"ready\":%s,\"stopping\":%s,\"components\":{",
                       tr_health_is_ready(health) ? "true" : "false",
                       health->stopping ? "true" : "false");
    for (i = 0; rc == TR_OK && i < health->count; i++) {
        const component *c = &health->components[i];
        rc = tr_buf_puts(out, i ? ",\"" : "\"");
        if (rc == TR_OK)
            rc = tr_buf_put_json_escaped(out, c->name, strlen(c->name));
        if (rc == TR_OK)
            rc = tr_buf_printf(out, "\":{\"state\":\"%s\",\"detail\":\"",
                               tr_health_state_name(c->state));
        if (rc == TR_OK)
            rc = tr_buf_put_json_escaped(out, c->detail, strlen(c->detail));
        if (rc == TR_OK)
            rc = tr_buf_puts(out, "\"}");
    }
    if (rc == TR_OK)
        rc = tr_buf_puts(out, "}}");
    return rc;
}

void tr_health_each(const tr_health *health,
                    void (*fn)(const char *component, tr_health_state state, void *userdata),
                    void *userdata)
{
    int i;

    for (i = 0; i < health->count; i++)
        fn(health->components[i].name, health->components[i].state, userdata);
}
